// Copyright 2026 The Kiln Authors.
// kiln_run: starts the processes of a distributed job (on this host, or on
// several over ssh), with the environment torchrun sets (RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), which
// distributed::Init() reads.
//
//   kiln_run -n 2 ./build/examples/fashion_mnist/fashion_mnist --distributed
//   # Two hosts, 2 processes each (rank 0's host is a):
//   kiln_run -n 2 --hosts a,b prog        # from any shell: ssh a kiln_run ..., ssh b kiln_run ...
//   # or, on each host:
//   kiln_run -n 2 --nnodes 2 --node-rank 0 --master-addr a --master-port 29500 prog   # on host a
//   kiln_run -n 2 --nnodes 2 --node-rank 1 --master-addr a --master-port 29500 prog   # on host b
//
// Each line a process prints is prefixed with its rank ("[1] ..."). When one
// process fails (non-zero exit or a signal), the others get --grace seconds
// to end by themselves (they see the failure in their next collective and
// report which rank is gone), then are killed; kiln_run exits with the first
// failure's status (128 + signal for a signal).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Args {
  int nproc = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: a free port (one host only)
  double grace_s = 3;
  bool prefix = true;
  std::vector<std::string> hosts;  // --hosts: one kiln_run per host, started over ssh
  std::string ssh = "ssh";
  std::vector<std::string> command;
};

[[noreturn]] void Usage(const std::string& error) {
  if (!error.empty()) std::cerr << "kiln_run: " << error << "\n";
  std::cerr << "usage: kiln_run -n N [--nnodes M --node-rank K --master-addr HOST --master-port PORT]\n"
               "                [--hosts A,B,... [--ssh CMD]] [--grace SECONDS] [--no-prefix] program [args...]\n"
               "  -n N            processes on this host (ranks K*N ... K*N+N-1)\n"
               "  --nnodes M      hosts in the job (run kiln_run on each; default 1)\n"
               "  --node-rank K   this host's index, 0 on the host of rank 0 (default 0)\n"
               "  --master-addr   the host of rank 0 (default 127.0.0.1)\n"
               "  --master-port   rank 0's store port (default: a free port; required with --nnodes > 1)\n"
               "  --hosts A,B     N processes on each host, started from here: `ssh HOST kiln_run ...` in this\n"
               "                  directory (same paths everywhere); rank 0 on A (default port 29500)\n"
               "  --ssh CMD       the ssh command for --hosts (default ssh; KILN_RUN_SSH)\n"
               "  --grace S       after a process fails, seconds the others get to end by themselves (default 3)\n"
               "  --no-prefix     do not prefix output lines with the rank\n";
  std::exit(2);
}

int ParseInt(const std::string& flag, const char* value, int lo) {
  if (value == nullptr) Usage(flag + " needs a value");
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  if (*value == '\0' || *end != '\0' || v < lo || v > 65535) Usage(flag + " " + value + " is not a valid number");
  return static_cast<int>(v);
}

Args Parse(int argc, char** argv) {
  Args a;
  bool master_addr_given = false;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string f = argv[i];
    const char* next = i + 1 < argc ? argv[i + 1] : nullptr;
    if (f == "-n" || f == "--nproc-per-node") a.nproc = ParseInt(f, next, 1), ++i;
    else if (f == "--nnodes") a.nnodes = ParseInt(f, next, 1), ++i;
    else if (f == "--node-rank") a.node_rank = ParseInt(f, next, 0), ++i;
    else if (f == "--master-addr") {
      if (next == nullptr) Usage("--master-addr needs a value");
      a.master_addr = next, ++i;
      master_addr_given = true;
    } else if (f == "--master-port") a.master_port = ParseInt(f, next, 1), ++i;
    else if (f == "--grace") {
      if (next == nullptr) Usage("--grace needs a value");
      char* end = nullptr;
      a.grace_s = std::strtod(next, &end);
      if (*end != '\0' || a.grace_s < 0) Usage(std::string("--grace ") + next + " is not a number of seconds");
      ++i;
    } else if (f == "--hosts") {
      if (next == nullptr) Usage("--hosts needs a comma-separated list");
      std::string list = next, host;
      ++i;
      for (size_t k = 0; k <= list.size(); ++k) {
        if (k == list.size() || list[k] == ',') {
          if (host.empty()) Usage("--hosts " + list + " has an empty host name");
          a.hosts.push_back(host);
          host.clear();
        } else {
          host += list[k];
        }
      }
    } else if (f == "--ssh") {
      if (next == nullptr) Usage("--ssh needs a command");
      a.ssh = next, ++i;
    } else if (f == "--no-prefix") a.prefix = false;
    else if (f == "-h" || f == "--help") Usage("");
    else if (f == "--") { ++i; break; }
    else if (!f.empty() && f[0] == '-') Usage("unknown option " + f);
    else break;
  }
  for (; i < argc; ++i) a.command.push_back(argv[i]);
  if (a.command.empty()) Usage("no program to run");
  if (a.node_rank >= a.nnodes) Usage("--node-rank must be below --nnodes");
  if (!a.hosts.empty()) {
    if (a.nnodes > 1 || a.node_rank > 0) Usage("--hosts replaces --nnodes and --node-rank");
    a.nnodes = static_cast<int>(a.hosts.size());
    if (!master_addr_given) a.master_addr = a.hosts[0];
    if (a.master_port == 0) a.master_port = 29500;
    if (const char* ssh = std::getenv("KILN_RUN_SSH"); ssh != nullptr && a.ssh == "ssh") a.ssh = ssh;
    return a;
  }
  if (a.nnodes > 1 && (a.master_port == 0 || !master_addr_given)) {
    Usage("--master-addr and --master-port are required with --nnodes > 1 (every host must reach rank 0's)");
  }
  return a;
}

