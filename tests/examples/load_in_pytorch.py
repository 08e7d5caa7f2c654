"""Loads the weights tests/examples/weights.cpp saved into the same network in PyTorch."""
import json
import struct
import sys

import torch


def read_safetensors(path):
    """The tensors of a safetensors file (float32, as stn writes them), by name."""
    with open(path, "rb") as file:
        (header_length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(header_length))
        data = bytearray(file.read())
    header.pop("__metadata__", None)
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        values = torch.frombuffer(data, dtype=torch.float32, offset=begin, count=(end - begin) // 4)
        tensors[name] = values.reshape(entry["shape"]).clone()
    return tensors


net = torch.nn.Sequential(
    torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(36, 3)
)
net.load_state_dict(read_safetensors(sys.argv[1] if len(sys.argv) > 1 else "net.safetensors"))  # strict
image = (torch.arange(64, dtype=torch.float32) / 64).reshape(1, 1, 8, 8)
with torch.no_grad():
    print("logits", " ".join(f"{value:.5f}" for value in net(image)[0].tolist()))
