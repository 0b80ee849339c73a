"""What global batch norm costs: seconds per pretraining step on digits with 2 gloo CPU processes, with global batch norm
(`DistributedCallback()`) and with per-process batch norm (`sync_bn=False`), beside 1 process with the whole batch.

    .venv/bin/python bench/distributed.py [--steps 30] [--bs 256] [--width 0.25]
    .venv/bin/python bench/distributed.py --float32-drift

Writes bench/results/distributed_cpu.json. Medians over the steps after the first 5; the ratios are of the same run.
On a CPU this measures gloo's all-reduces over loopback, not NCCL between GPUs.

`--float32-drift` instead measures where float32 pretraining of tests/test_distributed.py drifts (its learner: batch
16, 3 steps, global BN, gathered NT-Xent, LARS, memory): after each step, the largest weight difference of 1 float32
process against 1 float64 process from the same weights (the steps' own sensitivity to rounding), of 2 float32
processes against 1, and of 2 float64 processes against 1, at the learners' own peak rate and at 0.01; its entry
`float32_drift` is added to the same json."""
import argparse, json, os, statistics, sys, tempfile, time
from pathlib import Path
import torch
from fastai.callback.core import Callback

from machine import machine_info  # bench/machine.py
from simclr_nb.checkpoint import atomic_write  # the package's one atomic writer: a resumable run never reads half a file

class StepTimer(Callback):
    order = 100
    def before_fit(self): self.times = []
    def before_batch(self): self._t = time.perf_counter()
    def after_step(self): self.times.append(time.perf_counter() - self._t)

def _fit(args, distributed, sync_bn=True):
    from simclr_nb.data import load_dataset, unlabeled_dls
    from simclr_nb.models import build_encoder, ProjectionHead, ContrastiveNet
    from simclr_nb.augment import SimCLRAugment
    from simclr_nb.pretrain import pretrain_learner
    from simclr_nb.distributed import DistributedCallback
    d = load_dataset('digits')
    torch.manual_seed(0)
    enc = build_encoder(dict(depth=18, width=args.width, small_images=True, in_channels=1))
    dls = unlabeled_dls(d, bs=args.bs, device='cpu')
    learn = pretrain_learner(dls, ContrastiveNet(enc, ProjectionHead(enc.num_features, 3)), SimCLRAugment(8), precision='fp32',
                             cbs=[StepTimer()] + ([DistributedCallback(sync_bn=sync_bn)] if distributed else []))
    timer = learn.cbs.filter(lambda c: isinstance(c, StepTimer))[0]
    with learn.no_bar(), learn.no_logging(): learn.fit(max(1, -(-args.steps // len(dls.train))))
    return statistics.median(timer.times[5:args.steps])

def _worker(args, out):
    from simclr_nb.distributed import get_rank
    res = {'global_bn': _fit(args, True), 'per_process_bn': _fit(args, True, sync_bn=False)}
    if get_rank() == 0: atomic_write(Path(out), json.dumps(res))

class _Weights(Callback):
    "The model's weights after every optimiser step."
    order = 99
    def __init__(self, model): self.model, self.w = model, []
    def after_step(self): self.w.append({k: v.detach().double().clone() for k, v in self.model.state_dict().items() if v.is_floating_point()})

def _drift_run(dtype, lr, distributed):
    sys.path.insert(0, str(Path(__file__).parent.parent/'tests'))
    import test_distributed as T
    from simclr_nb.distributed import DistributedCallback
    from simclr_nb.pretrain import fit_pretrain
    learn = T._learner('pretrain', getattr(torch, dtype), lr)
    rec = _Weights(learn.model); learn.add_cb(rec)
    if distributed: learn.add_cb(DistributedCallback())
    with learn.no_bar(), learn.no_logging(): fit_pretrain(learn, 1)
    return rec.w

def _drift_worker(runs, out):
    from simclr_nb.distributed import get_rank
    res = {f'{d} {lr}': _drift_run(d, lr, True) for d, lr in runs}
    if get_rank() == 0: torch.save(res, out)

def float32_drift():
    from simclr_nb.distributed import launch
    runs = [(d, lr) for lr in (None, 0.01) for d in ('float32', 'float64')]
    one = {f'{d} {lr}': _drift_run(d, lr, False) for d, lr in runs}
    with tempfile.TemporaryDirectory() as tmp:
        launch(_drift_worker, args=(runs, f'{tmp}/two.pt'), nprocs=2, device='cpu')
        two = torch.load(f'{tmp}/two.pt', weights_only=True)
    diff = lambda a, b: [max((x[k] - y[k]).abs().max().item() for k in x) for x, y in zip(a, b)]
    res = {}
    for lr in (None, 0.01):
        res['peak lr ' + ('0.1*sqrt(16)' if lr is None else str(lr))] = {
            '1 process float32 - 1 process float64': diff(one[f'float32 {lr}'], one[f'float64 {lr}']),
            '2 processes float32 - 1 process float32': diff(two[f'float32 {lr}'], one[f'float32 {lr}']),
            '2 processes float64 - 1 process float64': diff(two[f'float64 {lr}'], one[f'float64 {lr}'])}
    return res

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--float32-drift', action='store_true', help='max weight differences after each of 3 pretraining steps (see above)')
    p.add_argument('--steps', type=int, default=30); p.add_argument('--bs', type=int, default=256); p.add_argument('--width', type=float, default=0.25)
    args = p.parse_args()
    out = Path(__file__).parent/'results'/'distributed_cpu.json'
    if args.float32_drift:
        res = json.loads(out.read_text()) if out.exists() else {}
        res['float32_drift'] = dict(machine=machine_info('cpu'), load_avg=os.getloadavg(), max_weight_diff_after_step=float32_drift())
        atomic_write(out, json.dumps(res, indent=2))
        print(json.dumps(res['float32_drift'], indent=2)); return
    from simclr_nb.distributed import launch
    one = _fit(args, False)
    with tempfile.TemporaryDirectory() as d:
        launch(_worker, args=(args, f'{d}/two.json'), nprocs=2, device='cpu')
        two = json.loads(Path(f'{d}/two.json').read_text())
    res = dict(machine=machine_info('cpu'), load_avg=os.getloadavg(),
               config=vars(args), s_per_step={'1 process': one, '2 processes, global BN': two['global_bn'],
                                             '2 processes, per-process BN': two['per_process_bn']},
               global_bn_over_per_process_bn=two['global_bn'] / two['per_process_bn'], two_over_one=two['global_bn'] / one)
    old = json.loads(out.read_text()) if out.exists() else {}
    if 'float32_drift' in old: res['float32_drift'] = old['float32_drift']
    atomic_write(out, json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))

if __name__ == '__main__': main()
