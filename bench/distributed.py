"""What global batch norm costs: seconds per pretraining step on digits with 2 gloo CPU processes, with global batch norm
(`DistributedCallback()`) and with per-process batch norm (`sync_bn=False`), beside 1 process with the whole batch.

    .venv/bin/python bench/distributed.py [--steps 30] [--bs 256] [--width 0.25]

Writes bench/results/distributed_cpu.json. Medians over the steps after the first 5; the ratios are of the same run.
On a CPU this measures gloo's all-reduces over loopback, not NCCL between GPUs."""
import argparse, json, os, statistics, sys, tempfile, time
from pathlib import Path
import torch
from fastai.callback.core import Callback

from machine import machine_info  # bench/machine.py

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
    if get_rank() == 0: Path(out).write_text(json.dumps(res))

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=30); p.add_argument('--bs', type=int, default=256); p.add_argument('--width', type=float, default=0.25)
    args = p.parse_args()
    from simclr_nb.distributed import launch
    one = _fit(args, False)
    with tempfile.TemporaryDirectory() as d:
        launch(_worker, args=(args, f'{d}/two.json'), nprocs=2, device='cpu')
        two = json.loads(Path(f'{d}/two.json').read_text())
    res = dict(machine=machine_info('cpu'), load_avg=os.getloadavg(),
               config=vars(args), s_per_step={'1 process': one, '2 processes, global BN': two['global_bn'],
                                             '2 processes, per-process BN': two['per_process_bn']},
               global_bn_over_per_process_bn=two['global_bn'] / two['per_process_bn'], two_over_one=two['global_bn'] / one)
    out = Path(__file__).parent/'results'/'distributed_cpu.json'
    out.parent.mkdir(exist_ok=True); out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))

if __name__ == '__main__': main()
