#!/usr/bin/python3
"""Writes the second-order golden files, tests/data/double_backward_*.json.

Run with Debian's PyTorch 1.13 (python3-torch): /usr/bin/python3 tests/golden/make_double_backward_golden.py
The files are committed; the C++ test (tests/framework/double_backward_golden_test.cpp)
needs no Python.

Every case is one op of the engine with fixed attributes, its inputs, and a fixed random
output weight W, which make the scalar

    L = sum(W * y)         (outer "identity")   or   L = sum(W * y * y)   (outer "square"),
    y = op(inputs).

The square is used for ops whose Hessian vanishes or has no diagonal blocks (linear,
bilinear and piecewise-linear ops: shape ops, reductions, relu, pooling, matmul, conv, the
linear grids), so that their backward's own backward is exercised by a gradient that
depends on the input. Stored per case: L, the first-order gradients g_i = dL/dx_i of every
differentiable input, one random direction v_i per differentiable input, and the
Hessian-vector products

    hvp_j = d/dx_j ( sum_i <g_i, v_i> )     (torch.autograd.grad twice, create_graph=True,
                                              so the cross terms d2L/dx_i dx_j are included).

Tiny cases (at most 8 differentiable elements) also store the full second derivative as
blocks hessian[i][j] = d2L / dx_i dx_j, shape [numel_i, numel_j].

All arithmetic is float64; inputs, W and v are float32 values (the engine is float32), so
the engine and the reference see the same numbers. Inputs stay away from kinks: relu
inputs at least 0.1 from 0, max-pool inputs a shuffled ramp (no ties), sampling points at
least 0.1 pixel from integer coordinates and from the border clamp, log / sqrt / pow / div
arguments in [0.5, 2].

grid_sample: PyTorch 1.13 has no double backward for grid_sampler_2d (neither for the input
nor for the grid), so the reference is a bilinear sampler written here in plain
differentiable ops (floor, gathers of the four corners, the four weights, zeros padding by
masking, border padding by clamping the coordinates). Its forward and first-order
gradients are asserted equal to F.grid_sample's to 1e-10 in float64. The grid generators
PyTorch lacks (attention, projective, thin plate spline) are written in plain ops over
PyTorch's float32 target coordinates, as in make_spatial_golden.py; the affine one is
asserted equal to F.affine_grid.

Checks the script asserts for every case: the autograd HVP equals a central finite
difference, in float64, of first-order gradients along v (for grid_sample, of
F.grid_sample's own native first-order backward, so the sampler oracle is checked against
PyTorch's kernel), to 1e-6 relative; full Hessians are symmetric; d2/dx2 x^3 at 2 is 12;
case names are unique identifiers.

Tensors are {"shape": [...], "data": [...]}, row-major, data the shortest decimal that
reads back as the same float32.
"""

import json
import math
import os
import re
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
SEED = 20261201
HESSIAN_LIMIT = 8  # store the full Hessian when the differentiable inputs have this few elements


def encode(tensor):
    array = tensor.detach().cpu().numpy() if torch.is_tensor(tensor) else np.asarray(tensor)
    array = array.astype(np.float32)
    assert np.all(np.isfinite(array)), "non-finite golden value"
    return {"shape": list(array.shape), "data": [float(repr(v)) for v in array.reshape(-1)]}


class Random:
    """Float32-representable random tensors (returned as float64), seeded per case."""

    def __init__(self, name):
        self.generator = torch.Generator().manual_seed(SEED + zlib.crc32(name.encode()))

    def uniform(self, shape, low=-1.0, high=1.0):
        t = torch.rand(tuple(shape), generator=self.generator, dtype=torch.float32)
        return (t * (high - low) + low).double()

    def normal(self, shape):
        return torch.randn(tuple(shape), generator=self.generator, dtype=torch.float32).double()

    def away_from_zero(self, shape, margin=0.1, high=1.5):
        magnitude = self.uniform(shape, margin, high)
        sign = torch.where(self.uniform(shape) < 0, -1.0, 1.0)
        return (magnitude * sign).float().double()

    def ramp(self, shape):
        count = int(np.prod(shape))
        ramp = torch.arange(count, dtype=torch.float32) * (2.0 / count) - 1.0
        order = torch.randperm(count, generator=self.generator)
        return ramp[order].reshape(shape).double()


# ---------------------------------------------------------------------------------------
# The grid generators and the sampler in plain differentiable ops.


def base_coordinates(height, width, align_corners):
    """PyTorch's float32 target coordinates (the engine reproduces them), as float64."""
    identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float32)
    base = F.affine_grid(identity, [1, 1, height, width], align_corners=align_corners)
    base = base.reshape(height, width, 2).double()
    return base[..., 0], base[..., 1]


def affine_grid(theta, height, width, align_corners):
    x, y = base_coordinates(height, width, align_corners)
    t = theta[:, :, :, None, None]  # (N, 2, 3, 1, 1)
    grid = t[:, :, 0] * x + t[:, :, 1] * y + t[:, :, 2]  # (N, 2, H', W')
    return grid.permute(0, 2, 3, 1)