// A port nobody listens on now (the kernel's choice), for rank 0's store.
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::cerr << "kiln_run: cannot find a free port: " << std::strerror(errno) << "\n";
    std::exit(1);
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

struct Child {
  int rank = 0;
  std::string label;  // "rank 3" or "host b" in messages
  pid_t pid = -1;
  int fd = -1;  // read end of its stdout+stderr
  std::string pending;  // a partial line
  bool running = true;
};

// `s` as one word for a POSIX shell.
std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

// The command line that starts host `node`'s share of the job: ssh runs it
// through the remote shell, in this directory, with this kiln_run's path
// and the settings a job reads from the environment.
std::vector<std::string> HostCommand(const Args& a, int node, int port) {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  const std::string kiln_run = n > 0 ? std::string(self, static_cast<size_t>(n)) : "kiln_run";
  char cwd[4096];
  const std::string dir = ::getcwd(cwd, sizeof(cwd)) != nullptr ? cwd : ".";
  std::string remote = "cd " + Quote(dir) + " && exec env";
  for (const char* var : {"KILN_DIST_TIMEOUT_S", "KILN_DIST_TRACE", "GLOO_SOCKET_IFNAME", "OMP_NUM_THREADS",
                          "KILN_BACKEND"}) {
    if (const char* v = std::getenv(var)) remote += std::string(" ") + var + "=" + Quote(v);
  }
  // (Appended word by word: GCC 12's -Wrestrict misfires on long chains of +.)
  auto add = [&remote](const std::string& word) {
    remote += ' ';
    remote += word;
  };
  for (const std::string& w : {Quote(kiln_run), std::string("-n"), std::to_string(a.nproc), std::string("--nnodes"),
                               std::to_string(a.nnodes), std::string("--node-rank"), std::to_string(node),
                               std::string("--master-addr"), Quote(a.master_addr), std::string("--master-port"),
                               std::to_string(port), std::string("--grace"), std::to_string(a.grace_s)}) {
    add(w);
  }
  if (!a.prefix) add("--no-prefix");
  add("--");
  for (const auto& w : a.command) add(Quote(w));
  std::vector<std::string> argv;
  std::string word;  // --ssh "ssh -p 2222": split on spaces
  for (size_t k = 0; k <= a.ssh.size(); ++k) {
    if (k == a.ssh.size() || a.ssh[k] == ' ') {
      if (!word.empty()) argv.push_back(word);
      word.clear();
    } else {
      word += a.ssh[k];
    }
  }
  argv.push_back(a.hosts[static_cast<size_t>(node)]);
  argv.push_back(remote);
  return argv;
}

volatile sig_atomic_t g_signal = 0;
void OnSignal(int sig) { g_signal = sig; }

