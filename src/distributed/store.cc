// Copyright 2026 The Kiln Authors.
// The rendezvous store: rank 0's key-value server and its client.
//
// Wire format (both directions, over one TCP connection per rank):
//   request:  command (1 byte), key length (u32), key, data length (u32), data
//   response: status (1 byte: 0 ok, 1 error), length (u32), data (the value or the error text)
// Commands: 'H' hello (key: rank, data: world size), 'S' set, 'G' get (data:
// timeout in ms; waits for the key), 'W' wait (key: keys separated by '\n',
// data: timeout), 'T' status, 'F' failure report, 'B' goodbye.
#include "src/distributed/store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "kiln/core/error.h"

namespace kiln::distributed::internal {

namespace {

constexpr uint32_t kMaxMessageBytes = 64u << 20;  // far above any rendezvous value

bool WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadAll(int fd, void* data, size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteBlob(int fd, const char* data, size_t n) {
  const uint32_t len = htonl(static_cast<uint32_t>(n));
  return WriteAll(fd, &len, 4) && WriteAll(fd, data, n);
}

bool ReadBlob(int fd, std::vector<char>& out) {
  uint32_t len = 0;
  if (!ReadAll(fd, &len, 4)) return false;
  len = ntohl(len);
  if (len > kMaxMessageBytes) return false;
  out.resize(len);
  return ReadAll(fd, out.data(), len);
}

std::string ToString(const std::vector<char>& v) { return std::string(v.begin(), v.end()); }
std::vector<char> ToBytes(const std::string& s) { return std::vector<char>(s.begin(), s.end()); }

// A socket connected to `a`, or -1 (with the reason in *error) if that
// fails or takes past `deadline` (a blocking connect to a host that drops
// packets would wait minutes).
int ConnectBefore(const addrinfo* a, std::chrono::steady_clock::time_point deadline, std::string* error) {
  const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
  if (fd < 0) {
    *error = std::strerror(errno);
    return -1;
  }
  if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      *error = std::strerror(errno);
      ::close(fd);
      return -1;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLOUT, 0};
    int rc;
    do {
      rc = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 1)));
    } while (rc < 0 && errno == EINTR);
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    if (rc <= 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0 || so_error != 0) {
      *error = rc == 0 ? "connection timed out" : std::strerror(so_error != 0 ? so_error : errno);
      ::close(fd);
      return -1;
    }
  }
  const int flags = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);  // requests block (bounded by SO_RCVTIMEO/SO_SNDTIMEO)
  return fd;
}

std::string StateName(RankStatus::State s) {
  switch (s) {
    case RankStatus::kNotConnected: return "not-connected";
    case RankStatus::kConnected: return "connected";
    case RankStatus::kExited: return "exited";
    case RankStatus::kGone: return "gone";
  }
  return "?";
}

}  // namespace

// ----------------------------------------------------------------- Server.

struct TcpStoreServer::Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::vector<char>> values;
  std::vector<RankStatus> ranks;
  std::string abort;  // non-empty: the rendezvous failed; every wait returns this
  bool stopping = false;
};

