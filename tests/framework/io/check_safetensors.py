#!/usr/bin/python3
"""Reads a safetensors file with NumPy alone and prints each tensor's name, shape and sum.

An independent reader for checkpoints written by stn::save_safetensors (no safetensors
package is needed):  /usr/bin/python3 check_safetensors.py FILE
Exits non-zero with a message if the file breaks the format.
"""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as file:
        data = file.read()
    if len(data) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > len(data) - 8:
        raise ValueError(f"{path}: header length {header_length} exceeds the file")

    def refuse_duplicates(pairs):
        keys = [key for key, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError(f"{path}: duplicate keys in {keys}")
        return dict(pairs)

    header = json.loads(data[8 : 8 + header_length], object_pairs_hook=refuse_duplicates)
    metadata = header.pop("__metadata__", None) or {}
    body = data[8 + header_length :]

    tensors = []
    expected_begin = 0
    for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: {name} has dtype {entry['dtype']}, expected F32")
        begin, end = entry["data_offsets"]
        if begin != expected_begin or end > len(body):
            raise ValueError(
                f"{path}: {name} has data_offsets {[begin, end]}, expected {expected_begin} first"
            )
        shape = tuple(entry["shape"])
        values = np.frombuffer(body, dtype="<f4", count=(end - begin) // 4, offset=begin)
        tensors.append((name, values.reshape(shape)))
        expected_begin = end
    if expected_begin != len(body):
        raise ValueError(f"{path}: {len(body) - expected_begin} trailing bytes belong to no tensor")
    return tensors, metadata


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} FILE")
    try:
        tensors, metadata = read_safetensors(sys.argv[1])
    except (ValueError, KeyError, TypeError) as error:
        sys.exit(f"invalid: {error}")
    for key, value in sorted(metadata.items()):
        print(f"metadata {key} = {value}")
    for name, values in tensors:
        flat = values.reshape(-1).astype(np.float64)
        print(f"{name} shape={list(values.shape)} sum={flat.sum():.9g} "
              f"weighted={(flat * np.arange(1, flat.size + 1)).sum():.9g}")


if __name__ == "__main__":
    main()