void Emit(bool prefix, const Child& c, const std::string& line) {
  std::string out;
  if (prefix) {
    out += '[';
    out += std::to_string(c.rank);
    out += "] ";
  }
  out += line;
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

std::string Describe(int status) {
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                   strsignal(WTERMSIG(status)) + ")";
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = Parse(argc, argv);
  const int world = a.nproc * a.nnodes;
  const int port = a.master_port != 0 ? a.master_port : FreePort();
  // As torchrun: without an OMP_NUM_THREADS of the user's, the host's cores
  // are shared among its processes instead of each starting one thread per core.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string threads = std::to_string(std::max(1u, cores / static_cast<unsigned>(a.nproc)));

  struct sigaction sa{};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const pid_t parent = ::getpid();
  // One child per local process, or with --hosts one ssh per host (whose
  // kiln_run prefixes its processes' lines itself).
  const bool via_hosts = !a.hosts.empty();
  const int num_children = via_hosts ? a.nnodes : a.nproc;
  const bool prefix = a.prefix && !via_hosts;
  std::vector<Child> children(static_cast<size_t>(num_children));
  for (int local = 0; local < num_children; ++local) {
    Child& c = children[static_cast<size_t>(local)];
    c.rank = a.node_rank * a.nproc + local;
    c.label = via_hosts ? "host " + a.hosts[static_cast<size_t>(local)] : "rank " + std::to_string(c.rank);
    const std::vector<std::string> argv = via_hosts ? HostCommand(a, local, port) : a.command;
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) {
      std::perror("kiln_run: pipe");
      return 1;
    }
    c.pid = ::fork();
    if (c.pid < 0) {
      std::perror("kiln_run: fork");
      return 1;
    }
    if (c.pid == 0) {
      // Its own process group, so stopping it reaches what it starts too;
      // and it dies with kiln_run (killed by a timeout, say) instead of
      // waiting in a collective for peers that are gone.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) std::_Exit(1);  // kiln_run died before prctl
      ::dup2(pipefd[1], STDOUT_FILENO);
      ::dup2(pipefd[1], STDERR_FILENO);
      if (!via_hosts) {
      ::setenv("RANK", std::to_string(c.rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(local).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(a.nproc).c_str(), 1);
      ::setenv("GROUP_RANK", std::to_string(a.node_rank).c_str(), 1);
      ::setenv("MASTER_ADDR", a.master_addr.c_str(), 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::setenv("OMP_NUM_THREADS", threads.c_str(), 0);
      }
      std::vector<char*> args;
      for (const auto& w : argv) args.push_back(const_cast<char*>(w.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      std::fprintf(stderr, "kiln_run: cannot run %s: %s\n", args[0], std::strerror(errno));
      std::_Exit(127);
    }
    ::setpgid(c.pid, c.pid);  // (also here: whichever of parent and child runs first)
    ::close(pipefd[1]);
    c.fd = pipefd[0];
  }

  int exit_code = 0;
  bool failed = false;
  std::chrono::steady_clock::time_point kill_at{};
  bool killed = false;
  // Until every process has ended and its output is read; a pipe a
  // process's own children keep open is given up shortly after it ends.
  std::chrono::steady_clock::time_point all_ended{};
  auto running = [&] {
    bool any_running = false, any_open = false;
    for (const Child& c : children) {
      any_running = any_running || c.running;
      any_open = any_open || c.fd >= 0;
    }
    if (any_running) return true;
    if (all_ended.time_since_epoch().count() == 0) all_ended = std::chrono::steady_clock::now();
    return any_open && std::chrono::steady_clock::now() - all_ended < std::chrono::seconds(2);
  };
  auto signal_all = [&](int sig) {
    for (const Child& c : children) {
      if (c.running) ::kill(-c.pid, sig);  // its process group
    }
  };
  while (running()) {
    if (g_signal != 0) {
      signal_all(g_signal);
      if (!failed) {
        exit_code = 128 + g_signal;
        kill_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(a.grace_s * 1000));
      }
      failed = true;
      g_signal = 0;
    }
    // Output: a line at a time, prefixed.
    std::vector<pollfd> fds;
    for (const Child& c : children) {
      if (c.fd >= 0) fds.push_back({c.fd, POLLIN, 0});
    }
    if (!fds.empty()) ::poll(fds.data(), fds.size(), 100);
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (Child& c : children) {
      if (c.fd < 0) continue;
      bool ready = false;
      for (const pollfd& p : fds) ready = ready || (p.fd == c.fd && p.revents != 0);
      if (!ready) continue;
      char buf[65536];
      const ssize_t n = ::read(c.fd, buf, sizeof(buf));
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        if (!c.pending.empty()) Emit(prefix, c, c.pending + "\n");
        c.pending.clear();
        ::close(c.fd);
        c.fd = -1;
        continue;
      }
      c.pending.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t k = 0; k < c.pending.size(); ++k) {
        if (c.pending[k] == '\n' || c.pending[k] == '\r') {
          // "\r" (a progress bar redrawn) and "\r\n" end one line each.
          if (c.pending[k] == '\n' && k > 0 && c.pending[k - 1] == '\r' && k == start) {
            start = k + 1;
            continue;
          }
          Emit(prefix, c, c.pending.substr(start, k - start) + "\n");
          start = k + 1;
        }
      }
      c.pending.erase(0, start);
    }
    // Exits.
    for (Child& c : children) {
      if (!c.running) continue;
      int status = 0;
      if (::waitpid(c.pid, &status, WNOHANG) != c.pid) continue;
      c.running = false;
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (!ok) {
        std::fprintf(stderr, "kiln_run: %s %s\n", c.label.c_str(), Describe(status).c_str());
        if (!failed) {
          exit_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
          failed = true;
          kill_at = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(a.grace_s * 1000));
          std::fprintf(stderr, "kiln_run: stopping the other processes (in at most %g s)\n", a.grace_s);
        }
      }
    }
    if (failed && !killed && kill_at.time_since_epoch().count() != 0 && std::chrono::steady_clock::now() >= kill_at) {
      signal_all(SIGKILL);
      killed = true;
    }
  }
  for (Child& c : children) {
    if (c.fd >= 0) ::close(c.fd);
  }
  return exit_code;
}
