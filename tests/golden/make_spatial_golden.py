#!/usr/bin/python3
"""Writes the spatial transformer's golden files, tests/data/spatial_*.json.

Run with Debian's PyTorch 1.13 (python3-torch): /usr/bin/python3 tests/golden/make_spatial_golden.py
The files are committed; the C++ tests read them and need no Python.

spatial_sampler.json: torch.nn.functional.affine_grid and grid_sample, forward and both
gradients (input, grid, and theta where the grid came from affine_grid), each backward
seeded with a random upstream gradient stored in the case. Covers both padding modes, both
align_corners values, bilinear and nearest, down- and up-sampling, multi-channel, odd, even,
size-1 and non-square sizes, grids that leave the image, samples exactly on pixel centres
and on integer coordinates, and grids with NaN, Inf and huge entries (PyTorch is undefined
there: its outputs are NaN, so tests compare only where the reference is finite; border
padding with a NaN coordinate crashes PyTorch 1.13, so border cases have Inf but no NaN).

spatial_grids.json: the grid generators PyTorch lacks, recomputed here in float64 from
PyTorch's float32 target coordinates: attention (through affine_grid), projective
(x'/w', y'/w') and thin plate spline (the (K+3)x(K+3) system solved with NumPy), each with
a random upstream grid gradient and the resulting theta gradient.

Tensors are {"shape": [...], "data": [...]}, row-major; data entries are numbers (the
shortest decimal that reads back as the same float32) or the strings "nan", "inf", "-inf".
"""

import json
import math
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F

# affine_grid warns about its (documented) size-1 behaviour with align_corners=True, which a
# size-1 case exercises on purpose.
warnings.filterwarnings("ignore", message="Since version 1.3.0, affine_grid behavior")

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")


def encode(tensor):
    array = tensor.detach().cpu().numpy() if torch.is_tensor(tensor) else np.asarray(tensor)
    array = array.astype(np.float32)
    data = []
    for value in array.reshape(-1):
        if np.isnan(value):
            data.append("nan")
        elif np.isinf(value):
            data.append("inf" if value > 0 else "-inf")
        else:
            data.append(float(repr(value)))  # shortest float32 repr
    return {"shape": list(array.shape), "data": data}


def affine_theta(batch, generator_scale, shift=0.0):
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    theta = identity.repeat(batch, 1, 1) + generator_scale * torch.randn(batch, 2, 3)
    theta[:, :, 2] += shift
    return theta


def rotation_theta(degrees, scale, shift_x, shift_y):
    a = math.radians(degrees)
    return torch.tensor([[[scale * math.cos(a), -scale * math.sin(a), shift_x],
                          [scale * math.sin(a), scale * math.cos(a), shift_y]]])


def sampler_case(name, input, mode, padding, align_corners, theta=None, grid=None, size=None):
    """One case: the grid comes from affine_grid(theta, size) or is given directly."""
    input = input.clone().requires_grad_(True)
    if theta is not None:
        theta = theta.clone().requires_grad_(True)
        grid = F.affine_grid(theta, list(size), align_corners=align_corners)
        grid.retain_grad()
    else:
        grid = grid.clone().requires_grad_(True)
    output = F.grid_sample(input, grid, mode=mode, padding_mode=padding,
                           align_corners=align_corners)
    grad_output = torch.randn_like(output)
    output.backward(grad_output)
    case = {
        "name": name, "mode": mode, "padding": padding, "align_corners": align_corners,
        "input": encode(input), "grid": encode(grid), "output": encode(output),
        "grad_output": encode(grad_output), "grad_input": encode(input.grad),
        "grad_grid": encode(grid.grad),
    }
    if theta is not None:
        case["theta"] = encode(theta)
        case["grad_theta"] = encode(theta.grad)
    return case


