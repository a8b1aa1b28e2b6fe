# SPDX-License-Identifier: MIT
"""What the reference scripts share: reference 1's model as its program writes it, and the
safetensors format written by hand (Debian's python3-torch has no `safetensors` package)."""
import json
import struct

import torch
import torch.nn.functional as F
from torch import nn


# Reference 1 (shared/seeds/000_c7333986dafb0094.txt), the model copied as written.
class Net(nn.Module):
    """
    使用sequential构建网络，Sequential()函数的功能是将网络的层组合到一起
    """

    def __init__(self, in_dim, n_hidden_1, n_hidden_2, out_dim):
        super(Net, self).__init__()
        self.layer1 = nn.Sequential(
            nn.Linear(in_dim, n_hidden_1), nn.BatchNorm1d(n_hidden_1))
        self.layer2 = nn.Sequential(
            nn.Linear(n_hidden_1, n_hidden_2), nn.BatchNorm1d(n_hidden_2))
        self.layer3 = nn.Sequential(nn.Linear(n_hidden_2, out_dim))

    def forward(self, x):
        x = F.relu(self.layer1(x))
        x = F.relu(self.layer2(x))
        x = self.layer3(x)
        return x


# torch dtype -> (safetensors dtype, numpy little-endian dtype)
SAFETENSORS_DTYPES = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"),
                      torch.int64: ("I64", "<i8")}


def write_safetensors(path, tensors, metadata=None):
    """An 8-byte little-endian header length, the JSON header (metadata first when given),
    then each tensor's little-endian row-major bytes, back to back in `tensors`' order. The
    header is padded with spaces to a multiple of 8 bytes, as the reference implementation
    does."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        dtype, np_dtype = SAFETENSORS_DTYPES[t.dtype]
        data = t.detach().contiguous().numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
