#!/usr/bin/env python
"""Does the memory layout of the fine-tuning views change the fine-tuned row? (issue 12)

`bench/supervised_study.py`'s arm `views_channels_last` trains the tuned supervised baseline on NHWC-strided views, its
layout before commit 45729a9, the one change that moved the `cpu` run's supervised rows against today's NCHW ones: the
values of the views are the same, only oneDNN's kernels and so the rounding differ. Fine-tuning has always run on NCHW
views ('flip' gathers nothing); this study asks whether its row moves with the layout too. It fine-tunes a finished preset's pretraining on the same label
splits in each layout with the pipeline's own learner (`pipeline.finetune_stage_learner`, what `finetune_stage` fits,
without a run folder); the NHWC arm fits it with `supervised_study.ViewsChannelsLast` added. The `nchw` arm is the
preset's own row, against which the NHWC arm is judged; `--arms nchw` retrains it and checks it equals the committed values.
A seed an arm already has in the JSON is kept, not trained again: retrain into a fresh `--out` to repeat the check.

    python bench/views_layout.py --fraction 0.01 --seeds 0 1 2 3 4 5 6 7 8 9   # writes bench/results/views_layout_1pct_cpu.json
    python bench/views_layout.py --fraction 0.002 --seeds 0 --arms nchw        # the check, into views_layout_0.2pct_cpu.json
    python bench/views_layout.py --fraction 0.002 --seeds 0 --arms nchw --out /tmp/check.json   # the check again, retrained
"""
import argparse, json, sys, time
from pathlib import Path

from fastai.torch_core import set_seed
from machine import machine_info               # bench/machine.py
from supervised_study import ViewsChannelsLast

from simclr_nb.checkpoint import atomic_write_json
from simclr_nb.data import load_dataset
from simclr_nb.evaluate import verdict
from simclr_nb.pipeline import (PipelineConfig, NoValidation, finetune_stage_learner, load_pretrained, make_splits, fraction_tag,
                                _accuracies)

ROOT = Path(__file__).resolve().parent.parent
ARMS = ('nchw', 'nhwc')


def finetune_arm(cfg, data, split, valid, seed, src, layout):
    "`finetune_stage` without a run folder: the same seed, pretraining (`src`'s) and learner (`pipeline.finetune_stage_learner`), its views NHWC-strided for `layout='nhwc'`."
    t = time.perf_counter()
    set_seed(seed)
    learn, epochs, precision = finetune_stage_learner(cfg, data, split, load_pretrained(src))
    with learn.no_logging(), learn.no_bar(): learn.fit(epochs, cbs=[NoValidation()] + ([ViewsChannelsLast()] if layout == 'nhwc' else []))
    return dict(_accuracies(learn.model, data, cfg, valid), wall_s=round(time.perf_counter() - t, 1), precision=precision)


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
    committed = lambda table: {int(s): v for s, v in preset[table]['finetune'][tag]['values'].items()}   # {seed: %}, the preset's NCHW row
    old = json.loads(out.read_text()) if out.exists() else {}
    res = old if old.get('preset') == a.preset and old.get('fraction') == a.fraction else {}
    res.update(preset=a.preset, fraction=a.fraction, config=cfg.to_dict(), machine=machine_info('cpu'))
    res.setdefault('runs', {}); res.setdefault('commands', {})
    for arm in a.arms: res['commands'][arm] = ' '.join(['python', 'bench/views_layout.py'] + (argv if argv is not None else sys.argv[1:]))
    data = load_dataset(cfg.dataset)
    sp, t0 = make_splits(cfg, data), time.time()
    for seed in a.seeds:
        for arm in a.arms:   # interleaved per split; more seeds extend an arm, finished ones are kept
            if str(seed) in res['runs'].get(arm, {}): continue
            r = res['runs'].setdefault(arm, {})[str(seed)] = finetune_arm(cfg, data, sp.labeled[(a.fraction, seed)], sp.valid, seed, src/'pretrain', arm)
            print(f"[{time.time() - t0:6.0f} s] {arm}, label seed {seed}: {r}", flush=True)
            atomic_write_json(out, res)   # nothing finished is lost
    runs = res['runs']
    if 'nchw' in runs:   # the check: today's pipeline retrains the preset's committed row (on the seeds it was asked for)
        row = committed('accuracy_percent')
        res['nchw_equals_preset'] = all(round(100 * v['accuracy'], 2) == row.get(int(s)) for s, v in runs['nchw'].items())
    # the NHWC arm against the preset's committed row (NCHW: fine-tuning's views always were), paired over the seeds
    nhwc = lambda key: {int(s): v[key] for s, v in runs.get('nhwc', {}).items()}   # {seed: accuracy}, a fraction
    if 'nhwc' in runs:
        res['verdicts'] = {part: verdict(x, {s: y[s] / 100 for s in x}, unit='label seed').to_dict() for part, x, y in
                           (('test', nhwc('accuracy'), committed('accuracy_percent')), ('validation', nhwc('valid_accuracy'), committed('valid_accuracy_percent')))}
    atomic_write_json(out, res)
    print(json.dumps(res.get('verdicts'), indent=1), 'nchw_equals_preset:', res.get('nchw_equals_preset'))


if __name__ == '__main__':
    main()