TcpStoreServer::TcpStoreServer(int port, int world_size) : shared_(std::make_shared<Shared>()) {
  shared_->ranks.resize(static_cast<size_t>(world_size));
  listen_fd_ = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool v6 = listen_fd_ >= 0;
  if (!v6) listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) Throw(std::string("distributed: cannot create the store's socket: ") + std::strerror(errno));
  int one = 1, zero = 0;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int rc;
  if (v6) {
    ::setsockopt(listen_fd_, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));  // IPv4 clients too
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_any;
    addr.sin6_port = htons(static_cast<uint16_t>(port));
    rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } else {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  }
  if (rc != 0 || ::listen(listen_fd_, 128) != 0) {
    const std::string why = std::strerror(errno);
    ::close(listen_fd_);
    Throw("distributed: rank 0 cannot listen on port " + std::to_string(port) + " for the store (MASTER_PORT): " +
          why);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

TcpStoreServer::~TcpStoreServer() {
  {
    std::lock_guard lock(shared_->mu);
    shared_->stopping = true;
  }
  shared_->cv.notify_all();
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::lock_guard lock(threads_mu_);
  for (int fd : client_fds_) ::shutdown(fd, SHUT_RDWR);
  for (auto& t : threads_) t.join();
  for (int fd : client_fds_) ::close(fd);
}

void TcpStoreServer::AcceptLoop() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard lock(threads_mu_);
    {
      std::lock_guard shared_lock(shared_->mu);
      if (shared_->stopping) {
        ::close(fd);
        return;
      }
    }
    client_fds_.push_back(fd);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

void TcpStoreServer::Serve(int fd) {
  Shared& s = *shared_;
  int rank = -1;
  bool goodbye = false;
  auto reply = [fd](bool ok, const std::string& data) {
    const char status = ok ? 0 : 1;
    return WriteAll(fd, &status, 1) && WriteBlob(fd, data.data(), data.size());
  };
  // Waits until every key is present (or the deadline, an abort, shutdown).
  auto wait_for = [&](std::unique_lock<std::mutex>& lock, const std::vector<std::string>& keys,
                      std::chrono::milliseconds timeout) -> std::string {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (!s.abort.empty()) return s.abort;
      if (s.stopping) return "the store is shutting down";
      bool all = true;
      for (const auto& k : keys) all = all && s.values.contains(k);
      if (all) return "";
      if (s.cv.wait_until(lock, deadline) == std::cv_status::timeout) {
        for (const auto& k : keys) {
          if (!s.values.contains(k)) return "timed out after " + std::to_string(timeout.count()) +
                                            " ms waiting for key \"" + k + "\" in the store";
        }
      }
    }
  };
  for (;;) {
    char command = 0;
    std::vector<char> key_bytes, data;
    if (!ReadAll(fd, &command, 1) || !ReadBlob(fd, key_bytes) || !ReadBlob(fd, data)) break;
    const std::string key = ToString(key_bytes);
    std::unique_lock lock(s.mu);
    bool ok = true;
    std::string out;
    switch (command) {
      case 'H': {
        const int r = std::atoi(key.c_str());
        const int world = std::atoi(ToString(data).c_str());
        const int expected = static_cast<int>(s.ranks.size());
        if (world != expected) {
          s.abort = "the ranks disagree on the world size: rank 0 was started with WORLD_SIZE=" +
                    std::to_string(expected) + ", rank " + key + " with " + std::to_string(world);
          ok = false;
          out = s.abort;
          s.cv.notify_all();
        } else if (r < 0 || r >= expected) {
          ok = false;
          out = "rank " + key + " is out of range for a world of " + std::to_string(expected);
        } else if (s.ranks[static_cast<size_t>(r)].state == RankStatus::kConnected) {
          s.abort = "two processes claim rank " + key + " (check RANK)";
          ok = false;
          out = s.abort;
          s.cv.notify_all();
        } else {
          rank = r;
          s.ranks[static_cast<size_t>(r)] = RankStatus{RankStatus::kConnected, ""};
        }
        break;
      }
      case 'S':
        s.values[key] = std::move(data);
        s.cv.notify_all();
        break;
      case 'G': {
        out = wait_for(lock, {key}, std::chrono::milliseconds(std::atoll(ToString(data).c_str())));
        ok = out.empty();
        if (ok) out = ToString(s.values[key]);
        break;
      }
      case 'W': {
        std::vector<std::string> keys;
        std::istringstream is(key);
        for (std::string k; std::getline(is, k, '\n');) keys.push_back(k);
        out = wait_for(lock, keys, std::chrono::milliseconds(std::atoll(ToString(data).c_str())));
        ok = out.empty();
        break;
      }
      case 'T':
        for (const auto& r : s.ranks) out += StateName(r.state) + " " + r.failure + "\n";
        break;
      case 'F':
        if (rank >= 0) s.ranks[static_cast<size_t>(rank)].failure = ToString(data);
        break;
      case 'B':
        goodbye = true;
        break;
      default:
        ok = false;
        out = "unknown store command";
    }
    lock.unlock();
    if (!reply(ok, out)) break;
  }
  std::lock_guard lock(s.mu);
  if (rank >= 0) s.ranks[static_cast<size_t>(rank)].state = goodbye ? RankStatus::kExited : RankStatus::kGone;
  s.cv.notify_all();
}

