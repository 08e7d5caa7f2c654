#!/usr/bin/python3
"""Side-by-side training throughput: stn (this repository) against PyTorch on the CPU.

Issue 6's comparison. Builds the paper's CNN and affine ST-CNN at 28x28 and 42x42 in PyTorch
with exactly our layer shapes (parameter counts printed for both), times whole training steps
(forward + backward + SGD momentum 0.9, lr 0.01, batch 256, fixed random batch) with the same
thread count, and runs ours (the stn_bench binary, Google Benchmark, JSON output) and theirs
ALTERNATELY, case by case, for several rounds, so that the noise of a shared machine hits
both alike. Reports the median over rounds of each figure and of the per-round ratio.

Also: the sampler (affine_grid + grid_sample, forward + backward, 28x28, 1 channel, batch
256; the image needs no gradient, as for a transformer on the input) in Mpixel/s; the
scaling of our ST-CNN 28 training step (T threads / 1 thread); each model as a fraction of
its FLOP bound (training GEMM FLOPs per sample from the layer shapes, at the sgemm rate
torch.mm reaches on 1024^3 with the same thread count in this run: torch's mm goes to the
system BLAS, Debian's OpenBLAS 0.3.21); and peak memory (max RSS) of a 30-iteration ST-CNN
training run on RTS, ours (`stn train`) against PyTorch doing the same (a child process
running this script in its --torch-memory-child mode), both under /usr/bin/time -v (the
wait4 ru_maxrss of a process forked from a small parent). And our GEMM against OpenBLAS
cblas_sgemm at the models' GEMM shapes, both single-threaded (bench_kernels.cpp's gemm/ cases,
present when stn_bench was built with OpenBLAS found by pkg-config).

Run with Debian's Python (python3-torch 1.13):

    /usr/bin/python3 bench/compare_pytorch.py --threads 2 --rounds 3
    /usr/bin/python3 bench/compare_pytorch.py --quick          # one short round, no memory

Options: --threads T (default 2), --rounds R (default 3), --quick, --min-time S (seconds per
measurement), --bench PATH (stn_bench), --stn PATH (stn program), --data DIR (MNIST IDX
files), --skip-memory, --memory-only, --memory-iters N, --skip-gemm, --json PATH (write every
raw figure), --check-blas-only, --allow-slow-blas, --min-blas-gflops G.

PyTorch's BLAS: Debian's python3-torch calls whatever libblas.so.3 the alternatives system
points to, and without libopenblas0-pthread that is the reference BLAS (libblas3), on which
torch.mm ran at 5 GFLOP/s: the comparison would then measure the BLAS, not the frameworks.
So before timing anything the script times torch.mm on 1024 x 1024, reads which BLAS library
is mapped into the process, and refuses to go on when it is the reference BLAS (or, when no
BLAS library can be recognised, when the rate is below --min-blas-gflops, default 8: the
reference BLAS ran at 0.6 here at load 10, OpenBLAS at 8-14 on one thread), naming the package
to install; --allow-slow-blas runs anyway with a warning.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 256


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="threads for both frameworks (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--quick", action="store_true", help="one short round, no memory measurement")
    p.add_argument("--min-time", type=float, default=None, help="seconds per measurement (default 3, quick 0.5)")
    p.add_argument("--bench", default=None, help="the stn_bench binary (default build-bench/bench/stn_bench, else build/bench/stn_bench)")
    p.add_argument("--stn", default=None, help="the stn program (default: next to stn_bench's build, else build/stn)")
    p.add_argument("--data", default=os.path.join(REPO, "data", "mnist"), help="MNIST IDX directory")
    p.add_argument("--skip-memory", action="store_true", help="skip the peak-memory runs")
    p.add_argument("--memory-iters", type=int, default=30, help="training iterations of the memory runs (default 30)")
    p.add_argument("--skip-gemm", action="store_true", help="skip our GEMM against OpenBLAS")
    p.add_argument("--memory-only", action="store_true", help="only the peak-memory runs")
    p.add_argument("--json", default=None, help="write every raw measurement to this file")
    p.add_argument("--check-blas-only", action="store_true", help="only check PyTorch's BLAS, then exit")
    p.add_argument("--allow-slow-blas", action="store_true",
                   help="run even when PyTorch's BLAS is the reference one or slow (the figures then mean little)")
    p.add_argument("--min-blas-gflops", type=float, default=8.0,
                   help="the torch.mm 1024^3 rate (GFLOP/s) below which the BLAS counts as slow (default 8)")
    # Internal: the PyTorch memory child.
    p.add_argument("--torch-memory-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--import-only", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.rounds = 1
        a.skip_memory = True
    if a.min_time is None:
        a.min_time = 0.5 if a.quick else 3.0
    return a


ARGS = parse_args()
# OpenBLAS (torch.mm's BLAS here) reads its thread count when it is loaded: set it, and
# OpenMP's, before torch is imported. torch.set_num_threads covers the rest of torch.
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(ARGS.threads)

# ---------------------------------------------------------------------------------------
# The architectures, exactly as models/baselines.cpp and models/spatial_models.cpp build them
# ---------------------------------------------------------------------------------------


def cnn_count(c, h, w, classes, c1, c2):
    h2, w2 = ((h - 8) // 2 - 6) // 2, ((w - 8) // 2 - 6) // 2
    return c * 81 * c1 + c1 + c1 * 49 * c2 + c2 + c2 * h2 * w2 * classes + classes


def closest(low, high, target, count):
    best, best_gap = low, float("inf")
    for x in range(low, high + 1):
        gap = abs(count(x) - target)
        if gap < best_gap:
            best, best_gap = x, gap
    return best


def placement(h, w):
    return (28, 1) if (h, w) == (28, 28) else (56, 2)  # (transformer output side, avg pool)


def loc_side(h):
    return (h // 2 - 4) // 2 - 4


def loc_count(c, h, w):
    lh, lw = loc_side(h), loc_side(w)
    return (c * 25 * 20 + 20) + (20 * 25 * 20 + 20) + (20 * lh * lw * 20 + 20) + (20 * 6 + 6)


def st_cnn_classifier_filters(c, h, w, classes):
    out, pool = placement(h, w)
    side = out // pool
    budget = max(cnn_count(c, h, w, classes, 32, 64) - loc_count(c, h, w), 0)
    return closest(8, 128, budget, lambda c2: cnn_count(c, side, side, classes, 32, c2))


class CNN(nn.Module):
    def __init__(self, c, h, w, classes, c1=32, c2=64):
        super().__init__()
        h2, w2 = ((h - 8) // 2 - 6) // 2, ((w - 8) // 2 - 6) // 2
        self.conv1 = nn.Conv2d(c, c1, 9)
        self.conv2 = nn.Conv2d(c1, c2, 7)
        self.classifier = nn.Linear(c2 * h2 * w2, classes)

    def forward(self, x):
        # Pool, then ReLU, as our models do: the same function (max and ReLU commute).
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return self.classifier(torch.flatten(x, 1))


class STCNN(nn.Module):
    """Affine ST-CNN: localisation on a 2x average-pooled input (conv 5x5 20, ReLU, max-pool 2,
    conv 5x5 20, ReLU, linear 20, ReLU, regression to 6 starting at the identity), sampler to
    28x28 (28x28 input) or 56x56 then a 2x2 average pool (other inputs), then the CNN with its
    conv2 width sized to the CNN baseline's parameter budget."""

    def __init__(self, c, h, w, classes):
        super().__init__()
        self.out, self.pool = placement(h, w)
        lh, lw = loc_side(h), loc_side(w)
        self.loc = nn.Sequential(
            nn.AvgPool2d(2), nn.Conv2d(c, 20, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(20, 20, 5), nn.ReLU(),
            nn.Flatten(), nn.Linear(20 * lh * lw, 20), nn.ReLU())
        self.regression = nn.Linear(20, 6)
        with torch.no_grad():
            self.regression.weight.zero_()
            self.regression.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1.0, 0]))
        side = self.out // self.pool
        self.classifier = CNN(c, side, side, classes, 32, st_cnn_classifier_filters(c, h, w, classes))

    def forward(self, x):
        theta = self.regression(self.loc(x)).view(-1, 2, 3)
        grid = F.affine_grid(theta, [x.shape[0], x.shape[1], self.out, self.out], align_corners=False)
        v = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.pool > 1:
            v = F.avg_pool2d(v, self.pool)
        return self.classifier(v)


