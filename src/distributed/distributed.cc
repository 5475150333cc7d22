// Copyright 2026 The Kiln Authors.
// Joining a distributed job (Init from the environment or options), the
// collectives on Gloo, and the diagnosis of failed collectives.
#include "kiln/distributed/distributed.h"

#include <signal.h>

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>

#include "kiln/core/error.h"
#include "src/distributed/communicator.h"
#include "src/distributed/store.h"

namespace kiln::distributed {

using internal::RankStatus;

namespace {

constexpr std::chrono::milliseconds kDefaultTimeout{300'000};

// ------------------------------------------------------ The environment.

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

int ParseInt(const std::string& text, const std::string& what) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < 0 || v > (1 << 30)) {
    Throw("distributed::Init: " + what + "=\"" + text + "\" is not a valid integer");
  }
  return static_cast<int>(v);
}

// The first of `names` set in the environment, as an int (-1 if none).
int EnvInt(std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (const char* v = Env(n)) return ParseInt(v, n);
  }
  return -1;
}

Options Resolve(Options o) {
  if (o.rank < 0) o.rank = EnvInt({"RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"});
  if (o.world_size < 0) o.world_size = EnvInt({"WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"});
  if (o.local_rank < 0) o.local_rank = EnvInt({"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"});
  if (o.rank < 0 || o.world_size < 0) {
    Throw("distributed::Init: this process's rank and the world size are unknown: set RANK and WORLD_SIZE "
          "(kiln_run and torchrun do), run under mpirun, or pass Options{.rank, .world_size}");
  }
  if (o.world_size < 1 || o.rank >= o.world_size) {
    Throw("distributed::Init: rank " + std::to_string(o.rank) + " is out of range for WORLD_SIZE=" +
          std::to_string(o.world_size));
  }
  if (o.local_rank < 0) o.local_rank = o.rank;
  if (o.store_path.empty() && Env("KILN_STORE_PATH")) o.store_path = Env("KILN_STORE_PATH");
  if (o.master_addr.empty()) o.master_addr = Env("MASTER_ADDR") ? Env("MASTER_ADDR") : "";
  if (o.master_port < 0 && Env("MASTER_PORT")) o.master_port = ParseInt(Env("MASTER_PORT"), "MASTER_PORT");
  const bool mpi = Env("OMPI_COMM_WORLD_RANK") != nullptr;
  if (o.store_path.empty()) {
    if (o.master_addr.empty() && (mpi || o.world_size == 1)) o.master_addr = "127.0.0.1";
    if (o.master_port < 0 && (mpi || o.world_size == 1)) o.master_port = o.world_size == 1 ? 0 : 29500;
    if (o.master_addr.empty() || o.master_port < 0) {
      Throw("distributed::Init: rank 0's address is unknown: set MASTER_ADDR and MASTER_PORT (kiln_run does), or "
            "KILN_STORE_PATH to a directory every process of this host shares");
    }
    if (o.master_port > 65535 || (o.master_port == 0 && o.world_size > 1)) {
      Throw("distributed::Init: MASTER_PORT=" + std::to_string(o.master_port) + " is not a port every process can "
            "reach (1-65535)");
    }
  }
  if (o.interface.empty() && Env("GLOO_SOCKET_IFNAME")) o.interface = Env("GLOO_SOCKET_IFNAME");
  if (o.timeout.count() <= 0) {
    o.timeout = kDefaultTimeout;
    if (const char* t = Env("KILN_DIST_TIMEOUT_S")) {
      char* end = nullptr;
      const double s = std::strtod(t, &end);
      if (*end != '\0' || !(s > 0) || s > 1e7) {
        Throw(std::string("distributed::Init: KILN_DIST_TIMEOUT_S=\"") + t +
              "\" is not a number of seconds between 0 and 10^7");
      }
      o.timeout = std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
    }
  }
  return o;
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// ------------------------------------------------------------ The state.

struct State {
  Options options;
  std::unique_ptr<internal::TcpStoreServer> server;  // rank 0 only
  std::shared_ptr<internal::TcpStore> tcp_store;      // null with a file store
  std::shared_ptr<gloo::rendezvous::Store> store;
  std::shared_ptr<gloo::transport::Device> device;
  std::shared_ptr<gloo::rendezvous::Context> context;
  uint64_t sequence = 0;
  std::string broken;  // the failure that ended the job ("" while healthy)
  bool trace = false;  // KILN_DIST_TRACE: print each collective
};

std::mutex g_mu;  // guards g_state and serializes collectives
std::unique_ptr<State> g_state;

// What one collective call is, for its tag and for error messages.
struct Call {
  ir::CollectiveKind kind;
  ir::ReduceOp reduce = ir::ReduceOp::kSum;
  dtypes::DType dtype = dtypes::Uint8;
  int64_t count = 0;
  int root = 0;
  bool barrier = false;

  std::string Describe(uint64_t sequence) const {
    std::ostringstream os;
    os << "collective #" << sequence << " ";
    if (barrier) {
      os << "Barrier";
      return os.str();
    }
    os << ir::CollectiveKindName(kind) << " of " << dtypes::Name(dtype) << "[" << count << "]";
    if (kind == ir::CollectiveKind::kAllReduce || kind == ir::CollectiveKind::kReduceScatter) {
      os << " (" << ir::ReduceOpName(reduce) << ")";
    }
    if (kind == ir::CollectiveKind::kBroadcast) os << " from rank " << root;
    return os.str();
  }

  uint32_t Tag(uint64_t sequence) const {
    // FNV-1a over every field: processes that disagree get different tags.
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](uint64_t v) {
      for (int i = 0; i < 8; ++i) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= 1099511628211ull;
      }
    };
    mix(sequence);
    mix(static_cast<uint64_t>(kind));
    mix(static_cast<uint64_t>(reduce));
    mix(static_cast<uint64_t>(dtype));
    mix(static_cast<uint64_t>(count));
    mix(static_cast<uint64_t>(root));
    mix(barrier ? 1 : 0);
    return static_cast<uint32_t>(h ^ (h >> 32));
  }
};