// ----------------------------------------------------------------- Client.

TcpStore::TcpStore(const std::string& host, int port, int rank, int world_size, std::chrono::milliseconds timeout)
    : timeout_(timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last_error;
  while (fd_ < 0) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const int gai = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
    if (gai != 0) {
      last_error = std::string("cannot resolve ") + host + ": " + gai_strerror(gai);
    } else {
      for (addrinfo* a = list; a != nullptr && fd_ < 0; a = a->ai_next) {
        const int fd = ConnectBefore(a, deadline, &last_error);
        if (fd >= 0) fd_ = fd;
      }
      ::freeaddrinfo(list);
    }
    if (fd_ >= 0) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      Throw("distributed: rank " + std::to_string(rank) + " cannot reach rank 0's store at " + host + ":" +
            std::to_string(port) + " (MASTER_ADDR:MASTER_PORT) within " + std::to_string(timeout.count()) +
            " ms: " + last_error);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  // No request may block forever (rank 0 stopped, or its host gone without
  // a reset): the longest a reply takes is a wait of `timeout` on the server.
  const auto limit = timeout + std::chrono::seconds(10);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(limit).count());
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  try {
    Request('H', std::to_string(rank), ToBytes(std::to_string(world_size)));
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<char> TcpStore::Request(char command, const std::string& key, const std::vector<char>& data) {
  std::lock_guard lock(mu_);
  if (!WriteAll(fd_, &command, 1) || !WriteBlob(fd_, key.data(), key.size()) ||
      !WriteBlob(fd_, data.data(), data.size())) {
    Throw("distributed: lost the connection to rank 0's store (rank 0 is gone or stopped answering)");
  }
  char status = 1;
  std::vector<char> out;
  if (!ReadAll(fd_, &status, 1) || !ReadBlob(fd_, out)) {
    Throw("distributed: lost the connection to rank 0's store (rank 0 is gone or stopped answering)");
  }
  if (status != 0) Throw("distributed: " + ToString(out));
  return out;
}

void TcpStore::set(const std::string& key, const std::vector<char>& data) { Request('S', key, data); }

std::vector<char> TcpStore::get(const std::string& key) {
  return Request('G', key, ToBytes(std::to_string(timeout_.count())));
}

void TcpStore::wait(const std::vector<std::string>& keys) { wait(keys, timeout_); }

void TcpStore::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  std::string joined;
  for (const auto& k : keys) joined += (joined.empty() ? "" : "\n") + k;
  Request('W', joined, ToBytes(std::to_string(timeout.count())));
}

std::vector<RankStatus> TcpStore::Status() {
  const std::string text = ToString(Request('T', "", {}));
  std::vector<RankStatus> out;
  std::istringstream is(text);
  for (std::string line; std::getline(is, line);) {
    RankStatus r;
    const std::string state = line.substr(0, line.find(' '));
    r.failure = line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
    r.state = state == "connected" ? RankStatus::kConnected
              : state == "exited"  ? RankStatus::kExited
              : state == "gone"    ? RankStatus::kGone
                                   : RankStatus::kNotConnected;
    out.push_back(r);
  }
  return out;
}

void TcpStore::ReportFailure(const std::string& report) { Request('F', "", ToBytes(report)); }

void TcpStore::Goodbye() { Request('B', "", {}); }

}  // namespace kiln::distributed::internal
