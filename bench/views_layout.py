#!/usr/bin/env python
"""Does the memory layout of the fine-tuning views change the fine-tuned row? (issue 12)

`bench/supervised_study.py`'s arm `views_channels_last` trains the tuned supervised baseline on NHWC-strided views, its
layout before commit 45729a9, the one change that moved the `cpu` run's supervised rows against today's NCHW ones: the
values of the views are the same, only oneDNN's kernels and so the rounding differ. Fine-tuning has always run on NCHW
views ('flip' gathers nothing); this study asks whether its row moves with the layout too. It fine-tunes, with the pipeline's own `finetune_stage` (through
`run_pipeline`, stage 'finetune'), a finished preset's pretraining on the same label splits in each layout; the NHWC arm
adds `supervised_study.ViewsChannelsLast` to the fine-tuning learner's callbacks. The `nchw` arm is the preset's own
row, against which the NHWC arm is judged; `--arms nchw` retrains it and checks it equals the committed values.

    python bench/views_layout.py --fraction 0.01 --seeds 0 1 2 3 4 5 6 7 8 9   # writes bench/results/views_layout_1pct_cpu.json
    python bench/views_layout.py --fraction 0.002 --seeds 0 --arms nchw        # the check, into views_layout_0.2pct_cpu.json
"""
import argparse, contextlib, json, sys, time
from pathlib import Path

from machine import machine_info               # bench/machine.py
from supervised_study import ViewsChannelsLast

import simclr_nb.finetune
from simclr_nb.checkpoint import atomic_write_json
from simclr_nb.data import load_dataset
from simclr_nb.evaluate import verdict
from simclr_nb.pipeline import PipelineConfig, run_pipeline, share_stages, fraction_tag, stage_key

ROOT = Path(__file__).resolve().parent.parent
ARMS = ('nchw', 'nhwc')


@contextlib.contextmanager
def views_layout(layout):
    "Within the block the pipeline's fine-tuning learners get NHWC-strided views (`layout='nhwc'`) or are left as they are ('nchw')."
    orig = simclr_nb.finetune.finetune_learner
    if layout == 'nhwc':   # `finetune_stage` imports `finetune_learner` from the module when it runs
        simclr_nb.finetune.finetune_learner = lambda *a, cbs=None, **k: orig(*a, cbs=[*(cbs or []), ViewsChannelsLast()], **k)
    try: yield
    finally: simclr_nb.finetune.finetune_learner = orig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--preset', default='cpu_long_label_seeds', help="the quality preset whose pretraining and settings are fine-tuned")
    ap.add_argument('--fraction', type=float, default=0.01)
    ap.add_argument('--seeds', type=int, nargs='+', default=list(range(10)))
    ap.add_argument('--arms', nargs='+', default=['nhwc'], choices=ARMS, help="'nchw' retrains the preset's own row (a check)")
    ap.add_argument('--out', default=None, help='default: bench/results/views_layout_<fraction>_cpu.json')
    a = ap.parse_args(argv)
    tag = fraction_tag(a.fraction)
    out = Path(a.out or ROOT/'bench'/'results'/f'views_layout_{tag}_cpu.json')
    preset = json.loads((ROOT/'bench'/'results'/f'quality_{a.preset}.json').read_text())
    src = ROOT/'runs'/f'bench_quality_{a.preset}'
    final = next((src/tag).glob('final__*'), None)
    if final is None: sys.exit(f"{src/tag} has no finished rows: run `python bench/quality.py --preset {a.preset}` first")
    cfg = PipelineConfig.from_dict({**json.loads((final/'config.json').read_text()), 'label_fractions': [a.fraction], 'seeds': a.seeds}).validate()
    committed = {int(s): v for s, v in preset['accuracy_percent']['finetune'][tag]['values'].items()}
    old = json.loads(out.read_text()) if out.exists() else {}
    res = old if old.get('preset') == a.preset and old.get('fraction') == a.fraction else {}
    res.update(preset=a.preset, fraction=a.fraction, config=cfg.to_dict(), machine=machine_info('cpu'))
    res.setdefault('runs', {}); res.setdefault('commands', {})
    for arm in a.arms: res['commands'][arm] = ' '.join(['python', 'bench/views_layout.py'] + (argv if argv is not None else sys.argv[1:]))
    data = load_dataset(cfg.dataset)
    t0 = time.time()
    for arm in a.arms:
        folder = ROOT/'runs'/'views_layout'/tag/arm
        if not (folder/'pretrain.pth').exists(): share_stages(src/'pretrain', folder, ['pretrain'])   # hard-linked, not retrained
        with views_layout(arm):
            r = run_pipeline(cfg, folder, stages=('finetune',), data=data, progress=False,
                             log=lambda *m: print(f"[{time.time() - t0:6.0f} s] {arm}:", *m, flush=True))
        res['runs'].setdefault(arm, {}).update({str(s): {k: r.metrics[stage_key('finetune', a.fraction, s)][k] for k in ('accuracy', 'valid_accuracy', 'wall_s')}
                                                for s in a.seeds})   # more seeds extend an arm
        atomic_write_json(out, res)
    runs = res['runs']
    if 'nchw' in runs:   # the check: today's pipeline retrains the preset's committed row (on the seeds it was asked for)
        res['nchw_equals_preset'] = all(round(100 * v['accuracy'], 2) == committed.get(int(s)) for s, v in runs['nchw'].items())
    # the NHWC arm against the preset's committed row (NCHW: fine-tuning's views always were), paired over the seeds
    nhwc = lambda key: {int(s): v[key] for s, v in runs.get('nhwc', {}).items()}   # {seed: accuracy}, a fraction
    nchw = lambda table: {int(s): v / 100 for s, v in preset[table]['finetune'][tag]['values'].items()}
    if 'nhwc' in runs:
        res['verdicts'] = {part: verdict(x, {s: y[s] for s in x}, unit='label seed').to_dict() for part, x, y in
                           (('test', nhwc('accuracy'), nchw('accuracy_percent')), ('validation', nhwc('valid_accuracy'), nchw('valid_accuracy_percent')))}
    atomic_write_json(out, res)
    print(json.dumps(res.get('verdicts'), indent=1), 'nchw_equals_preset:', res.get('nchw_equals_preset'))


if __name__ == '__main__':
    main()
