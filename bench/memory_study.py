#!/usr/bin/env python
"""The memory's two forms on a Fashion-MNIST subset: does the paper's queue of extra negatives collapse, and does MoCo's
term, which the kit now adds instead, help?

Why: `bench/quality.py --preset cpu_trimmed_memory` pretrained the 2-hour preset's encoder on all of Fashion-MNIST with
the memory as the kit first built it (`MemoryCallback(form='negatives')`: the EMA network's keys as extra negatives in
NT-Xent, every positive in-batch between two outputs of the online network), and its kNN accuracy on validation fell
to chance after two epochs. Here each arm pretrains the same encoder (ResNet-18 at width 0.25, 28 px, 3-layer head,
batch 256, NT-Xent tau 0.5, colour strength 1.0, LARS at base rate 0.075 with warm-up and cosine: the `cpu` presets'
settings, precision 'auto') on the first `--train-images` training images for `--epochs` epochs:

- `none`: no memory;
- `negatives`: `MemoryCallback(momentum, queue, form='negatives')`;
- `moco`: `MemoryCallback(momentum, queue, form='moco')`: MoCo's term (each first view against the EMA network's key
  of its own second view, the queue as negatives) added to the in-batch NT-Xent.

The queue (`--queue`, 4,096 keys: 16% of an epoch of 25,600 images, as cpu_trimmed_memory's 8,192 were of 54,000) and
momentum 0.99 are cpu_trimmed_memory's. Measured after every epoch: the weighted-kNN accuracy (k=200, `KNNMonitor`)
of 5,000 held-out training images (40,000-44,999) against 5,000 more (45,000-49,999), none of them pretrained on; and,
for the memory arms, what the shortcut would show on 512 fixed views of held-out images: the mean cosine between the
online and the EMA network's projection of the same view, and the mean cosine of the online projections with the
queue's keys. Seeds (`--seeds`, default 0 1 2) set the initial weights and the views; each seed runs every arm back to
back. Every number in the summary is a mean ± std over the seeds, the differences paired by seed (`verdict`).
The JSON is written after every run (atomically): an interrupted study resumes with the runs it has.

    python bench/memory_study.py         # writes bench/results/memory_study_<cpu|cuda>.json
"""
import argparse, json, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F
from fastai.callback.core import Callback
from fastai.torch_core import set_seed

from machine import machine_info  # bench/machine.py
from simclr_nb.checkpoint import atomic_write_json  # the package's one atomic writer
from simclr_nb.data import ImageData, load_dataset, unlabeled_dls
from simclr_nb.evaluate import spread, verdict
from simclr_nb.models import build_encoder, ContrastiveNet, ProjectionHead
from simclr_nb.pipeline import PipelineConfig, pretrain_views
from simclr_nb.pretrain import pretrain_learner, fit_pretrain, MemoryCallback, KNNMonitor

ROOT = Path(__file__).resolve().parent.parent
ARMS = ("none", "negatives", "moco")


# the `cpu` presets' pretraining settings (the views read image size, colour strength, blur and crop area)
CFG = PipelineConfig(dataset="fashion_mnist", image_size=28, depth=18, width=0.25, head_layers=3, temperature=0.5,
                     color_strength=1.0, pretrain_bs=256, pretrain_base_lr=0.075, precision="auto")


def contrastive_net():
    enc = build_encoder(CFG.teacher_spec(1))
    return ContrastiveNet(enc, ProjectionHead(enc.num_features, CFG.head_layers))


def probe_views(data, seed):
    "The fixed probe: both views of 256 held-out training images (50,000-50,255), drawn with torch seed `seed`."
    torch.manual_seed(seed)
    return torch.cat(pretrain_views(CFG).two_views(data.train_x[50000:50256]))


@torch.no_grad()
def signature(online, ema, views, queue):
    """The shortcut's signature on `views` (both networks in train mode, as the keys are made): the mean cosine of the
    online and EMA projections of the same view, of the online projections with the queue's keys (None: empty queue),
    and between the online projections of different views."""
    online.train(); ema.train()
    z, k = F.normalize(online(views).float(), dim=1), F.normalize(ema(views).float(), dim=1)
    n = len(z)
    return dict(online_ema_same_view=round(float((z * k).sum(1).mean()), 4),
                online_queue=None if queue is None else round(float((z @ queue.T).mean()), 4),
                online_between_views=round(float(((z @ z.T).sum() - (z * z).sum()) / (n * n - n)), 4))


class Shortcut(Callback):
    "After every training epoch: `signature` of the online and EMA networks on fixed views, with the queue as it is."
    order = 100
    def __init__(self, mem, views): self.mem, self.views, self.rows = mem, views, []
    def after_epoch(self):
        if not self.mem: return
        model = self.learn.model
        was, bufs = model.training, [b.clone() for b in model.buffers()]
        self.rows.append(signature(model, self.mem.ema, self.views, self.mem.queue.negatives()))
        with torch.no_grad():
            for b, saved in zip(model.buffers(), bufs): b.copy_(saved)   # the probe leaves no trace in the BN statistics
        model.train(was)