def sampler_cases():
    torch.manual_seed(20150605)
    cases = []
    add = cases.append
    randn = torch.randn

    add(sampler_case("affine_downsample_zeros", randn(2, 3, 9, 7), "bilinear", "zeros", False,
                     theta=affine_theta(2, 0.3, 0.2), size=(2, 3, 5, 4)))
    add(sampler_case("affine_upsample_border_corners", randn(2, 2, 5, 6), "bilinear", "border",
                     True, theta=affine_theta(2, 0.3, -0.3), size=(2, 2, 11, 13)))
    # 120 target pixels: PyTorch's bmm takes its BLAS (fused multiply-add) path.
    add(sampler_case("affine_large_grid_zeros_corners", randn(1, 1, 10, 10), "bilinear", "zeros",
                     True, theta=affine_theta(1, 0.2), size=(1, 1, 10, 12)))
    add(sampler_case("affine_rotation_border", randn(2, 1, 8, 8), "bilinear", "border", False,
                     theta=torch.cat([rotation_theta(30, 1.2, 0.1, -0.2),
                                      rotation_theta(-75, 0.8, -0.3, 0.25)]),
                     size=(2, 1, 8, 8)))
    # The identity lands exactly on pixel centres (align_corners false) or on the integer
    # coordinates (true): the one-sided sub-gradients of eq. 7.
    identity = affine_theta(1, 0.0)
    add(sampler_case("identity_centres_zeros", randn(1, 2, 6, 8), "bilinear", "zeros", False,
                     theta=identity, size=(1, 2, 6, 8)))
    add(sampler_case("identity_centres_large_border", randn(1, 1, 9, 12), "bilinear", "border",
                     False, theta=identity, size=(1, 1, 9, 12)))
    add(sampler_case("identity_corners_zeros", randn(1, 1, 5, 4), "bilinear", "zeros", True,
                     theta=identity, size=(1, 1, 5, 4)))
    add(sampler_case("identity_corners_border", randn(1, 2, 4, 7), "bilinear", "border", True,
                     theta=identity, size=(1, 2, 4, 7)))
    add(sampler_case("input_one_row_zeros", randn(2, 2, 1, 5), "bilinear", "zeros", False,
                     theta=affine_theta(2, 0.4), size=(2, 2, 3, 4)))
    add(sampler_case("input_one_column_border_corners", randn(1, 1, 4, 1), "bilinear", "border",
                     True, theta=affine_theta(1, 0.4), size=(1, 1, 1, 3)))
    add(sampler_case("input_one_pixel_corners", randn(1, 1, 1, 1), "bilinear", "zeros", True,
                     theta=affine_theta(1, 0.4), size=(1, 1, 2, 2)))
    add(sampler_case("output_one_pixel", randn(2, 3, 6, 5), "bilinear", "zeros", False,
                     theta=affine_theta(2, 0.3), size=(2, 3, 1, 1)))
    add(sampler_case("grid_random_zeros", randn(2, 4, 7, 5), "bilinear", "zeros", False,
                     grid=torch.rand(2, 6, 5, 2) * 2.6 - 1.3))
    add(sampler_case("grid_random_border_corners", randn(2, 3, 6, 9), "bilinear", "border", True,
                     grid=torch.rand(2, 4, 7, 2) * 3.0 - 1.5))
    # Integer pixel coordinates and the edges exactly (align_corners true, W - 1 = 4 and
    # H - 1 = 2: multiples of 0.5 and 1 map to integers).
    on_integers = torch.tensor([[-1.0, -1.0], [-0.5, 0.0], [0.0, 1.0], [1.0, -1.0], [1.0, 1.0],
                                [-1.5, 0.0], [1.5, 0.0], [0.5, -2.0], [0.25, 0.5], [-1.0, 0.5],
                                [0.5, 3.0], [1.25, 1.0]]).reshape(1, 3, 4, 2)
    add(sampler_case("integer_coordinates_zeros", randn(1, 2, 3, 5), "bilinear", "zeros", True,
                     grid=on_integers))
    add(sampler_case("integer_coordinates_border", randn(1, 2, 3, 5), "bilinear", "border",
                     True, grid=on_integers))
    nan, inf = float("nan"), float("inf")
    non_finite = torch.tensor([[nan, 0.1], [0.2, nan], [inf, 0.3], [-inf, -0.2], [0.1, inf],
                               [0.4, -inf], [1e30, 0.0], [-1e30, 0.5], [0.3, 3e9], [-3e9, 0.1],
                               [0.25, -0.5], [-0.7, 0.6], [1.1, 0.9], [-1.05, -1.02],
                               [0.0, 0.0], [0.6, -0.9]]).reshape(1, 4, 4, 2)
    add(sampler_case("non_finite_zeros", randn(1, 2, 5, 6), "bilinear", "zeros", False,
                     grid=non_finite))
    non_finite_border = torch.where(torch.isnan(non_finite), torch.full_like(non_finite, 0.5),
                                    non_finite)
    add(sampler_case("non_finite_border_corners", randn(1, 2, 5, 6), "bilinear", "border", True,
                     grid=non_finite_border))
    add(sampler_case("nearest_zeros", randn(2, 2, 6, 7), "nearest", "zeros", False,
                     grid=torch.rand(2, 5, 3, 2) * 2.6 - 1.3))
    add(sampler_case("nearest_upsample_border_corners", randn(1, 2, 4, 5), "nearest", "border",
                     True, theta=affine_theta(1, 0.1), size=(1, 2, 8, 10)))
    add(sampler_case("nearest_non_finite_zeros", randn(1, 1, 5, 6), "nearest", "zeros", False,
                     grid=non_finite))
    return cases


def base_coordinates(height, width, align_corners):
    """PyTorch's float32 target coordinates, as float64 arrays (H'W',) of x and y."""
    identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    base = F.affine_grid(identity, [1, 1, height, width], align_corners=align_corners)
    base = base.reshape(-1, 2).double().numpy()
    return base[:, 0], base[:, 1]