# ---------------------------------------------------------------------------------------
# Training FLOPs per sample (the GEMMs: forward, weight gradient, input gradient if needed)
# ---------------------------------------------------------------------------------------


def conv_flops(c, o, k, oh, ow, input_grad):
    return 2.0 * o * c * k * k * oh * ow * (3 if input_grad else 2)


def linear_flops(i, o, input_grad):
    return 2.0 * i * o * (3 if input_grad else 2)


def cnn_flops(c, h, w, classes, c1=32, c2=64, first_input_grad=False):
    o1h, o1w = h - 8, w - 8
    p1h, p1w = o1h // 2, o1w // 2
    o2h, o2w = p1h - 6, p1w - 6
    p2h, p2w = o2h // 2, o2w // 2
    return (conv_flops(c, c1, 9, o1h, o1w, first_input_grad) + conv_flops(c1, c2, 7, o2h, o2w, True) +
            linear_flops(c2 * p2h * p2w, classes, True))


def st_cnn_flops(c, h, w, classes):
    out, pool = placement(h, w)
    dh, dw = h // 2, w // 2
    lh, lw = loc_side(h), loc_side(w)
    loc = (conv_flops(c, 20, 5, dh - 4, dw - 4, False) + conv_flops(20, 20, 5, (dh - 4) // 2 - 4, (dw - 4) // 2 - 4, True)
           + linear_flops(20 * lh * lw, 20, True) + linear_flops(20, 6, True))
    side = out // pool
    # The classifier's conv1 needs its input gradient: it is what trains theta.
    return loc + cnn_flops(c, side, side, classes, 32, st_cnn_classifier_filters(c, h, w, classes), True)


MODELS = [
    # key, label, our bench case, registry name, (c, h, w, classes), torch factory, flops
    ("cnn28", "CNN 28x28", "cnn", (1, 28, 28, 10), lambda: CNN(1, 28, 28, 10), cnn_flops(1, 28, 28, 10)),
    ("st_cnn28", "ST-CNN aff 28x28", "st-cnn-aff", (1, 28, 28, 10), lambda: STCNN(1, 28, 28, 10), st_cnn_flops(1, 28, 28, 10)),
    ("cnn42", "CNN 42x42", "cnn", (1, 42, 42, 10), lambda: CNN(1, 42, 42, 10), cnn_flops(1, 42, 42, 10)),
    ("st_cnn42", "ST-CNN aff 42x42 (56->28)", "st-cnn-aff", (1, 42, 42, 10), lambda: STCNN(1, 42, 42, 10),
     st_cnn_flops(1, 42, 42, 10)),
]

# ---------------------------------------------------------------------------------------
# Timing PyTorch
# ---------------------------------------------------------------------------------------


def timed_loop(step, min_time, warmup=3, min_steps=5):
    for _ in range(warmup):
        step()
    steps, start = 0, time.perf_counter()
    while True:
        step()
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time and steps >= min_steps:
            return steps / elapsed


class TorchModelCase:
    def __init__(self, factory, shape):
        torch.manual_seed(1)
        c, h, w, classes = shape
        self.model = factory()
        self.model.train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        g = torch.Generator().manual_seed(11)
        self.x = torch.rand(BATCH, c, h, w, generator=g)
        self.y = torch.randint(0, classes, (BATCH,), generator=g)

    def params(self):
        return sum(p.numel() for p in self.model.parameters())

    def step(self):
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()

    def samples_per_s(self, min_time):
        return BATCH * timed_loop(self.step, min_time)


class TorchSamplerCase:
    """affine_grid + grid_sample forward and backward; theta needs a gradient, U does not."""

    def __init__(self, channels=1, in_size=28, out_size=28):
        g = torch.Generator().manual_seed(13)
        self.u = torch.rand(BATCH, channels, in_size, in_size, generator=g)
        theta = (torch.rand(BATCH, 2, 3, generator=g) - 0.5) * 0.4
        theta[:, 0, 0] += 1
        theta[:, 1, 1] += 1
        self.theta = theta.requires_grad_(True)
        self.seed = torch.rand(BATCH, channels, out_size, out_size, generator=g) * 2 - 1
        self.size = [BATCH, channels, out_size, out_size]
        self.pixels = BATCH * channels * out_size * out_size

    def step(self):
        self.theta.grad = None
        grid = F.affine_grid(self.theta, self.size, align_corners=False)
        v = F.grid_sample(self.u, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        v.backward(self.seed)

    def mpixel_per_s(self, min_time):
        return self.pixels * timed_loop(self.step, min_time) * 1e-6


def machine_gflops(min_time):
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    rate = timed_loop(lambda: torch.mm(a, b), min_time)
    return 2.0 * 1024 ** 3 * rate * 1e-9


BLAS_PACKAGE = "libopenblas0-pthread"


def mapped_blas_libraries():
    """The BLAS shared objects mapped into this process (after a torch.mm), resolved."""
    found = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = os.path.basename(path)
                if re.match(r"lib(open)?blas|libmkl|libblis", name) and path not in found:
                    found.append(path)
    except OSError:
        pass  # not Linux: the rate alone decides
    return found


def is_reference_blas(path):
    """Netlib's reference BLAS (Debian's libblas3: .../blas/libblas.so.3.*), not an optimised one."""
    name = os.path.basename(path)
    return name.startswith("libblas.so") and not re.search(r"openblas|mkl|blis|atlas", path)


def is_optimised_blas(path):
    return bool(re.search(r"openblas|mkl|blis", os.path.basename(path)))


def blas_verdict(gflops, libraries, min_gflops):
    """None when PyTorch's BLAS looks real, else the reason it does not. The loaded library
    decides when it can be named (a busy machine slows OpenBLAS below what an idle one gets
    from the reference BLAS); the rate only when no BLAS library is recognised."""
    reference = [p for p in libraries if is_reference_blas(p)]
    if reference:
        return "PyTorch's BLAS is the reference implementation (%s); torch.mm 1024^3 ran at %.1f GFLOP/s" % (
            ", ".join(reference), gflops)
    if any(is_optimised_blas(p) for p in libraries):
        return None
    if gflops < min_gflops:
        return ("torch.mm 1024^3 ran at %.1f GFLOP/s, below %.1f, and no optimised BLAS library is loaded "
                "(found: %s)" % (gflops, min_gflops, ", ".join(libraries) or "none"))
    return None


def check_blas(args):
    torch.mm(torch.randn(64, 64), torch.randn(64, 64))  # loads the BLAS
    gflops = machine_gflops(1.0)
    libraries = mapped_blas_libraries()
    reason = blas_verdict(gflops, libraries, args.min_blas_gflops)
    print("PyTorch's BLAS: %s; torch.mm 1024^3 at %d threads: %.1f GFLOP/s" %
          (", ".join(libraries) or "no BLAS library found in /proc/self/maps", args.threads, gflops), flush=True)
    if reason is None:
        if gflops < args.min_blas_gflops:
            print("note: %.1f GFLOP/s from an optimised BLAS: the machine is busy, every figure will be low" % gflops,
                  flush=True)
        return
    advice = ("install the optimised BLAS (Debian: apt-get install %s, which takes over libblas.so.3 through "
              "update-alternatives)" % BLAS_PACKAGE)
    if args.allow_slow_blas:
        print("warning: %s; the PyTorch figures measure the BLAS, not the framework (%s)" % (reason, advice),
              file=sys.stderr, flush=True)
        return
    sys.exit("refusing to compare: %s. %s, or pass --allow-slow-blas to run anyway." % (reason, advice[0].upper() + advice[1:]))


# ---------------------------------------------------------------------------------------
# Timing ours (stn_bench, Google Benchmark, JSON)
# ---------------------------------------------------------------------------------------


def find_binary(explicit, candidates):
    if explicit:
        if not os.path.isfile(explicit):
            sys.exit("no such program: " + explicit)
        return explicit
    for c in candidates:
        if os.path.exists(c):
            return c
    sys.exit("cannot find any of: " + ", ".join(candidates) + " (build first; see bench/README.md)")


def run_ours(bench, name, threads, min_time):
    """Runs one benchmark case of stn_bench at `threads` threads; returns its JSON record."""
    env = dict(os.environ, STN_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    full = "%s/threads:%d" % (name, threads)
    # Google Benchmark appends "/real_time" to the names of real-time cases.
    cmd = [bench, "--benchmark_filter=^%s(/real_time)?$" % re.escape(full), "--benchmark_format=json",
           "--benchmark_min_time=%g" % min_time]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    records = [r for r in json.loads(out)["benchmarks"] if r["name"] in (full, full + "/real_time")]
    if not records:
        sys.exit("stn_bench did not run " + full + ": " + " ".join(cmd))
    return records[0]


def run_gemm_cases(bench, min_time):
    """bench_kernels.cpp's GEMM cases, ours next to OpenBLAS cblas_sgemm at each shape (both
    single-threaded; registered shape by shape, so they run alternately). Returns
    {shape: (ours GFLOP/s, OpenBLAS GFLOP/s, label)}; empty if the binary has no OpenBLAS cases."""
    cmd = [bench, "--benchmark_filter=^gemm/[^/]+/(stn|openblas)$", "--benchmark_format=json",
           "--benchmark_min_time=%g" % min_time]
    out = subprocess.run(cmd, env=dict(os.environ, STN_THREADS="1"), check=True, capture_output=True, text=True).stdout
    found = {}
    for r in json.loads(out)["benchmarks"]:
        m = re.match(r"^gemm/([^/]+)/(stn|openblas)$", r["name"])
        if m and "GFLOP/s" in r:
            found.setdefault(m.group(1), {})[m.group(2)] = (r["GFLOP/s"], r.get("label", ""))
    return {k: (v["stn"][0], v["openblas"][0], v["stn"][1]) for k, v in found.items() if "stn" in v and "openblas" in v}


# ---------------------------------------------------------------------------------------
# Peak memory of a training run of ST-CNN on RTS
# ---------------------------------------------------------------------------------------


def read_idx_images(path):
    with open(path, "rb") as f:
        data = f.read()
    n, rows, cols = int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
    return torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).view(n, 1, rows, cols)


def read_idx_labels(path):
    with open(path, "rb") as f:
        data = f.read()
    return torch.frombuffer(bytearray(data[8:]), dtype=torch.uint8).long()


def rts_distort(images, generator):
    """RTS as PAPER.md: rotation U[-45, 45] deg, scale U[0.7, 1.2], random placement on a
    42x42 canvas; one batched affine_grid + grid_sample (like our distort_samples)."""
    n = images.shape[0]
    angle = (torch.rand(n, generator=generator) * 90 - 45) * torch.pi / 180
    scale = torch.rand(n, generator=generator) * 0.5 + 0.7
    # Offset of the digit's centre from the canvas centre, in canvas pixels, keeping most of it inside.
    room = (42 - 28 * scale) / 2
    ox = (torch.rand(n, generator=generator) * 2 - 1) * room.clamp(min=0)
    oy = (torch.rand(n, generator=generator) * 2 - 1) * room.clamp(min=0)
    # Canvas normalised coords -> source normalised coords: source = R(-a) (canvas - t) * 42 / (28 s).
    k = 42.0 / (28.0 * scale)
    cos, sin = torch.cos(angle), torch.sin(angle)
    tx, ty = ox * 2 / 42, oy * 2 / 42
    theta = torch.stack([torch.stack([k * cos, k * sin, -k * (cos * tx + sin * ty)], 1),
                         torch.stack([-k * sin, k * cos, -k * (-sin * tx + cos * ty)], 1)], 1)
    grid = F.affine_grid(theta, [n, 1, 42, 42], align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)


def torch_memory_child(args):
    """The PyTorch counterpart of `stn train --dataset rts --model st-cnn-aff --iters N --batch
    256`: MNIST train held as float32 [60000, 1, 28, 28] in [0, 1] (as ours), the 10k test set
    distorted once to 42x42 float32 (as ours caches it), N iterations of freshly distorted
    batches of 256, SGD momentum 0.9 lr 0.01, then a test-set evaluation in batches of 256."""
    if args.import_only:
        return
    g = torch.Generator().manual_seed(1)
    train = read_idx_images(os.path.join(args.data, "train-images-idx3-ubyte")).float() / 255
    train_labels = read_idx_labels(os.path.join(args.data, "train-labels-idx1-ubyte"))
    test_src = read_idx_images(os.path.join(args.data, "t10k-images-idx3-ubyte")).float() / 255
    test_labels = read_idx_labels(os.path.join(args.data, "t10k-labels-idx1-ubyte"))
    with torch.no_grad():
        test = torch.cat([rts_distort(test_src[i:i + 1000], g) for i in range(0, test_src.shape[0], 1000)])
    del test_src
    torch.manual_seed(1)
    model = STCNN(1, 42, 42, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    for _ in range(args.memory_iters):
        idx = torch.randint(0, train.shape[0], (BATCH,), generator=g)
        with torch.no_grad():
            x = rts_distort(train[idx], g)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), train_labels[idx])
        loss.backward()
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, test.shape[0], BATCH):
            correct += (model(test[i:i + BATCH]).argmax(1) == test_labels[i:i + BATCH]).sum().item()
    print(json.dumps({"test_error": 100.0 * (1 - correct / test.shape[0]), "loss": loss.item()}))


