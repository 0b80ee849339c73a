#!/usr/bin/env python
"""`make demo`'s run timed as a new user runs it (issue 12: the demo under 10 minutes on the 2-core machine): the
Makefile's own `simclr-nb run` command with its `--jobs` set to each value of `--jobs`, interleaved over `--rounds`, each
run in a fresh folder with nothing else running. Wall time of the whole command (imports, splits, report included), the
stages' own wall times from its `metrics.json`, and every stage's test accuracy: a run with 2 jobs trains the per-seed
stages with 1 thread per process, and a thread count changes the order of float sums, so the arms' accuracies may differ
in the last digits (the same arm's should not).

    .venv/bin/python bench/demo_runs.py --jobs 1 2 --rounds 2 --keep runs/demo   # writes bench/results/demo_jobs_cpu.json

`--keep`: the last run of the last `--jobs` value is moved there (e.g. `runs/demo`, for `make demo-record`).
"""
import argparse, json, re, shlex, shutil, statistics, subprocess, sys, time
from pathlib import Path

from machine import ROOT, machine_info          # bench/machine.py
from simclr_nb.checkpoint import atomic_write_json
from simclr_nb.pipeline import REPORT_KEYS, stage_method


def demo_command() -> list:
    "The arguments of `simclr-nb` in the Makefile's `demo` recipe (one source: the benchmark times what `make demo` runs)."
    m = re.search(r"^demo:.*\n\t\$\(BIN\)/simclr-nb (.+)$", (ROOT / 'Makefile').read_text(), re.M)
    if not m: sys.exit("bench/demo_runs.py: no `$(BIN)/simclr-nb ...` line under the Makefile's demo target")
    return shlex.split(m.group(1))


def with_option(args, flag, value):
    "`args` with `flag value` set (replaced when present)."
    args = list(args)
    if flag in args: args[args.index(flag) + 1] = str(value)
    else: args += [flag, str(value)]
    return args


def timed_run(args, folder: Path) -> dict:
    "Run `simclr-nb args` with `--out folder` (fresh); its wall time, stage times per kind and stage accuracies."
    if folder.exists(): shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(Path(sys.executable).parent / 'simclr-nb'), *with_option(args, '--out', folder)]
    started = time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())
    t = time.perf_counter()
    with open(f'{folder}.log', 'w') as log: rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    wall = round(time.perf_counter() - t, 1)
    if rc: sys.exit(f"{' '.join(cmd)} failed (exit {rc}); its output is in {folder}.log")
    m = json.loads((folder / 'metrics.json').read_text())
    stages = {k: v for k, v in m.items() if k not in REPORT_KEYS}
    kinds = {}
    for k, v in stages.items(): kinds[stage_method(k)] = round(kinds.get(stage_method(k), 0) + v['wall_s'], 1)
    return dict(started=started, wall_s=wall, stages_s=round(sum(v['wall_s'] for v in stages.values()), 1), per_stage_kind_s=kinds,
                processes=m.get('processes'),
                accuracy={k: v.get('accuracy', v.get('knn_accuracy')) for k, v in stages.items()})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--jobs', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--work', default='runs/demo_runs', help='where the runs go (one folder per arm, replaced each round)')
    ap.add_argument('--keep', default=None, help="move the last run of the last --jobs value here (e.g. runs/demo)")
    ap.add_argument('--out', default='bench/results/demo_jobs_cpu.json')
    a = ap.parse_args(argv)
    base, work = demo_command(), ROOT / a.work
    res = dict(command='python bench/demo_runs.py ' + ' '.join(sys.argv[1:] if argv is None else argv),
               demo_command='simclr-nb ' + ' '.join(base), what=__doc__.split('\n\n')[0], machine=machine_info('cpu'), rounds=[])
    t0 = time.time()
    for r in range(a.rounds):
        rnd = {}
        for j in a.jobs:
            rnd[str(j)] = timed_run(with_option(base, '--jobs', j), work / f'jobs{j}')
            print(f"round {r}, jobs {j}: {rnd[str(j)]['wall_s']} s (stages {rnd[str(j)]['stages_s']} s)", flush=True)
        res['rounds'].append(rnd)
        atomic_write_json(ROOT / a.out, res)
    arms = [str(j) for j in a.jobs]
    res['median_wall_s'] = {j: statistics.median(rd[j]['wall_s'] for rd in res['rounds']) for j in arms}
    res['same_accuracies_within_arm'] = {j: all(rd[j]['accuracy'] == res['rounds'][0][j]['accuracy'] for rd in res['rounds']) for j in arms}
    if len(arms) > 1: res['speedup'] = {j: round(res['median_wall_s'][arms[0]] / res['median_wall_s'][j], 3) for j in arms[1:]}
    res['wall_s'] = round(time.time() - t0, 1)
    if a.keep:
        keep = ROOT / a.keep
        if keep.exists(): shutil.move(str(keep), str(keep) + time.strftime('.before-%Y%m%d-%H%M%S'))
        shutil.move(str(work / f'jobs{arms[-1]}'), str(keep))
        res['kept'] = dict(arm=arms[-1], round=a.rounds - 1, folder=a.keep)
    atomic_write_json(ROOT / a.out, res)
    print(json.dumps({k: res[k] for k in ('median_wall_s', 'speedup', 'same_accuracies_within_arm') if k in res}))


if __name__ == '__main__':
    main()