def attention_grid(theta, height, width, align_corners):
    x, y = base_coordinates(height, width, align_corners)
    s, tx, ty = (theta[:, k, None, None] for k in range(3))
    return torch.stack([s * x + tx, s * y + ty], dim=-1)


def projective_grid(theta, height, width, align_corners):
    x, y = base_coordinates(height, width, align_corners)
    h = [theta[:, k, None, None] for k in range(8)]
    w = h[6] * x + h[7] * y + 1.0
    return torch.stack([(h[0] * x + h[1] * y + h[2]) / w, (h[3] * x + h[4] * y + h[5]) / w],
                       dim=-1)


def thin_plate_kernel(squared_distance):
    safe = np.where(squared_distance > 0, squared_distance, 1.0)
    return np.where(squared_distance > 0, squared_distance * np.log(safe), 0.0)


def tps_control_points(count):
    side = math.isqrt(count)
    line = np.array([-1.0 + 2.0 * j / (side - 1) for j in range(side)], dtype=np.float32)
    return np.array([[line[j], line[i]] for i in range(side) for j in range(side)],
                    dtype=np.float64)


def tps_matrix(count, height, width, align_corners):
    """The (H'W', K) matrix M with grid[n] = M theta[n] (the engine's definition)."""
    control = tps_control_points(count)
    differences = control[:, None, :] - control[None, :, :]
    system = np.zeros((count + 3, count + 3))
    system[:count, :count] = thin_plate_kernel((differences ** 2).sum(-1))
    affine = np.concatenate([np.ones((count, 1)), control], axis=1)
    system[:count, count:] = affine
    system[count:, :count] = affine.T
    inverse = np.linalg.inv(system)[:, :count]  # (K+3, K)
    xs, ys = base_coordinates(height, width, align_corners)
    targets = np.stack([xs.reshape(-1).numpy(), ys.reshape(-1).numpy()], axis=1)
    distances = ((targets[:, None, :] - control[None, :, :]) ** 2).sum(-1)
    basis = np.concatenate([thin_plate_kernel(distances), np.ones((len(targets), 1)), targets], 1)
    return torch.from_numpy(basis @ inverse)


def tps_grid(theta, height, width, align_corners):
    matrix = tps_matrix(theta.shape[1], height, width, align_corners)
    return torch.matmul(matrix, theta).reshape(theta.shape[0], height, width, 2)


GRIDS = {"affine": affine_grid, "attention": attention_grid, "projective": projective_grid,
         "tps": tps_grid}


def pixel_coordinates(grid, height, width, align_corners):
    x, y = grid[..., 0], grid[..., 1]
    if align_corners:
        return (x + 1) / 2 * (width - 1), (y + 1) / 2 * (height - 1)
    return ((x + 1) * width - 1) / 2, ((y + 1) * height - 1) / 2


def plain_grid_sample(input, grid, padding, align_corners):
    """Bilinear grid_sample (PyTorch's definition) from gathers and the four weights."""
    n, c, height, width = input.shape
    ix, iy = pixel_coordinates(grid, height, width, align_corners)
    if padding == "border":
        ix = ix.clamp(0, width - 1)
        iy = iy.clamp(0, height - 1)
    x0, y0 = torch.floor(ix).detach(), torch.floor(iy).detach()
    flat = input.reshape(n, c, height * width)
    output = 0
    for xc, wx in ((x0, x0 + 1 - ix), (x0 + 1, ix - x0)):
        for yc, wy in ((y0, y0 + 1 - iy), (y0 + 1, iy - y0)):
            inside = (xc >= 0) & (xc <= width - 1) & (yc >= 0) & (yc <= height - 1)
            index = (yc.clamp(0, height - 1) * width + xc.clamp(0, width - 1)).long()
            index = index.reshape(n, 1, -1).expand(n, c, -1)
            corner = torch.gather(flat, 2, index).reshape(n, c, *ix.shape[1:])
            output = output + corner * (wx * wy * inside)[:, None]
    return output


def native_grid_sample(input, grid, padding, align_corners):
    return F.grid_sample(input, grid, mode="bilinear", padding_mode=padding,
                         align_corners=align_corners)


def check_sampling_points(grid, height, width, padding, align_corners, margin=0.1):
    """True when every sampling point is at least `margin` pixels from a kink: the integer
    coordinates, which include the border clamp's boundaries 0 and size - 1 and the edges of
    the zeros padding's support, -1 and size."""
    ix, iy = pixel_coordinates(grid.detach(), height, width, align_corners)
    for coordinate, size in ((ix, width), (iy, height)):
        fraction = coordinate - torch.floor(coordinate)
        if torch.any((fraction < margin) | (fraction > 1 - margin)):
            return False
    return True


# ---------------------------------------------------------------------------------------
# The ops, as the engine defines them.


def reduce(function, x, axes, keepdim):
    dims = tuple(axes) if axes else tuple(range(x.dim()))
    return function(x, dim=dims, keepdim=keepdim)


def slice_op(x, axis, start, end):
    size = x.shape[axis]
    start = start + size if start < 0 else start
    end = end + size if end < 0 else end
    end = min(end, size)
    return x.narrow(axis, start, end - start)


