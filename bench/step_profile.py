#!/usr/bin/env python
"""Where the time of the kit's pretraining step goes on this CPU (issue 13: "the model-only step at a stated share of the
measured matmul peak ... and what limits it").

The model-only step of `bench/speed.py` (the kit's SimCLRv2 ResNet-18 with the CIFAR stem and its 3-layer head, two
views of a batch of 256 at 32 px, one forward over the concatenated views, NT-Xent, backward, LARS step; channels-last
and glibc keeping freed memory, the kit's CPU defaults; the kit's `precision='auto'`) is profiled with
`torch.profiler` over `--steps` steps after two warm-up steps. Each operator's own CPU time is summed into a few kinds:
convolution forward and backward, matmuls, batch norm forward and backward, ReLU (forward and backward), additions
(residuals, gradient accumulation, the optimizer), the rest. The step's convolution and matmul FLOPs
(`FlopCounterMode`, as `speed.py` counts them) divided by the time in those operators gives the rate the convolutions
themselves reach, set against the machine's peak measured in the same run (`speed.roofline`: the better of a matmul and
a 3x3 convolution; before and after
the profiles; the higher counts, as a peak is the best the machine did: on a shared 2-core machine one reading can
fall well below the next): what is left between the step's overall rate and the convolutions' rate is the
memory-bound operators' time.

    .venv-bench/bin/python bench/step_profile.py            # writes bench/results/step_profile_cpu.json (--out: elsewhere)
"""
import argparse, json, statistics, sys, time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed   # noqa: E402  (bench/speed.py: the same network, step and roofline)
from machine import machine_info   # noqa: E402
from simclr_nb.cputune import glibc_keep_freed_memory
from simclr_nb.precision import resolve_precision
from simclr_nb.checkpoint import atomic_write

KINDS = (   # (kind, operator names whose own time it sums); the first match wins
    ("convolution backward", ("aten::convolution_backward",)),
    ("convolution forward", ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution", "aten::_slow_conv2d_forward",
                             "aten::thnn_conv2d")),
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul")),
    ("batch norm backward", ("aten::native_batch_norm_backward",)),
    ("batch norm forward", ("aten::native_batch_norm", "aten::_batch_norm_impl_index", "aten::batch_norm")),
    ("ReLU", ("aten::clamp_min", "aten::clamp_min_", "aten::relu", "aten::relu_", "aten::threshold_backward")),
    ("additions", ("aten::add", "aten::add_")),
)
COMPUTE = ("convolution backward", "convolution forward", "matmul")


def kind_of(name):
    return next((k for k, names in KINDS if name in names), "other")


def profile_width(width, steps, device):
    bs = 256
    precision = resolve_precision("auto", device)
    model = speed.make_model(width, device, channels_last=True)
    opt = speed.make_lars(model, bs)
    g = torch.Generator().manual_seed(0)
    views = [torch.rand(bs, 3, speed.SIZE, speed.SIZE, generator=g) for _ in range(2)]
    step = lambda: speed.simclr_step(model, opt, views, channels_last=True, bf16=precision == "bf16")
    for _ in range(2): step()
    plain = []
    for _ in range(steps):
        t0 = time.perf_counter(); step(); plain.append(time.perf_counter() - t0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps): step()
    per_kind = {}
    for e in prof.key_averages():
        k = kind_of(e.key)
        per_kind[k] = per_kind.get(k, 0.0) + e.self_cpu_time_total / 1e6 / steps
    total = sum(per_kind.values())
    flops = speed.step_flops(width, views, device)
    compute_s = sum(per_kind.get(k, 0.0) for k in COMPUTE)
    return dict(width=width, channels=int(64 * width), batch_size=bs, image_size=speed.SIZE, precision=precision,
                step_s_unprofiled=dict(median=statistics.median(plain), times=plain),
                profiled_s_per_step=round(total, 4),
                seconds_per_step={k: round(v, 4) for k, v in sorted(per_kind.items(), key=lambda kv: -kv[1])},
                share={k: round(v / total, 3) for k, v in sorted(per_kind.items(), key=lambda kv: -kv[1])},
                step_gflop=round(flops / 1e9, 1),
                convolution_and_matmul_gflops=round(flops / compute_s / 1e9, 1),
                whole_step_gflops=round(flops / statistics.median(plain) / 1e9, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", type=float, nargs="+", default=[0.25, 1.0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--out", default=None, help="default bench/results/step_profile_cpu.json")
    args = ap.parse_args()
    device = torch.device("cpu")
    t0 = time.time()
    glibc_keep_freed_memory(True)   # the kit's CPU default during a fit (KeepFreedMemory)
    try:
        peaks = [speed.roofline(device)]
        rows = [profile_width(w, args.steps, device) for w in args.widths]
        peaks.append(speed.roofline(device))
        best = lambda key: {k: max(p[key][k] for p in peaks) for k in peaks[0][key]}
        peak = dict(peaks[0], matmul_gflops=best("matmul_gflops"), conv_gflops=best("conv_gflops"), peak_gflops=best("peak_gflops"),
                    before_and_after={k: [round(p["peak_gflops"][k], 1) for p in peaks] for k in peaks[0]["peak_gflops"]})
        for r in rows:
            p = peak["peak_gflops"][r["precision"]]
            r.update(peak_gflops=round(p, 1), convolutions_share_of_peak=round(r["convolution_and_matmul_gflops"] / p, 3),
                     whole_step_share_of_peak=round(r["whole_step_gflops"] / p, 3))
            print(json.dumps(r), flush=True)
    finally: glibc_keep_freed_memory(False)
    out = dict(command=" ".join(["python", "bench/step_profile.py"] + sys.argv[1:]), machine=machine_info(device), roofline=peak,
               what="own CPU time per operator kind over profiled steps (torch.profiler); convolution_and_matmul_gflops: the step's "
                    "conv+matmul FLOPs (FlopCounterMode) over the time in those operators", widths=rows, wall_s=round(time.time() - t0, 1))
    path = Path(args.out) if args.out else speed.RESULTS / "step_profile_cpu.json"
    atomic_write(path, json.dumps(out, indent=2) + "\n"); print(f"wrote {path}")


if __name__ == "__main__":
    main()