def run_arm(arm, seed, data, args):
    n = args.train_images
    sub = ImageData("fashion_mnist_subset", data.train_x[:n], data.train_y[:n], data.train_x[:2], data.train_y[:2], data.classes)
    bank, queries = torch.arange(40000, 45000), torch.arange(45000, 50000)
    probe = probe_views(data, 1000 + seed)   # the same for every arm of a seed
    set_seed(seed)   # torch, Python and numpy, as the pipeline's stages: the initial weights, the data order and the views
    model = contrastive_net()
    knn = KNNMonitor(data.train_x[bank], data.train_y[bank], data.train_x[queries], data.train_y[queries], size=28)
    mem = False if arm == "none" else MemoryCallback(args.momentum, args.queue, form=arm)
    shortcut = Shortcut(mem, probe)
    learn = pretrain_learner(unlabeled_dls(sub, bs=CFG.pretrain_bs), model, pretrain_views(CFG), base_lr=CFG.pretrain_base_lr,
                             temperature=CFG.temperature, memory=mem, knn=knn, precision=CFG.precision, cbs=[shortcut])
    knn.learn = learn
    t0 = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): fit_pretrain(learn, args.epochs)
    names = list(learn.recorder.metric_names)[1:-1]   # 'epoch' and 'time' are not in the values
    vals = [dict(zip(names, map(float, r))) for r in learn.recorder.values]
    return dict(knn_per_epoch=[round(v["knn_acc"], 4) for v in vals], loss_per_epoch=[round(v["train_loss"], 4) for v in vals],
                shortcut_per_epoch=shortcut.rows, wall_s=round(time.perf_counter() - t0, 1))


def checkpoint_signature(folder, data):
    """`signature` per epoch in a finished pretraining's epoch checkpoints (`folder`/epoch_*.pth, with a MemoryCallback's
    state), on the probe views of seed 1000."""
    views, rows = probe_views(data, 1000), {}
    for path in sorted(Path(folder).glob("epoch_*.pth")):
        ck = torch.load(path, map_location="cpu", weights_only=False)
        mem = ck["callbacks"]["MemoryCallback"]
        online, ema = contrastive_net(), contrastive_net()
        online.load_state_dict(ck["model"]); ema.load_state_dict(mem["ema"])
        rows[path.stem] = signature(online, ema, views, mem["queue"]["keys"][:mem["queue"]["filled"]])
    return rows


def summary(res, seeds):
    "Mean ± std over the seeds of the last epoch's kNN accuracy per arm, and each memory arm against none, paired by seed."
    last = {a: {s: res[str(s)][a]["knn_per_epoch"][-1] for s in seeds if a in res.get(str(s), {})} for a in ARMS}
    best = {a: {s: max(res[str(s)][a]["knn_per_epoch"]) for s in seeds if a in res.get(str(s), {})} for a in ARMS}
    out = dict(knn_last_epoch={a: spread(v).fmt() for a, v in last.items() if v},
               knn_best_epoch={a: spread(v).fmt() for a, v in best.items() if v}, against_none={})
    for a in ("negatives", "moco"):
        common = sorted(set(last[a]) & set(last["none"]))
        if len(common) >= 2:
            out["against_none"][a] = verdict({s: last[a][s] for s in common}, {s: last["none"][s] for s in common}).to_dict()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-images", type=int, default=25600)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--queue", type=int, default=4096)
    ap.add_argument("--momentum", type=float, default=0.99)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    ap.add_argument("--out", default=None)
    ap.add_argument("--checkpoints", default=None, help="instead: the signature in a run's epoch checkpoints (a memory run's "
                    "pretrain_state/checkpoints), added to the JSON under 'checkpoints' with the folder's name")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"memory_study_{device}.json"
    prev = json.loads(out.read_text()) if out.exists() else {}
    settings = dict(train_images=args.train_images, epochs=args.epochs, queue=args.queue, momentum=args.momentum)
    res = prev.get("runs", {}) if prev.get("settings") == settings else {}
    data = load_dataset("fashion_mnist", size=28)
    if args.checkpoints:
        sig = checkpoint_signature(args.checkpoints, data)
        folder = Path(args.checkpoints).resolve()
        prev.setdefault("checkpoints", {})[str(folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder)] = sig
        atomic_write_json(out, prev)
        for k, v in sig.items(): print(k, v)
        return
    t0 = time.perf_counter()
    for seed in args.seeds:
        for arm in args.arms:
            if arm in res.get(str(seed), {}): continue
            res.setdefault(str(seed), {})[arm] = r = run_arm(arm, seed, data, args)
            print(f"seed {seed} {arm}: kNN per epoch {r['knn_per_epoch']} ({r['wall_s']:.0f} s)", flush=True)
            doc = dict(command="python bench/" + " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), machine=machine_info(device),
                       settings=settings, runs=res, summary=summary(res, args.seeds), wall_s=round(time.perf_counter() - t0, 1))
            atomic_write_json(out, doc)
    print(json.dumps(summary(res, args.seeds), indent=1))


if __name__ == "__main__":
    main()