def run_op(op, a, xs, labels=None):
    """y = op(xs) for the engine op `op` with attributes `a`."""
    binary = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}
    unary = {"exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "tanh": torch.tanh,
             "sigmoid": torch.sigmoid, "relu": torch.relu, "neg": torch.neg}
    if op in binary:
        return binary[op](xs[0], xs[1])
    if op in unary:
        return unary[op](xs[0])
    s = a.get("scalar")
    scalar_ops = {"add_scalar": lambda x: x + s, "sub_scalar": lambda x: x - s,
                  "scalar_sub": lambda x: s - x, "mul_scalar": lambda x: x * s,
                  "div_scalar": lambda x: x / s, "scalar_div": lambda x: s / x}
    if op in scalar_ops:
        return scalar_ops[op](xs[0])
    if op == "mul_same":
        return xs[0] * xs[0]
    if op == "pow":
        return torch.pow(xs[0], a["exponent"])
    if op == "sum":
        return reduce(torch.sum, xs[0], a["axes"], a["keepdim"])
    if op == "mean":
        return reduce(torch.mean, xs[0], a["axes"], a["keepdim"])
    if op == "reshape":
        return xs[0].reshape(a["shape"])
    if op == "flatten":
        return torch.flatten(xs[0], a["start_axis"])
    if op == "permute":
        return xs[0].permute(a["order"])
    if op == "transpose":
        return xs[0].transpose(a["axis0"], a["axis1"])
    if op == "concat":
        return torch.cat(xs, dim=a["axis"])
    if op == "slice":
        return slice_op(xs[0], a["axis"], a["start"], a["end"])
    if op == "matmul":
        return torch.matmul(xs[0], xs[1])
    if op == "linear":
        return F.linear(xs[0], xs[1], xs[2] if len(xs) > 2 else None)
    if op == "softmax":
        return torch.softmax(xs[0], dim=a["axis"])
    if op == "log_softmax":
        return torch.log_softmax(xs[0], dim=a["axis"])
    if op == "cross_entropy":
        return F.cross_entropy(xs[0], torch.tensor(labels, dtype=torch.long))
    if op == "mse_loss":
        return F.mse_loss(xs[0], xs[1])
    if op == "conv2d":
        return F.conv2d(xs[0], xs[1], xs[2] if len(xs) > 2 else None, stride=a["stride"],
                        padding=a["padding"], dilation=a["dilation"])
    if op in ("max_pool2d", "avg_pool2d"):
        stride = a["stride"] if a["stride"] > 0 else a["kernel"]
        pool = F.max_pool2d if op == "max_pool2d" else F.avg_pool2d
        return pool(xs[0], a["kernel"], stride, a["padding"])
    if op.endswith("_grid"):
        return GRIDS[op[:-5]](xs[0], a["height"], a["width"], a["align_corners"])
    if op == "grid_sample":
        return plain_grid_sample(xs[0], sampling_grid(a, xs[1]), a["padding"],
                                 a["align_corners"])
    raise ValueError(f"unknown op {op}")


def sampling_grid(a, second_input):
    """grid_sample's grid: the input itself, or a generator applied to theta."""
    generator = a.get("grid_generator")
    if generator is None:
        return second_input
    return GRIDS[generator](second_input, a["height"], a["width"], a["align_corners"])


# ---------------------------------------------------------------------------------------
# Derivatives.


def loss_of(case, xs, op_runner=run_op):
    y = op_runner(case["op"], case["attributes"], xs, case.get("labels"))
    weighted = y * y if case["outer"] == "square" else y
    return (case["W"] * weighted).sum()


def first_order(case, xs, create_graph, op_runner=run_op):
    leaves = [x.detach().clone().requires_grad_(r) for x, r in zip(xs, case["requires_grad"])]
    loss = loss_of(case, leaves, op_runner)
    wrt = [x for x in leaves if x.requires_grad]
    grads = torch.autograd.grad(loss, wrt, create_graph=create_graph, allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(wrt, grads)]
    return loss, leaves, wrt, grads


def hvp(case, xs, directions):
    _, _, wrt, grads = first_order(case, xs, create_graph=True)
    inner = sum((g * v).sum() for g, v in zip(grads, directions))
    if not torch.is_tensor(inner) or not inner.requires_grad:
        return [torch.zeros_like(x) for x in wrt]  # the gradients do not depend on the inputs
    result = torch.autograd.grad(inner, wrt, allow_unused=True)
    return [torch.zeros_like(x) if h is None else h for x, h in zip(wrt, result)]


def native_runner(op, a, xs, labels):
    if op == "grid_sample":
        return native_grid_sample(xs[0], sampling_grid(a, xs[1]), a["padding"],
                                  a["align_corners"])
    return run_op(op, a, xs, labels)


def finite_difference_hvp(case, xs, directions, step=1e-6):
    """Central differences of first-order gradients along the directions (float64)."""
    def shifted(sign):
        moved, k = [], 0
        for x, r in zip(xs, case["requires_grad"]):
            if r:
                moved.append(x + sign * step * directions[k])
                k += 1
            else:
                moved.append(x)
        return first_order(case, moved, create_graph=False, op_runner=native_runner)[3]
    plus, minus = shifted(1.0), shifted(-1.0)
    return [(p - m) / (2 * step) for p, m in zip(plus, minus)]


