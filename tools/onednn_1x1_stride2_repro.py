#!/usr/bin/env python
"""Reproduce oneDNN#6035 (https://github.com/uxlfoundation/oneDNN/issues/6035) through PyTorch: the CPU backward pass
of a 1x1 convolution with stride 2, on channels-last input with fewer channels than oneDNN's register block (8 with
AVX2, 16 with AVX-512), writes past its scratch buffer. The heap is corrupted; the process dies later, at some
`free`, with `free(): invalid next size`, `corrupted double-linked list` or a segmentation fault. This is why
`simclr_nb.cputune.channels_last_hazards` exists. Seen on the AVX2-only AMD EPYC with torch 2.14.1 (1 to 7 input channels
crashed, commit 3ed6420); on the AMD EPYC with AVX-512 no case crashed and the gradients were equal
(`bench/results/onednn_1x1_stride2_avx512.json`), so the hazard check is conservative there.

    python tools/onednn_1x1_stride2_repro.py            # one child process per input-channel count (1 to 64)
    python tools/onednn_1x1_stride2_repro.py --out bench/results/onednn_1x1_stride2_<kind>.json   # also keeps the cases

Each case runs in its own process (a crash there is the finding); for the ones that survive, the weight and input
gradients are compared with the NCHW ones. Prints one line per case; `--out` writes them, with the machine, as JSON.
"""
import argparse, subprocess, sys
from pathlib import Path

CHILD = r"""
import sys, torch, torch.nn as nn
ci, hw, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
ref = nn.Conv2d(ci, 2 * ci, 1, 2, bias=False)
x = torch.randn(32, ci, hw, hw); g = torch.randn_like(ref(x))
def grads(fmt):
    m = nn.Conv2d(ci, 2 * ci, 1, 2, bias=False); m.load_state_dict(ref.state_dict()); m = m.to(memory_format=fmt)
    xx = x.to(memory_format=fmt).clone().requires_grad_()
    m(xx).backward(g.to(memory_format=fmt))
    return m.weight.grad.clone(), xx.grad.clone()
w0, x0 = grads(torch.contiguous_format)
err = 0.0
for _ in range(steps):
    w1, x1 = grads(torch.channels_last)
    err = max(err, ((w1 - w0).abs().max() / w0.abs().max()).item(), ((x1 - x0).abs().max() / x0.abs().max()).item())
print(f"{err:.1e}")
"""


def main(channels=(1, 2, 3, 4, 5, 6, 7, 8, 12, 15, 16, 24, 32, 64), hw=16, steps=200, out=None):
    import torch
    print(f"torch {torch.__version__}, oneDNN {torch.backends.mkldnn.is_available()}, {torch.backends.cpu.get_cpu_capability()}; "
          f"Conv2d(ci, 2ci, 1, stride=2) backward, 32x{hw}x{hw} channels-last input, {steps} steps")
    cases = []
    for ci in channels:
        r = subprocess.run([sys.executable, "-c", CHILD, str(ci), str(hw), str(steps)], capture_output=True, text=True,
                           env={"OMP_NUM_THREADS": "1", "PATH": ""})
        if r.returncode == 0:
            cases.append(dict(input_channels=ci, crashed=False, max_relative_gradient_difference=float(r.stdout.strip())))
            print(f"  {ci:3d} input channels: ok, max relative gradient difference to NCHW {r.stdout.strip()}")
        else:
            msg = (r.stderr.strip().splitlines() or [f"signal {-r.returncode}"])[-1]
            cases.append(dict(input_channels=ci, crashed=True, exit_code=r.returncode, message=msg))
            print(f"  {ci:3d} input channels: CRASH (exit {r.returncode}: {msg})")
    if out:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
        from machine import machine_info
        from simclr_nb.checkpoint import atomic_write_json
        atomic_write_json(out, dict(machine=machine_info("cpu"), torch=torch.__version__, cpu_capability=torch.backends.cpu.get_cpu_capability(),
                                    case=f"Conv2d(ci, 2ci, 1, stride=2) backward, 32x{hw}x{hw} channels-last input, {steps} steps, 1 thread",
                                    cases=cases))
        print(f"wrote {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="also write the cases and the machine to this JSON file")
    main(out=ap.parse_args().out)
