#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Loads a checkpoint of the MNIST example into PyTorch and scores it on the test set, with
the standard library and torch only: no `safetensors`, numpy or torchvision package needed
(Debian's python3-torch has no `safetensors` module).

  python3 examples/mnist/load_in_pytorch.py runs/bn-mlp/checkpoint.safetensors \\
      [--data-dir data/mnist] [--batch-size 128]

It reads the safetensors file (an 8-byte little-endian header length, a JSON header, then
little-endian row-major tensors), builds the PyTorch model of the preset that wrote it
(reference 1's Net for bn-mlp, reference 2's nn.Sequential for deep-mlp; the programs are
tests/reference/mnist_torch.py), loads the weights with load_state_dict(strict=True) (the
optimizer's momentum buffers, "optimizer.*", are left out), and prints the test loss and
accuracy as the example's metrics.csv has them: the mean over test batches, as the reference
programs compute it, and the accuracy over samples.
"""
import argparse
import gzip
import json
import os
import struct
import sys

import torch
import torch.nn.functional as F
from torch import nn

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def read_safetensors(path):
    """Returns (name -> tensor, metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        sys.exit(f"{path}: not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError:
        sys.exit(f"{path}: not a safetensors file (no JSON header)")
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        data = bytearray(raw[8 + n + begin:8 + n + end])
        t = torch.frombuffer(data, dtype=DTYPES[info["dtype"]]) if data else torch.empty(0, dtype=DTYPES[info["dtype"]])
        if sys.byteorder == "big":
            t = t.view(torch.uint8).view(-1, t.element_size()).flip(1).reshape(-1).view(t.dtype)
        tensors[name] = t.reshape(info["shape"]).clone()
    return tensors, metadata


# Reference 1 ("bn-mlp"), its model as written.
class Net(nn.Module):
    def __init__(self, in_dim, n_hidden_1, n_hidden_2, out_dim):
        super(Net, self).__init__()
        self.layer1 = nn.Sequential(nn.Linear(in_dim, n_hidden_1), nn.BatchNorm1d(n_hidden_1))
        self.layer2 = nn.Sequential(nn.Linear(n_hidden_1, n_hidden_2), nn.BatchNorm1d(n_hidden_2))
        self.layer3 = nn.Sequential(nn.Linear(n_hidden_2, out_dim))

    def forward(self, x):
        x = F.relu(self.layer1(x))
        x = F.relu(self.layer2(x))
        return self.layer3(x)


# Reference 2 ("deep-mlp"). With the example's --dropout P > 0, nn.Dropout(P) follows each
# ReLU, which shifts the Sequential's indices (keys 0, 3, 6, 9, 12) as in the C++ model.
def deep_mlp(in_dim, out_dim, dropout=0.0):
    widths, layers = [in_dim, 600, 400, 200, 100], []
    for i in range(4):
        layers += [nn.Linear(widths[i], widths[i + 1]), nn.ReLU()]
        layers += [nn.Dropout(dropout)] if dropout > 0 else []
    return nn.Sequential(*layers, nn.Linear(100, out_dim))


def model_for(state, metadata):
    preset = metadata.get("preset") or ("bn-mlp" if "layer1.0.weight" in state else "deep-mlp")
    if preset == "bn-mlp":
        w1, w2, w3 = (state[f"layer{i}.0.weight"] for i in (1, 2, 3))
        return preset, Net(w1.shape[1], w1.shape[0], w2.shape[0], w3.shape[0])
    dropout = float(metadata.get("run.dropout", "0"))
    last = "12.weight" if dropout > 0 else "8.weight"
    return preset, deep_mlp(state["0.weight"].shape[1], state[last].shape[0], dropout)


def read_idx(data_dir, stem):
    for name in (stem, stem.replace("-idx", ".idx")):
        for path in (os.path.join(data_dir, name), os.path.join(data_dir, name + ".gz")):
            if os.path.exists(path):
                with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
                    raw = f.read()
                dims = raw[3]
                shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
                data = torch.frombuffer(bytearray(raw[4 + 4 * dims:]), dtype=torch.uint8)
                return data.reshape(shape)
    sys.exit(f"{data_dir}: no {stem} (or .gz)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--data-dir", default="data/mnist")
    p.add_argument("--batch-size", type=int, default=128, help="test batch size (reference: 128)")
    args = p.parse_args()

    tensors, metadata = read_safetensors(args.checkpoint)
    state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    preset, model = model_for(state, metadata)
    model.load_state_dict(state, strict=True)
    model.eval()

    # ToTensor() then Normalize([0.5], [0.5]), as the example and both references.
    images = read_idx(args.data_dir, "t10k-images-idx3-ubyte")
    labels = read_idx(args.data_dir, "t10k-labels-idx1-ubyte").long()
    x = (images.reshape(images.shape[0], -1).float() / 255 - 0.5) / 0.5

    loss_sum = acc_sum = 0.0
    correct = batches = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], args.batch_size):
            out = model(x[i:i + args.batch_size])
            y = labels[i:i + args.batch_size]
            loss_sum += F.cross_entropy(out, y).item()
            right = (out.argmax(1) == y).sum().item()
            acc_sum += right / y.shape[0]
            correct += right
            batches += 1
    print(f"{args.checkpoint}: {preset}, epoch {metadata.get('epoch', '?')}, "
          f"{len(state)} tensors loaded (strict)")
    print(f"Test Loss: {loss_sum / batches:.6f}, Test Acc: {acc_sum / batches:.6f} "
          f"(mean over {batches} batches), per sample: {correct / x.shape[0]:.6f}")


if __name__ == "__main__":
    main()