def assert_close(actual, expected, rtol, atol, what):
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    error = float((actual - expected).abs().max()) if expected.numel() else 0.0
    assert error <= rtol * scale + atol, f"{what}: error {error:.3g}, scale {scale:.3g}"


# ---------------------------------------------------------------------------------------
# Cases.


def make_case(name, op, inputs, attributes=None, outer="identity", labels=None,
              requires_grad=None, random=None, output_weight=None):
    """inputs: list of (input name, float64 tensor of float32 values)."""
    assert re.fullmatch(r"[A-Za-z0-9_]+", name) and "__" not in name, name
    random = random or Random(name)
    xs = [t for _, t in inputs]
    for x in xs:
        assert torch.equal(x, x.float().double()), f"{name}: input not float32-representable"
    requires_grad = requires_grad or [True] * len(xs)
    case = {"name": name, "op": op, "attributes": attributes or {}, "outer": outer,
            "requires_grad": requires_grad}
    if labels is not None:
        case["labels"] = labels
    y = run_op(op, case["attributes"], xs, labels)
    case["W"] = random.normal(y.shape) if output_weight is None else output_weight
    directions = [random.normal(x.shape) for x, r in zip(xs, requires_grad) if r]

    loss, _, wrt, grads = first_order(case, xs, create_graph=False)
    hvps = hvp(case, xs, directions)

    # The reference HVP against finite differences of (native) first-order gradients.
    for k, (h, fd) in enumerate(zip(hvps, finite_difference_hvp(case, xs, directions))):
        assert_close(h, fd, 1e-6, 1e-7, f"{name}: hvp {k} vs finite differences")

    record = {"name": name, "op": op, "attributes": case["attributes"], "outer": outer}
    if labels is not None:
        record["labels"] = labels
    record["inputs"] = [{"name": n, "requires_grad": r, "value": encode(t)}
                        for (n, t), r in zip(inputs, requires_grad)]
    record["output_weight"] = encode(case["W"])
    record["loss"] = float(np.float32(loss.item()))
    record["grads"] = [encode(g) for g in grads]
    record["directions"] = [encode(v) for v in directions]
    record["hvp"] = [encode(h) for h in hvps]
    # The C++ test's absolute floor (1e-6) must not swallow a reference: every stored
    # derivative is exactly zero (structurally: no dependence) or far above it.
    for what, tensors in (("grad", grads), ("hvp", hvps)):
        for k, t in enumerate(tensors):
            largest = float(t.abs().max())
            assert largest == 0.0 or largest >= 1e-3, f"{name}: {what} {k} max {largest:.3g}"

    sizes = [x.numel() for x in wrt]
    if sum(sizes) <= HESSIAN_LIMIT:
        blocks = [[torch.zeros(si, sj) for sj in sizes] for si in sizes]
        for j, size in enumerate(sizes):
            for e in range(size):
                one_hot = [torch.zeros_like(x) for x in wrt]
                one_hot[j].view(-1)[e] = 1.0
                column = hvp(case, xs, one_hot)  # d/dx_i (d L / d x_j[e])
                for i in range(len(sizes)):
                    blocks[i][j][:, e] = column[i].reshape(-1)
        for i in range(len(sizes)):
            for j in range(len(sizes)):
                assert_close(blocks[i][j], blocks[j][i].T, 1e-10, 1e-12,
                             f"{name}: Hessian symmetry {i},{j}")
        record["hessian"] = [[encode(b) for b in row] for row in blocks]
    return record


