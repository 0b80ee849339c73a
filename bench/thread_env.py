#!/usr/bin/env python
"""Does a training run repeat to the last digit under another thread environment? (what "reproduced" means here)

The benchmark's checks say a stage was "reproduced to the last digit" when today's code retrains a committed row. A CPU
adds floats in an order that depends on how many threads share the work, so that holds only under the same thread
environment. This check trains the kit's supervised stage (`bench/supervised_study.py`'s `kit` arm: 1% of Fashion-MNIST,
label seed 0, rate 1e-2, 500 steps, the settings of `supervised_layout_1pct_cpu.json`) in fresh processes that differ
only in their threads, and compares each with that committed row:
- `default`: the process starts with the machine's threads (torch's default: one per core);
- `set_num_threads_1`: the same start, then `torch.set_num_threads(1)`, as `run_pipeline(..., jobs=2)` gives each job;
- `omp_1_at_start`: the process starts with `OMP_NUM_THREADS=1` in its environment (what DEVELOPERS.md's `nbdev-test` line does).

    python bench/thread_env.py        # writes bench/results/thread_env_cpu.json (about 4 minutes on 2 cores)
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENVS = {'default': {}, 'set_num_threads_1': {}, 'omp_1_at_start': {'OMP_NUM_THREADS': '1'}}
FRACTION, SEED, LR, STEPS = 0.01, 0, 1e-2, 500   # the committed supervised_layout_1pct_cpu.json's kit arm


def child(env):
    "Train the `kit` arm once in this process and print its result as JSON (run by `main` in a fresh process per environment)"
    import torch
    if env == 'set_num_threads_1': torch.set_num_threads(1)
    from supervised_study import kit_arm, study_config
    from simclr_nb.data import load_dataset
    from simclr_nb.pipeline import make_splits
    cfg, data = study_config(FRACTION, [SEED], LR, STEPS), load_dataset('fashion_mnist')
    sp = make_splits(cfg, data)
    r = kit_arm(cfg, data, sp.labeled[(FRACTION, SEED)], sp.valid, SEED, 'cpu')
    print(json.dumps(dict(r, torch_threads=torch.get_num_threads(), omp_num_threads=os.environ.get('OMP_NUM_THREADS'))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--child', choices=ENVS, help=argparse.SUPPRESS)
    ap.add_argument('--out', default=str(ROOT/'bench'/'results'/'thread_env_cpu.json'))
    a = ap.parse_args(argv)
    if a.child: return child(a.child)
    from machine import machine_info
    from simclr_nb.checkpoint import atomic_write_json
    committed = json.loads((ROOT/'bench'/'results'/'supervised_layout_1pct_cpu.json').read_text())['runs']['kit'][str(SEED)]
    res = dict(command='python bench/thread_env.py', machine=machine_info('cpu'), committed=committed,
               committed_from='bench/results/supervised_layout_1pct_cpu.json, arm kit, label seed 0', runs={})
    base = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}   # each child adds its own
    for env, extra in ENVS.items():
        t = time.time()
        out = subprocess.run([sys.executable, __file__, '--child', env], env={**base, **extra}, check=True, capture_output=True, text=True).stdout
        r = res['runs'][env] = json.loads(out.strip().splitlines()[-1])
        r['equals_committed'] = r['accuracy'] == committed['accuracy'] and r['valid_accuracy'] == committed['valid_accuracy']
        print(f"{env}: test {r['accuracy']:.4f}, validation {r['valid_accuracy']:.4f}, {r['torch_threads']} torch threads, "
              f"equals the committed row: {r['equals_committed']} ({time.time() - t:.0f} s)", flush=True)
        atomic_write_json(Path(a.out), res)


if __name__ == '__main__':
    main()
