#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The two reference MNIST programs (shared/seeds/000_*.txt and 003_*.txt), run with PyTorch,
for the acceptance checks of examples/mnist (docs/mnist.md) and the parity fixtures.

Needs Debian's python3-torch and python3-torchvision, so use /usr/bin/python3, and unset
OPENBLAS_CORETYPE:

  env -u OPENBLAS_CORETYPE /usr/bin/python3 tests/reference/mnist_torch.py \\
      --preset bn-mlp [--epochs 20] [--lr-step 5] [--seed 0] [--data-dir data/mnist]
  env -u OPENBLAS_CORETYPE /usr/bin/python3 tests/reference/mnist_torch.py \\
      --preset deep-mlp --epochs 5
  env -u OPENBLAS_CORETYPE /usr/bin/python3 tests/reference/mnist_torch.py \\
      --export-parity tests/fixtures

Speed: Debian's python3-torch calls the generic libblas.so.3, which on this machine is the
netlib reference BLAS (about 15x slower on these models). For realistic wall times load
OpenBLAS without touching the system alternative (as benchmarks/compare.sh does):
  env -u OPENBLAS_CORETYPE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      /usr/bin/python3 tests/reference/mnist_torch.py ...
The header line says which BLAS was loaded. The accuracies do not depend on it.

Training modes print reference 1's per-epoch line
  epoch: 0, Train Loss: 1.0274, Train Acc: 0.7921, Test Loss: 0.5553, Test Acc: 0.9008
(per-batch mean loss and accuracy, as reference 1 averages them) and the wall times.

  bn-mlp    reference 1 as written: Net(784, 300, 100, 10) with Linear+BatchNorm1d, ReLU;
            ToTensor + Normalize([0.5], [0.5]); batch 64 shuffled, test batch 128;
            SGD lr 0.01 momentum 0.5 and "if epoch % 5 == 0: lr *= 0.1" (the 5 is --lr-step;
            --lr-step 0 keeps lr at 0.01); model.train() / model.eval(); 20 epochs.
  deep-mlp  reference 2 as written: nn.Sequential 784-600-400-200-100-10 with ReLU;
            its data_tf transform; batch 64 shuffled; hand-written SGD p = p - 0.01 * grad;
            the loss recorded every 30 iterations (losses1). Differences, all deliberate:
            no net.load_state_dict(torch.load('mnist.pth')) (there is no such file: training
            starts from PyTorch's default init), --epochs instead of 100, no
            torch.save, and a test pass after each epoch (reference 2 has none) so that both
            presets print the same line. Reference 2's own line
            "epoch :{},Train_loss:{:.10f}" and "time:{:.5f}" are printed as well.

--seed S calls torch.manual_seed(S) first (the references do not seed); it fixes the initial
weights and the DataLoader shuffles. torch runs on --threads threads (default 1).

--export-parity DIR writes the fixtures of the CTest "mnist:parity_first_100_losses":
  DIR/torch_bn_mlp_init.safetensors        torch.manual_seed(0); Net(784, 300, 100, 10);
                                           its initial state_dict (F32, num_batches_tracked
                                           I64 shape [])
  DIR/torch_bn_mlp_first100_losses.txt     that model trained with reference 1's settings
                                           (SGD lr 0.01 momentum 0.5, lr *= 0.1 at the start
                                           of epoch 0, so lr 0.001; batch 64) on the training
                                           set in file order (shuffle=False), 100 steps: each
                                           step's loss.item(), repr, one per line
Our side: mnist --load DIR/torch_bn_mlp_init.safetensors --no-shuffle --max-steps 100
--epochs 1 --out X writes X/losses.csv; tests/reference/compare_losses.sh compares them.
The committed fixtures were written with torch's default BLAS (netlib here); a rerun
reproduces them byte for byte. With OpenBLAS the init file is identical and the losses move
by at most 2.2e-7 relative.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision.transforms as transforms
from torch import nn
from torch.utils.data import DataLoader
from torchvision.datasets import mnist

from reference_common import Net, write_safetensors

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


# ---------------------------------------------------------------------------------------
# Reference 2 (shared/seeds/003_a6ea8e769a78d4c4.txt), copied as written.

def data_tf(x):
    x = np.array(x, dtype='float32') / 255
    x = (x - 0.5) / 0.5
    x = x.reshape((-1,))
    x = torch.from_numpy(x)
    return x


def sgd_update(parameters, lr):
    for param in parameters:
        param.data = param.data - lr * param.grad.data


def deep_mlp():
    return nn.Sequential(
        nn.Linear(784, 600),
        nn.ReLU(),
        nn.Linear(600, 400),
        nn.ReLU(),
        nn.Linear(400, 200),
        nn.ReLU(),
        nn.Linear(200, 100),
        nn.ReLU(),
        nn.Linear(100, 10)
    )


# ---------------------------------------------------------------------------------------
# Data: torchvision's MNIST reading our IDX files, never downloading.

class MnistRoot:
    """A temporary root/MNIST/raw/ of symlinks to DATA_DIR's four IDX files."""

    def __init__(self, data_dir):
        self.data_dir = os.path.abspath(data_dir)

    def __enter__(self):
        self.root = tempfile.mkdtemp(prefix="mnist_torch_")
        raw = os.path.join(self.root, "MNIST", "raw")
        os.makedirs(raw)
        for name in FILES:
            src = os.path.join(self.data_dir, name)
            if not os.path.isfile(src):
                sys.exit(f"{src}: not found (scripts/fetch-mnist.sh fetches MNIST)")
            os.symlink(src, os.path.join(raw, name))
        return self.root

    def __exit__(self, *exc):
        shutil.rmtree(self.root, ignore_errors=True)


def datasets(root, transform):
    train = mnist.MNIST(root, train=True, transform=transform, download=False)
    test = mnist.MNIST(root, train=False, transform=transform, download=False)
    return train, test


def reference1_transform():
    return transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])