def attention_case(height, width, align_corners, batch):
    theta = torch.cat([torch.rand(batch, 1) * 0.8 + 0.4, torch.rand(batch, 2) - 0.5], dim=1)
    theta.requires_grad_(True)
    zero = torch.zeros(batch)
    matrix = torch.stack([torch.stack([theta[:, 0], zero, theta[:, 1]], 1),
                          torch.stack([zero, theta[:, 0], theta[:, 2]], 1)], 1)
    grid = F.affine_grid(matrix, [batch, 1, height, width], align_corners=align_corners)
    grad_grid = torch.randn_like(grid)
    grid.backward(grad_grid)
    return {"height": height, "width": width, "align_corners": align_corners,
            "theta": encode(theta), "grid": encode(grid), "grad_grid": encode(grad_grid),
            "grad_theta": encode(theta.grad)}


def projective_case(height, width, align_corners, batch):
    theta32 = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]) + 0.2 * torch.randn(batch, 8)
    theta32[:, 6:] *= 0.5  # keep w' = h31 x + h32 y + 1 well away from 0
    theta = theta32.double().requires_grad_(True)
    xs, ys = base_coordinates(height, width, align_corners)
    xs, ys = torch.from_numpy(xs), torch.from_numpy(ys)
    h = theta
    w = h[:, 6:7] * xs + h[:, 7:8] * ys + 1.0
    grid = torch.stack([(h[:, 0:1] * xs + h[:, 1:2] * ys + h[:, 2:3]) / w,
                        (h[:, 3:4] * xs + h[:, 4:5] * ys + h[:, 5:6]) / w], dim=-1)
    grid = grid.reshape(batch, height, width, 2)
    grad_grid = torch.randn(batch, height, width, 2).double()
    grid.backward(grad_grid)
    return {"height": height, "width": width, "align_corners": align_corners,
            "theta": encode(theta32), "grid": encode(grid), "grad_grid": encode(grad_grid),
            "grad_theta": encode(theta.grad)}


def thin_plate_kernel(squared_distance):
    safe = np.where(squared_distance > 0, squared_distance, 1.0)
    return np.where(squared_distance > 0, squared_distance * np.log(safe), 0.0)


def tps_case(side, height, width, align_corners, batch):
    count = side * side
    line = np.array([-1.0 + 2.0 * j / (side - 1) for j in range(side)], dtype=np.float32)
    control = np.array([[line[j], line[i]] for i in range(side) for j in range(side)],
                       dtype=np.float64)
    theta32 = (torch.from_numpy(control).float().repeat(batch, 1, 1)
               + 0.15 * torch.randn(batch, count, 2))
    theta = theta32.double().numpy()
    differences = control[:, None, :] - control[None, :, :]
    system = np.zeros((count + 3, count + 3))
    system[:count, :count] = thin_plate_kernel((differences ** 2).sum(-1))
    affine = np.concatenate([np.ones((count, 1)), control], axis=1)
    system[:count, count:] = affine
    system[count:, :count] = affine.T
    inverse = np.linalg.inv(system)[:, :count]  # (K+3, K)
    xs, ys = base_coordinates(height, width, align_corners)
    targets = np.stack([xs, ys], axis=1)
    distances = ((targets[:, None, :] - control[None, :, :]) ** 2).sum(-1)
    basis = np.concatenate([thin_plate_kernel(distances), np.ones((len(xs), 1)), targets], 1)
    matrix = basis @ inverse  # (H'W', K)
    grid = np.einsum("pk,nkc->npc", matrix, theta).reshape(batch, height, width, 2)
    grad_grid = torch.randn(batch, height, width, 2).double().numpy()
    grad_theta = np.einsum("pk,npc->nkc", matrix, grad_grid.reshape(batch, -1, 2))
    return {"height": height, "width": width, "align_corners": align_corners,
            "theta": encode(theta32), "grid": encode(grid), "grad_grid": encode(grad_grid),
            "grad_theta": encode(grad_theta)}


def grid_cases():
    torch.manual_seed(1506)
    return {
        "attention": [attention_case(5, 7, False, 2), attention_case(9, 10, True, 2),
                      attention_case(1, 4, False, 1)],
        "projective": [projective_case(5, 7, False, 2), projective_case(9, 10, True, 2),
                       projective_case(4, 1, False, 1)],
        "tps": [tps_case(4, 6, 5, False, 2), tps_case(4, 9, 11, True, 1),
                tps_case(3, 4, 4, True, 2), tps_case(5, 1, 3, False, 1)],
    }


def write(name, content):
    content = {"generator": "tests/golden/make_spatial_golden.py",
               "torch": torch.__version__, **content}
    path = os.path.normpath(os.path.join(OUT_DIR, name))
    with open(path, "w") as out:
        json.dump(content, out, separators=(",", ":"))
        out.write("\n")
    print(f"{path}: {os.path.getsize(path)} bytes")


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    write("spatial_sampler.json", {"cases": sampler_cases()})
    write("spatial_grids.json", grid_cases())


if __name__ == "__main__":
    main()