// After a collective failed on this rank: asks the store what the other
// ranks are doing and says which rank is at fault.
std::string Diagnose(State& s, const std::string& what, const std::string& gloo_error) {
  const int me = s.options.rank;
  std::string cause;
  if (s.tcp_store == nullptr) {
    cause = "a process died, hung or called a different collective (with KILN_STORE_PATH's file store the rank at "
            "fault cannot be named)";
  } else {
    try {
      std::string report = what;
      for (char& c : report) c = c == '\n' ? ' ' : c;
      s.tcp_store->ReportFailure(report);
      // The others fail at about the same time (or are gone): give them a
      // moment to report, then explain each rank that is not where we are.
      std::vector<RankStatus> status;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      for (;;) {
        status = s.tcp_store->Status();
        bool settled = true;
        for (size_t r = 0; r < status.size(); ++r) {
          settled = settled && (static_cast<int>(r) == me || status[r].state != RankStatus::kConnected ||
                                !status[r].failure.empty());
        }
        if (settled || std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      std::vector<std::string> causes;
      for (size_t r = 0; r < status.size(); ++r) {
        if (static_cast<int>(r) == me) continue;
        const std::string rank = "rank " + std::to_string(r);
        // A report first: a rank that disagreed may have exited since.
        if (!status[r].failure.empty() && status[r].failure != report) {
          causes.push_back("the ranks disagree: rank " + std::to_string(me) + " called " + report + ", " + rank +
                           " called " + status[r].failure);
          continue;
        }
        switch (status[r].state) {
          case RankStatus::kGone:
            if (status[r].failure.empty()) causes.push_back(rank + " is gone (its process ended or lost its connection)");
            break;
          case RankStatus::kExited: causes.push_back(rank + " already left the job (Shutdown)"); break;
          case RankStatus::kNotConnected: causes.push_back(rank + " never joined"); break;
          case RankStatus::kConnected:
            if (status[r].failure.empty()) {
              causes.push_back(rank + " did not reach it within " + std::to_string(s.options.timeout.count()) +
                               " ms (it is still connected: hung, or slower than the timeout)");
            }
            break;
        }
      }
      for (size_t i = 0; i < causes.size(); ++i) cause += (i ? "; " : "") + causes[i];
      if (cause.empty()) cause = "every rank reports the same failure";
      // Rank 0 serves the store: the others may still be asking it about
      // this failure. Give them a moment before this process may exit.
      if (me == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    } catch (const Error&) {
      cause = "rank 0 is gone (the store it serves is unreachable)";
    }
  }
  return "distributed: " + what + " failed on rank " + std::to_string(me) + ": " + cause + " [Gloo: " + gloo_error +
         "]";
}

// Runs `body(tag, timeout)` as the next collective of this process, turning
// any failure into a kiln::Error that names the rank at fault. After a
// failure every later collective fails at once: Gloo's connections are in
// an unknown state.
template <typename Body>
void Run(const Call& call, Body&& body) {
  std::lock_guard lock(g_mu);
  State& s = *g_state;
  const uint64_t sequence = ++s.sequence;
  const std::string what = call.Describe(sequence);
  if (s.trace) std::fprintf(stderr, "rank %d: %s\n", s.options.rank, what.c_str());
  if (!s.broken.empty()) Throw("distributed: " + what + " cannot run: an earlier one failed (" + s.broken + ")");
  try {
    body(call.Tag(sequence), s.options.timeout);
  } catch (const Error&) {
    throw;  // Kiln's own checks, before anything was exchanged
  } catch (const std::exception& e) {  // gloo::Exception, and GLOO_ENFORCE's EnforceNotMet
    s.broken = Diagnose(s, what, e.what());
    Throw(s.broken);
  }
}

// Gloo's reduction callback for element type T.
template <typename T>
gloo::AllreduceOptions::Func ReduceFunc(ir::ReduceOp op) {
  auto apply = [](auto f) -> gloo::AllreduceOptions::Func {
    return [f](void* c, const void* a, const void* b, size_t n) {
      T* out = static_cast<T*>(c);
      const T* x = static_cast<const T*>(a);
      const T* y = static_cast<const T*>(b);
      for (size_t i = 0; i < n; ++i) out[i] = f(x[i], y[i]);
    };
  };
  if constexpr (std::is_same_v<T, dtypes::complex64> || std::is_same_v<T, dtypes::complex128>) {
    return apply([](T x, T y) { return T(x + y); });
  } else if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) {
    // Each step rounds to the half type, as torch.distributed does.
    switch (op) {
      case ir::ReduceOp::kMax: return apply([](T x, T y) { return static_cast<float>(y) > static_cast<float>(x) || y != y ? y : x; });
      case ir::ReduceOp::kMin: return apply([](T x, T y) { return static_cast<float>(y) < static_cast<float>(x) || y != y ? y : x; });
      default: return apply([](T x, T y) { return T(static_cast<float>(x) + static_cast<float>(y)); });
    }
  } else {
    switch (op) {
      // NaN wins, as in the graph's Max and Min.
      case ir::ReduceOp::kMax: return apply([](T x, T y) { return y > x || y != y ? y : x; });
      case ir::ReduceOp::kMin: return apply([](T x, T y) { return y < x || y != y ? y : x; });
      default: return apply([](T x, T y) { return static_cast<T>(x + y); });
    }
  }
}

void CheckReduce(dtypes::DType dtype, ir::ReduceOp op, const char* who) {
  const std::string problem = internal::ReduceProblem(dtype, op);
  if (!problem.empty()) Throw(std::string(who) + ": " + problem + ", got " + std::string(dtypes::Name(dtype)));
}

// data *= 1 / world, for kMean.
void DivideByWorld(void* data, dtypes::DType dtype, int64_t count, int world) {
  if (world == 1) return;
  DispatchDTypeWithComplex(dtype, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) {
      T* p = static_cast<T*>(data);
      for (int64_t i = 0; i < count; ++i) p[i] = T(static_cast<float>(p[i]) / static_cast<float>(world));
    } else if constexpr (std::is_floating_point_v<T> || std::is_same_v<T, dtypes::complex64> ||
                         std::is_same_v<T, dtypes::complex128>) {
      T* p = static_cast<T*>(data);
      using R = decltype(std::abs(T{}));
      for (int64_t i = 0; i < count; ++i) p[i] = p[i] / static_cast<R>(world);
    }
  });
}

}  // namespace