# ---------------------------------------------------------------------------------------
# The training modes.

def line(epoch, train_loss, train_acc, eval_loss, eval_acc):
    return ('epoch: {}, Train Loss: {:.4f}, Train Acc: {:.4f}, Test Loss: {:.4f}, Test Acc: {:.4f}'
            .format(epoch, train_loss, train_acc, eval_loss, eval_acc))


def evaluate(model, criterion, test_loader, flatten):
    """Reference 1's test pass: per-batch mean loss and accuracy."""
    eval_loss = 0
    eval_acc = 0
    model.eval()
    with torch.no_grad():  # reference 1 builds the graph here; the numbers are the same
        for img, label in test_loader:
            if flatten:
                img = img.view(img.size(0), -1)
            out = model(img)
            loss = criterion(out, label)
            eval_loss += loss.item()
            _, pred = out.max(1)
            num_correct = (pred == label).sum().item()
            acc = num_correct / img.shape[0]
            eval_acc += acc
    return eval_loss / len(test_loader), eval_acc / len(test_loader)


def train_step(model, criterion, optimizer, img, label):
    """One step of reference 1's training loop, as it writes it; returns (out, loss)."""
    out = model(img)
    loss = criterion(out, label)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return out, loss


def run_bn_mlp(args, root):
    train_dataset, test_dataset = datasets(root, reference1_transform())
    train_loader = DataLoader(train_dataset, batch_size=64, shuffle=True)
    test_loader = DataLoader(test_dataset, batch_size=128, shuffle=False)

    model = Net(28 * 28, 300, 100, 10)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)

    train_seconds = 0.0
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        train_loss = 0
        train_acc = 0
        model.train()
        if args.lr_step > 0 and epoch % args.lr_step == 0:
            optimizer.param_groups[0]['lr'] *= 0.1
        for img, label in train_loader:
            img = img.view(img.size(0), -1)
            out, loss = train_step(model, criterion, optimizer, img, label)
            train_loss += loss.item()
            _, pred = out.max(1)
            num_correct = (pred == label).sum().item()
            acc = num_correct / img.shape[0]
            train_acc += acc
        train_seconds += time.perf_counter() - t0
        eval_loss, eval_acc = evaluate(model, criterion, test_loader, flatten=True)
        print(line(epoch, train_loss / len(train_loader), train_acc / len(train_loader),
                   eval_loss, eval_acc), flush=True)
    return train_seconds


def run_deep_mlp(args, root):
    train_set, test_set = datasets(root, data_tf)
    train_data = DataLoader(train_set, batch_size=64, shuffle=True)
    test_data = DataLoader(test_set, batch_size=128, shuffle=False)

    criterion = nn.CrossEntropyLoss()
    net = deep_mlp()
    losses1 = []
    idx = 0
    # (reference 2 loads mnist.pth here; we have none, so training starts from the init)

    train_seconds = 0.0
    for e in range(args.epochs):
        t0 = time.perf_counter()
        net.train()
        train_loss = 0
        train_acc = 0
        for im, label in train_data:
            out = net(im)
            loss = criterion(out, label)
            net.zero_grad()
            loss.backward()
            sgd_update(net.parameters(), 1e-2)
            train_loss += loss.data.numpy()
            if idx % 30 == 0:
                losses1.append(float(loss.data.numpy()))
            idx += 1
            _, pred = out.max(1)  # not in reference 2: reference 1's train accuracy
            train_acc += (pred == label).sum().item() / im.shape[0]
        train_seconds += time.perf_counter() - t0
        print('epoch :{},Train_loss:{:.10f}'.format(e, train_loss / len(train_data)))
        eval_loss, eval_acc = evaluate(net, criterion, test_data, flatten=False)
        print(line(e, float(train_loss) / len(train_data), train_acc / len(train_data),
                   eval_loss, eval_acc), flush=True)
    print('time:{:.5f}'.format(train_seconds))
    if args.losses_out:
        with open(args.losses_out, "w") as f:
            f.write("iteration,loss\n")
            for i, v in enumerate(losses1):
                f.write(f"{30 * i},{v!r}\n")
    return train_seconds


