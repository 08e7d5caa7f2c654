#!/usr/bin/python3
"""Writes tests/data/hvp_mlp.json: Hessian-vector products of a small MLP's loss.

Run with Debian's PyTorch 1.13 (python3-torch): /usr/bin/python3 tests/golden/make_hvp_golden.py
The file is committed; tests/framework/higher_order_uses_test.cpp needs no Python.

The model is linear -> tanh -> linear on a batch of 4 inputs of 3 features, 5 hidden units and
3 outputs, with either loss:

    cross_entropy:  L = mean_n -log softmax(z_n)[label_n]
    mse:            L = mean((z - target)^2)
    z = tanh(x W1^T + b1) W2^T + b2

Stored per case: the inputs (x, labels or target), the parameters (W1, b1, W2, b2), one random
direction v per parameter, L, the gradients dL/dp and the Hessian-vector products

    hvp_p = d/dp ( sum_q <dL/dq, v_q> )    (torch.autograd.grad twice, create_graph=True),

cross terms between the parameters included. Arithmetic is float64; every input, parameter
and direction is a float32 value (the engine is float32), so both sides see the same
numbers. The script asserts that the autograd HVP equals a central finite difference (in
float64) of first-order gradients along v to 1e-7 relative.

Tensors are {"shape": [...], "data": [...]}, row-major, data the shortest decimal that reads
back as the same float32 (outputs are rounded to float32 too).
"""

import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "hvp_mlp.json")
SEED = 20261201
PARAMETERS = ["W1", "b1", "W2", "b2"]


def encode(tensor):
    array = tensor.detach().cpu().numpy().astype(np.float32)
    assert np.all(np.isfinite(array)), "non-finite golden value"
    return {"shape": list(array.shape), "data": [float(repr(v)) for v in array.reshape(-1)]}


def float32_uniform(generator, shape, low=-1.0, high=1.0):
    t = torch.rand(shape, generator=generator, dtype=torch.float32) * (high - low) + low
    return t.double()


def loss_of(kind, x, target, params):
    w1, b1, w2, b2 = params
    z = torch.tanh(x @ w1.T + b1) @ w2.T + b2
    if kind == "cross_entropy":
        return F.cross_entropy(z, target)
    return F.mse_loss(z, target)


def make_case(kind, generator):
    x = float32_uniform(generator, (4, 3), -2.0, 2.0)
    if kind == "cross_entropy":
        target = torch.tensor([0, 2, 1, 2])
    else:
        target = float32_uniform(generator, (4, 3))
    params = [float32_uniform(generator, s) for s in [(5, 3), (5,), (3, 5), (3,)]]
    vectors = [float32_uniform(generator, p.shape) for p in params]
    for p in params:
        p.requires_grad_(True)

    loss = loss_of(kind, x, target, params)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    directional = sum((g * v).sum() for g, v in zip(grads, vectors))
    hvps = torch.autograd.grad(directional, params)

    # Independent check: central difference of the gradient along v, in float64.
    h = 1e-6
    def gradient_at(step):
        moved = [(p + step * v).detach().requires_grad_(True) for p, v in zip(params, vectors)]
        return torch.autograd.grad(loss_of(kind, x, target, moved), moved)
    plus, minus = gradient_at(h), gradient_at(-h)
    for name, hv, gp, gm in zip(PARAMETERS, hvps, plus, minus):
        numeric = (gp - gm) / (2 * h)
        scale = max(1.0, hv.abs().max().item())
        assert (hv - numeric).abs().max().item() < 1e-7 * scale, f"{kind} {name}: HVP vs finite difference"

    case = {"loss_kind": kind, "x": encode(x), "loss": float(np.float32(loss.item()))}
    if kind == "cross_entropy":
        case["labels"] = [int(l) for l in target]
    else:
        case["target"] = encode(target)
    for name, p, v, g, hv in zip(PARAMETERS, params, vectors, grads, hvps):
        case[name] = encode(p)
        case["v_" + name] = encode(v)
        case["grad_" + name] = encode(g)
        case["hvp_" + name] = encode(hv)
    return case


def main():
    generator = torch.Generator().manual_seed(SEED)
    cases = [make_case(kind, generator) for kind in ["cross_entropy", "mse"]]
    with open(OUT, "w") as f:
        json.dump({"generator": "tests/golden/make_hvp_golden.py", "torch": torch.__version__,
                   "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT)}: {len(cases)} cases")


if __name__ == "__main__":
    main()
