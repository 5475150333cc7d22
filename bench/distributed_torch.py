#!/usr/bin/python3
# The PyTorch side of the distributed benchmarks (Debian's python3-torch,
# torch.distributed with its Gloo backend), one process of a job started by
# kiln_run or torchrun (both set RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).
#   allreduce [--iters=N]   rank 0 prints "allreduce BYTES TORCH_US" (median)
#   train --model=mlp|cnn [--batch=B] [--steps=N]
#                           DistributedDataParallel train steps (Adam) of
#                           bench/workloads.h's models on a global batch of B;
#                           rank 0 prints "train MODEL STEP_MS" (median)
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn


def flag(name, default):
    for a in sys.argv[2:]:
        if a.startswith("--" + name + "="):
            return a.split("=", 1)[1]
    return default


def allreduce(iters):
    size = 4 << 10
    while size <= 64 << 20:
        x = torch.ones(size // 4)
        reps = 4 * iters if size <= (256 << 10) else iters if size <= (4 << 20) else max(5, iters // 5)
        times = []
        for _ in range(reps):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(x)
            times.append((time.perf_counter() - t0) * 1e6)
        if dist.get_rank() == 0:
            print(f"allreduce {size} {statistics.median(times):.1f}", flush=True)
        size *= 4


def mlp():
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def train(model_name, batch, steps):
    rank, world = dist.get_rank(), dist.get_world_size()
    local = batch // world + (1 if rank < batch % world else 0)
    torch.manual_seed(1 + rank)
    model = nn.parallel.DistributedDataParallel(mlp() if model_name == "mlp" else cnn())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    x = torch.rand(local, 784) if model_name == "mlp" else torch.rand(local, 1, 28, 28)
    y = torch.randint(0, 10, (local,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(5):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    if rank == 0:
        print(f"train {model_name} {statistics.median(times):.3f}", flush=True)


def main():
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    dist.init_process_group("gloo")
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "allreduce":
        allreduce(int(flag("iters", "50")))
    elif mode == "train":
        train(flag("model", "mlp"), int(flag("batch", "128")), int(flag("steps", "50")))
    else:
        sys.exit("usage: distributed_torch.py allreduce|train ...")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
