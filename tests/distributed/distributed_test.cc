// Copyright 2026 The Kiln Authors.
// Multi-process tests: kiln_run starts 2 or 4 processes of
// distributed_worker on 127.0.0.1; each scenario's checks run in the
// workers (see worker.cc), this test checks their exit status and output.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include <gmock/gmock.h>

#include "src/distributed/store.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

struct Result {
  int status = -1;  // exit status of kiln_run
  std::string output;
  double seconds = 0;
};

// Runs `command` through the shell, output and errors merged.
Result Shell(const std::string& command) {
  Result r;
  const auto t0 = std::chrono::steady_clock::now();
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int raw = ::pclose(p);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// kiln_run -n N [flags] distributed_worker ARGS, with a short collective
// timeout, on the workers' default backend (the CPU) or `backend`.
Result Launch(int n, const std::string& args, const std::string& flags = "", double timeout_s = 20,
              const std::string& backend = "") {
  const std::string env = "KILN_DIST_TIMEOUT_S=" + std::to_string(timeout_s) + " OMP_NUM_THREADS=1 " +
                          (backend.empty() ? "" : "KILN_WORKER_BACKEND=" + backend + " ");
  return Shell(env + KILN_RUN_PATH + " -n " + std::to_string(n) + " " + flags + " " + KILN_WORKER_PATH + " " + args);
}

class Distributed : public ::testing::TestWithParam<int> {};

TEST_P(Distributed, CollectivesOfEveryDTypeMatchTheReference) {
  Result r = Launch(GetParam(), "collectives");
  EXPECT_EQ(r.status, 0) << r.output;
  for (int rank = 0; rank < GetParam(); ++rank) {
    std::string pass = "[0] PASS collectives";
    pass[1] = static_cast<char>('0' + rank);
    EXPECT_THAT(r.output, HasSubstr(pass)) << r.output;
  }
}

TEST_P(Distributed, DataParallelTrainingEqualsSingleProcessTraining) {
  Result r = Launch(GetParam(), "train");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[0] max |data-parallel - single process|")) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[0] PASS train")) << r.output;
}

INSTANTIATE_TEST_SUITE_P(Processes, Distributed, ::testing::Values(2, 4));

// The CUDA backend's Collective steps (the engine on host copies of the
// buffers): the collectives of every dtype, in graphs with their gradients,
// and data-parallel training equal to one process's, on 2 processes, on the
// CUDA emulator and, where there is a GPU, on it (both processes share it).
TEST(DistributedCuda, CollectivesAndTrainingOnTheCudaBackend) {
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  // (The emulator's fibers switch stacks, which the sanitizers mistake for
  // errors; its modules are not instrumented either.)
  GTEST_SKIP() << "not in the sanitizer builds";
#endif
#endif
  int ran = 0;
  for (const char* backend : {"cuda-emu", "cuda"}) {
    try {
      testing::NewTestBackend(backend);
    } catch (const Error& e) {
      std::printf("%s: skipped (%s)\n", backend, e.what());
      continue;
    }
    ++ran;
    for (const char* scenario : {"collectives", "train"}) {
      SCOPED_TRACE(std::string(backend) + " " + scenario);
      Result r = Launch(2, scenario, "", 60, backend);
      EXPECT_EQ(r.status, 0) << r.output;
      for (const char* rank : {"[0] PASS ", "[1] PASS "}) {
        EXPECT_THAT(r.output, HasSubstr(rank + std::string(scenario))) << r.output;
      }
    }
  }
  if (ran == 0) GTEST_SKIP() << "no CUDA backend in this build";
}

// Two "hosts" (two kiln_run instances, as on two machines; here both on
// 127.0.0.1) of one process each.
TEST(DistributedInit, SeveralLaunchersFormOneJob) {
  const std::string port = std::to_string(30000 + ::getpid() % 2000);
  const std::string flags = " -n 1 --nnodes 2 --master-addr 127.0.0.1 --master-port " + port;
  Result r = Shell("KILN_DIST_TIMEOUT_S=20 OMP_NUM_THREADS=1 " + std::string(KILN_RUN_PATH) + flags +
                   " --node-rank 1 " + KILN_WORKER_PATH + " collectives & KILN_DIST_TIMEOUT_S=20 OMP_NUM_THREADS=1 " +
                   KILN_RUN_PATH + flags + " --node-rank 0 " + KILN_WORKER_PATH + " collectives; wait");
  EXPECT_THAT(r.output, HasSubstr("[0] PASS collectives")) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[1] PASS collectives")) << r.output;
}

