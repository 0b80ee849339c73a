#!/usr/bin/env python
"""Throughput and peak memory of the SimCLRv2 encoders (simclr_nb.models): forward + backward, images/s.

CPU (always):
  (a) the CPU demo model: ResNet-18 0.25x, small-image stem, 32 px, 1 channel, batch 512;
  (b) ResNet-50 1x at 224 px, 3 channels, batch 32 (1 warm-up + 3 timed steps: it is slow on a CPU).
CUDA (when available): ResNet-50 1x and ResNet-50 2x+SK at 224 px, bf16 autocast + channels_last, with the share of
the bf16 matmul throughput measured in the same run (model FLOPs from torch.utils.flop_counter.FlopCounterMode).

Each case runs in its own child process, so that peak memory on the CPU is that process's `ru_maxrss` (peak resident
set size, from resource.getrusage): we report the peak and its growth over the RSS measured just before the first
training step (model, optimizer-free parameters and input batch already allocated). On CUDA we report
torch.cuda.max_memory_allocated.

One step = zero grads, forward, `out.float().square().mean()` as a stand-in loss, backward (train-mode BN).
Times are medians over repeats of the per-step wall time (after warm-up).

    OMP_NUM_THREADS=2 python bench/models.py            # writes bench/results/models_cpu.json (and _cuda.json on GPU)
"""
import argparse, json, os, platform, resource, shlex, statistics, subprocess, sys, time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from simclr_nb.models import simclrv2_resnet, count_parameters

from machine import machine_info, sync  # bench/machine.py
from simclr_nb.checkpoint import atomic_write  # the package's one atomic writer: a resumable run never reads half a file

RESULTS = Path(__file__).resolve().parent / "results"

CPU_CASES = {
    "cpu_demo_r18_0.25x_32px": dict(spec=dict(depth=18, width=0.25, sk=False, small_images=True, in_channels=1),
                                    size=32, batch=512, warmup=1, steps=5),
    "r50_1x_224px": dict(spec=dict(depth=50, width=1, sk=False, small_images=False, in_channels=3),
                         size=224, batch=32, warmup=1, steps=3),
}
CUDA_CASES = {
    "r50_1x_224px_bf16_cl": dict(spec=dict(depth=50, width=1, sk=False, small_images=False, in_channels=3),
                                 size=224, batch=128, warmup=3, steps=20),
    "r50_2x_sk_224px_bf16_cl": dict(spec=dict(depth=50, width=2, sk=True, small_images=False, in_channels=3),
                                    size=224, batch=64, warmup=3, steps=20),
}


def maxrss_bytes():
    "Peak resident set size of this process (Linux reports KiB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes():
    with open("/proc/self/statm") as f: return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def train_flops_per_image(spec, size):
    "FLOPs of one forward+backward per image, counted on the meta device (convs and matmuls; BN/ReLU not counted)."
    with torch.device("meta"):
        model = simclrv2_resnet(**spec).train()
        x = torch.empty(2, spec["in_channels"], size, size)
        counter = FlopCounterMode(display=False)
        with counter:
            model(x).square().mean().backward()
    return counter.get_total_flops() / 2


def step(model, x, autocast_dtype=None):
    for p in model.parameters(): p.grad = None
    with torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        out = model(x)
    out.float().square().mean().backward()