// --------------------------------------------------------- Joining a job.

void Init() { Init(Options{}); }

void Init(const Options& requested) {
  std::lock_guard lock(g_mu);
  if (g_state) Throw("distributed::Init: already initialized (rank " + std::to_string(g_state->options.rank) + ")");
  auto s = std::make_unique<State>();
  s->options = Resolve(requested);
  s->trace = Env("KILN_DIST_TRACE") != nullptr;
  // Gloo writes to its sockets with writev and handles EPIPE itself, which
  // needs SIGPIPE ignored: with the default action, a peer that dies while
  // this process writes to it would kill this process too, instead of the
  // error naming that peer. (A handler the program installed is kept.)
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, nullptr);
  }
  const Options& o = s->options;
  try {
    if (!o.store_path.empty()) {
      s->store = std::make_shared<gloo::rendezvous::FileStore>(o.store_path);
    } else {
      if (o.rank == 0) s->server = std::make_unique<internal::TcpStoreServer>(o.master_port, o.world_size);
      const int port = o.rank == 0 ? s->server->Port() : o.master_port;
      s->tcp_store = std::make_shared<internal::TcpStore>(o.rank == 0 ? "127.0.0.1" : o.master_addr, port, o.rank,
                                                          o.world_size, o.timeout);
      s->store = s->tcp_store;
    }
    gloo::transport::tcp::attr attr;
    if (!o.interface.empty()) {
      attr.iface = o.interface;
    } else if (!o.hostname.empty()) {
      attr.hostname = o.hostname;
    } else if (o.store_path.empty() ? IsLoopback(o.master_addr) : true) {
      attr.hostname = "127.0.0.1";  // one host: stay on loopback
    }
    s->device = gloo::transport::tcp::CreateDevice(attr);
    s->context = std::make_shared<gloo::rendezvous::Context>(o.rank, o.world_size);
    s->context->setTimeout(o.timeout);
    gloo::rendezvous::PrefixStore prefixed("kiln/gloo", *s->store);
    s->context->connectFullMesh(prefixed, s->device);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // gloo::Exception, and GLOO_ENFORCE's EnforceNotMet (a bad interface name...)
    Throw("distributed::Init: rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) +
          " could not connect to the others: " + e.what());
  }
  g_state = std::move(s);
}

