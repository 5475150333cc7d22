#!/usr/bin/env python3
# Copyright 2026 The Kiln Authors.
"""PyTorch's side of the GPU comparison with Kiln (bench/gpu_bench.cc runs the same workloads;
tools/gpu_check.sh runs both, interleaved, and prints the ratios).

    python3 bench/gpu/torch_peer.py [--rounds N] [--only name,...] [--small] [--device cuda|cpu]
                                    [--chain-n N] [--gemm-n N] [--tf32] [--channels-last] [--no-fused]

One line per workload: `BENCH <name> <median seconds> [key=value ...]`, or `BENCHERR <name> <message>`.
Eager PyTorch as its users run it for speed on a GPU: fused Adam (lr 1e-3, eps 1e-7, Kiln's benchmark
settings), cudnn.benchmark on, PyTorch's default float32 precision (cuDNN convolutions may use TF32,
matmuls do not; --tf32 sets torch.set_float32_matmul_precision("high")), the loss read with .item() every step (as Kiln's
trainer returns it). The models are bench/torch_models.h's (the existing CPU peers) plus
examples/fashion_mnist's MLP:
  backend_init    the first CUDA operation of the process (context creation)
  mlp_first_step  the first train step of the process: model, optimizer, first step (cold)
  mlp             Adam step, MLP 784-512-512-10, batch 256
  mlp_example     Adam step, 784-512 (relu, dropout 0.1)-256 (relu)-10, batch 128
  cnn             Adam step, conv3x3x32-pool-conv3x3x64-pool-dense128-dense10 (NCHW), batch 128
  tiny_call       (x + 1).item() on a 1-element tensor: launch, copy back, synchronize
  tiny_sync       x + 1 then torch.cuda.synchronize() (no copy back; PyTorch only)
  tiny_queued     100 x + 1 back to back, then .item() of the last, divided by 100
  chain           tanh(2x + 1) * sigmoid(x) on float32[chain_n] (default 256M), GB/s = 1 read + 1 write
  copy            y.copy_(x) on float32[chain_n]: the bandwidth ceiling
  gemm_bf16       torch.mm of bfloat16 [n, n] x [n, n] (default n 8192), TFLOP/s
  sort            torch.sort of float32[1M] (64K with --small)
  topk            torch.topk, k 50, of float32[64, 50257] (4 rows with --small)
  while_1000      1,000 trips of x = x * 0.5 + 1 on float32[1024], a Python loop (us_per_trip)
  cholesky        torch.linalg.cholesky_ex of a float64 [1024, 1024] SPD matrix (64 with --small)
  solve           torch.linalg.solve_ex of float64 [1024, 1024] (diagonally dominant) by [1024, 1]
  cholesky_batch  torch.linalg.cholesky_ex of float32 [4096, 16, 16] SPD matrices (64 with --small)
  fft             torch.fft.fft of complex64 [2^20] (2^14 with --small)
  attention       causal F.scaled_dot_product_attention of float32 q, k, v [4, 8, 2048, 64] ([1, 2, 256, 64]
                  with --small), forward and backward: dq + dk.sum() + dv.sum() for a cotangent
  attention_composed  the same (PyTorch's side is the same: Kiln's composed ops against it)
  gpt2_block      a GPT-2-small block in bfloat16 ([8, 1024, 768], 12 heads; [1, 64, 64], 2 with --small):
                  layer_norm, Linear products, scaled_dot_product_attention (is_causal), GELU, residuals,
                  forward and backward: dx + every weight gradient's sum for a cotangent
Train steps and tiny calls are timed one call each; chain, copy and gemm_bf16 as 10 calls back to back
followed by a synchronize, divided by 10 (as kiln_gpu_bench). Times are medians over the rounds.
"""

import argparse
import statistics
import sys
import time

CALLS_PER_SAMPLE = 10
QUEUED_CALLS = 100  # tiny_queued's calls per sample