// --hosts: kiln_run starts one kiln_run per host over ssh (here a stand-in
// that runs the command locally; both "hosts" are this machine).
TEST(DistributedInit, HostsAreStartedOverSsh) {
  const std::string port = std::to_string(32000 + ::getpid() % 2000);
  Result r = Shell("KILN_DIST_TIMEOUT_S=20 OMP_NUM_THREADS=1 " + std::string(KILN_RUN_PATH) +
                   " -n 2 --hosts 127.0.0.1,localhost --master-port " + port + " --ssh " + KILN_FAKE_SSH + " " +
                   KILN_WORKER_PATH + " collectives");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("fake_ssh: on 127.0.0.1")) << r.output;
  EXPECT_THAT(r.output, HasSubstr("fake_ssh: on localhost")) << r.output;
  for (const char* rank : {"[0] PASS collectives", "[1] PASS", "[2] PASS", "[3] PASS collectives"}) {
    EXPECT_THAT(r.output, HasSubstr(rank)) << r.output;
  }
  r = Shell(std::string(KILN_RUN_PATH) + " -n 1 --hosts a,,b true");
  EXPECT_THAT(r.output, HasSubstr("kiln_run: --hosts a,,b has an empty host name"));
}

// One host without rank 0's TCP store: Gloo's file store in a shared directory.
TEST(DistributedInit, AFileStoreJoinsTheProcessesOfOneHost) {
  const std::string dir = ::testing::TempDir() + "/kiln_file_store";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Result r = Shell("KILN_STORE_PATH=" + dir + " " + KILN_RUN_PATH + " -n 2 " + KILN_WORKER_PATH + " collectives");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[1] PASS collectives")) << r.output;
  std::filesystem::remove_all(dir);
}

// kill -9 of rank 1 mid-training: rank 0 stops with an error naming it
// within the timeout, kiln_run exits non-zero; a restart resumes from the
// last checkpoint and ends where an uninterrupted run ends.
TEST(DistributedFaults, AKilledRankEndsTheOthersAndTheRunResumes) {
  const std::string dir = ::testing::TempDir() + "/kiln_distributed_resume";
  std::filesystem::remove_all(dir);
  Result killed = Launch(2, "kill " + dir, "--grace 30", /*timeout_s=*/5);
  EXPECT_NE(killed.status, 0) << killed.output;
  EXPECT_THAT(killed.output, HasSubstr("kiln_run: rank 1 was killed by signal 9")) << killed.output;
  EXPECT_THAT(killed.output, HasSubstr("[0] ERROR after")) << killed.output;
  EXPECT_THAT(killed.output, HasSubstr("rank 1 is gone")) << killed.output;
  EXPECT_LT(killed.seconds, 25) << killed.output;
  Result resumed = Launch(2, "resume " + dir);
  EXPECT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("[0] restored \"checkpoint-0000000004\" at step 4")) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("[1] restored \"checkpoint-0000000004\" at step 4")) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("[0] PASS resume")) << resumed.output;
  std::filesystem::remove_all(dir);
}

TEST(DistributedFaults, RanksCallingDifferentCollectivesGetAnErrorNotGarbage) {
  Result r = Launch(2, "disagree-count", "", /*timeout_s=*/3);
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[0] ERROR: distributed: collective #1 AllReduce of Float32[10] (sum) failed on "
                                  "rank 0: the ranks disagree: rank 0 called collective #1 AllReduce of "
                                  "Float32[10] (sum), rank 1 called collective #1 AllReduce of Float32[12] (sum)"))
      << r.output;
}

TEST(DistributedFaults, AHungRankIsNamedAfterTheTimeout) {
  Result r = Launch(2, "disagree-hang", "--grace 0", /*timeout_s=*/2);
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[0] ERROR: distributed: collective #1 AllReduce of Float32[10] (sum) failed on "
                                  "rank 0: rank 1 did not reach it within 2000 ms (it is still connected: hung, "
                                  "or slower than the timeout)"))
      << r.output;
  EXPECT_LT(r.seconds, 20) << r.output;
}

TEST(DistributedFaults, ADifferentModelOnOneRankIsAnError) {
  Result r = Launch(2, "disagree-model");
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_THAT(r.output, HasSubstr("Trainer (data-parallel): rank 1's model differs from rank 0's")) << r.output;
}

// Processes started with different world sizes (not through kiln_run).
TEST(DistributedFaults, DisagreeingWorldSizesAreAnError) {
  const std::string port = "29" + std::to_string(100 + ::getpid() % 800);
  const std::string common = "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port + " KILN_DIST_TIMEOUT_S=10 ";
  Result r = Shell("(" + common + "RANK=0 WORLD_SIZE=2 " + KILN_WORKER_PATH + " init & " + common +
                   "RANK=1 WORLD_SIZE=3 " + KILN_WORKER_PATH + " init; wait)");
  EXPECT_THAT(r.output, HasSubstr("the ranks disagree on the world size: rank 0 was started with WORLD_SIZE=2, "
                                  "rank 1 with 3"))
      << r.output;
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("PASS"))) << r.output;
}