bool IsInitialized() {
  std::lock_guard lock(g_mu);
  return g_state != nullptr;
}

int Rank() {
  std::lock_guard lock(g_mu);
  return g_state ? g_state->options.rank : 0;
}

int WorldSize() {
  std::lock_guard lock(g_mu);
  return g_state ? g_state->options.world_size : 1;
}

int LocalRank() {
  std::lock_guard lock(g_mu);
  return g_state ? g_state->options.local_rank : 0;
}

void Barrier() {
  if (!IsInitialized()) return;
  Call call{ir::CollectiveKind::kAllReduce};
  call.barrier = true;
  Run(call, [](uint32_t tag, std::chrono::milliseconds timeout) {
    gloo::BarrierOptions opts(g_state->context);
    opts.setTag(tag);
    opts.setTimeout(timeout);
    gloo::barrier(opts);
  });
}

void Shutdown() {
  std::unique_ptr<State> s;
  {
    std::lock_guard lock(g_mu);
    s = std::move(g_state);
  }
  if (!s) return;
  // Rank 0 serves the store: it waits (bounded by the timeout) until every
  // other rank has left or is gone, so nobody loses the store mid-use.
  if (s->tcp_store) {
    try {
      if (s->options.rank == 0) {
        // After a failure, a hung rank would keep rank 0 here for the whole
        // timeout: wait only for the diagnosis the others may be finishing.
        const auto deadline = std::chrono::steady_clock::now() +
                              (s->broken.empty() ? s->options.timeout : std::chrono::milliseconds(2000));
        for (;;) {
          bool others_left = true;
          const std::vector<RankStatus> status = s->tcp_store->Status();
          for (size_t r = 1; r < status.size(); ++r) others_left = others_left && status[r].state != RankStatus::kConnected;
          if (others_left || std::chrono::steady_clock::now() >= deadline) break;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
      s->tcp_store->Goodbye();
    } catch (const Error&) {
      // Leaving anyway: a rank that is gone cannot be waited for.
    }
  }
  s->context.reset();
  s->device.reset();
  s->store.reset();
  s->tcp_store.reset();
  s->server.reset();
}

// ------------------------------------------------ Collectives on buffers.

namespace internal {

int TraceWorldSize() { return WorldSize(); }

std::string ReduceProblem(dtypes::DType dtype, ir::ReduceOp op) {
  if (dtype == dtypes::Bool) return "cannot reduce Bool values";
  if (dtypes::IsComplex(dtype) && (op == ir::ReduceOp::kMax || op == ir::ReduceOp::kMin)) {
    return std::string(ir::ReduceOpName(op)) + " is not defined on complex values";
  }
  if (op == ir::ReduceOp::kMean && !dtypes::IsFloat(dtype) && !dtypes::IsComplex(dtype)) {
    return "mean needs a floating-point dtype";
  }
  return "";
}

void AllReduce(void* data, dtypes::DType dtype, int64_t count, ir::ReduceOp op) {
  CheckReduce(dtype, op, "distributed::AllReduce");
  if (!IsInitialized()) return;
  Call call{ir::CollectiveKind::kAllReduce, op, dtype, count};
  int world = 1;
  Run(call, [&](uint32_t tag, std::chrono::milliseconds timeout) {
    world = g_state->options.world_size;
    if (world == 1 || count == 0) return;
    DispatchDTypeWithComplex(dtype, [&](auto zero) {
      using T = decltype(zero);
      gloo::AllreduceOptions opts(g_state->context);
      opts.setOutput(static_cast<T*>(data), static_cast<size_t>(count));
      opts.setReduceFunction(ReduceFunc<T>(op));
      opts.setTag(tag);
      opts.setTimeout(timeout);
      gloo::allreduce(opts);
    });
  });
  if (op == ir::ReduceOp::kMean) DivideByWorld(data, dtype, count, world);
}

void AllGather(const void* in, void* out, dtypes::DType dtype, int64_t count) {
  const int64_t bytes = count * dtypes::SizeOf(dtype);
  if (!IsInitialized()) {
    if (bytes > 0 && in != out) std::memmove(out, in, static_cast<size_t>(bytes));
    return;
  }
  Call call{ir::CollectiveKind::kAllGather, ir::ReduceOp::kSum, dtype, count};
  Run(call, [&](uint32_t tag, std::chrono::milliseconds timeout) {
    const int world = g_state->options.world_size;
    if (world == 1 || bytes == 0) {
      if (bytes > 0 && in != out) std::memmove(out, in, static_cast<size_t>(bytes));
      return;
    }
    gloo::AllgatherOptions opts(g_state->context);
    opts.setInput(static_cast<uint8_t*>(const_cast<void*>(in)), static_cast<size_t>(bytes));
    opts.setOutput(static_cast<uint8_t*>(out), static_cast<size_t>(bytes) * static_cast<size_t>(world));
    opts.setTag(tag);
    opts.setTimeout(timeout);
    gloo::allgather(opts);
  });
}

void ReduceScatter(const void* in, void* out, dtypes::DType dtype, int64_t count, ir::ReduceOp op) {
  CheckReduce(dtype, op, "distributed::ReduceScatter");
  const int world = WorldSize(), rank = Rank();
  const auto esize = static_cast<size_t>(dtypes::SizeOf(dtype));
  // Gloo's reduce-scatter algorithms are templates over a few element types
  // with CUDA-era constraints; an all-reduce of the whole buffer then the
  // local slice is exact for every dtype and as fast on the ring for the
  // sizes data-parallel training uses.
  std::vector<std::byte> all(static_cast<size_t>(count) * static_cast<size_t>(world) * esize);
  if (!all.empty()) std::memcpy(all.data(), in, all.size());
  AllReduce(all.data(), dtype, count * world, op);
  if (count > 0) {
    std::memcpy(out, all.data() + static_cast<size_t>(rank) * static_cast<size_t>(count) * esize,
                static_cast<size_t>(count) * esize);
  }
}

void Broadcast(void* data, dtypes::DType dtype, int64_t count, int root) {
  const int world = WorldSize();
  if (root < 0 || root >= world) {
    Throw("distributed::Broadcast: root " + std::to_string(root) + " is out of range for a world of " +
          std::to_string(world));
  }
  if (!IsInitialized()) return;
  Call call{ir::CollectiveKind::kBroadcast, ir::ReduceOp::kSum, dtype, count, root};
  const int64_t bytes = count * dtypes::SizeOf(dtype);
  Run(call, [&](uint32_t tag, std::chrono::milliseconds timeout) {
    if (g_state->options.world_size == 1 || bytes == 0) return;
    gloo::BroadcastOptions opts(g_state->context);
    opts.setOutput(static_cast<uint8_t*>(data), static_cast<size_t>(bytes));
    opts.setRoot(root);
    opts.setTag(tag);
    opts.setTimeout(timeout);
    gloo::broadcast(opts);
  });
}

void RunCollective(const std::string& who, const ir::CollectiveAttrs& a, dtypes::DType dtype, const void* in,
                   void* out, int64_t in_count, int64_t out_count) {
  const int world = TraceWorldSize();
  if (world != a.world_size) {
    Throw(who + " " + std::string(ir::CollectiveKindName(a.kind)) + ": the graph was traced for a world of " +
          std::to_string(a.world_size) + " process(es) but runs in one of " + std::to_string(world) +
          " (call distributed::Init before tracing)");
  }
  const auto out_bytes = static_cast<size_t>(out_count * dtypes::SizeOf(dtype));
  switch (a.kind) {
    case ir::CollectiveKind::kAllReduce:
      if (out != in && out_bytes > 0) std::memmove(out, in, out_bytes);
      AllReduce(out, dtype, out_count, a.reduce);
      break;
    case ir::CollectiveKind::kAllGather: AllGather(in, out, dtype, in_count); break;
    case ir::CollectiveKind::kReduceScatter: ReduceScatter(in, out, dtype, out_count, a.reduce); break;
    case ir::CollectiveKind::kBroadcast:
      if (out != in && out_bytes > 0) std::memmove(out, in, out_bytes);
      Broadcast(out, dtype, out_count, a.root);
      break;
  }
}

}  // namespace internal

// ---------------------------------------------- Collectives on tensors.

namespace {

tensors::Tensor HostCopy(const tensors::Tensor& x, const char* who) {
  if (!x.Ok()) Throw(std::string(who) + ": empty Tensor");
  tensors::Tensor out(x.Shape());
  const auto bytes = static_cast<size_t>(x.Shape().ByteSize());
  if (bytes > 0) std::memcpy(out.MutableHostData(), x.HostData(), bytes);
  return out;
}

}  // namespace

tensors::Tensor AllReduce(const tensors::Tensor& x, ReduceOp op) {
  tensors::Tensor out = HostCopy(x, "distributed::AllReduce");
  internal::AllReduce(out.MutableHostData(), x.DType(), x.Size(), op);
  return out;
}

void AllReduceInPlace(tensors::Tensor& x, ReduceOp op) {
  if (!x.Ok()) Throw("distributed::AllReduceInPlace: empty Tensor");
  internal::AllReduce(x.MutableHostData(), x.DType(), x.Size(), op);
}

tensors::Tensor AllGather(const tensors::Tensor& x) {
  if (!x.Ok()) Throw("distributed::AllGather: empty Tensor");
  if (x.Rank() == 0) Throw("distributed::AllGather: needs an array with an axis 0 to concatenate on, got a scalar " +
                           x.Shape().ToString());
  std::vector<int64_t> dims = x.Shape().Dims();
  dims[0] *= WorldSize();
  tensors::Tensor out(shapes::Shape(x.DType(), dims));
  internal::AllGather(x.HostData(), out.MutableHostData(), x.DType(), x.Size());
  return out;
}

tensors::Tensor ReduceScatter(const tensors::Tensor& x, ReduceOp op) {
  if (!x.Ok()) Throw("distributed::ReduceScatter: empty Tensor");
  const int world = WorldSize();
  if (x.Rank() == 0 || x.Shape().Dim(0) % world != 0) {
    Throw("distributed::ReduceScatter: axis 0 of " + x.Shape().ToString() + " must divide into " +
          std::to_string(world) + " equal slices (one per process)");
  }
  std::vector<int64_t> dims = x.Shape().Dims();
  dims[0] /= world;
  tensors::Tensor out(shapes::Shape(x.DType(), dims));
  internal::ReduceScatter(x.HostData(), out.MutableHostData(), x.DType(), out.Size(), op);
  return out;
}

tensors::Tensor Broadcast(const tensors::Tensor& x, int root) {
  tensors::Tensor out = HostCopy(x, "distributed::Broadcast");
  internal::Broadcast(out.MutableHostData(), x.DType(), x.Size(), root);
  return out;
}

}  // namespace kiln::distributed
