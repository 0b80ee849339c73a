"""Where the GPU fine-tuning step's time goes (issue 13): the kit's ResNet-50 1x fine-tuning loop at 28 px, batch 128, step by
step, with one change at a time, against a plain PyTorch loop of the same model and update.

An H200 probe ran the pipeline's fine-tuning and supervised stages at 65-80 ms a step where ResNet-50's FLOPs at 28 px need
about 8 ms. Candidates, each a variant here (same model, data, precision; 100 timed steps after 20 untimed):
  per_tensor_each_epoch  the loop before this change: LARS tensor by tensor (fastai's Optimizer loop, ~12 small kernels for
                         each of 164 tensors) and a checkpoint (220 MB: weights + momentum) after every 20-step epoch
  foreach_each_epoch     LARS with torch._foreach_* ops (`LARSOptimizer(foreach=True)`), still a checkpoint each epoch
  foreach_every_30s      the pipeline now: foreach LARS, checkpoints at most every 30 s (`PipelineConfig.checkpoint_every_s`)
  no_callbacks           `learn.fit` with neither checkpoints nor the non-finite-loss check (its `.item()`-like sync each step)
  supervised_per_tensor  the supervised baseline's learner with Adam tensor by tensor (fastai's loop), checkpoints every 30 s
  supervised_every_30s   the same with Adam on all tensors at once (`optim.Adam`, its GPU default)
  plain_pytorch          forward, backward, foreach LARS in a bare loop on device-resident batches: the floor of eager mode

    python bench/gpu_loop.py --device cuda            # writes bench/results/gpu_loop_cuda.json
    python bench/gpu_loop.py --device cpu --depth 18 --width 0.125 --steps 10   # a quick check that it runs (not committed)
"""
import argparse, json, sys, tempfile, time
from functools import partial
from pathlib import Path

import torch
from fastai.data.core import DataLoaders

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info, sync  # noqa: E402
from simclr_nb.checkpoint import fit_resumable  # noqa: E402
from simclr_nb.data import TensorImageDL  # noqa: E402
from simclr_nb.finetune import finetune_learner, supervised_learner  # noqa: E402
from simclr_nb.models import FineTuneNet, ProjectionHead, build_encoder  # noqa: E402
from simclr_nb.optim import LARS, Adam, scale_lr  # noqa: E402
from simclr_nb.pipeline import ValidateLast  # noqa: E402
from simclr_nb.precision import AUTOCAST_DTYPES, resolve_precision  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--depth", type=int, default=50); ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--size", type=int, default=28); ap.add_argument("--bs", type=int, default=128)
    ap.add_argument("--steps", type=int, default=100, help="timed steps per variant (epochs of 20 steps)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    device = torch.device(a.device)
    precision = resolve_precision("auto", device)
    spec = dict(depth=a.depth, width=a.width, in_channels=1, small_images=True)
    g = torch.Generator().manual_seed(0)
    n = 600                                                    # 1% of Fashion-MNIST: 600 labels, 4 batches a pass
    x, y = torch.randint(0, 256, (n, 1, a.size, a.size), dtype=torch.uint8, generator=g), torch.randint(0, 10, (n,), generator=g)
    xv, yv = x[:256], y[:256]
    per_pass = n // a.bs; passes = max(1, 20 // per_pass); steps_per_epoch = per_pass * passes
    epochs = max(1, a.steps // steps_per_epoch)

    def dls():
        return DataLoaders(TensorImageDL(x, y, bs=a.bs, shuffle=True, drop_last=True, device=device, passes=passes),
                           TensorImageDL(xv, yv, bs=256, device=device), device=device)

    def model():
        torch.manual_seed(0); enc = build_encoder(spec)
        return FineTuneNet(enc, ProjectionHead(enc.num_features, 3), 10, 1)

    def ft(foreach):
        learn = finetune_learner(dls(), model(), a.size, base_lr=0.1, precision=precision)
        learn.opt_func = partial(LARS, foreach=foreach)
        return learn

    def sup(foreach):
        learn = supervised_learner(dls(), spec, 10, a.size, precision=precision)
        learn.opt_func = partial(Adam, foreach=foreach)
        return learn

    def timed_fit(learn, every_s, folder):
        """seconds per step of an `epochs`-epoch fit after a 1-epoch warm-up fit (cuDNN's algorithm search, allocator):
        `fit_resumable` checkpointing at most every `every_s` seconds, or (None) a plain `learn.fit`"""
        with learn.no_bar(), learn.no_logging():
            learn.fit(1); sync(device)
            t = time.perf_counter()
            if every_s is None: learn.fit(epochs)
            else: fit_resumable(learn, epochs, folder, cbs=ValidateLast(), every_s=every_s)
            sync(device)
        return (time.perf_counter() - t) / (epochs * steps_per_epoch)

    def plain():
        "the floor: a bare loop on device-resident batches, the same model, autocast and foreach LARS"
        m = model().to(device).train()
        opt = LARS(m.parameters(), lr=scale_lr(0.1, a.bs), wd=0., foreach=True)
        xd, yd = x.to(device), y.to(device)
        dt = AUTOCAST_DTYPES.get(precision)
        def step(i):
            idx = torch.randint(0, n, (a.bs,), device=device)
            xb = xd[idx].float().div_(255.)
            with torch.autocast(device.type, dtype=dt, enabled=dt is not None):
                loss = torch.nn.functional.cross_entropy(m(xb), yd[idx])
            loss.backward(); opt.step(); opt.zero_grad()
        for i in range(20): step(i)
        sync(device); t = time.perf_counter()
        for i in range(epochs * steps_per_epoch): step(i)
        sync(device)
        return (time.perf_counter() - t) / (epochs * steps_per_epoch)

    variants = {
        "per_tensor_each_epoch": lambda d: timed_fit(ft(False), 0., d),
        "foreach_each_epoch": lambda d: timed_fit(ft(True), 0., d),
        "foreach_every_30s": lambda d: timed_fit(ft(True), 30., d),
        "no_callbacks": lambda d: timed_fit(ft(True), None, d),
        "supervised_per_tensor": lambda d: timed_fit(sup(False), 30., d),
        "supervised_every_30s": lambda d: timed_fit(sup(True), 30., d),
        "plain_pytorch": lambda d: plain(),
    }
    t0 = time.time()
    res = dict(what=__doc__.split("\n\n")[0], spec=spec, image_size=a.size, batch=a.bs, precision=precision,
               steps_timed=epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch, ms_per_step={}, machine=machine_info(str(device)))
    out = Path(a.out) if a.out else RESULTS / f"gpu_loop_{device.type}.json"
    for name, fn in variants.items():
        with tempfile.TemporaryDirectory() as d:
            res["ms_per_step"][name] = round(1000 * fn(d), 2)
        print(f"{name}: {res['ms_per_step'][name]} ms/step", flush=True)
        res["wall_s"] = round(time.time() - t0, 1)
        out.parent.mkdir(parents=True, exist_ok=True); out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out} in {res['wall_s']} s")


if __name__ == "__main__":
    main()
