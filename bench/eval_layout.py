#!/usr/bin/env python
"""Evaluation in channels-last (issues 12 and 13): `extract_features` of the test and validation images, NCHW against NHWC.

Every stage of a quality preset measures its test (10,000) and validation (6,000) accuracy with `extract_features`
(fp32, batch norms folded): about 66 stages a `cpu_trimmed` run. This script times the kit's `extract_features` with its
`channels_last` off and on (the BN-folded copy and each batch in NHWC), interleaved rounds, median, on the kit's
fine-tuning network at widths 0.125, 0.25 and 0.5 after one epoch of the supervised stage's training on 10% of the
labels (so that the argmax is a trained one), on those 16,000 Fashion-MNIST images at 28 px, and checks what the layout
may change: the largest logit difference and the number of images whose predicted class differs.

    .venv/bin/python bench/eval_layout.py            # writes bench/results/eval_layout_cpu.json
"""
import argparse, statistics, sys, time
from pathlib import Path

import torch

from fastai.torch_core import set_seed
from machine import machine_info               # bench/machine.py
from quality import BASE                       # bench/quality.py: the presets' settings

from simclr_nb.checkpoint import atomic_write_json
from simclr_nb.data import load_dataset, label_fraction_split
from simclr_nb.evaluate import extract_features
from simclr_nb.pipeline import PipelineConfig, NoValidation, supervised_stage_learner

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--widths', type=float, nargs='+', default=[0.125, 0.25, 0.5])
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--out', default=str(ROOT / 'bench' / 'results' / 'eval_layout_cpu.json'))
    a = ap.parse_args(argv)
    data = load_dataset('fashion_mnist', download=False)
    x = torch.cat([data.test_x, data.train_x[:6000]]); y = torch.cat([data.test_y, data.train_y[:6000]]).long()
    res = dict(what=__doc__.split('\n')[0], command='python bench/eval_layout.py ' + ' '.join(argv or sys.argv[1:]),
               machine=machine_info(), threads=torch.get_num_threads(), n_images=len(x), image_size=28, rounds=a.rounds, widths={})
    for w in a.widths:
        cfg = PipelineConfig(**dict(BASE, width=w))
        set_seed(0)
        learn, _, precision = supervised_stage_learner(cfg, data, label_fraction_split(data.train_y, 0.1, seed=0), 'cpu')
        with learn.no_logging(), learn.no_bar(): learn.fit(1, cbs=NoValidation())
        model = learn.model.eval()
        arms = dict(nchw=lambda: extract_features(model, x, size=28, channels_last=False),
                    nhwc=lambda: extract_features(model, x, size=28, channels_last=True))
        times, outs = {k: [] for k in arms}, {}
        for _ in range(a.rounds):
            for k, f in arms.items():
                t = time.perf_counter(); outs[k] = f(); times[k].append(round(time.perf_counter() - t, 3))
        med = {k: statistics.median(v) for k, v in times.items()}
        pred = {k: o.argmax(1) for k, o in outs.items()}
        r = dict(seconds=times, median_s=med, speedup=round(med['nchw'] / med['nhwc'], 2), trained_precision=precision,
                 accuracy_percent={k: round((p == y).float().mean().item() * 100, 2) for k, p in pred.items()},
                 predictions_differ=int((pred['nchw'] != pred['nhwc']).sum()),
                 max_abs_logit_difference=float((outs['nchw'] - outs['nhwc']).abs().max()))
        res['widths'][str(w)] = r
        print(f"width {w}: NCHW {med['nchw']:.2f} s, NHWC {med['nhwc']:.2f} s ({r['speedup']}x); "
              f"{r['predictions_differ']} of {len(x)} predictions differ, max |logit difference| {r['max_abs_logit_difference']:.2g}", flush=True)
    atomic_write_json(a.out, res)
    print('wrote', a.out)


if __name__ == '__main__':
    main()
