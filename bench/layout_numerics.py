#!/usr/bin/env python
"""Do the CPU's NHWC kernels round worse than its NCHW ones? (issues 12 and 13)

`labeled_layout_accuracy.py` found fine-tuning and the supervised baseline trained channels-last in bf16 a few tenths of
a point worse than in NCHW. This script asks the kernels directly: for the convolution shapes of the kit's ResNet-18 at
width 0.25 on 28 px images (stem, 3x3 blocks, strided 3x3 and 1x1 shortcuts) and for batch norm in training mode, it
compares each layout's output, input gradient and weight gradient in fp32 and under bf16 autocast with an fp64
reference (relative max error; batch norm gets bf16 input in the bf16 arms, as after a convolution under autocast), and says whether the two layouts' bf16 results are bit-identical. Seconds, no data.

    .venv/bin/python bench/layout_numerics.py        # writes bench/results/layout_numerics_cpu.json
"""
import argparse, sys
from pathlib import Path

import torch, torch.nn as nn

from machine import machine_info               # bench/machine.py
from simclr_nb.checkpoint import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent
CONVS = [(1, 16, 28, 3, 1), (16, 16, 28, 3, 1), (16, 32, 28, 3, 2), (16, 32, 28, 1, 2), (32, 32, 14, 3, 1), (32, 64, 14, 3, 2), (64, 64, 7, 3, 1), (64, 128, 7, 3, 2), (128, 128, 4, 3, 1)]
LAYOUTS = dict(nchw=torch.contiguous_format, nhwc=torch.channels_last)


def rel(a, b): return float((a.double() - b).abs().max() / b.abs().max())


def run(module, x, g, layout, bf16):
    "Output, input grad and weight grad of `module` (a copy) on x in `layout`, under bf16 autocast or not."
    fmt = LAYOUTS[layout]
    m = module.to(memory_format=fmt) if isinstance(module, nn.Conv2d) else module
    bn_in_bf16 = bf16 and not isinstance(module, nn.Conv2d)   # in the network a batch norm gets the bf16 output of a convolution
    xx = (x.to(torch.bfloat16) if bn_in_bf16 else x.clone()).contiguous(memory_format=fmt).requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): y = m(xx)
    y.backward(g.contiguous(memory_format=fmt).to(y.dtype))
    return y.detach(), xx.grad, m.weight.grad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--out', default=str(ROOT / 'bench' / 'results' / 'layout_numerics_cpu.json'))
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    rows = []
    cases = [(f"conv {ci}->{co} k{k} s{s} at {hw} px", nn.Conv2d(ci, co, k, s, k // 2, bias=False), ci, hw) for ci, co, hw, k, s in CONVS]
    cases += [(f"batch norm {c} channels at {hw} px (training)", nn.BatchNorm2d(c), c, hw) for c, hw in ((16, 28), (64, 7))]
    for name, ref_module, cin, hw in cases:
        x = torch.rand(a.batch, cin, hw, hw) * (3 if 'batch norm' in name else 1)
        with torch.no_grad(): out_shape = ref_module(x[:1]).shape
        g = torch.randn(a.batch, *out_shape[1:])
        ref = ref_module.double()
        xr = x.double().requires_grad_(); yr = ref(xr); yr.backward(g.double())
        r_out, r_dx, r_dw = yr.detach(), xr.grad, ref.weight.grad
        row = dict(case=name)
        got = {}
        for layout in LAYOUTS:
            for prec in ('fp32', 'bf16'):
                m = type(ref_module)(*([ref_module.in_channels, ref_module.out_channels, ref_module.kernel_size, ref_module.stride,
                                       ref_module.padding] if isinstance(ref_module, nn.Conv2d) else [ref_module.num_features]),
                                     **({'bias': False} if isinstance(ref_module, nn.Conv2d) else {}))
                m.load_state_dict({k: v.float() for k, v in ref.state_dict().items()})
                out, dx, dw = run(m, x, g, layout, prec == 'bf16')
                got[(layout, prec)] = (out, dx, dw)
                row[f"{layout}_{prec}"] = dict(out=rel(out, r_out), dx=rel(dx, r_dx), dw=rel(dw, r_dw))
        row['bf16_layouts_bit_identical'] = {k: bool(torch.equal(got[('nchw', 'bf16')][i], got[('nhwc', 'bf16')][i])) for i, k in enumerate(('out', 'dx', 'dw'))}
        rows.append(row)
        e = lambda l, p: row[f"{l}_{p}"]
        print(f"{name:40s} bf16 rel. error NCHW out {e('nchw','bf16')['out']:.1e} dx {e('nchw','bf16')['dx']:.1e} dw {e('nchw','bf16')['dw']:.1e} | "
              f"NHWC out {e('nhwc','bf16')['out']:.1e} dx {e('nhwc','bf16')['dx']:.1e} dw {e('nhwc','bf16')['dw']:.1e} | identical {row['bf16_layouts_bit_identical']}")
    atomic_write_json(a.out, dict(what=__doc__.split('\n')[0], command='python bench/layout_numerics.py ' + ' '.join(argv or sys.argv[1:]),
                                  machine=machine_info(), batch=a.batch, error='max |x - fp64| / max |fp64| over the tensor', rows=rows))
    print('wrote', a.out)


if __name__ == '__main__':
    main()