def report(name, seconds, **extra):
    kv = "".join(f" {k}={v:.4g}" for k, v in extra.items())
    print(f"BENCH {name} {seconds:.9g}{kv}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=None, help="samples per workload (default 20, 5 with --small)")
    p.add_argument("--only", default="", help="comma-separated workload names")
    p.add_argument("--small", action="store_true", help="small sizes (chain 1M, gemm 256, 5 rounds)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--chain-n", type=int, default=None)
    p.add_argument("--gemm-n", type=int, default=None)
    p.add_argument("--tf32", action="store_true", help="let float32 matmuls use TF32")
    p.add_argument("--channels-last", action="store_true", help="CNN in channels-last memory format")
    p.add_argument("--no-fused", action="store_true", help="Adam without fused=True")
    a = p.parse_args()
    if a.rounds is None:
        a.rounds = 5 if a.small else 20
    chain_n = a.chain_n or ((1 << 20) if a.small else (1 << 28))
    gemm_n = a.gemm_n or (256 if a.small else 8192)
    only = {s for s in a.only.split(",") if s}

    t0 = time.perf_counter()
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import_s = time.perf_counter() - t0

    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print("BENCHERR all torch.cuda.is_available() is False", flush=True)
        return 1

    def sync():
        if cuda:
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    torch.zeros(1, device=dev)
    sync()
    init_s = time.perf_counter() - t0

    torch.backends.cudnn.benchmark = True
    if a.tf32:
        torch.set_float32_matmul_precision("high")  # the stable API (allow_tf32 is legacy since 2.9)

    def conv_precision():
        try:  # PyTorch >= 2.9 has the per-operator setting; reading the legacy flag may raise there
            return torch.backends.cudnn.conv.fp32_precision
        except Exception:  # noqa: BLE001
            try:
                return "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"
            except Exception:  # noqa: BLE001
                return "?"

    fused = cuda and not a.no_fused
    name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    print(f'TORCH version={torch.__version__} cuda={torch.version.cuda} device="{name}" '
          f"cudnn={torch.backends.cudnn.version()} matmul_precision={torch.get_float32_matmul_precision()} "
          f"cudnn_conv_fp32={conv_precision()} cudnn_benchmark=True fused_adam={fused} "
          f"channels_last={a.channels_last} import_s={import_s:.2f} rounds={a.rounds}", flush=True)

    def wanted(n):
        return not only or n in only

    failures = 0

    def run(n, fn):
        nonlocal failures
        if not wanted(n):
            return
        try:
            fn()
        except Exception as e:  # noqa: BLE001: report and go on with the next workload
            failures += 1
            msg = " ".join(f"{type(e).__name__}: {e}".split())
            print(f"BENCHERR {n} {msg[:500]}", flush=True)
        finally:
            if cuda:
                torch.cuda.empty_cache()

    def time_each(fn, warmup, rounds):
        for _ in range(warmup):
            fn()
        sync()
        samples = []
        for _ in range(rounds):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        return statistics.median(samples)

    def time_batched(fn, rounds):
        for _ in range(2):
            fn()
        sync()
        samples = []
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(CALLS_PER_SAMPLE):
                fn()
            sync()
            samples.append((time.perf_counter() - t) / CALLS_PER_SAMPLE)
        return statistics.median(samples)

    def mlp():
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))

    def mlp_example():
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.1), nn.Linear(512, 256), nn.ReLU(),
                             nn.Linear(256, 10))

    def cnn():
        return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(7 * 7 * 64, 128), nn.ReLU(), nn.Linear(128, 10))

    def train_step(model_fn, x_shape, seed, channels_last=False):
        torch.manual_seed(seed)
        model = model_fn().to(dev)
        x = torch.rand(x_shape, device=dev)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (x_shape[0],), device=dev)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7, **({"fused": True} if fused else {}))

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()

        return step

    train_rounds = 2 * a.rounds
    if wanted("backend_init"):
        report("backend_init", init_s)
    def first_step():
        t = time.perf_counter()
        train_step(mlp, (256, 784), 21)()
        report("mlp_first_step", time.perf_counter() - t)

    run("mlp_first_step", first_step)
    run("mlp", lambda: report("mlp", time_each(train_step(mlp, (256, 784), 1), 5, train_rounds), batch=256))
    run("mlp_example", lambda: report(
        "mlp_example", time_each(train_step(mlp_example, (128, 784), 22), 5, train_rounds), batch=128))
    run("cnn", lambda: report(
        "cnn", time_each(train_step(cnn, (128, 1, 28, 28), 2, a.channels_last), 3, train_rounds), batch=128))

    def tiny():
        x = torch.rand(1, device=dev)
        s = time_each(lambda: (x + 1).item(), 20, 10 * a.rounds)
        report("tiny_call", s, us=s * 1e6)

    def tiny_sync():
        x = torch.rand(1, device=dev)

        def f():
            x + 1
            sync()

        s = time_each(f, 20, 10 * a.rounds)
        report("tiny_sync", s, us=s * 1e6)

    def tiny_queued():
        x = torch.rand(1, device=dev)

        def f():
            for _ in range(QUEUED_CALLS):
                y = x + 1
            y.item()

        s = time_each(f, 2, a.rounds) / QUEUED_CALLS
        report("tiny_queued", s, us=s * 1e6)

    run("tiny_call", tiny)
    run("tiny_sync", tiny_sync)
    run("tiny_queued", tiny_queued)

    def elementwise(n, fn):
        x = torch.empty(chain_n, device=dev).uniform_(-4, 4)
        out = torch.empty_like(x)
        s = time_batched(lambda: fn(x, out), a.rounds)
        report(n, s, **{"GB/s": 8.0 * chain_n / s / 1e9, "n": chain_n})

    run("chain", lambda: elementwise("chain", lambda x, out: torch.tanh(x * 2 + 1) * torch.sigmoid(x)))
    run("copy", lambda: elementwise("copy", lambda x, out: out.copy_(x)))

    def gemm():
        n = gemm_n
        g = torch.Generator(device=dev).manual_seed(11)
        a_ = torch.empty(n, n, device=dev, dtype=torch.bfloat16).uniform_(-1, 1, generator=g)
        b_ = torch.empty(n, n, device=dev, dtype=torch.bfloat16).uniform_(-1, 1, generator=g)
        s = time_batched(lambda: torch.mm(a_, b_), a.rounds)
        report("gemm_bf16", s, **{"TFLOP/s": 2.0 * n ** 3 / s / 1e12, "n": n})

    run("gemm_bf16", gemm)

    def float_function(name, shape, fn, **extra):
        x = torch.empty(shape, device=dev).uniform_(-4, 4)
        s = time_batched(lambda: fn(x), a.rounds)
        report(name, s, **{k: (v(s) if callable(v) else v) for k, v in extra.items()})
        return s

    def loop(x):
        for _ in range(1000):
            x = x * 0.5 + 1
        return x

    sort_n = (1 << 16) if a.small else (1 << 20)
    rows = 4 if a.small else 64
    run("sort", lambda: float_function("sort", (sort_n,), lambda x: torch.sort(x).values, n=sort_n))
    run("topk", lambda: float_function("topk", (rows, 50257), lambda x: torch.topk(x, 50).values, rows=rows))
    run("while_1000", lambda: float_function("while_1000", (1024,), loop, us_per_trip=lambda s: s * 1e6 / 1000))

    # The _ex forms skip the check that synchronizes to raise on a failed
    # factorization: Kiln returns NaN there instead and does not synchronize.
    ln = 64 if a.small else 1024
    lbatch = 64 if a.small else 4096

    def spd(batch, n, dtype):
        g = torch.Generator(device=dev).manual_seed(13)
        r = torch.empty(batch, n, n, device=dev, dtype=dtype).uniform_(-1, 1, generator=g)
        return r @ r.mT / n + torch.eye(n, device=dev, dtype=dtype)

    def cholesky(name, x, **extra):
        s = time_batched(lambda: torch.linalg.cholesky_ex(x).L, a.rounds)
        report(name, s, **extra)

    def solve():
        g = torch.Generator(device=dev).manual_seed(14)
        m = torch.empty(ln, ln, device=dev, dtype=torch.float64).uniform_(-1, 1, generator=g)
        m += ln * torch.eye(ln, device=dev, dtype=torch.float64)
        b = torch.ones(ln, 1, device=dev, dtype=torch.float64)
        s = time_batched(lambda: torch.linalg.solve_ex(m, b).result, a.rounds)
        report("solve", s, n=ln)

    run("cholesky", lambda: cholesky("cholesky", spd(1, ln, torch.float64)[0], n=ln))
    run("solve", solve)
    run("cholesky_batch", lambda: cholesky("cholesky_batch", spd(lbatch, 16, torch.float32), batch=lbatch))

    def fft():
        n = (1 << 14) if a.small else (1 << 20)
        x = torch.sin(0.001 * torch.arange(2 * n, device=dev, dtype=torch.float64)).float().view(torch.complex64)
        s = time_batched(lambda: torch.fft.fft(x), a.rounds)
        report("fft", s, n=n)

    run("fft", fft)

    def attention(name):
        dims = (1, 2, 256, 64) if a.small else (4, 8, 2048, 64)
        g = torch.Generator(device=dev).manual_seed(40)
        q, k, v, ct = (torch.empty(dims, device=dev).uniform_(-1, 1, generator=g) for _ in range(4))
        for t in (q, k, v):
            t.requires_grad_(True)

        def step():
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            dq, dk, dv = torch.autograd.grad(out, (q, k, v), ct)
            return dq + dk.sum() + dv.sum()

        s = time_batched(step, a.rounds)
        flops = 7.0 * dims[0] * dims[1] * dims[2] * dims[2] * dims[3]
        report(name, s, seq=dims[2], **{"TFLOP/s": flops / s / 1e12})

    run("attention", lambda: attention("attention"))
    run("attention_composed", lambda: attention("attention_composed"))

    def gpt2_block():
        b, t, d, heads = (1, 64, 64, 2) if a.small else (8, 1024, 768, 12)
        dtype = torch.bfloat16
        g = torch.Generator(device=dev).manual_seed(60)

        def filled(*shape, lo=-1.0, hi=1.0):
            return torch.empty(shape, device=dev).uniform_(lo, hi, generator=g).to(dtype).requires_grad_(True)

        x, dy = filled(b, t, d), filled(b, t, d)
        dy.requires_grad_(False)
        ln1_g, ln1_b = filled(d, lo=0.9, hi=1.1), filled(d)
        w_qkv, b_qkv = filled(d, 3 * d, lo=-0.02, hi=0.02), filled(3 * d)
        w_o, b_o = filled(d, d, lo=-0.02, hi=0.02), filled(d)
        ln2_g, ln2_b = filled(d, lo=0.9, hi=1.1), filled(d)
        w_fc, b_fc = filled(d, 4 * d, lo=-0.02, hi=0.02), filled(4 * d)
        w_pr, b_pr = filled(4 * d, d, lo=-0.02, hi=0.02), filled(d)
        weights = (ln1_g, ln1_b, w_qkv, b_qkv, w_o, b_o, ln2_g, ln2_b, w_fc, b_fc, w_pr, b_pr)

        def step():
            h = F.layer_norm(x, (d,), ln1_g, ln1_b)
            q, k, v = (h @ w_qkv + b_qkv).split(d, dim=-1)
            q, k, v = (z.view(b, t, heads, d // heads).transpose(1, 2) for z in (q, k, v))
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
            x1 = x + att @ w_o + b_o
            y = x1 + F.gelu(F.layer_norm(x1, (d,), ln2_g, ln2_b) @ w_fc + b_fc) @ w_pr + b_pr
            grads = torch.autograd.grad(y, (x,) + weights, dy)
            out = grads[0]
            for gr in grads[1:]:
                out = out + gr.sum()
            return out

        s = time_batched(step, a.rounds)
        bt = b * t
        flops = 3.0 * (24.0 * bt * d * d + 2.0 * bt * t * d)
        report("gpt2_block", s, seq=t, **{"TFLOP/s": flops / s / 1e12})

    run("gpt2_block", gpt2_block)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