TEST(DistributedInit, MissingEnvironmentIsAClearError) {
  Result r = Shell(std::string("env -u RANK -u WORLD_SIZE -u OMPI_COMM_WORLD_RANK ") + KILN_WORKER_PATH + " init");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("distributed::Init: this process's rank and the world size are unknown: set RANK "
                                  "and WORLD_SIZE"))
      << r.output;
  r = Shell(std::string("RANK=x WORLD_SIZE=2 ") + KILN_WORKER_PATH + " init");
  EXPECT_THAT(r.output, HasSubstr("distributed::Init: RANK=\"x\" is not a valid integer")) << r.output;
  r = Shell(std::string("RANK=2 WORLD_SIZE=2 ") + KILN_WORKER_PATH + " init");
  EXPECT_THAT(r.output, HasSubstr("distributed::Init: rank 2 is out of range for WORLD_SIZE=2")) << r.output;
  r = Shell(std::string("env -u MASTER_ADDR -u MASTER_PORT RANK=0 WORLD_SIZE=2 ") + KILN_WORKER_PATH + " init");
  EXPECT_THAT(r.output, HasSubstr("distributed::Init: rank 0's address is unknown: set MASTER_ADDR and MASTER_PORT"))
      << r.output;
  r = Shell(std::string("RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=0 ") + KILN_WORKER_PATH + " init");
  EXPECT_THAT(r.output, HasSubstr("distributed::Init: MASTER_PORT=0 is not a port every process can reach (1-65535)"))
      << r.output;
  r = Shell(std::string("RANK=0 WORLD_SIZE=1 KILN_DIST_TIMEOUT_S=soon ") + KILN_WORKER_PATH + " init");
  EXPECT_THAT(r.output, HasSubstr("distributed::Init: KILN_DIST_TIMEOUT_S=\"soon\" is not a number of seconds"))
      << r.output;
}

TEST(KilnRun, ReportsUsageErrorsAndAFailingProgram) {
  Result r = Shell(std::string(KILN_RUN_PATH) + " -n 0 true");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.output, HasSubstr("kiln_run: -n 0 is not a valid number"));
  r = Shell(std::string(KILN_RUN_PATH) + " -n 2");
  EXPECT_THAT(r.output, HasSubstr("kiln_run: no program to run"));
  r = Shell(std::string(KILN_RUN_PATH) + " -n 2 --nnodes 2 true");
  EXPECT_THAT(r.output, HasSubstr("kiln_run: --master-addr and --master-port are required with --nnodes > 1"));
  r = Shell(std::string(KILN_RUN_PATH) + " -n 2 --nnodes 2 --hosts a,b true");
  EXPECT_THAT(r.output, HasSubstr("kiln_run: --hosts replaces --nnodes and --node-rank"));
  r = Shell(std::string(KILN_RUN_PATH) + " -n 2 sh -c 'echo rank $RANK of $WORLD_SIZE; exit $RANK'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[0] rank 0 of 2"));
  EXPECT_THAT(r.output, HasSubstr("[1] rank 1 of 2"));
  EXPECT_THAT(r.output, HasSubstr("kiln_run: rank 1 exited with status 1"));
}

// ---------------------------------------------- The store, in one process.

TEST(Store, SetGetWaitAndRankStates) {
  using distributed::internal::RankStatus;
  distributed::internal::TcpStoreServer server(0, 2);
  const std::chrono::milliseconds timeout(2000);
  auto a = std::make_unique<distributed::internal::TcpStore>("127.0.0.1", server.Port(), 0, 2, timeout);
  auto b = std::make_unique<distributed::internal::TcpStore>("127.0.0.1", server.Port(), 1, 2, timeout);
  a->set("k", {'v', '1'});
  EXPECT_EQ(b->get("k"), (std::vector<char>{'v', '1'}));
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    a->set("late", {'x'});
  });
  b->wait({"late"});  // blocks until set
  later.join();
  KILN_EXPECT_ERROR(b->wait({"never"}, std::chrono::milliseconds(100)),
                    "timed out after 100 ms waiting for key \"never\" in the store");
  b->ReportFailure("collective #3");
  std::vector<RankStatus> s = a->Status();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].state, RankStatus::kConnected);
  EXPECT_EQ(s[1].failure, "collective #3");
  b.reset();  // disconnects without Goodbye: gone
  for (int i = 0; i < 100 && a->Status()[1].state != RankStatus::kGone; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(a->Status()[1].state, RankStatus::kGone);
  KILN_EXPECT_ERROR(distributed::internal::TcpStore("127.0.0.1", server.Port(), 1, 3, timeout),
                    "the ranks disagree on the world size: rank 0 was started with WORLD_SIZE=2, rank 1 with 3");
}

TEST(Store, AnUnreachableServerIsAClearError) {
  KILN_EXPECT_ERROR(distributed::internal::TcpStore("127.0.0.1", 1, 1, 2, std::chrono::milliseconds(200)),
                    "distributed: rank 1 cannot reach rank 0's store at 127.0.0.1:1 (MASTER_ADDR:MASTER_PORT) within "
                    "200 ms");
}

}  // namespace
}  // namespace kiln
