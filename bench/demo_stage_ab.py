#!/usr/bin/env python
"""A/B of the demo's per-seed stages on this CPU (issue 13): the supervised baseline, fine-tuning and both distillations
of one label fraction and seed, with the distillation teacher's logits cached per view (`DistillCallback.cache_views`)
and the CPU's foreach optimizer step for small networks (`optim.CPU_FOREACH_MAX_PARAMS`) -- `new` -- against neither --
`old` (the teacher run on every batch, fastai's per-tensor optimizer loop). Each arm runs in its own process on a copy of
a finished demo run's pretraining, the arms interleaved over `--rounds`; the stage wall times come from the pipeline's
`metrics.json`, and the accuracies must be the same in both arms (the two changes alter no result beyond float rounding).

    .venv/bin/python bench/demo_stage_ab.py --run runs/demo     # writes bench/results/demo_stage_ab_cpu.json
"""
import argparse, json, shutil, statistics, subprocess, sys, time
from pathlib import Path

from machine import machine_info               # bench/machine.py
from simclr_nb.checkpoint import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent

ARM = r'''
import json, sys, time
from simclr_nb import optim, distill
from simclr_nb.pipeline import run_pipeline, PipelineConfig
mode, out, fraction, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
if mode == 'old':
    init = optim.ForeachOptimizer.__init__
    optim.ForeachOptimizer.__init__ = lambda self, params, cbs, foreach=None, **d: init(self, params, cbs, foreach=False, **d)
    distill.DistillCallback._teacher_views = lambda self: (None, 'off (A/B arm old)')
cfg = PipelineConfig.from_dict(json.load(open(f'{out}/config.json')))
cfg.seeds, cfg.label_fractions = (seed,), (fraction,)
t = time.time()
r = run_pipeline(cfg, out=out, force=True, device='cpu', stages=('supervised', 'finetune', 'distill'), progress=False, log=lambda *a: None)
print(json.dumps(dict(total_s=round(time.time() - t, 1),
                      stages={k: dict(wall_s=v['wall_s'], accuracy=v['accuracy'], teacher_logits=v.get('teacher_logits'))
                              for k, v in r.metrics.items() if isinstance(v, dict) and 'wall_s' in v and k != 'pretrain'})))
'''


def arm_folder(run, dest):
    "A run folder holding only `run`'s configuration, label splits and finished pretraining."
    if dest.exists(): shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for f in ('config.json', 'pretrain.pth'): shutil.copy(run / f, dest / f)
    shutil.copytree(run / 'splits', dest / 'splits')
    atomic_write_json(dest / 'metrics.json', {'pretrain': json.loads((run / 'metrics.json').read_text())['pretrain']})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--run', default=str(ROOT / 'runs' / 'demo'), help='a finished demo run (its pretraining is reused)')
    ap.add_argument('--fraction', type=float, default=0.1)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--work', default=str(ROOT / 'runs' / 'demo_stage_ab'))
    ap.add_argument('--out', default=str(ROOT / 'bench' / 'results' / 'demo_stage_ab_cpu.json'))
    a = ap.parse_args(argv)
    run, work = Path(a.run), Path(a.work)
    if not (run / 'pretrain.pth').exists(): sys.exit(f"{run} has no finished pretraining: run `make demo` first")
    res = dict(command='python bench/demo_stage_ab.py ' + ' '.join(sys.argv[1:] if argv is None else argv), machine=machine_info('cpu'),
               fraction=a.fraction, seed=a.seed, rounds=[], what=__doc__.split('\n\n')[0])
    t0 = time.time()
    for r in range(a.rounds):
        rnd = {}
        for mode in ('old', 'new'):
            arm_folder(run, work / mode)
            p = subprocess.run([sys.executable, '-c', ARM, mode, str(work / mode), str(a.fraction), str(a.seed)],
                               capture_output=True, text=True, cwd=ROOT)
            if p.returncode: sys.exit(f"arm {mode} failed:\n{p.stderr[-3000:]}")
            rnd[mode] = json.loads(p.stdout.strip().splitlines()[-1])
            print(f"round {r} {mode}: {rnd[mode]['total_s']} s", flush=True)
        res['rounds'].append(rnd)
        atomic_write_json(Path(a.out), res)
    keys = list(res['rounds'][0]['old']['stages'])
    res['median_wall_s'] = {m: {k: statistics.median(rd[m]['stages'][k]['wall_s'] for rd in res['rounds']) for k in keys} for m in ('old', 'new')}
    res['ratio_new_to_old'] = {k: round(res['median_wall_s']['new'][k] / res['median_wall_s']['old'][k], 3) for k in keys}
    res['same_accuracy'] = all(rd['old']['stages'][k]['accuracy'] == rd['new']['stages'][k]['accuracy'] for rd in res['rounds'] for k in keys)
    res['wall_s'] = round(time.time() - t0, 1)
    atomic_write_json(Path(a.out), res)
    print(json.dumps({'ratio_new_to_old': res['ratio_new_to_old'], 'same_accuracy': res['same_accuracy']}))


if __name__ == '__main__':
    main()