def run_case(name, case, device, bf16_channels_last=False):
    "Run one case in this process; returns a dict of results."
    torch.manual_seed(0)
    spec, size, batch = case["spec"], case["size"], case["batch"]
    model = simclrv2_resnet(**spec).to(device).train()
    x = torch.rand(batch, spec["in_channels"], size, size, device=device)
    dtype = None
    if bf16_channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        dtype = torch.bfloat16
    rss_before = current_rss_bytes()
    if device.type == "cuda": torch.cuda.reset_peak_memory_stats()
    for _ in range(case["warmup"]): step(model, x, dtype)
    sync(device)
    times = []
    for _ in range(case["steps"]):
        t0 = time.perf_counter(); step(model, x, dtype); sync(device); times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    flops = train_flops_per_image(spec, size)
    res = dict(case=name, spec=spec, image_size=size, batch=batch, warmup_steps=case["warmup"], timed_steps=len(times),
               params=count_parameters(model), step_seconds=[round(t, 4) for t in times],
               median_step_s=round(med, 4), images_per_s=round(batch / med, 1),
               train_gflop_per_image=round(flops / 1e9, 3), achieved_tflop_s=round(flops * batch / med / 1e12, 4),
               autocast="bf16" if dtype else None, channels_last=bf16_channels_last)
    if device.type == "cuda":
        res["peak_memory_bytes"] = torch.cuda.max_memory_allocated()
        res["peak_memory_method"] = "torch.cuda.max_memory_allocated"
    else:
        peak = maxrss_bytes()
        res.update(peak_rss_bytes=peak, rss_before_first_step_bytes=rss_before,
                   peak_rss_growth_bytes=max(0, peak - rss_before),
                   peak_memory_method="resource.getrusage(RUSAGE_SELF).ru_maxrss of a fresh child process; growth = "
                                      "peak minus /proc/self/statm RSS just before the first step")
    return res


def bf16_matmul_tflops(device, n=8192, reps=20):
    "Measured dense bf16 matmul throughput (TFLOP/s), median of `reps` timed products of two n x n matrices."
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16); b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3): a @ b
    sync(device); times = []
    for _ in range(reps):
        t0 = time.perf_counter(); a @ b; sync(device); times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e12


def child(args):
    "Run a single case (called in a child process) and print its JSON result."
    cases = CUDA_CASES if args.device == "cuda" else CPU_CASES
    case = dict(cases[args.case])
    if args.repeats: case["steps"] = args.repeats
    res = run_case(args.case, case, torch.device(args.device), bf16_channels_last=args.device == "cuda")
    print("RESULT " + json.dumps(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                    help="auto: CPU cases always, CUDA cases too when a GPU is present")
    ap.add_argument("--repeats", type=int, default=0, help="timed steps per case (0: the per-case defaults)")
    ap.add_argument("--notes", default="", help="free text stored in the JSON (e.g. machine load)")
    ap.add_argument("--out", default=str(RESULTS), help="folder for models_<cpu|cuda>.json")
    ap.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this (child) process
    args = ap.parse_args()
    if args.case: return child(args)
    devices = ["cpu"] if args.device == "cpu" else ["cuda"] if args.device == "cuda" else \
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        cases = CUDA_CASES if dev == "cuda" else CPU_CASES
        results = dict(bench="models", device=dev, machine=machine_info(dev), notes=args.notes,
                       command="OMP_NUM_THREADS=%s python bench/models.py %s" % (
                           os.environ.get("OMP_NUM_THREADS", ""), shlex.join(sys.argv[1:])),
                       step="zero grads, forward, mean(out^2) loss, backward; train-mode BN; fp32 unless autocast",
                       cases=[])
        if dev == "cuda":
            results["bf16_matmul_tflop_s"] = round(bf16_matmul_tflops(torch.device("cuda")), 1)
        for name in cases:
            cmd = [sys.executable, __file__, "--device", dev, "--case", name, "--repeats", str(args.repeats)]
            print(f"[{dev}] {name} ...", flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            if proc.returncode or not line:
                raise RuntimeError(f"case {name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
            res = json.loads(line[-1][len("RESULT "):])
            if dev == "cuda":
                res["share_of_bf16_matmul"] = round(res["achieved_tflop_s"] / results["bf16_matmul_tflop_s"], 3)
            print(json.dumps({k: res[k] for k in ("images_per_s", "median_step_s", "achieved_tflop_s")}), flush=True)
            results["cases"].append(res)
        out = Path(args.out)   # atomic_write makes the folder
        path = out / f"models_{dev}.json"
        atomic_write(path, json.dumps(results, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
