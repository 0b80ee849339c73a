#!/usr/bin/env python
"""A/B of a pipeline run's per-seed stages on this CPU (issue 13): the supervised baseline, fine-tuning and both
distillations of one label fraction and seed, with one change of the kit -- `new` -- against the code before it -- `old`,
the change undone by a patch in the `old` arm's process (`CHANGES`):

- `teacher_cache_foreach`: the distillation teacher's logits cached per view (`DistillCallback.cache_views`) and the CPU's
  foreach optimizer step for small networks (`optim.CPU_FOREACH_MAX_PARAMS`); old: the teacher run on every batch,
  fastai's per-tensor optimizer loop.
- `no_validation`: fastai's validation pass cancelled after every epoch (`pipeline.NoValidation`); old: one pass over
  the test images after the last epoch (`ValidateLast`, the kit before it), on top of the stages' own `_accuracies`.
- `labeled_cpu_layout`: the labeled stages and distillation with their CPU callbacks at the defaults
  (`cputune.cpu_training_callbacks`): glibc keeping freed memory, and at commit 3e0bf01 (`labeled_layout_ab_cpu.json`)
  also channels-last, as pretraining (a model with `channels_last_hazards`, such as the width-1/8 student, stays NCHW);
  old: neither. Channels-last changes the rounding of the convolutions' sums, and in bf16 it cost accuracy over label
  splits (`labeled_layout_accuracy.py`), so it is no longer the default; keeping freed memory changes no number.

Each arm runs in its own process on a copy of a finished run's pretraining, the arms interleaved over `--rounds`; the
stage wall times come from the pipeline's `metrics.json` (the seconds in fastai's validation passes timed apart per
stage, `fastai_validation_s`), and the accuracies must be the same in both arms (neither change alters a result beyond
float rounding).

    .venv/bin/python bench/demo_stage_ab.py --run runs/demo     # writes bench/results/demo_stage_ab_cpu.json
    .venv/bin/python bench/demo_stage_ab.py --change no_validation --run runs/fmnist_ab --fraction 0.002 \
        --out bench/results/no_validation_ab_cpu.json
"""
import argparse, json, os, shutil, statistics, subprocess, sys, time
from pathlib import Path

from machine import machine_info               # bench/machine.py
from simclr_nb.checkpoint import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent

CHANGES = {   # what the `old` arm runs instead of the kit's code
    'teacher_cache_foreach': '''
init = optim.ForeachOptimizer.__init__
optim.ForeachOptimizer.__init__ = lambda self, params, cbs, foreach=None, **d: init(self, params, cbs, foreach=False, **d)
distill.DistillCallback._teacher_views = lambda self: (None, 'off (A/B arm old)')
''',
    'no_validation': '''
from fastai.callback.core import CancelValidException
def validate_last(self):
    if self.epoch < self.n_epoch - 1: raise CancelValidException
pipeline.NoValidation.before_validate = validate_last
''',
    'labeled_cpu_layout': '''
from simclr_nb import finetune
finetune.cpu_training_callbacks = distill.cpu_training_callbacks = lambda *a, **k: []
distill.resolve_channels_last = lambda *a, **k: False
''',
}

ARM = r'''
import json, sys, time
from simclr_nb import optim, distill, pipeline
from simclr_nb.pipeline import run_pipeline, PipelineConfig, complete_saved_config
mode, change, out, fraction, seed = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
if mode == 'old': exec(sys.argv[6])
from fastai.learner import Learner
validate, stage, validation_s = Learner._do_epoch_validate, [None], {}
def timed_validate(self, *a, **k):   # both arms: seconds in fastai's validation passes (cancelled ones included), per stage
    t = time.perf_counter(); validate(self, *a, **k)
    validation_s[stage[0]] = validation_s.get(stage[0], 0.0) + time.perf_counter() - t
Learner._do_epoch_validate = timed_validate
def on_event(e):
    if e.status == 'started': stage[0] = e.key
cfg = PipelineConfig.from_dict(complete_saved_config(json.load(open(f'{out}/config.json'))))   # a field added since: what the run did
cfg.seeds, cfg.label_fractions = (seed,), (fraction,)
t = time.time()
r = run_pipeline(cfg, out=out, force=True, device='cpu', stages=('supervised', 'finetune', 'distill'), progress=False, log=lambda *a: None,
                 on_event=on_event)
print(json.dumps(dict(total_s=round(time.time() - t, 1),
                      stages={k: dict(wall_s=v['wall_s'], accuracy=v['accuracy'], steps=v.get('steps'), teacher_logits=v.get('teacher_logits'),
                                      fastai_validation_s=round(validation_s.get(k, 0.0), 2))
                              for k, v in r.metrics.items() if isinstance(v, dict) and 'wall_s' in v and k != 'pretrain'})))
'''


