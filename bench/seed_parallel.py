#!/usr/bin/env python
"""Two seeds' stages side by side, one thread each, against one after the other on every core (issue 12: the demo's
10 minutes on a 2-core machine). The per-seed stages of a run (supervised, fine-tuning, both distillations) are small
networks on small images: on 2 cores a step's operations may be too small to keep two threads busy, and two processes
with one thread each could finish two seeds sooner than one process with two threads does them in turn.

Arms, interleaved over `--rounds`, each on fresh copies of a finished run's pretraining (`demo_stage_ab.start_arm`) and
with the kit's code unchanged (its `new` arm, no patch):
- `sequential`: seed 0, then seed 1, each process with all `--threads` threads;
- `parallel`: seeds 0 and 1 at the same time, each process with `--threads / 2` threads.
Wall time from the first start to the last end; each stage's own wall time and accuracy are kept (a thread count may
change float summation order, so the accuracies are recorded, not required equal).

    .venv/bin/python bench/seed_parallel.py --run runs/demo --fraction 0.1    # writes bench/results/seed_parallel_cpu.json
"""
import argparse, json, os, statistics, sys, time
from pathlib import Path

from machine import machine_info               # bench/machine.py
from demo_stage_ab import finish_arm, finished_run, run_arguments, start_arm   # bench/demo_stage_ab.py
from simclr_nb.checkpoint import atomic_write_json



def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, nargs=2, default=[0, 1])
    ap.add_argument('--threads', type=int, default=os.cpu_count() or 2, help='threads of the sequential arm (the parallel arm: half each)')
    run_arguments(ap, 'seed_parallel')
    a = ap.parse_args(argv)
    run, work = finished_run(a.run), Path(a.work)
    if a.threads < 2: sys.exit(f"--threads must be >= 2 to split between two processes; got {a.threads}")
    res = dict(command='python bench/seed_parallel.py ' + ' '.join(sys.argv[1:] if argv is None else argv), machine=machine_info('cpu'),
               fraction=a.fraction, seeds=a.seeds, threads=a.threads, rounds=[], what=__doc__.split('\n\n')[0])
    t0 = time.time()
    for r in range(a.rounds):
        rnd = {}
        t = time.perf_counter()
        seq = [finish_arm(start_arm(run, work / f'sequential_{s}', 'new', 'none', a.fraction, s, a.threads), f'sequential seed {s}')
               for s in a.seeds]
        rnd['sequential'] = dict(wall_s=round(time.perf_counter() - t, 1), seeds=dict(zip(map(str, a.seeds), seq)))
        t = time.perf_counter()
        procs = [start_arm(run, work / f'parallel_{s}', 'new', 'none', a.fraction, s, a.threads // 2) for s in a.seeds]
        try: par = [finish_arm(p, f'parallel seed {s}') for p, s in zip(procs, a.seeds)]
        finally:
            for p in procs:   # one seed failed: stop the other, not leave it running after the exit
                if p.poll() is None: p.kill(); p.wait()
        rnd['parallel'] = dict(wall_s=round(time.perf_counter() - t, 1), seeds=dict(zip(map(str, a.seeds), par)))
        print(f"round {r}: sequential {rnd['sequential']['wall_s']} s, parallel {rnd['parallel']['wall_s']} s", flush=True)
        res['rounds'].append(rnd)
        atomic_write_json(Path(a.out), res)
    res['median_wall_s'] = {m: statistics.median(rd[m]['wall_s'] for rd in res['rounds']) for m in ('sequential', 'parallel')}
    res['speedup_parallel'] = round(res['median_wall_s']['sequential'] / res['median_wall_s']['parallel'], 3)
    res['wall_s'] = round(time.time() - t0, 1)
    atomic_write_json(Path(a.out), res)
    print(json.dumps({'median_wall_s': res['median_wall_s'], 'speedup_parallel': res['speedup_parallel']}))


if __name__ == '__main__':
    main()
