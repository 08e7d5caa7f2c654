#!/usr/bin/env python3
"""Compares two safetensors weight files tensor by tensor.

    compare_weights.py A B --rtol 1e-4     # exit 1 unless max |a-b| / max |b| <= rtol for every tensor
    compare_weights.py A B --bitwise       # exit 1 unless every tensor is bit for bit the same

Prints the worst tensor's relative difference. Reads the format directly (an 8-byte header
length, a JSON header, the raw little-endian data), so it needs only NumPy.
"""
import argparse
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    body = data[8 + length :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(body[begin:end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
    return tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rtol", type=float, default=None)
    parser.add_argument("--bitwise", action="store_true")
    args = parser.parse_args()
    a, b = read(args.a), read(args.b)
    if sorted(a) != sorted(b):
        print(f"different tensors: {sorted(set(a) ^ set(b))}")
        return 1
    worst_name, worst = None, -1.0
    identical = True
    for name in sorted(a):
        if a[name].shape != b[name].shape:
            print(f"{name}: shape {a[name].shape} vs {b[name].shape}")
            return 1
        identical &= a[name].tobytes() == b[name].tobytes()
        scale = float(np.max(np.abs(b[name].astype(np.float64)))) or 1.0
        relative = float(np.max(np.abs(a[name].astype(np.float64) - b[name]))) / scale
        if relative > worst:
            worst_name, worst = name, relative
    print(f"{len(a)} tensors; worst relative difference {worst:.3g} ({worst_name}); bitwise identical: {identical}")
    if args.bitwise and not identical:
        return 1
    if args.rtol is not None and worst > args.rtol:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