# ---------------------------------------------------------------------------------------
# Parity fixtures.

def export_parity(args, root):
    os.makedirs(args.export_parity, exist_ok=True)
    torch.manual_seed(0)
    model = Net(28 * 28, 300, 100, 10)
    init = os.path.join(args.export_parity, "torch_bn_mlp_init.safetensors")
    write_safetensors(init, model.state_dict(), {"format": "pt"})
    init_state = {k: v.clone() for k, v in model.state_dict().items()}

    train_dataset, _ = datasets(root, reference1_transform())
    train_loader = DataLoader(train_dataset, batch_size=64, shuffle=False)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    model.train()
    optimizer.param_groups[0]['lr'] *= 0.1  # epoch 0: "if epoch % 5 == 0: lr *= 0.1"
    losses = []
    for img, label in train_loader:
        img = img.view(img.size(0), -1)
        _, loss = train_step(model, criterion, optimizer, img, label)
        losses.append(loss.item())
        if len(losses) == args.parity_steps:
            break
    path = os.path.join(args.export_parity, "torch_bn_mlp_first100_losses.txt")
    with open(path, "w") as f:
        f.writelines(f"{v!r}\n" for v in losses)
    print(f"wrote {init} ({os.path.getsize(init)} bytes, {len(model.state_dict())} tensors) "
          f"and {path} ({len(losses)} losses, first {losses[0]!r}, last {losses[-1]!r})")

    # The same run in float64, from the same initial weights (widened exactly). The pixels
    # are normalised in double from the raw bytes, (b / 255 - 0.5) / 0.5, as
    # MnistDataset<double> does, so both sides start from the same numbers bit for bit.
    model64 = Net(28 * 28, 300, 100, 10).double()
    model64.load_state_dict({k: v.double() if v.is_floating_point() else v
                             for k, v in init_state.items()})
    optimizer = torch.optim.SGD(model64.parameters(), lr=0.01, momentum=0.5)
    optimizer.param_groups[0]['lr'] *= 0.1
    model64.train()
    images = train_dataset.data.reshape(-1, 28 * 28).double()
    losses64 = []
    for step in range(args.parity_steps):
        rows = slice(64 * step, 64 * (step + 1))
        img = (images[rows] / 255 - 0.5) / 0.5
        _, loss = train_step(model64, criterion, optimizer, img, train_dataset.targets[rows])
        losses64.append(loss.item())
    path64 = os.path.join(args.export_parity, "torch_bn_mlp_first100_losses_f64.txt")
    with open(path64, "w") as f:
        f.writelines(f"{v!r}\n" for v in losses64)
    print(f"wrote {path64} ({len(losses64)} float64 losses, first {losses64[0]!r}, "
          f"last {losses64[-1]!r})")


def blas():
    """The BLAS library this process loaded (Debian's torch links the generic libblas.so.3:
    the netlib reference BLAS unless the alternative or LD_LIBRARY_PATH says otherwise)."""
    torch.ones(2, 2) @ torch.ones(2, 2)
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "blas" in line.rsplit("/", 1)[-1]}
        return ", ".join(sorted(os.path.realpath(p) for p in paths)) or "?"
    except OSError:
        return "?"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=["bn-mlp", "deep-mlp"], default="bn-mlp")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs (default: 20 for bn-mlp, 100 for deep-mlp, as the references)")
    p.add_argument("--lr-step", type=int, default=5,
                   help="bn-mlp: lr *= 0.1 when epoch %% N == 0 (reference 1: 5); 0 = constant")
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    p.add_argument("--data-dir", default=os.path.join(ROOT, "data", "mnist"),
                   help="the four IDX files (default <repo>/data/mnist)")
    p.add_argument("--losses-out", default=None,
                   help="deep-mlp: write losses1 (the loss every 30 iterations) as CSV here")
    p.add_argument("--export-parity", metavar="DIR", default=None,
                   help="write the parity fixtures into DIR instead of training")
    p.add_argument("--parity-steps", type=int, default=100, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.epochs is None:
        args.epochs = 20 if args.preset == "bn-mlp" else 100

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), BLAS {blas()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}", flush=True)
    with MnistRoot(args.data_dir) as root:
        if args.export_parity:
            export_parity(args, root)
            return
        torch.manual_seed(args.seed)
        schedule = f"lr-step {args.lr_step}" if args.preset == "bn-mlp" else "constant lr"
        print(f"preset {args.preset}, {args.epochs} epochs, {schedule}, seed {args.seed}",
              flush=True)
        t0 = time.perf_counter()
        run = run_bn_mlp if args.preset == "bn-mlp" else run_deep_mlp
        train_seconds = run(args, root)
        print(f"wall time: {time.perf_counter() - t0:.1f} s "
              f"(training loops {train_seconds:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