def child_max_rss_kib(cmd, env=None, cwd=None):
    """Runs cmd; returns (its max RSS in KiB from os.wait4, its stdout+stderr)."""
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        text = log.read()
    if proc.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (proc.returncode, " ".join(cmd), text[-3000:]))
    return usage.ru_maxrss, text


def measure_memory(args, stn):
    work = tempfile.mkdtemp(prefix="stn-bench-mem-")
    cache = os.path.join(work, "cache")
    base = [stn, "train", "--dataset", "rts", "--model", "st-cnn-aff", "--batch", str(BATCH),
            "--threads", str(args.threads), "--data", args.data, "--cache", cache]
    # First a 1-iteration run that distorts and caches the RTS test set, so the measured run
    # loads it like any later run would (not measured).
    child_max_rss_kib(base + ["--iters", "1", "--out", os.path.join(work, "warm")], cwd=work)
    time_cmd = ["/usr/bin/time", "-v"] + base + ["--iters", str(args.memory_iters), "--out", os.path.join(work, "run")]
    _, text = child_max_rss_kib(time_cmd, cwd=work)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    ours = int(m.group(1)) if m else None
    # The PyTorch child runs under /usr/bin/time too: a direct child of this (large) Python
    # process would report, in its own ru_maxrss, the pages it shared with this process
    # between fork and exec; GNU time forks from a small process and reads wait4's ru_maxrss
    # of its child, so both figures are measured the same way.
    me = [sys.executable, os.path.abspath(__file__), "--torch-memory-child", "--threads", str(args.threads),
          "--data", args.data, "--memory-iters", str(args.memory_iters)]

    def gnu_time_rss(cmd):
        _, text = child_max_rss_kib(["/usr/bin/time", "-v"] + cmd, cwd=work)
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        return int(m.group(1)) if m else None

    theirs = gnu_time_rss(me)
    torch_import = gnu_time_rss(me + ["--import-only"])
    shutil.rmtree(work, ignore_errors=True)
    return {"ours_kib": ours, "torch_kib": theirs, "torch_import_only_kib": torch_import, "command": " ".join(time_cmd),
            "torch_command": "/usr/bin/time -v " + " ".join(me)}


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main(args):
    if args.torch_memory_child:
        torch_memory_child(args)
        return
    if not args.memory_only:
        check_blas(args)
    if args.check_blas_only:
        return
    # Absolute: the memory runs work in a temporary directory (cwd), where a relative path
    # given on the command line would name nothing.
    bench = os.path.abspath(find_binary(args.bench, [os.path.join(REPO, "build-bench", "bench", "stn_bench"),
                                                     os.path.join(REPO, "build", "bench", "stn_bench")]))
    stn = os.path.abspath(find_binary(args.stn, [os.path.join(os.path.dirname(os.path.dirname(bench)), "stn"),
                                                 os.path.join(REPO, "build", "stn")]))
    args.data = os.path.abspath(args.data)
    T = args.threads
    if args.memory_only:
        mem = measure_memory(args, stn)
        print("  ours:    %s\n  PyTorch: %s" % (mem["command"], mem["torch_command"]))
        print("| max RSS | ours %.0f MiB | PyTorch %.0f MiB | ours/PyTorch %.2f | (PyTorch after `import torch` alone: %.0f MiB) |" %
              (mem["ours_kib"] / 1024, mem["torch_kib"] / 1024, mem["ours_kib"] / mem["torch_kib"],
               mem["torch_import_only_kib"] / 1024))
        return
    print("stn_bench: %s\nstn: %s\nthreads %d, batch %d, rounds %d, %.1f s per measurement" %
          (bench, stn, T, BATCH, args.rounds, args.min_time))
    print("torch %s, torch.get_num_threads() = %d, OPENBLAS_NUM_THREADS = %s" %
          (torch.__version__, torch.get_num_threads(), os.environ["OPENBLAS_NUM_THREADS"]))

    load_before = os.getloadavg()
    print("load average before: %.2f %.2f %.2f" % load_before, flush=True)
    torch_cases = {key: TorchModelCase(factory, shape) for key, _, _, shape, factory, _ in MODELS}
    sampler = TorchSamplerCase()
    raw = {"gemm_gflops": [], "models": {key: {"ours": [], "torch": []} for key, *_ in MODELS},
           "sampler": {"ours": [], "torch": []}, "scaling": {"ours_T": [], "ours_1": []}, "gemm": []}
    params = {}
    for r in range(args.rounds):
        print("\nround %d of %d" % (r + 1, args.rounds), flush=True)
        g = machine_gflops(min(args.min_time, 2.0))
        raw["gemm_gflops"].append(g)
        print("  torch.mm 1024^3: %.1f GFLOP/s" % g, flush=True)
        for key, label, _, _, _, _ in MODELS:
            rec = run_ours(bench, "BM_TrainStep/" + key, T, args.min_time)
            ours = rec["samples/s"]
            theirs = torch_cases[key].samples_per_s(args.min_time)
            raw["models"][key]["ours"].append(ours)
            raw["models"][key]["torch"].append(theirs)
            params[key] = (int(rec["params"]), torch_cases[key].params())
            print("  %-28s ours %8.1f  pytorch %8.1f samples/s  ratio %.2f" % (label, ours, theirs, ours / theirs), flush=True)
            if key == "st_cnn28" and T != 1:
                one = run_ours(bench, "BM_TrainStep/st_cnn28", 1, args.min_time)["samples/s"]
                raw["scaling"]["ours_T"].append(ours)
                raw["scaling"]["ours_1"].append(one)
                print("  %-28s ours at 1 thread %8.1f samples/s  scaling %.2f" % ("", one, ours / one), flush=True)
        ours = run_ours(bench, "BM_Sampler/forward_backward/affine28", T, args.min_time)["Mpixel/s"]
        theirs = sampler.mpixel_per_s(args.min_time)
        raw["sampler"]["ours"].append(ours)
        raw["sampler"]["torch"].append(theirs)
        print("  %-28s ours %8.1f  pytorch %8.1f Mpixel/s  ratio %.2f" % ("sampler fwd+bwd 28x28", ours, theirs, ours / theirs),
              flush=True)
        if not args.skip_gemm:
            g = run_gemm_cases(bench, min(args.min_time, 0.5))
            raw["gemm"].append(g)
            if g:
                print("  GEMM ours/OpenBLAS (1 thread): " + ", ".join("%s %.2f" % (k, v[0] / v[1]) for k, v in g.items()),
                      flush=True)

    gemm = median(raw["gemm_gflops"])
    print("\nParameter counts (ours / PyTorch):")
    for key, label, *_ in MODELS:
        o, t = params[key]
        print("  %-28s %8d / %8d%s" % (label, o, t, "" if o == t else "   MISMATCH"))

    def ratios(a, b):
        return [x / y for x, y in zip(a, b)]

    print("\nMachine rate: torch.mm fp32 1024^3 on %d threads (torch's BLAS: %s): median %.1f GFLOP/s "
          "(rounds: %s)" % (T, ", ".join(mapped_blas_libraries()) or "unknown", gemm,
                            ", ".join("%.1f" % x for x in raw["gemm_gflops"])))
    print("FLOP bound = that rate / training GEMM FLOPs per sample (forward + weight gradient + input gradient where needed).")
    print("Figures: medians over %d alternating round(s); ratio = median of the per-round ratios (min-max).\n" % args.rounds)
    header = "| case | ours | PyTorch | ours/PyTorch | MFLOP/sample | bound | ours % bound | PyTorch % bound |"
    print(header)
    print("|" + "---|" * 8)
    table = []
    for key, label, _, _, _, flops in MODELS:
        o, t = raw["models"][key]["ours"], raw["models"][key]["torch"]
        rs = ratios(o, t)
        bound = gemm * 1e9 / flops
        row = (label + " (samples/s)", median(o), median(t), median(rs), min(rs), max(rs), flops / 1e6, bound)
        table.append(row)
        print("| %s | %.0f | %.0f | %.2f (%.2f-%.2f) | %.1f | %.0f | %.1f%% | %.1f%% |" %
              (row + (100 * median(o) / bound, 100 * median(t) / bound)))
    o, t = raw["sampler"]["ours"], raw["sampler"]["torch"]
    rs = ratios(o, t)
    print("| sampler fwd+bwd 28x28 1ch (Mpixel/s) | %.1f | %.1f | %.2f (%.2f-%.2f) | - | - | - | - |" %
          (median(o), median(t), median(rs), min(rs), max(rs)))
    if raw["scaling"]["ours_1"]:
        s = ratios(raw["scaling"]["ours_T"], raw["scaling"]["ours_1"])
        print("| scaling: our ST-CNN 28, %d threads / 1 thread | %.0f / %.0f | - | %.2f (%.2f-%.2f) | - | - | - | - |" %
              (T, median(raw["scaling"]["ours_T"]), median(raw["scaling"]["ours_1"]), median(s), min(s), max(s)))

    gemm_rounds = [g for g in raw["gemm"] if g]
    if gemm_rounds:
        print("\nOur GEMM against OpenBLAS cblas_sgemm, both 1 thread, at the models' shapes "
              "(bench_kernels.cpp's gemm/<shape>/{stn,openblas} cases, run shape by shape; medians over rounds):\n")
        print("| GEMM shape | ours GFLOP/s | OpenBLAS GFLOP/s | ours / OpenBLAS | our plan |")
        print("|---|---|---|---|---|")
        for shape in gemm_rounds[0]:
            rows = [g[shape] for g in gemm_rounds if shape in g]
            rs = [o / b for o, b, _ in rows]
            print("| %s | %.1f | %.1f | %.2f (%.2f-%.2f) | %s |" % (shape, median([o for o, _, _ in rows]),
                  median([b for _, b, _ in rows]), median(rs), min(rs), max(rs), rows[0][2]))
    elif not args.skip_gemm:
        print("\n(no gemm/<shape>/openblas cases in stn_bench: build it with OpenBLAS found by pkg-config)")
    load_after = os.getloadavg()
    raw["load_average"] = {"before": load_before, "after_timing": load_after}
    print("\nload average before: %.2f %.2f %.2f, after the timings: %.2f %.2f %.2f (1, 5, 15 min; %d CPUs)" %
          (load_before + load_after + (os.cpu_count(),)))
    if not args.skip_memory:
        print("\nPeak memory: ST-CNN on RTS, batch %d, %d iterations, %d threads (then a test-set evaluation)" %
              (BATCH, args.memory_iters, T), flush=True)
        mem = measure_memory(args, stn)
        raw["memory"] = mem
        print("  ours:    %s" % mem["command"])
        print("  PyTorch: %s" % mem["torch_command"])
        print("| max RSS | ours %.0f MiB | PyTorch %.0f MiB | ours/PyTorch %.2f | (PyTorch after `import torch` alone: %.0f MiB) |" %
              (mem["ours_kib"] / 1024, mem["torch_kib"] / 1024, mem["ours_kib"] / mem["torch_kib"],
               mem["torch_import_only_kib"] / 1024))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": T, "rounds": args.rounds, "min_time": args.min_time, "params": params, "raw": raw}, f, indent=1)
        print("\nraw figures: " + args.json)


if __name__ == "__main__":
    main(ARGS)
