#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""PyTorch's side of benchmarks/compare.sh: the two reference models trained on MNIST with
the fastest honest PyTorch CPU loop, timed like bench_train.

Run with Debian's python3-torch (plain `python3` may be another interpreter without torch):
    /usr/bin/python3 benchmarks/pytorch_baseline.py --data data/mnist --model bn-mlp \\
        --batch 64 --threads 1 --epochs 3
compare.sh sets the environment that gives PyTorch its best speed (see benchmarks/README.md):
OpenBLAS instead of the reference BLAS, OPENBLAS_CORETYPE unset, GOMP_SPINCOUNT=0 with two
threads.

The loop: the 60k images are loaded once, normalised exactly as ToTensor() +
Normalize((0.5,), (0.5,)) and kept as one float32 tensor; each epoch draws a permutation
(torch.randperm) and gathers each batch with index_select, which is the work our DataLoader
does (shuffle + gather), without torch.utils.data.DataLoader's per-sample overhead. A step
is zero_grad(set_to_none=True), forward, CrossEntropyLoss, backward, SGD step (reference 1:
lr 0.01, momentum 0.5; reference 2: lr 0.01, the seed's hand-written update replaced by the
faster torch.optim.SGD), and loss.item() as both references do. Models are the seeds':
reference 1 (class Net, 784-300-100-10 with BatchNorm1d) and reference 2 (nn.Sequential
784-600-400-200-100-10).

Prints human lines and one machine line:
  RESULT impl=pytorch model=... batch=... threads=... epoch_s=<median> ... train_sps=... infer_sps=...
