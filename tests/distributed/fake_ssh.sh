#!/bin/sh
# A stand-in for ssh in kiln_run's --hosts test: "fake_ssh.sh HOST COMMAND"
# runs COMMAND through the shell here, as ssh would on HOST, and notes the host.
host=$1
shift
echo "fake_ssh: on $host" >&2
exec sh -c "$*"
