#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Safetensors interchange with PyTorch, both directions, for tests/io/test_safetensors.cpp.
"""Reference 1's PyTorch Net and our safetensors files, in both directions.

  generate   (default) writes the committed fixtures:
             tests/fixtures/torch_state_dict.safetensors  the state_dict of Net(12, 9, 7, 5)
                                                           after 3 SGD steps (running stats
                                                           and num_batches_tracked non-trivial)
             tests/fixtures/torch_net_eval.safetensors    "input" (4, 12) and the eval-mode
                                                           "output" (4, 5) of that model
             The C++ test loads the first into mnist::Net<float>(12, 9, 7, 5) and checks it
             reproduces "output" (PyTorch -> C++).
  check DIR  loads the files the C++ test "[checkpoint][torch]" exported into DIR
             (build-dir/tests/io_tmp) into PyTorch (C++ -> PyTorch):
             cpp_net.safetensors         model.load_state_dict(strict=True), eval output
                                         compared with cpp_net_eval.safetensors;
             cpp_checkpoint.safetensors  weights (strict, optimizer.* dropped) and momentum
                                         buffers into torch.optim.SGD, one training step on
                                         cpp_step_batch.safetensors, every state_dict tensor
                                         compared with cpp_net_after_step.safetensors.
             Needs torch, so CI does not run it:
               ./build/tests/backprop_io_tests "[torch]"
               /usr/bin/python3 tests/reference/safetensors_torch.py check build/tests/io_tmp

Debian's python3-torch has no `safetensors` package, so the format (8-byte little-endian
header length, JSON header, little-endian row-major bytes) is written and read by hand here.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from torch import nn

from reference_common import SAFETENSORS_DTYPES, Net, write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")

NUMPY = {name: np_dtype for name, np_dtype in SAFETENSORS_DTYPES.values()}


def read_safetensors(path):
    """Returns (name -> torch tensor, metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {})
    base, tensors = 8 + n, {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = np.frombuffer(raw[base + begin:base + end], dtype=NUMPY[info["dtype"]])
        tensors[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return tensors, metadata


def generate():
    torch.manual_seed(0)
    model = Net(12, 9, 7, 5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    criterion = nn.CrossEntropyLoss()
    model.train()
    for _ in range(3):
        x, y = torch.randn(8, 12), torch.randint(0, 5, (8,))
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x = torch.randn(4, 12)
    with torch.no_grad():
        out = model(x)
    stamp = {"format": "pt", "generated_by": "tests/reference/safetensors_torch.py",
             "torch": torch.__version__}
    write_safetensors(os.path.join(FIXTURES, "torch_state_dict.safetensors"),
                      model.state_dict(), stamp)
    write_safetensors(os.path.join(FIXTURES, "torch_net_eval.safetensors"),
                      {"input": x, "output": out}, stamp)
    print("wrote", len(model.state_dict()), "tensors; num_batches_tracked =",
          int(model.layer1[1].num_batches_tracked))


def net_for(state):
    w1, w2, w3 = (state[f"layer{i}.0.weight"] for i in (1, 2, 3))
    return Net(w1.shape[1], w1.shape[0], w2.shape[0], w3.shape[0])


def report(what, a, b, tol=1e-5):
    err = (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
    ok = a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=tol, atol=tol)
    print(f"{'ok  ' if ok else 'FAIL'} {what}: max abs err {err:.3g}")
    return ok


def check(directory):
    ok = True
    # 1. A C++ state_dict, loaded strictly; its eval output must match the C++ one.
    state, _ = read_safetensors(os.path.join(directory, "cpp_net.safetensors"))
    model = net_for(state)
    print("load_state_dict(cpp_net.safetensors, strict=True):", model.load_state_dict(state))
    model.eval()
    ev, _ = read_safetensors(os.path.join(directory, "cpp_net_eval.safetensors"))
    with torch.no_grad():
        ok &= report("eval output of the C++ weights", model(ev["input"]), ev["output"])

    # 2. A C++ checkpoint: weights (strict, optimizer.* dropped) + momentum buffers, then one
    #    more SGD step in PyTorch must land where the C++ run's next step did.
    ckpt, meta = read_safetensors(os.path.join(directory, "cpp_checkpoint.safetensors"))
    weights = {k: v for k, v in ckpt.items() if not k.startswith("optimizer.")}
    model = net_for(weights)
    print("load_state_dict(checkpoint weights, strict=True):", model.load_state_dict(weights))
    optimizer = torch.optim.SGD(model.parameters(), lr=float(meta["optimizer.lr"]),
                                momentum=float(meta["optimizer.momentum"]))
    buffers = {k[len("optimizer.momentum_buffer."):]: v for k, v in ckpt.items()
               if k.startswith("optimizer.momentum_buffer.")}
    names = [name for name, _ in model.named_parameters()]
    assert sorted(buffers) == sorted(names), (sorted(buffers), names)
    for name, p in model.named_parameters():
        optimizer.state[p]["momentum_buffer"] = buffers[name].clone()
    print(f"checkpoint metadata: epoch {meta['epoch']}, lr {meta['optimizer.lr']}, "
          f"{len(buffers)} momentum buffers")
    batch, _ = read_safetensors(os.path.join(directory, "cpp_step_batch.safetensors"))
    model.train()
    loss = nn.CrossEntropyLoss()(model(batch["x"]), batch["y"])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    after, _ = read_safetensors(os.path.join(directory, "cpp_net_after_step.safetensors"))
    for name, t in model.state_dict().items():
        ok &= report(f"after one more step: {name}", t, after[name])
    print("C++ -> PyTorch:", "PASS" if ok else "FAIL")
    return ok


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "generate"
    if mode == "generate":
        generate()
    elif mode == "check" and len(sys.argv) == 3:
        sys.exit(0 if check(sys.argv[2]) else 1)
    else:
        sys.exit(__doc__)
