#!/usr/bin/env python
"""The optimizer step alone on a CPU: the kit's `LARS` and `Adam` tensor by tensor (fastai's loop, `foreach=False`)
against all tensors at once (`foreach=True`, `torch._foreach_*`), for networks from the demo's to a ResNet-50 (issue 13).

Per network: the gradients of one backward pass of a classifier (`FineTuneNet` of a SimCLRv2 ResNet, 1 channel), then
each optimizer's step timed alone, the two paths interleaved over `--repeats` rounds (medians), from copies of the same
state, and the weights of both compared after 3 steps. Which path is faster decides `ForeachOptimizer`'s CPU default:
foreach where the parameters are few (the update of every tensor then stays in the caches), the per-tensor loop for
large networks (each tensor's whole update stays in cache).

    .venv/bin/python bench/optimizer_step.py       # writes bench/results/optimizer_step_cpu.json
"""
import argparse, copy, statistics, time
from pathlib import Path

import torch
import torch.nn.functional as F

from machine import machine_info               # bench/machine.py

from simclr_nb.checkpoint import atomic_write_json
from simclr_nb.models import simclrv2_resnet, ProjectionHead, FineTuneNet
from simclr_nb.optim import LARS, Adam

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = {'r18_w0.125': (18, 0.125), 'r18_w0.25': (18, 0.25), 'r18_w0.5': (18, 0.5), 'r18_w1': (18, 1.0), 'r50_w1': (50, 1.0)}
OPTIMIZERS = {'lars': lambda ps, f: LARS(ps, lr=0.1, wd=1e-4, foreach=f), 'adam': lambda ps, f: Adam(ps, lr=1e-3, wd=0.05, foreach=f)}


def network(depth, width):
    enc = simclrv2_resnet(depth, width, small_images=True, in_channels=1)
    return FineTuneNet(enc, ProjectionHead(enc.num_features, 3), 10, ft_layer=1)


def with_grads(model, size=8, bs=16):
    torch.manual_seed(0)
    F.cross_entropy(model(torch.rand(bs, 1, size, size)), torch.arange(bs) % 10).backward()
    return model


def copy_with_grads(model):
    "A deep copy with the gradients too (`copy.deepcopy` leaves `.grad` behind)."
    m = copy.deepcopy(model)
    for p, q in zip(m.parameters(), model.parameters()): p.grad = None if q.grad is None else q.grad.clone()
    return m


def time_step(model, make, foreach):
    "Seconds of one step on a fresh copy (its state made by one step first, so the timed one is a steady-state step)."
    m = copy_with_grads(model)
    opt = make(list(m.parameters()), foreach)
    opt.step()
    t = time.perf_counter(); opt.step(); return time.perf_counter() - t


def same_after_steps(model, make, steps=3):
    a, b = copy_with_grads(model), copy_with_grads(model)
    oa, ob = make(list(a.parameters()), False), make(list(b.parameters()), True)
    for _ in range(steps): oa.step(); ob.step()
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--networks', nargs='+', default=list(NETWORKS))
    ap.add_argument('--repeats', type=int, default=7)
    ap.add_argument('--out', default=str(ROOT/'bench'/'results'/'optimizer_step_cpu.json'))
    a = ap.parse_args(argv)
    res = dict(command='python bench/optimizer_step.py ' + ' '.join(argv or []), machine=machine_info('cpu'), repeats=a.repeats,
               what='seconds of one optimizer step alone (median of interleaved rounds), tensor by tensor against foreach', networks={})
    t0 = time.time()
    for name in a.networks:
        model = with_grads(network(*NETWORKS[name]))
        ps = list(model.parameters())
        row = dict(parameters=sum(p.numel() for p in ps), tensors=len(ps))
        for oname, make in OPTIMIZERS.items():
            times = {False: [], True: []}
            for _ in range(a.repeats):
                for f in (False, True): times[f].append(time_step(model, make, f))
            per_tensor, foreach = statistics.median(times[False]), statistics.median(times[True])
            row[oname] = dict(per_tensor_s=per_tensor, foreach_s=foreach, foreach_speedup=per_tensor / foreach,
                              max_weight_difference_after_3_steps=same_after_steps(model, make),
                              per_tensor_times_s=times[False], foreach_times_s=times[True])
        res['networks'][name] = row
        print(name, row['parameters'], {o: round(row[o]['foreach_speedup'], 2) for o in OPTIMIZERS}, flush=True)
        res['wall_s'] = round(time.time() - t0, 1)
        atomic_write_json(Path(a.out), res)


if __name__ == '__main__':
    main()
