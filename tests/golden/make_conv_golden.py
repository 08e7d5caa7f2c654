#!/usr/bin/python3
"""Writes tests/data/conv_golden.json: conv2d, max_pool2d and avg_pool2d from PyTorch.

Run with Debian's PyTorch 1.13 (python3-torch): /usr/bin/python3 tests/golden/make_conv_golden.py
The file is committed; the C++ test (ConvGolden in tests/framework/conv_test.cpp) needs no
Python.

Each case holds its inputs, options, output, a random upstream gradient and the gradients
PyTorch's backward gives for every input. The cases cover stride 2, padding 1, dilation 2,
non-square images and kernels, several channels and images, with and without bias.
Max-pool inputs are a shuffled ramp (all distinct, well separated), so the argmax is the
same in float32 everywhere; ties are tested by hand in C++.

Tensors are {"shape": [...], "data": [...]}, row-major, data the shortest decimal that
reads back as the same float32.
"""

import json
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "conv_golden.json")


def encode(tensor):
    array = tensor.detach().cpu().numpy().astype(np.float32)
    return {"shape": list(array.shape), "data": [float(repr(v)) for v in array.reshape(-1)]}


def uniform(generator, *shape):
    return torch.rand(*shape, generator=generator, dtype=torch.float32) * 2 - 1


def conv_case(name, generator, input_shape, weight_shape, bias, stride, padding, dilation):
    x = uniform(generator, *input_shape).requires_grad_()
    w = uniform(generator, *weight_shape).requires_grad_()
    b = uniform(generator, weight_shape[0]).requires_grad_() if bias else None
    y = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)
    upstream = uniform(generator, *y.shape)
    y.backward(upstream)
    case = {"name": name, "op": "conv2d", "stride": stride, "padding": padding,
            "dilation": dilation, "input": encode(x), "weight": encode(w),
            "output": encode(y), "grad_output": encode(upstream),
            "grad_input": encode(x.grad), "grad_weight": encode(w.grad)}
    if bias:
        case["bias"] = encode(b)
        case["grad_bias"] = encode(b.grad)
    return case


def pool_case(name, generator, op, input_shape, kernel, stride, padding):
    count = int(np.prod(input_shape))
    ramp = torch.arange(count, dtype=torch.float32) * (2.0 / count) - 1.0
    x = ramp[torch.randperm(count, generator=generator)].reshape(input_shape).requires_grad_()
    pool = F.max_pool2d if op == "max_pool2d" else F.avg_pool2d
    y = pool(x, kernel, stride, padding)  # PyTorch's defaults: ceil_mode / count_include_pad
    upstream = uniform(generator, *y.shape)
    y.backward(upstream)
    return {"name": name, "op": op, "kernel": kernel, "stride": stride, "padding": padding,
            "input": encode(x), "output": encode(y), "grad_output": encode(upstream),
            "grad_input": encode(x.grad)}


def main():
    generator = torch.Generator().manual_seed(20240611)
    cases = [
        conv_case("conv_stride2_pad1_bias", generator, (2, 3, 7, 6), (4, 3, 3, 3), True, 2, 1, 1),
        conv_case("conv_dilation2_pad2_nonsquare_kernel", generator, (1, 2, 9, 8), (3, 2, 3, 2),
                  False, 1, 2, 2),
        conv_case("conv_stride3_dilation2_bias", generator, (2, 2, 11, 10), (2, 2, 2, 3), True, 3,
                  1, 2),
        pool_case("max_pool_3x3_stride2_pad1", generator, "max_pool2d", (2, 3, 7, 9), 3, 2, 1),
        pool_case("max_pool_2x2", generator, "max_pool2d", (1, 2, 6, 5), 2, 2, 0),
        pool_case("avg_pool_3x3_stride2_pad1", generator, "avg_pool2d", (2, 2, 7, 5), 3, 2, 1),
        pool_case("avg_pool_2x2_stride1_pad1", generator, "avg_pool2d", (1, 3, 5, 6), 2, 1, 1),
    ]
    document = {"generator": "tests/golden/make_conv_golden.py", "torch": torch.__version__,
                "cases": cases}
    with open(OUT_PATH, "w") as out:
        json.dump(document, out, separators=(",", ":"))
        out.write("\n")


if __name__ == "__main__":
    main()
