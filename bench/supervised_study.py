#!/usr/bin/env python
"""Why is the kit's supervised baseline below the plain-PyTorch reference at 0.2% labels? (issue 12)

`bench/quality.py` found the kit's tuned supervised baseline 1.7 +- 0.4 points below `bench/reference_supervised.py`
at 0.2% of Fashion-MNIST on an H200 (ResNet-50, the reference's own rate 3e-3, the same batch and steps), and 0.3 +- 0.1
below it in the cpu preset (ResNet-18 width 1/4). What is left between the two is the optimiser's settings: the kit
trains with fastai's Adam (`sqr_mom` 0.99, `eps` 1e-5) and weight decay 0.05 under fastai's one-cycle; the reference with
`torch.optim.AdamW` (betas (0.9, 0.999), eps 1e-8), weight decay 5e-4 under `OneCycleLR`. This study changes one of
them at a time in the kit's supervised learner and judges each arm against the kit's own base on **validation**
accuracy, paired over three seeds (label split and training), with `simclr_nb.evaluate.verdict`; the reference is
trained on the same labels beside them. Test accuracies are stored and never used for a choice.

The labeled subsets and the validation hold-out are the pipeline's (`make_splits`), on all 60,000 training images at 28
px. Each arm's result is written to the JSON as soon as it is done and reused when the study runs again.

The arm `views_channels_last` changes no value, only the memory layout of the augmented batches: until commit 45729a9
(2026-12-04) a 1-channel batch of 'translate' views came out with NHWC strides, so the whole baseline ran oneDNN's
channels-last kernels; since then NCHW. The same seed then rounds differently and ends elsewhere (the `cpu` run's
supervised rows, trained before 45729a9, are the `views_channels_last` arm's to the last digit, today's pipeline's the
`kit` arm's). Paired over many label splits it asks whether that move is noise or a systematic change of the baseline.

    python bench/supervised_study.py             # writes bench/results/supervised_study_<cpu|cuda>.json
    python bench/supervised_study.py --fraction 0.01 --seeds 0 1 2 3 4 5 6 7 8 9 --lr 0.01 --steps 500 \
        --arms kit views_channels_last --out bench/results/supervised_layout_1pct_cpu.json   # then --seeds 10 .. 19; 0.002 -> _0.2pct_
"""
import argparse, dataclasses, json, sys, time
from functools import partial
from pathlib import Path

import torch

from machine import machine_info               # bench/machine.py
import reference_supervised as reference       # bench/reference_supervised.py

from simclr_nb.checkpoint import atomic_write_json
from simclr_nb.data import load_dataset
from simclr_nb.evaluate import spread, verdict
from simclr_nb.optim import Adam
from simclr_nb.pipeline import PipelineConfig, make_splits, supervised_stage_learner, _accuracies, NoValidation, labeled_step_count
from simclr_nb.precision import resolve_precision
from fastai.callback.core import Callback
from fastai.torch_core import set_seed
from simclr_nb.augment import AugmentBatch

ROOT = Path(__file__).resolve().parent.parent

ARMS = {   # name: changes to the kit's supervised learner (base: fastai Adam, sqr_mom 0.99, eps 1e-5, wd 0.05)
    'kit': {},
    'wd_5e-4': dict(wd=5e-4),
    'torch_adam': dict(sqr_mom=0.999, eps=1e-8),
    'torch_adam_wd_5e-4': dict(sqr_mom=0.999, eps=1e-8, wd=5e-4),
    # the same values in another memory layout: before commit 45729a9 (2026-12-04) the 'translate' views of a 1-channel
    # batch came out with channels-last strides, so the whole network ran oneDNN's NHWC kernels; since then NCHW
    'views_channels_last': dict(layout='channels_last'),
}


def nhwc_strides(x):
    "`x` (B, C, H, W) with the same values and NHWC strides, also for C = 1 (where `contiguous(memory_format=channels_last)` keeps NCHW's)."
    B, C, H, W = x.shape
    return x.new_empty((B, H, W, C)).copy_(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)   # a fresh (B, H, W, C) buffer: strides (HWC, 1, WC, C)


class ViewsChannelsLast(Callback):
    "Each augmented training batch with NHWC strides (the same values): the layout the baseline's views had before 45729a9."
    order = AugmentBatch.order + 1
    def before_batch(self):
        if self.training: self.learn.xb = (nhwc_strides(self.xb[0]), *self.xb[1:])


def kit_arm(cfg, data, split, valid, seed, device, wd=None, layout=None, **adam):
    "The kit's supervised stage (`pipeline.supervised_stage_learner`, without a run folder), its Adam, weight decay or views' layout changed."
    set_seed(seed)
    learn, epochs, precision = supervised_stage_learner(cfg if wd is None else dataclasses.replace(cfg, supervised_wd=wd), data, split, device)
    if adam: learn.opt_func = partial(Adam, **adam)
    t = time.perf_counter()
    cbs = [NoValidation()] + ([ViewsChannelsLast()] if layout == 'channels_last' else [])
    with learn.no_logging(), learn.no_bar(): learn.fit(epochs, cbs=cbs)
    train_s = round(time.perf_counter() - t, 1)
    return dict(_accuracies(learn.model, data, cfg, valid, device), steps=epochs * len(learn.dls.train), train_s=train_s, precision=precision)


