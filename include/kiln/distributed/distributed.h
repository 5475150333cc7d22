// Copyright 2026 The Kiln Authors.
// Distributed jobs: several processes (on one or several hosts) that train
// one model together, each on its share of the data. The collectives run on
// Gloo (TCP); the processes meet through a store served by rank 0.
//
//   // Started by `kiln_run -n 2 ./train` (or torchrun, or mpirun):
//   kiln::distributed::Init();                  // reads RANK, WORLD_SIZE, MASTER_ADDR, ...
//   trainer->EnableDataParallel();              // see train::Trainer
//   ...
//   kiln::distributed::Shutdown();
//
// Collectives also exist as graph ops (graph::AllReduce in
// kiln/graph/collective.h) and, here, on host tensors. Every process must
// call the same collectives in the same order with the same shapes: when
// they do not, or when a process dies or hangs, the others get a
// kiln::Error naming the collective and the rank at fault within the
// timeout, instead of hanging or computing garbage. Without Init, a program
// is a world of one process and every collective is the identity.
#pragma once

#include <chrono>
#include <string>

#include "kiln/core/tensors.h"
#include "kiln/ir/function.h"

namespace kiln::distributed {

/// The reductions: kSum, kMean (sum / world size), kMax, kMin.
using ReduceOp = ir::ReduceOp;

/// How to join a job. Fields left at their defaults are read from the
/// environment (see Init()).
struct Options {
  int rank = -1;        ///< This process's rank, 0 <= rank < world_size.
  int world_size = -1;  ///< The number of processes.
  int local_rank = -1;  ///< The rank among the processes of this host (default: LOCAL_RANK, else rank).
  /// Where rank 0 serves the rendezvous store: host and port (MASTER_ADDR,
  /// MASTER_PORT). Rank 0 listens on master_port on every interface.
  std::string master_addr;
  int master_port = -1;
  /// For processes of one host only: a shared directory used as the store
  /// (Gloo's file store) instead of rank 0's TCP server (KILN_STORE_PATH).
  /// Without the server, a failed collective cannot name the rank at fault.
  std::string store_path;
  /// The address or the network interface (e.g. "eth0") Gloo's connections
  /// use (GLOO_SOCKET_IFNAME, as PyTorch). Default: 127.0.0.1 when
  /// master_addr is a loopback address, else this host's name.
  std::string hostname;
  std::string interface;
  /// How long a collective (or the rendezvous) waits for the other
  /// processes before it fails (KILN_DIST_TIMEOUT_S; default 300 s).
  std::chrono::milliseconds timeout{0};
};

/// Joins the job described by the environment, as torchrun and OpenMPI set
/// it: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, or
/// OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK (then MASTER_ADDR defaults to
/// 127.0.0.1 and MASTER_PORT to 29500). Blocks until every process has
/// joined. Throws kiln::Error naming what is missing or inconsistent.
void Init();
/// Joins with explicit options (unset fields from the environment).
void Init(const Options& options);
/// Whether Init has been called (and Shutdown not).
bool IsInitialized();
/// This process's rank (0 without Init).
int Rank();
/// The number of processes (1 without Init).
int WorldSize();
/// The rank among this host's processes (0 without Init).
int LocalRank();
/// Waits until every process has reached this call.
void Barrier();
/// Leaves the job: waits for every process (so rank 0's store outlives the
/// others' last use), then closes the connections. Safe to call twice.
void Shutdown();

/// Host collectives on tensors (their host values; any real or complex
/// dtype; kMax and kMin not on complex values). Each returns a new tensor.
/// AllReduce: the elementwise reduction of every process's `x` (same shape everywhere).
tensors::Tensor AllReduce(const tensors::Tensor& x, ReduceOp op = ReduceOp::kSum);
/// In place, as torch.distributed.all_reduce: `x`'s host value becomes the
/// reduction, without the copy AllReduce makes (other handles sharing its
/// data keep the old value: the write is copy-on-write).
void AllReduceInPlace(tensors::Tensor& x, ReduceOp op = ReduceOp::kSum);
/// Every process's `x` (same shape everywhere) concatenated along axis 0 in rank order.
tensors::Tensor AllGather(const tensors::Tensor& x);
/// The reduction of every process's `x`, of which this process keeps slice
/// Rank() of WorldSize() equal slices along axis 0 (dim 0 must divide).
tensors::Tensor ReduceScatter(const tensors::Tensor& x, ReduceOp op = ReduceOp::kSum);
/// Process `root`'s `x` (same shape everywhere).
tensors::Tensor Broadcast(const tensors::Tensor& x, int root = 0);

}  // namespace kiln::distributed