def elementwise_cases():
    cases = []
    add = cases.append
    for op in ("add", "sub", "mul", "div"):
        for suffix, sa, sb in (("same", (2, 3), (2, 3)), ("broadcast_row", (3, 4), (4,)),
                               ("broadcast_both", (2, 1, 3), (4, 1)),
                               ("broadcast_channels", (2, 3, 2, 2), (3, 1, 1))):
            name = f"{op}_{suffix}"
            r = Random(name)
            a = r.uniform(sa, -2.0, 2.0) if op == "div" else r.uniform(sa)
            b = r.uniform(sb, 0.5, 2.0) if op == "div" else r.uniform(sb)
            add(make_case(name, op, [("a", a), ("b", b)], random=r,
                          outer="square" if op in ("add", "sub") else "identity"))
    r = Random("mul_square_outer")
    add(make_case("mul_square_outer", "mul", [("a", r.uniform((3, 2))), ("b", r.uniform((2,)))],
                  outer="square", random=r))
    r = Random("div_scalars")
    add(make_case("div_scalars", "div", [("a", r.uniform((1,), 0.5, 2.0)),
                                         ("b", r.uniform((1,), 0.5, 2.0))], random=r))
    r = Random("mul_scalars")
    add(make_case("mul_scalars", "mul", [("a", r.away_from_zero((1,), 0.3)),
                                         ("b", r.away_from_zero((1,), 0.3))],
                  outer="square", random=r))
    r = Random("mul_same_input")
    add(make_case("mul_same_input", "mul_same", [("x", r.uniform((2, 2)))], random=r))

    for op, scalar in (("add_scalar", 0.75), ("sub_scalar", 1.25), ("scalar_sub", 2.5),
                       ("mul_scalar", -1.5), ("div_scalar", 4.0), ("scalar_div", 3.0)):
        r = Random(op)
        x = r.uniform((2, 2), 0.5, 2.0)
        outer = "identity" if op == "scalar_div" else "square"
        add(make_case(op, op, [("x", x)], {"scalar": scalar}, outer=outer, random=r))

    unary_inputs = {"exp": (-1.5, 1.5), "log": (0.5, 2.0), "sqrt": (0.5, 2.0),
                    "tanh": (-2.0, 2.0), "sigmoid": (-3.0, 3.0), "neg": (-1.0, 1.0)}
    for op, (low, high) in unary_inputs.items():
        r = Random(op)
        add(make_case(op, op, [("x", r.uniform((3, 4), low, high))], random=r,
                      outer="square" if op == "neg" else "identity"))
        r = Random(op + "_tiny")
        add(make_case(op + "_tiny", op, [("x", r.uniform((3,), low, high))], random=r))
    for name, shape in (("relu", (3, 4)), ("relu_tiny", (4,))):
        r = Random(name)
        add(make_case(name, "relu", [("x", r.away_from_zero(shape))], outer="square", random=r))
    for exponent in (2.0, 3.0, 2.5, -1.5, 0.5):
        name = "pow_" + str(exponent).replace("-", "minus_").replace(".", "_")
        r = Random(name)
        add(make_case(name, "pow", [("x", r.uniform((2, 3), 0.5, 2.0))],
                      {"exponent": exponent}, random=r))
    # d2/dx2 x^3 at x = 2 is 12 (the example); W = 1 so L = x^3.
    cube = make_case("pow_cube_at_two", "pow", [("x", torch.tensor([2.0]))], {"exponent": 3.0},
                     output_weight=torch.tensor([1.0]))
    assert cube["hessian"][0][0]["data"] == [12.0] and cube["grads"][0]["data"] == [12.0], cube
    cases.append(cube)
    return cases


def reduction_and_shape_cases():
    cases = []
    add = cases.append
    for op in ("sum", "mean"):
        for axes, keepdim in (([], False), ([], True), ([1], False), ([1], True), ([0, 2], False),
                              ([-1], True), ([-3, -1], True)):
            name = f"{op}_axes_{'_'.join(str(a).replace('-', 'minus') for a in axes) or 'all'}"
            name += "_keepdim" if keepdim else ""
            r = Random(name)
            # Positive inputs: a mean of values of both signs nearly cancels, and so would
            # its derivatives.
            x = r.uniform((2, 3, 4), 0.5, 1.5)
            weight = None
            if op == "mean":
                # Derivatives of a squared mean scale as 1 / count^2: a weight of about the
                # count keeps them well above the test's absolute floor.
                y_shape = run_op(op, {"axes": axes, "keepdim": keepdim}, [x]).shape
                count = x.numel() // max(1, int(np.prod(y_shape)))
                weight = (count * r.normal(y_shape)).float().double()
            add(make_case(name, op, [("x", x)], {"axes": axes, "keepdim": keepdim},
                          outer="square", random=r, output_weight=weight))
    r = Random("sum_tiny")
    add(make_case("sum_tiny", "sum", [("x", r.uniform((2, 2)))], {"axes": [0], "keepdim": False},
                  outer="square", random=r))

    def shape_case(name, op, shape, attributes):
        r = Random(name)
        add(make_case(name, op, [("x", r.uniform(shape))], attributes, outer="square", random=r))

    shape_case("reshape", "reshape", (2, 3, 4), {"shape": [4, -1]})
    shape_case("reshape_to_3d", "reshape", (6, 4), {"shape": [2, 2, 6]})
    shape_case("flatten", "flatten", (2, 3, 2, 2), {"start_axis": 1})
    shape_case("permute", "permute", (2, 3, 4), {"order": [2, 0, 1]})
    shape_case("permute_nchw_to_nhwc", "permute", (2, 3, 2, 2), {"order": [0, 2, 3, 1]})
    shape_case("transpose", "transpose", (2, 3, 4), {"axis0": 0, "axis1": 2})
    shape_case("transpose_negative_axes", "transpose", (3, 4), {"axis0": -1, "axis1": -2})
    shape_case("slice_middle", "slice", (3, 5, 2), {"axis": 1, "start": 1, "end": 4})
    shape_case("slice_negative", "slice", (4, 3), {"axis": 0, "start": -3, "end": -1})
    shape_case("slice_end_clamped", "slice", (2, 6), {"axis": -1, "start": 2, "end": 100})
    for name, shapes, axis in (("concat_axis0", [(2, 3), (1, 3), (3, 3)], 0),
                               ("concat_axis1", [(2, 2, 2), (2, 3, 2)], 1),
                               ("concat_last_axis", [(2, 1), (2, 3)], -1)):
        r = Random(name)
        inputs = [(f"x{k}", r.uniform(s)) for k, s in enumerate(shapes)]
        add(make_case(name, "concat", inputs, {"axis": axis}, outer="square", random=r))
    return cases


