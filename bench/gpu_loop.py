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
  plain_compiled         the bare loop with the model under torch.compile's default mode (fused kernels, no CUDA graphs)
  plain_cudagraphs       the bare loop with the model under torch.compile(mode='reduce-overhead'): forward and backward
                         replayed as CUDA graphs, so the launch cost of hundreds of small kernels goes (the optimizer stays eager)
  fastai_cudagraphs      `no_callbacks` with the learner's model under torch.compile(mode='reduce-overhead')
A compiled variant's compile and warm-up seconds are kept apart (`warmup_s`): they are paid once per process and shape.
A variant that fails records its error and the others still run.

    python bench/gpu_loop.py --device cuda            # writes bench/results/gpu_loop_cuda.json
    python bench/gpu_loop.py --device cpu --depth 18 --width 0.125 --steps 10   # a quick check that it runs (not committed)
    python bench/gpu_loop.py --device cuda --only foreach_every_30s plain_pytorch plain_cudagraphs   # some variants
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
from simclr_nb.pipeline import NoValidation  # noqa: E402
from simclr_nb.precision import AUTOCAST_DTYPES, resolve_precision  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--depth", type=int, default=50); ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--size", type=int, default=28); ap.add_argument("--bs", type=int, default=128)
    ap.add_argument("--steps", type=int, default=100, help="timed steps per variant (epochs of 20 steps)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--only", nargs="+", default=None, help="run these variants only (default: all)")
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
            else: fit_resumable(learn, epochs, folder, cbs=NoValidation(), every_s=every_s)
            sync(device)
        return (time.perf_counter() - t) / (epochs * steps_per_epoch)

    warmup = {}   # seconds of the untimed warm-up per variant (for a compiled one: compiling and recording its graphs)

    def plain(name, compile_mode=None):
        """the floor: a bare loop on device-resident batches, the same model, autocast and foreach LARS; with `compile_mode`
        the model runs under `torch.compile(mode=compile_mode)` ('default', or 'reduce-overhead' for CUDA graphs)"""
        m = model().to(device).train()
        opt = LARS(m.parameters(), lr=scale_lr(0.1, a.bs), wd=0., foreach=True)
        fwd = m if compile_mode is None else torch.compile(m, mode=compile_mode)
        xd, yd = x.to(device), y.to(device)
        dt = AUTOCAST_DTYPES.get(precision)
        def step(i):
            if compile_mode == "reduce-overhead": torch.compiler.cudagraph_mark_step_begin()   # a new training step: the graphs' buffers may be reused
            idx = torch.randint(0, n, (a.bs,), device=device)
            xb = xd[idx].float().div_(255.)
            with torch.autocast(device.type, dtype=dt, enabled=dt is not None):
                loss = torch.nn.functional.cross_entropy(fwd(xb), yd[idx])
            loss.backward(); opt.step(); opt.zero_grad()
        t = time.perf_counter()
        for i in range(20): step(i)
        sync(device); warmup[name] = round(time.perf_counter() - t, 1); t = time.perf_counter()
        for i in range(epochs * steps_per_epoch): step(i)
        sync(device)
        return (time.perf_counter() - t) / (epochs * steps_per_epoch)

    def fastai_compiled(name, mode):
        learn = ft(True)
        learn.model = torch.compile(learn.model, mode=mode)   # the same parameters: the optimizer fastai builds sees them
        t = time.perf_counter()
        with learn.no_bar(), learn.no_logging(): learn.fit(1)   # compiling train and eval graphs once, outside the timing
        sync(device); warmup[name] = round(time.perf_counter() - t, 1)
        return timed_fit(learn, None, None)

    variants = {
        "per_tensor_each_epoch": lambda d: timed_fit(ft(False), 0., d),
        "foreach_each_epoch": lambda d: timed_fit(ft(True), 0., d),
        "foreach_every_30s": lambda d: timed_fit(ft(True), 30., d),
        "no_callbacks": lambda d: timed_fit(ft(True), None, d),
        "supervised_per_tensor": lambda d: timed_fit(sup(False), 30., d),
        "supervised_every_30s": lambda d: timed_fit(sup(True), 30., d),
        "plain_pytorch": lambda d: plain("plain_pytorch"),
        "plain_compiled": lambda d: plain("plain_compiled", "default"),
        "plain_cudagraphs": lambda d: plain("plain_cudagraphs", "reduce-overhead"),
        "fastai_cudagraphs": lambda d: fastai_compiled("fastai_cudagraphs", "reduce-overhead"),
    }
    if a.only:
        unknown = set(a.only) - set(variants)
        if unknown: sys.exit(f"--only: unknown variants {sorted(unknown)}; known: {list(variants)}")
        variants = {k: v for k, v in variants.items() if k in a.only}
    t0 = time.time()
    res = dict(what=__doc__.split("\n\n")[0], spec=spec, image_size=a.size, batch=a.bs, precision=precision,
               steps_timed=epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch, ms_per_step={}, warmup_s=warmup, errors={},
               machine=machine_info(str(device)))
    out = Path(a.out) if a.out else RESULTS / f"gpu_loop_{device.type}.json"
    for name, fn in variants.items():
        try:
            with tempfile.TemporaryDirectory() as d:
                res["ms_per_step"][name] = round(1000 * fn(d), 2)
            print(f"{name}: {res['ms_per_step'][name]} ms/step", flush=True)
        except Exception as e:   # a compile that fails on this machine must not cost the other variants' measurements
            res["errors"][name] = f"{type(e).__name__}: {str(e)[:500]}"
            print(f"{name}: FAILED {res['errors'][name]}", flush=True)
        res["wall_s"] = round(time.time() - t0, 1)
        out.parent.mkdir(parents=True, exist_ok=True); out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out} in {res['wall_s']} s")


if __name__ == "__main__":
    main()