def arm_folder(run, dest):
    "A run folder holding only `run`'s configuration, label splits and finished pretraining."
    if dest.exists(): shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for f in ('config.json', 'pretrain.pth'): shutil.copy(run / f, dest / f)
    shutil.copytree(run / 'splits', dest / 'splits')
    atomic_write_json(dest / 'metrics.json', {'pretrain': json.loads((run / 'metrics.json').read_text())['pretrain']})


def start_arm(run, folder, mode, change, fraction, seed, threads=None):
    """A process running one seed's stages in `folder`, a fresh copy of `run`'s pretraining: the kit's code (`mode='new'`)
    or the code before `change` (`'old'`); with `threads` threads (default: the environment's)."""
    arm_folder(run, folder)
    env = None if threads is None else dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return subprocess.Popen([sys.executable, '-c', ARM, mode, change, str(folder), str(fraction), str(seed), CHANGES.get(change, '')],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)


def finish_arm(p, what) -> dict:
    "The stage results `p` (a `start_arm` process) printed, or exit with its error output when it failed."
    out, err = p.communicate()
    if p.returncode: sys.exit(f"{what} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def run_arguments(ap, name):
    "The options of an A/B over a finished run's per-seed stages (this script's and `seed_parallel.py`'s); `name` names the work folder and JSON."
    ap.add_argument('--run', default=str(ROOT / 'runs' / 'demo'), help='a finished run (its configuration and pretraining are reused)')
    ap.add_argument('--fraction', type=float, default=0.1)
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--work', default=str(ROOT / 'runs' / name))
    ap.add_argument('--out', default=str(ROOT / 'bench' / 'results' / f'{name}_cpu.json'))


def finished_run(path) -> Path:
    "`path` as a `Path`, or exit naming what is missing when it holds no finished pretraining."
    run = Path(path)
    if not (run / 'pretrain.pth').exists(): sys.exit(f"{run} has no finished pretraining: run `make demo` (or the pipeline's pretrain stage) first")
    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--change', choices=sorted(CHANGES), default='teacher_cache_foreach')
    ap.add_argument('--seed', type=int, default=0)
    run_arguments(ap, 'demo_stage_ab')
    a = ap.parse_args(argv)
    run, work = finished_run(a.run), Path(a.work)
    res = dict(command='python bench/demo_stage_ab.py ' + ' '.join(sys.argv[1:] if argv is None else argv), machine=machine_info('cpu'),
               change=a.change, old_arm=CHANGES[a.change], fraction=a.fraction, seed=a.seed, rounds=[], what=__doc__.split('\n\n')[0])
    t0 = time.time()
    for r in range(a.rounds):
        rnd = {}
        for mode in ('old', 'new'):
            rnd[mode] = finish_arm(start_arm(run, work / mode, mode, a.change, a.fraction, a.seed), f'arm {mode}')
            print(f"round {r} {mode}: {rnd[mode]['total_s']} s", flush=True)
        res['rounds'].append(rnd)
        atomic_write_json(Path(a.out), res)
    keys = list(res['rounds'][0]['old']['stages'])
    res['median_wall_s'] = {m: {k: statistics.median(rd[m]['stages'][k]['wall_s'] for rd in res['rounds']) for k in keys} for m in ('old', 'new')}
    res['ratio_new_to_old'] = {k: round(res['median_wall_s']['new'][k] / res['median_wall_s']['old'][k], 3) for k in keys}
    res['median_fastai_validation_s'] = {m: {k: statistics.median(rd[m]['stages'][k].get('fastai_validation_s', 0.0) for rd in res['rounds'])
                                             for k in keys} for m in ('old', 'new')}
    res['same_accuracy'] = all(rd['old']['stages'][k]['accuracy'] == rd['new']['stages'][k]['accuracy'] for rd in res['rounds'] for k in keys)
    res['accuracy_new_minus_old'] = {k: [round(100 * (rd['new']['stages'][k]['accuracy'] - rd['old']['stages'][k]['accuracy']), 2) for rd in res['rounds']]
                                     for k in keys}   # points, per round (the same seed: 0 where a change keeps the arithmetic)
    res['wall_s'] = round(time.time() - t0, 1)
    atomic_write_json(Path(a.out), res)
    print(json.dumps({'ratio_new_to_old': res['ratio_new_to_old'], 'same_accuracy': res['same_accuracy']}))


if __name__ == '__main__':
    main()