def linalg_and_loss_cases():
    cases = []
    add = cases.append
    for name, sa, sb, outer in (("matmul_2d", (3, 4), (4, 2), "identity"),
                                ("matmul_2d_square_outer", (3, 4), (4, 2), "square"),
                                ("matmul_batched", (2, 3, 4), (2, 4, 2), "square"),
                                ("matmul_batched_shared_rhs", (2, 3, 4), (4, 2), "square"),
                                ("matmul_tiny", (1, 2), (2, 1), "square")):
        r = Random(name)
        add(make_case(name, "matmul", [("a", r.uniform(sa)), ("b", r.uniform(sb))], outer=outer,
                      random=r))
    for name, bias, outer in (("linear_bias", True, "identity"),
                              ("linear_bias_square_outer", True, "square"),
                              ("linear_no_bias", False, "square")):
        r = Random(name)
        inputs = [("x", r.uniform((3, 4))), ("weight", r.uniform((2, 4)))]
        if bias:
            inputs.append(("bias", r.uniform((2,))))
        add(make_case(name, "linear", inputs, outer=outer, random=r))

    for op in ("softmax", "log_softmax"):
        for name, shape, axis in ((f"{op}_last_axis", (3, 5), -1), (f"{op}_axis0", (4, 3), 0),
                                  (f"{op}_middle_axis", (2, 3, 2), 1), (f"{op}_tiny", (1, 3), -1)):
            r = Random(name)
            add(make_case(name, op, [("x", r.uniform(shape, -2.0, 2.0))], {"axis": axis},
                          random=r))
    for name, n, c in (("cross_entropy", 4, 5), ("cross_entropy_tiny", 1, 3)):
        r = Random(name)
        logits = r.uniform((n, c), -2.0, 2.0)
        labels = [int(v) for v in torch.randint(0, c, (n,), generator=r.generator)]
        add(make_case(name, "cross_entropy", [("logits", logits)], labels=labels, random=r))
        add(make_case(name + "_square_outer", "cross_entropy", [("logits", logits)],
                      labels=labels, outer="square", random=Random(name + "_square_outer")))
    for name, shape in (("mse_loss", (3, 4)), ("mse_loss_tiny", (2,))):
        r = Random(name)
        add(make_case(name, "mse_loss", [("prediction", r.uniform(shape)),
                                         ("target", r.uniform(shape))], random=r))
        add(make_case(name + "_square_outer", "mse_loss",
                      [("prediction", r.uniform(shape)), ("target", r.uniform(shape))],
                      outer="square", random=r))
    r = Random("mse_loss_constant_target")
    add(make_case("mse_loss_constant_target", "mse_loss",
                  [("prediction", r.uniform((2, 3))), ("target", r.uniform((2, 3)))],
                  requires_grad=[True, False], outer="square", random=r))
    return cases


def conv_pool_cases():
    cases = []
    add = cases.append
    for name, x_shape, w_shape, bias, stride, padding, dilation in (
            ("conv2d_plain", (2, 2, 5, 5), (3, 2, 3, 3), True, 1, 0, 1),
            ("conv2d_stride2", (1, 2, 6, 5), (2, 2, 3, 3), True, 2, 0, 1),
            ("conv2d_padding1", (2, 1, 4, 4), (2, 1, 3, 3), True, 1, 1, 1),
            ("conv2d_stride2_padding1", (1, 3, 5, 6), (2, 3, 3, 2), True, 2, 1, 1),
            ("conv2d_dilation2_no_bias", (1, 2, 6, 6), (2, 2, 2, 2), False, 1, 0, 2),
            ("conv2d_1x1", (2, 3, 3, 3), (2, 3, 1, 1), True, 1, 0, 1)):
        for outer in ("identity", "square"):
            case_name = name + ("_square_outer" if outer == "square" else "")
            r = Random(case_name)
            inputs = [("input", r.uniform(x_shape)), ("weight", r.uniform(w_shape))]
            if bias:
                inputs.append(("bias", r.uniform((w_shape[0],))))
            add(make_case(case_name, "conv2d", inputs,
                          {"stride": stride, "padding": padding, "dilation": dilation},
                          outer=outer, random=r))
    r = Random("conv2d_tiny")
    add(make_case("conv2d_tiny", "conv2d", [("input", r.uniform((1, 1, 2, 2))),
                                            ("weight", r.uniform((1, 1, 2, 1))),
                                            ("bias", r.uniform((1,)))],
                  {"stride": 1, "padding": 0, "dilation": 1}, outer="square", random=r))
    for op in ("max_pool2d", "avg_pool2d"):
        for suffix, shape, kernel, stride, padding in (("2x2", (2, 2, 4, 4), 2, -1, 0),
                                                       ("3x3_stride2", (1, 2, 5, 7), 3, 2, 0),
                                                       ("3x3_stride2_padding1", (2, 1, 5, 5), 3, 2, 1),
                                                       ("2x2_stride1_padding1", (1, 2, 3, 4), 2, 1, 1)):
            name = f"{op}_{suffix}"
            r = Random(name)
            attributes = {"kernel": kernel, "stride": stride, "padding": padding}
            add(make_case(name, op, [("x", r.ramp(shape))], attributes, outer="square", random=r))
        r = Random(op + "_tiny")
        add(make_case(op + "_tiny", op, [("x", r.ramp((1, 1, 2, 2)))],
                      {"kernel": 2, "stride": -1, "padding": 0}, outer="square", random=r,
                      output_weight=torch.full((1, 1, 1, 1), 1.5)))
    return cases


