#!/usr/bin/env python3
"""How hard a cached P test set is: the share of digits that keep under a fifth (and under
30%) of their ink, and the share of draws that squash the digit by more than 2x and 2.9x in
some direction. Reads the cache file stn writes (data/cache/p-test-seed1-v2.safetensors;
version 1, data/cache/p-test-seed1.safetensors, moved the landing corners) and the MNIST test
images it was made from.

    /usr/bin/python3 scripts/p_statistics.py data/cache/p-test-seed1-v2.safetensors data/mnist

Ink: pixels above 0.5, counted on the distorted digit and on the original. Squash: the
smallest singular value of the Jacobian of the map from the source digit to the canvas, at
the digit's centre (the scale draw included), below 1/2 or 1/2.9. The last line is JSON.
"""
import gzip
import json
import os
import struct
import sys

import numpy as np

UNITS = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], dtype=np.float64)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        assert info["dtype"] == "F32", info
        tensors[name] = np.frombuffer(data[8 + size + begin : 8 + size + end], dtype="<f4").reshape(info["shape"])
    return tensors, metadata


def read_idx_images(directory):
    for name in ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"):
        for suffix, opener in (("", open), (".gz", gzip.open)):
            path = os.path.join(directory, name + suffix)
            if os.path.exists(path):
                with opener(path, "rb") as f:
                    data = f.read()
                magic, count, rows, columns = struct.unpack(">IIII", data[:16])
                assert magic == 2051, path
                return np.frombuffer(data[16:], dtype=np.uint8).reshape(count, rows, columns) / 255.0
    sys.exit(f"no t10k-images file in {directory}")


def homography(sources, targets):
    """H (h33 = 1) with H(sources[k]) = targets[k], as stn's 8x8 system."""
    system, right = [], []
    for (x, y), (u, v) in zip(sources, targets):
        system.append([x, y, 1, 0, 0, 0, -x * u, -y * u])
        right.append(u)
        system.append([0, 0, 0, x, y, 1, -x * v, -y * v])
        right.append(v)
    return np.linalg.solve(np.array(system), np.array(right))


def smallest_magnification(h):
    """Of H^-1 (source -> canvas) at the source centre, H being canvas -> source."""
    a, b, c, d, e, f, g, k = h
    x, y = np.linalg.solve([[a, b], [d, e]], [-c, -f])
    w = g * x + k * y + 1.0
    jacobian = np.array([[a, b], [d, e]]) / w
    return 1.0 / np.linalg.svd(jacobian, compute_uv=False).max()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    tensors, metadata = read_safetensors(sys.argv[1])
    assert metadata.get("kind") == "p", metadata
    version = int(metadata["format_version"])
    images = tensors["images"][:, 0]
    parameters = tensors["parameters"].astype(np.float64)
    originals = read_idx_images(sys.argv[2])[: len(images)]

    ink_before = (originals > 0.5).sum(axis=(1, 2))
    ink_after = (images > 0.5).sum(axis=(1, 2))
    kept = ink_after / np.maximum(ink_before, 1)

    smallest = []
    for row in parameters:
        scale, noise = row[0], row[1:].reshape(4, 2) / 14.0
        if version >= 2:  # the canvas corners read from corner / scale + noise
            h = homography(UNITS, UNITS / scale + noise)
        else:  # the digit's corners land on scale * corner + noise
            h = homography(scale * UNITS + noise, UNITS)
        smallest.append(smallest_magnification(h))
    smallest = np.array(smallest)

    result = {
        "file": os.path.basename(sys.argv[1]),
        "format_version": version,
        "digits": int(len(images)),
        "ink_under_20_percent": float((kept < 0.2).mean() * 100),
        "ink_under_30_percent": float((kept < 0.3).mean() * 100),
        "squashed_over_2x": float((smallest < 1 / 2.0).mean() * 100),
        "squashed_over_2.9x": float((smallest < 1 / 2.9).mean() * 100),
    }
    print(
        f"{result['file']} (version {version}, {result['digits']} digits): "
        f"{result['ink_under_20_percent']:.2f}% keep under a fifth of their ink, "
        f"{result['ink_under_30_percent']:.2f}% under 30%; squashed more than 2x in some direction: "
        f"{result['squashed_over_2x']:.2f}%, more than 2.9x: {result['squashed_over_2.9x']:.2f}%"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
