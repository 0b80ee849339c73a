#!/usr/bin/env python
"""Does training the labeled stages channels-last cost accuracy? (issues 12 and 13)

Fine-tuning and the supervised baseline trained channels-last on a CPU from commit 3e0bf01 to a497708
(`cputune.cpu_training_callbacks`), 1.33-1.39x faster per stage (`bench/demo_stage_ab.py --change labeled_cpu_layout`).
The layout changes only the order of the convolutions' sums, so each run is another rounding draw of the same training;
this study asks whether the draws differ systematically (they did: NCHW is the default again since a497708). For each
label split it trains both stages in both layouts with the pipeline's own learners (`pipeline.finetune_stage_learner`,
`pipeline.supervised_stage_learner`, what the stages fit, without a run folder) on a finished preset's pretraining,
patching the learners' `cpu_training_callbacks`: the `nhwc` arm asks for pretraining's layout rule
(`channels_last=None`) with freed memory kept, the `nchw` arm adds neither (the code before 3e0bf01). Each
stage's NHWC arm is judged against its NCHW arm by `verdict`, paired over the label splits, on validation (where a
setting is chosen) and on test. A split an arm already has in the JSON is kept: more `--seeds` extend the study.

    .venv/bin/python bench/labeled_layout_accuracy.py --run runs/ab_layout_src --seeds 0 1 2 3 4 5
        # writes bench/results/labeled_layout_accuracy_cpu.json (the run's precision: bf16 where the CPU runs it natively)
    .venv/bin/python bench/labeled_layout_accuracy.py --run runs/ab_layout_src --precision fp32
        # the same study in fp32: is the NHWC arm's loss the layout itself or bf16 in that layout?
        # writes bench/results/labeled_layout_accuracy_fp32_cpu.json
"""
import argparse, json, statistics, sys, time
from pathlib import Path

import torch

from fastai.torch_core import set_seed
from machine import machine_info               # bench/machine.py

from simclr_nb import finetune
from simclr_nb.checkpoint import atomic_write_json
from simclr_nb.data import load_dataset
from simclr_nb.evaluate import verdict
from simclr_nb.pipeline import (PipelineConfig, NoValidation, finetune_stage_learner, supervised_stage_learner, load_pretrained,
                                make_splits, complete_saved_config, _accuracies)

ROOT = Path(__file__).resolve().parent.parent
ARMS, STAGES = ('nchw', 'nhwc'), ('finetune', 'supervised')
KIT = finetune.cpu_training_callbacks   # the kit's own, which the arms patch around


def train(stage, arm, cfg, data, split, valid, seed, run):
    "One stage, one label split, one layout: the pipeline's learner fitted as its stage fits it; accuracies and seconds."
    finetune.cpu_training_callbacks = ((lambda model, device, channels_last=False, keep_freed_memory=None: KIT(model, device, None, keep_freed_memory))
                                       if arm == 'nhwc' else (lambda *a, **k: []))   # nhwc: the layout rule; nchw: the code before 3e0bf01
    set_seed(seed)
    t = time.perf_counter()
    if stage == 'finetune': learn, epochs, precision = finetune_stage_learner(cfg, data, split, load_pretrained(run))
    else: learn, epochs, precision = supervised_stage_learner(cfg, data, split)
    with learn.no_logging(), learn.no_bar(): learn.fit(epochs, cbs=NoValidation())
    nhwc = any(p.ndim == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in learn.model.parameters())
    if nhwc != (arm == 'nhwc'): sys.exit(f"arm {arm}: the model trained {'channels-last' if nhwc else 'NCHW'}; the arm measures nothing")
    return dict(_accuracies(learn.model, data, cfg, valid), wall_s=round(time.perf_counter() - t, 1), precision=precision, model_nhwc=nhwc)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--run', required=True, help="a run folder with a finished pretraining and the preset's config.json (e.g. a copy of a quality preset's final folder)")
    ap.add_argument('--fraction', type=float, default=0.002)
    ap.add_argument('--seeds', type=int, nargs='+', default=list(range(6)))
    ap.add_argument('--precision', choices=('fp32', 'bf16'), default=None, help="train both arms in this precision (default: the run's config)")
    ap.add_argument('--out', default=None, help="default bench/results/labeled_layout_accuracy_cpu.json, or ..._<precision>_cpu.json with --precision")
    a = ap.parse_args(argv)
    a.out = a.out or str(ROOT / 'bench' / 'results' / f"labeled_layout_accuracy{'_' + a.precision if a.precision else ''}_cpu.json")
    run, out = Path(a.run), Path(a.out)
    if not (run / 'pretrain.pth').exists(): sys.exit(f"{run} has no finished pretraining (pretrain.pth)")
    cfg = PipelineConfig.from_dict({**complete_saved_config(json.loads((run / 'config.json').read_text())),
                                    'label_fractions': [a.fraction], 'seeds': a.seeds, **({'precision': a.precision} if a.precision else {})}).validate()
    old = json.loads(out.read_text()) if out.exists() else {}
    res = old if old.get('fraction') == a.fraction and old.get('run') == str(run) and old.get('config', {}).get('precision') == cfg.precision else {}
    res.update(run=str(run), fraction=a.fraction, config=cfg.to_dict(), machine=machine_info('cpu'), what=__doc__.split('\n\n')[0],
               command=' '.join(['python', 'bench/labeled_layout_accuracy.py'] + (argv if argv is not None else sys.argv[1:])))
    res.setdefault('runs', {})
    data = load_dataset(cfg.dataset)
    sp, t0 = make_splits(cfg, data), time.time()
    for seed in a.seeds:
        for stage in STAGES:
            for arm in ARMS:   # interleaved per split and stage
                done = res['runs'].setdefault(stage, {}).setdefault(arm, {})
                if str(seed) in done: continue
                done[str(seed)] = train(stage, arm, cfg, data, sp.labeled[(a.fraction, seed)], sp.valid, seed, run)
                print(f"[{time.time() - t0:6.0f} s] {stage} {arm}, label seed {seed}: {done[str(seed)]}", flush=True)
                atomic_write_json(out, res)   # nothing finished is lost
    res['verdicts'], res['median_speedup'] = {}, {}
    for stage, arms in res['runs'].items():
        seeds = sorted(set(arms.get('nchw', {})) & set(arms.get('nhwc', {})), key=int)
        if len(seeds) < 2: continue
        get = lambda arm, key: {int(s): arms[arm][s][key] for s in seeds}
        res['verdicts'][stage] = {part: verdict(get('nhwc', key), get('nchw', key), unit='label seed').to_dict()
                                  for part, key in (('validation', 'valid_accuracy'), ('test', 'accuracy'))}
        res['median_speedup'][stage] = round(statistics.median(arms['nchw'][s]['wall_s'] / arms['nhwc'][s]['wall_s'] for s in seeds), 3)
    atomic_write_json(out, res)
    print(json.dumps(dict(verdicts={st: {p: v['text'] for p, v in d.items()} for st, d in res['verdicts'].items()},
                          median_speedup=res['median_speedup']), indent=1))


if __name__ == '__main__':
    main()