def identity_theta(kind, batch, count=None):
    if kind == "affine":
        return torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).repeat(batch, 1, 1)
    if kind == "attention":
        return torch.tensor([1.0, 0.0, 0.0]).repeat(batch, 1)
    if kind == "projective":
        return torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]).repeat(batch, 1)
    return torch.from_numpy(tps_control_points(count)).repeat(batch, 1, 1)


def random_theta(kind, random, batch, scale, count=None):
    theta = identity_theta(kind, batch, count) + scale * random.normal(
        identity_theta(kind, batch, count).shape)
    if kind == "projective":
        theta[:, 6:] *= 0.5  # w' = h31 x + h32 y + 1 well away from 0
    return theta.float().double()


def grid_cases():
    cases = []
    add = cases.append
    for kind, count in (("affine", None), ("attention", None), ("projective", None), ("tps", 9),
                        ("tps", 16)):
        for height, width, align_corners in ((3, 4, False), (4, 3, True)):
            name = f"{kind}_grid{'_k' + str(count) if count else ''}_{height}x{width}"
            name += "_corners" if align_corners else "_centres"
            for outer in (("identity", "square") if kind == "projective" else ("square",)):
                case_name = name + ("_square_outer" if outer == "square" and kind == "projective"
                                    else "")
                r = Random(case_name)
                theta = random_theta(kind, r, 2, 0.2, count)
                attributes = {"height": height, "width": width, "align_corners": align_corners}
                if kind == "affine":
                    check = F.affine_grid(theta, [2, 1, height, width], align_corners=align_corners)
                    assert_close(affine_grid(theta, height, width, align_corners), check, 0, 1e-6,
                                 f"{case_name}: plain affine grid vs F.affine_grid")
                add(make_case(case_name, f"{kind}_grid", [("theta", theta)], attributes,
                              outer=outer, random=r))
    r = Random("projective_grid_tiny")
    add(make_case("projective_grid_tiny", "projective_grid",
                  [("theta", random_theta("projective", r, 1, 0.2))],
                  {"height": 1, "width": 2, "align_corners": False}, random=r))
    return cases


def random_grid(random, shape, low, high, height, width, padding, align_corners, margin=0.1):
    """Uniform sampling points in [low, high]; coordinates near a kink are redrawn."""
    grid = random.uniform(shape, low, high).float().double()
    for _ in range(1000):
        ix, iy = pixel_coordinates(grid, height, width, align_corners)
        bad = torch.zeros(shape, dtype=torch.bool)
        for axis, coordinate in ((0, ix), (1, iy)):
            fraction = coordinate - torch.floor(coordinate)
            bad[..., axis] = (fraction < margin) | (fraction > 1 - margin)
        if not bad.any():
            assert check_sampling_points(grid, height, width, padding, align_corners, margin)
            return grid
        grid = torch.where(bad, random.uniform(shape, low, high).float().double(), grid)
    raise RuntimeError("no grid away from the kinks")


def check_sampler(input, grid, padding, align_corners, what):
    """The plain sampler equals F.grid_sample: forward and both first-order gradients."""
    u = input.detach().clone().requires_grad_(True)
    g = grid.detach().clone().requires_grad_(True)
    u2 = input.detach().clone().requires_grad_(True)
    g2 = grid.detach().clone().requires_grad_(True)
    ours = plain_grid_sample(u, g, padding, align_corners)
    theirs = native_grid_sample(u2, g2, padding, align_corners)
    assert_close(ours, theirs, 0, 1e-10, what + " forward")
    upstream = torch.randn(ours.shape, generator=torch.Generator().manual_seed(1))
    ours.backward(upstream)
    theirs.backward(upstream)
    assert_close(u.grad, u2.grad, 0, 1e-10, what + " input gradient")
    assert_close(g.grad, g2.grad, 0, 1e-10, what + " grid gradient")