def reference_arm(cfg, data, split, valid, seed, device):
    "`bench/reference_supervised.py` on the same labels, rate, batch and steps (the kit's, `labeled_step_count`; its own weight decay 5e-4)."
    lab = split.labeled
    steps = labeled_step_count(cfg, len(lab), 'supervised')
    spec = cfg.teacher_spec(data.n_channels)
    r = reference.train_reference(data.train_x[lab], data.train_y[lab], spec=spec, n_classes=data.n_classes, size=cfg.image_size,
                                  eval_sets={'test': (data.test_x, data.test_y), 'valid': (data.train_x[valid], data.train_y[valid])},
                                  ft_layer=cfg.ft_layer, head_layers=cfg.head_layers, epochs=0, min_steps=steps, bs=cfg.finetune_bs,
                                  lr=cfg.supervised_lr, seed=seed, device=device,
                                  precision='bf16' if resolve_precision(cfg.precision, torch.device(device)) == 'bf16' else 'fp32')
    return dict(accuracy=r['test_accuracy'], valid_accuracy=r['valid_accuracy'], steps=r['steps'], train_s=round(r['wall_s'], 1), wd=r['wd'])


def study_config(fraction, seeds, lr, steps, bs=64, width=0.25, depth=18):
    "The pipeline's config of the study's supervised arms: all of Fashion-MNIST at 28 px, the given labels, rate, steps and batch"
    return PipelineConfig(dataset='fashion_mnist', image_size=28, depth=depth, width=width, label_fractions=(fraction,),
                          seeds=tuple(seeds), finetune_bs=bs, supervised_lr=lr, supervised_steps=steps,
                          ft_schedule='cosine').validate()   # its committed runs' setting (a run folder counts it as a change)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--fraction', type=float, default=0.002)
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--lr', type=float, default=3e-3, help="the supervised peak rate (the reference's; the GPU preset's choice)")
    ap.add_argument('--steps', type=int, default=300)
    ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--width', type=float, default=0.25)
    ap.add_argument('--depth', type=int, default=18)
    ap.add_argument('--arms', nargs='+', default=list(ARMS) + ['reference'])
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--out', default=None, help='default: bench/results/supervised_study_<cpu|cuda>.json')
    a = ap.parse_args(argv)
    bad = [x for x in a.arms if x not in ARMS and x != 'reference']
    if bad: sys.exit(f"unknown arm(s) {bad}: choose from {list(ARMS) + ['reference']}")

    out = Path(a.out or ROOT/'bench'/'results'/f"supervised_study_{torch.device(a.device).type}.json")
    cfg = study_config(a.fraction, a.seeds, a.lr, a.steps, a.bs, a.width, a.depth)
    settings = dict(fraction=a.fraction, seeds=a.seeds, lr=a.lr, steps=a.steps, bs=a.bs, depth=a.depth, width=a.width,
                    image_size=cfg.image_size, ft_layer=cfg.ft_layer, augment=cfg.supervised_augment,
                    reference_steps="the kit's (labeled_step_count)")   # before 2026-12-05: `steps`, fewer than the kit's
    old = json.loads(out.read_text()) if out.exists() else {}
    same = lambda d: {k: v for k, v in d.items() if k != 'seeds'}   # more seeds extend a study; any other change starts it again
    res = old if same(old.get('settings', {})) == same(settings) else {}
    settings['seeds'] = sorted(set(res.get('settings', {}).get('seeds', [])) | set(a.seeds))
    res.update(command=' '.join(['python', 'bench/supervised_study.py'] + (argv if argv is not None else sys.argv[1:])),
               settings=settings, machine=machine_info(a.device), arms_changes={k: ARMS.get(k, 'bench/reference_supervised.py') for k in a.arms})
    res.setdefault('runs', {})
    data = load_dataset('fashion_mnist')
    sp = make_splits(cfg, data)
    t0 = time.time()
    for seed in a.seeds:            # seeds outermost, arms interleaved: a stopped study has every arm of the seeds it finished
        split = sp.labeled[(a.fraction, seed)]
        for arm in a.arms:
            runs = res['runs'].setdefault(arm, {})
            if str(seed) in runs: continue
            r = (reference_arm(cfg, data, split, sp.valid, seed, a.device) if arm == 'reference'
                 else kit_arm(cfg, data, split, sp.valid, seed, a.device, **ARMS[arm]))
            runs[str(seed)] = r
            print(f"[{time.time() - t0:6.0f} s] {arm} seed {seed}: valid {r['valid_accuracy']:.4f} test {r['accuracy']:.4f} (training {r['train_s']} s)", flush=True)
            atomic_write_json(out, res)
    judged = {}
    for arm in a.arms:
        if arm == 'kit': continue
        v = {s: 100 * r['valid_accuracy'] for s, r in res['runs'][arm].items()}
        b = {s: 100 * r['valid_accuracy'] for s, r in res['runs']['kit'].items()}
        vd = verdict(v, b)
        judged[arm] = dict(against='kit', on='validation accuracy (%)', outcome=vd.outcome, difference=round(vd.difference, 2), se=round(vd.se, 2))
    res['verdicts'] = judged
    res['spread_percent'] = {arm: {part: {'mean': round(s.mean, 2), 'std': round(s.std, 2)}
                                   for part, key in (('valid', 'valid_accuracy'), ('test', 'accuracy'))
                                   for s in [spread({k: 100 * r[key] for k, r in res['runs'][arm].items()})]} for arm in a.arms}
    res['wall_s'] = round(time.time() - t0, 1)
    atomic_write_json(out, res)
    print(json.dumps({'verdicts': judged, 'spread_percent': res['spread_percent']}, indent=1))


if __name__ == '__main__':
    main()
