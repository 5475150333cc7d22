// Copyright 2026 The Kiln Authors.
// The rendezvous store of a distributed job: a small key-value server run by
// rank 0 (TcpStoreServer) and its client (TcpStore), which implements Gloo's
// rendezvous::Store interface so Gloo connects its full mesh through it.
//
// Beyond Gloo's set/get/wait, the server knows which ranks are connected: a
// rank that exits or is killed closes its connection, so after a failed
// collective the survivors can ask which rank is gone (Status) instead of
// guessing from a socket error. A rank that announces a different world size
// aborts the rendezvous with a message every waiting rank receives.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gloo/rendezvous/store.h>

namespace kiln::distributed::internal {

/// What the store knows about one rank.
struct RankStatus {
  enum State : uint8_t { kNotConnected, kConnected, kExited, kGone };
  State state = kNotConnected;
  std::string failure;  // the rank's own report of a failed collective ("" if none)
};

/// The key-value server; runs its own threads until destroyed.
class TcpStoreServer {
 public:
  /// Listens on `port` (0: any free port) on every interface.
  TcpStoreServer(int port, int world_size);
  ~TcpStoreServer();
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;
  /// The port it listens on.
  int Port() const { return port_; }

 private:
  struct Shared;
  void AcceptLoop();
  void Serve(int fd);
  int listen_fd_ = -1;
  int port_ = 0;
  std::shared_ptr<Shared> shared_;
  std::thread acceptor_;
  std::mutex threads_mu_;
  std::vector<std::thread> threads_;
  std::vector<int> client_fds_;
};

/// A connection to the server, as rank `rank` of `world_size`.
class TcpStore : public gloo::rendezvous::Store {
 public:
  /// Connects (retrying until `timeout`, since rank 0 may start later) and
  /// announces the rank; throws kiln::Error if the server stays unreachable
  /// or rejects the rank.
  TcpStore(const std::string& host, int port, int rank, int world_size, std::chrono::milliseconds timeout);
  ~TcpStore() override;

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

  /// Every rank's state and failure report (throws if the server is gone).
  std::vector<RankStatus> Status();
  /// Records this rank's report of a failed collective.
  void ReportFailure(const std::string& report);
  /// Tells the server this rank ends normally (its disconnection is then
  /// not a failure).
  void Goodbye();

 private:
  std::vector<char> Request(char command, const std::string& key, const std::vector<char>& data);
  int fd_ = -1;
  std::mutex mu_;
  std::chrono::milliseconds timeout_;
};

}  // namespace kiln::distributed::internal