def sampler_cases():
    cases = []
    add = cases.append
    configurations = []
    for padding in ("zeros", "border"):
        for align_corners in (False, True):
            configurations.append((padding, align_corners))
    for padding, align_corners in configurations:
        tag = f"{padding}_{'corners' if align_corners else 'centres'}"
        for suffix, input_shape, grid_shape, low, high in (
                ("inside", (2, 2, 4, 5), (2, 3, 3, 2), -0.9, 0.9),
                ("leaving_image", (1, 2, 5, 4), (1, 4, 3, 2), -1.6, 1.6),
                ("upsample", (1, 1, 3, 3), (1, 5, 4, 2), -1.3, 1.3)):
            name = f"grid_sample_{tag}_{suffix}"
            r = Random(name)
            _, _, height, width = input_shape
            input = r.uniform(input_shape)
            grid = random_grid(r, grid_shape, low, high, height, width, padding, align_corners)
            check_sampler(input, grid, padding, align_corners, name)
            attributes = {"padding": padding, "align_corners": align_corners}
            add(make_case(name, "grid_sample", [("input", input), ("grid", grid)], attributes,
                          random=r))
            if suffix == "leaving_image":
                ix, iy = pixel_coordinates(grid, height, width, align_corners)
                outside = (ix < 0) | (ix > width - 1) | (iy < 0) | (iy > height - 1)
                assert outside.any() and not outside.all(), name
        # Only the grid needs a gradient (a transformer on the input image), and the square
        # outer (the gradient penalty's shape: the sampler's input gradient differentiated).
        name = f"grid_sample_{tag}_grid_only"
        r = Random(name)
        input, grid = r.uniform((1, 2, 4, 4)), random_grid(r, (1, 3, 2, 2), -1.2, 1.2, 4, 4,
                                                           padding, align_corners)
        check_sampler(input, grid, padding, align_corners, name)
        add(make_case(name, "grid_sample", [("input", input), ("grid", grid)],
                      {"padding": padding, "align_corners": align_corners},
                      requires_grad=[False, True], random=r))
        name = f"grid_sample_{tag}_square_outer"
        r = Random(name)
        input, grid = r.uniform((1, 1, 4, 5)), random_grid(r, (1, 2, 3, 2), -1.2, 1.2, 4, 5,
                                                           padding, align_corners)
        check_sampler(input, grid, padding, align_corners, name)
        add(make_case(name, "grid_sample", [("input", input), ("grid", grid)],
                      {"padding": padding, "align_corners": align_corners}, outer="square",
                      random=r))
        # One sampling point on a 2x2 image: the full 6x6 Hessian (d2/dx2 = 0 inside a cell,
        # d2/dx dy not; the input-grid cross terms).
        name = f"grid_sample_{tag}_tiny"
        r = Random(name)
        input = r.uniform((1, 1, 2, 2))
        low, high = (-0.9, 0.9) if padding == "zeros" else (-0.45, 0.45)
        grid = random_grid(r, (1, 1, 1, 2), low, high, 2, 2, padding, align_corners)
        check_sampler(input, grid, padding, align_corners, name)
        add(make_case(name, "grid_sample", [("input", input), ("grid", grid)],
                      {"padding": padding, "align_corners": align_corners}, random=r))

    # The spatial transformer: a generator's grid sampled, differentiated through both.
    for kind, count, padding, align_corners in (("affine", None, "zeros", False),
                                                ("attention", None, "border", True),
                                                ("projective", None, "zeros", True),
                                                ("tps", 9, "border", False)):
        name = f"grid_sample_of_{kind}_grid_{padding}_{'corners' if align_corners else 'centres'}"
        r = Random(name)
        height, width, out_height, out_width = 5, 4, 3, 3
        attributes = {"padding": padding, "align_corners": align_corners,
                      "grid_generator": kind, "height": out_height, "width": out_width}
        for _ in range(1000):
            theta = random_theta(kind, r, 2, 0.25, count)
            grid = GRIDS[kind](theta, out_height, out_width, align_corners)
            # Every point of a generator's grid moves with theta, so the margin is smaller
            # (still far beyond float32 rounding and the finite-difference step).
            if check_sampling_points(grid, height, width, padding, align_corners, margin=0.02):
                break
        else:
            raise RuntimeError(name + ": no theta away from the kinks")
        input = r.uniform((2, 2, height, width))
        check_sampler(input, grid, padding, align_corners, name)
        add(make_case(name, "grid_sample", [("input", input), ("theta", theta)], attributes,
                      random=r))
    return cases


def write(name, cases):
    names = [c["name"] for c in cases]
    content = {"generator": "tests/golden/make_double_backward_golden.py",
               "torch": torch.__version__, "cases": cases}
    path = os.path.normpath(os.path.join(OUT_DIR, name))
    with open(path, "w") as out:
        json.dump(content, out, separators=(",", ":"))
        out.write("\n")
    print(f"{path}: {len(names)} cases, {os.path.getsize(path)} bytes")
    return names


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    elementwise = elementwise_cases()
    cube = next(c for c in elementwise if c["name"] == "pow_cube_at_two")
    names = []
    names += write("double_backward_elementwise.json", elementwise)
    names += write("double_backward_shape.json", reduction_and_shape_cases())
    names += write("double_backward_linalg_loss.json", linalg_and_loss_cases())
    names += write("double_backward_conv_pool.json", conv_pool_cases())
    names += write("double_backward_spatial.json", grid_cases() + sampler_cases())
    assert len(names) == len(set(names)), "duplicate case names"
    print(f"{len(names)} cases; pow_cube_at_two hessian {cube['hessian'][0][0]['data']}")


if __name__ == "__main__":
    main()