"""
import argparse
import gzip
import os
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("MNIST_DIR", "data/mnist"))
    p.add_argument("--model", choices=["bn-mlp", "deep-mlp"], default="bn-mlp")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    p.add_argument("--warmup-steps", type=int, default=0,
                   help="untimed steps before the first epoch (in addition to --warmup)")
    p.add_argument("--max-steps", type=int, default=0,
                   help="time only this many steps per epoch and scale to 60k samples "
                        "(0: whole epochs); keeps compare.sh short when PyTorch is slow")
    p.add_argument("--infer-passes", type=int, default=3)
    p.add_argument("--epoch-budget", type=float, default=0,
                   help="stop an epoch or inference pass after this many seconds and "
                        "extrapolate to the whole epoch (0: never)")
    p.add_argument("--foreach", action="store_true",
                   help="torch.optim.SGD(foreach=True) (multi-tensor update)")
    return p.parse_args()


args = parse_args()
# OpenBLAS reads its thread count when it is loaded, so set it before importing torch.
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def read_idx(root, stem):
    for name in (stem, stem.replace("-idx", ".idx")):
        for ext, opener in (("", open), (".gz", gzip.open)):
            path = os.path.join(root, name + ext)
            if os.path.exists(path):
                with opener(path, "rb") as f:
                    data = f.read()
                ndim = data[3]
                dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
                return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    sys.exit(f"pytorch_baseline: {root}/{stem} not found (scripts/fetch-mnist.sh downloads MNIST)")


class Net(nn.Module):  # reference 1, as in the seed
    def __init__(self, in_dim, n_hidden_1, n_hidden_2, out_dim):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Linear(in_dim, n_hidden_1), nn.BatchNorm1d(n_hidden_1))
        self.layer2 = nn.Sequential(nn.Linear(n_hidden_1, n_hidden_2), nn.BatchNorm1d(n_hidden_2))
        self.layer3 = nn.Sequential(nn.Linear(n_hidden_2, out_dim))

    def forward(self, x):
        x = F.relu(self.layer1(x))
        x = F.relu(self.layer2(x))
        return self.layer3(x)


def deep_mlp():  # reference 2, as in the seed
    return nn.Sequential(nn.Linear(784, 600), nn.ReLU(), nn.Linear(600, 400), nn.ReLU(),
                         nn.Linear(400, 200), nn.ReLU(), nn.Linear(200, 100), nn.ReLU(),
                         nn.Linear(100, 10))


def blas_in_use():
    """The BLAS library this process mapped, and OpenBLAS's core if it is OpenBLAS."""
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "blas" in os.path.basename(path):
                libs.add(os.path.realpath(path))
    core = ""
    for lib in libs:
        try:
            import ctypes
            so = ctypes.CDLL(lib)
            so.openblas_get_corename.restype = ctypes.c_char_p
            so.openblas_get_config.restype = ctypes.c_char_p
            core = f" (OpenBLAS core {so.openblas_get_corename().decode()}, " \
                   f"{so.openblas_get_config().decode()})"
        except (OSError, AttributeError):
            pass
    return (", ".join(sorted(libs)) or "none mapped") + core


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    images = read_idx(args.data, "train-images-idx3-ubyte")
    labels = read_idx(args.data, "train-labels-idx1-ubyte")
    n = images.shape[0]
    # ToTensor() then Normalize((0.5,), (0.5,)), in float32 as torchvision does.
    x_all = torch.from_numpy(images.reshape(n, -1).copy()).float().div_(255).sub_(0.5).div_(0.5)
    y_all = torch.from_numpy(labels.astype(np.int64))

    model = Net(784, 300, 100, 10) if args.model == "bn-mlp" else deep_mlp()
    momentum = 0.5 if args.model == "bn-mlp" else 0.0
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=momentum,
                          foreach=True if args.foreach else None)
    criterion = nn.CrossEntropyLoss()
    b = args.batch
    steps = (n + b - 1) // b
    if args.max_steps:
        steps = min(steps, args.max_steps)
    samples = min(n, steps * b)

    print(f"pytorch_baseline: torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"BLAS {blas_in_use()}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
          f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', '(unset)')}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"mkldnn {torch.backends.mkldnn.is_available()}", flush=True)

    def train_epoch():
        model.train()
        perm = torch.randperm(n)
        total = 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        done = 0
        for s in range(steps):
            if args.epoch_budget and s and time.perf_counter() - t0 > args.epoch_budget:
                break
            idx = perm[s * b:(s + 1) * b]
            x = x_all.index_select(0, idx)
            y = y_all.index_select(0, idx)
            out = model(x)
            loss = criterion(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
            done += 1
        scale = steps / done
        return ((time.perf_counter() - t0) * scale, (time.process_time() - c0) * scale,
                total / done, done < steps)

    if args.warmup_steps:
        model.train()
        for s in range(args.warmup_steps):
            idx = torch.randint(0, n, (b,))
            loss = criterion(model(x_all.index_select(0, idx)), y_all.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    walls, cpus = [], []
    partial = 0
    last_loss = float("nan")
    for e in range(args.warmup + args.epochs):
        w, c, last_loss, cut = train_epoch()
        if e >= args.warmup:
            walls.append(w * n / samples)  # seconds per 60k-sample epoch
            cpus.append(c * n / samples)
            partial += cut

    model.eval()
    infer = []
    with torch.inference_mode():
        for p in range(args.infer_passes + 1):
            t0 = time.perf_counter()
            done = 0
            for s in range(0, n, b):
                if args.epoch_budget and s and time.perf_counter() - t0 > args.epoch_budget:
                    break
                model(x_all[s:s + b])
                done += min(b, n - s)
            if p:
                infer.append((time.perf_counter() - t0) * n / done)

    med = statistics.median(walls)
    imed = statistics.median(infer)
    print(f"  train  {med:.3f} s/epoch (median of {len(walls)}; min {min(walls):.3f}, "
          f"max {max(walls):.3f})  {n / med:.0f} samples/s  [process CPU {statistics.median(cpus):.3f} "
          f"s/epoch]  mean loss of the last epoch {last_loss:.4f}"
          + (f"  (timed {steps} steps per epoch, scaled to 60k)" if args.max_steps else "")
          + ("  (some epochs cut by --epoch-budget, extrapolated)" if partial else ""))
    print(f"  infer  {n / imed:.0f} samples/s (median of {len(infer)} passes over 60k)")
    print(f"RESULT impl=pytorch model={args.model} batch={b} threads={args.threads} "
          f"epoch_s={med:.4f} epoch_min={min(walls):.4f} epoch_max={max(walls):.4f} "
          f"epochs={len(walls)} train_sps={n / med:.0f} infer_sps={n / imed:.0f} "
          f"cpu_s={statistics.median(cpus):.4f} partial={partial} epoch_list={','.join(f'{w:.4f}' for w in walls)}",
          flush=True)


main()
