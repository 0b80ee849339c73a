#!/usr/bin/env python
"""Speed of simclr_nb's SimCLR pretraining against lightly's standard recipe, in one run (issue 7).

Three measurements, each with the alternatives interleaved (A, B, C, A, B, C, ...) so that they see the same load of a
shared machine; medians of at least 3 repeats; every ratio is computed from medians of this same run.

1. Two-view augmentation, images/s (one source image counts once) on 512 Fashion-MNIST training images made RGB
   (the gray channel repeated: lightly's recipe works on RGB PIL images) -> two 32 px views, colour strength 0.5, no blur
   (the CIFAR-10 recipe): simclr_nb `SimCLRAugment.two_views` (batched, on the device) vs a per-sample
   `torchvision.transforms.v2` pipeline (same operations, on uint8 tensors) vs lightly's `SimCLRTransform`
   (on PIL images). simclr_nb on the 1-channel images is an extra row.
2. End-to-end pretraining, images/s, for the SAME network in both libraries: simclr_nb's SimCLRv2 ResNet-18 with the
   CIFAR stem (`simclrv2_resnet(18, width, small_images=True, in_channels=3)`) + 3-layer `ProjectionHead`, at width
   0.25 (16 base channels) and 1.0 (64), batch 256, 32 px views, the same optimizer (simclr_nb's LARS, lr 0.3 * sqrt(256),
   wd 1e-4) and temperature 0.5.
     - simclr_nb: `pretrain_learner` + `fit_pretrain` with its defaults (fastai loop; uint8 batches from `TensorImageDL`,
       views made on the device by `SimCLRCallback`, ONE forward over the 2B concatenated views, official NT-Xent; on a
       CPU the defaults are channels-last and `KeepFreedMemory`, glibc keeping freed blocks during the fit);
     - simclr_nb_nchw_glibc_default: the same with `channels_last=False, keep_freed_memory=False` (the earlier defaults);
     - lightly: its standard recipe: `SimCLRTransform` in a map-style dataset of PIL images, torch `DataLoader`
       (2 workers, shuffle, drop_last, persistent workers), two forwards `model(x0)`, `model(x1)`, `NTXentLoss`;
     - lightly_keep_freed_memory (CPU): the same with `glibc_keep_freed_memory(True)` during its run: what lightly gets
       from the same allocator setting, so that the comparison is not only about it.
   Each repeat trains `warmup + steps` batches and times the last `steps` (from the end of the warm-in batch); before the
   rounds every variant at width <= 0.5 trains one untimed batch.
   The `simclr_nb` runner also clocks its `two_views` inside the fit: the augmentation's own share of the training step
   (the issue's 5% target, read also from section 1's row, which runs right after the per-sample pipelines).
3. Model-only step, images/s, on pre-made view tensors (no data pipeline): forward, loss, backward, LARS step, in a
   plain loop, for the same four variants (the keep-freed-memory ones run one untimed step first, inside the setting),
   in training mode. (Until 2026-12-07 the kit's rows stepped their runner's model as fastai's fit left it, in eval
   mode, batch norm on running statistics: their model-only figures and shares of peak up to
   `speed_cpu_vp2intersect_inplace_repeat.json` overstate the training step; the end-to-end figures are unaffected.)
   Its share of the end-to-end step shows what the data pipeline (and the framework) costs.

glibc's setting is process-wide: `glibc_keep_freed_memory(False)` after each such variant sets glibc's limits to where its
dynamic threshold settles after large blocks (mmap above 32 MB) and returns the kept memory (`malloc_trim`), so that the
variants without it do not re-use it.

Precision (issue 13): `simclr_nb` runs the kit's default `precision='auto'` (bf16 autocast where the CPU runs bf16
natively, AVX512-BF16/AMX, or on a bf16 GPU; fp32 elsewhere). Where that is bf16, `simclr_nb_fp32` and lightly's recipe
under bf16 autocast (`lightly_bf16`, its own modules) are measured too, and the kit is compared with lightly's best row.
On CPUs without native bf16 it is emulated and slower, so the bf16 rows are skipped there.

4. Roofline: the machine's rate in fp32 and bf16, the better of a 2048x2048 `torch.mm` and a 3x3 channels-last
   convolution (on the AVX512-BF16 EPYC, MKL's matmul is slower than oneDNN's convolutions), the FLOPs of one training
   step (FlopCounterMode), and each model-only row's achieved GFLOP/s as a share of the peak of its precision.
5. torch.compile (`--no-compile` skips it): eager against compiled model-only steps at the first width, interleaved;
   compile overhead (from an empty inductor cache) and the number of steps after which compiling pays off.

    bash bench/setup_env.sh && .venv-bench/bin/python bench/speed.py          # `make bench`; writes
    bench/results/speed_<cpu|cuda>.json and .md   (--quick: a smoke run of a few minutes, written to speed_quick_*.json)
"""
import argparse, contextlib, gzip, json, os, platform, statistics, subprocess, sys, time, warnings
from functools import partial
from pathlib import Path

from machine import cpu_flags, empty_inductor_cache, machine_info, sync  # bench/machine.py

import numpy as np
import torch

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)

from simclr_nb.augment import SimCLRAugment
from simclr_nb.data import ImageData, load_dataset, unlabeled_dls
from simclr_nb.losses import nt_xent
from simclr_nb.models import simclrv2_resnet, ProjectionHead, ContrastiveNet, count_parameters
from simclr_nb.optim import LARS
from simclr_nb.pretrain import pretrain_learner, fit_pretrain
from simclr_nb.cputune import glibc_keep_freed_memory
from simclr_nb.precision import resolve_precision, cpu_has_native_bf16
from simclr_nb.checkpoint import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"
SIZE, STRENGTH, TEMPERATURE, BASE_LR, WD = 32, 0.5, 0.5, 0.3, 1e-4


# ---------------------------------------------------------------- machine info


def med(ts): return statistics.median(ts)


# ---------------------------------------------------------------- the network, the same for both libraries
def make_model(width, device, channels_last=False):
    torch.manual_seed(0)
    enc = simclrv2_resnet(18, width, sk=False, small_images=True, in_channels=3)
    model = ContrastiveNet(enc, ProjectionHead(enc.num_features, 3)).to(device).train()
    return model.to(memory_format=torch.channels_last) if channels_last else model


def make_lars(model, bs):
    return LARS(list(model.parameters()), lr=BASE_LR * bs ** 0.5, wd=WD)


# ---------------------------------------------------------------- 1. augmentation
def torchvision_per_sample():
    from torchvision.transforms import v2 as T
    s = STRENGTH
    return T.Compose([T.RandomResizedCrop(SIZE, scale=(0.08, 1.0), antialias=True), T.RandomHorizontalFlip(),
                      T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
                      T.RandomGrayscale(0.2), T.ToDtype(torch.float32, scale=True)])


def lightly_transform():
    from lightly.transforms import SimCLRTransform
    # the CIFAR-10 recipe: s = 0.5, no blur; no mean/std normalisation (the models take [0, 1] inputs)
    return SimCLRTransform(input_size=SIZE, cj_strength=STRENGTH, gaussian_blur=0.0, normalize=None)


def to_pil_rgb(x_uint8):
    from PIL import Image
    return [Image.fromarray(img[0].numpy()).convert("RGB") for img in x_uint8]


def bench_augment(x1, device, rounds, have_lightly):
    "x1: (512, 1, 28, 28) uint8. Interleaved rounds of every pipeline; returns a dict of results."
    n = len(x1)
    x3 = x1.expand(-1, 3, -1, -1).contiguous()
    ours = SimCLRAugment(SIZE, strength=STRENGTH)
    x3d, x1d = x3.to(device), x1.to(device)
    tv = torchvision_per_sample()
    pil = to_pil_rgb(x1) if have_lightly else None
    lt = lightly_transform() if have_lightly else None
    fns = {"simclr_nb": lambda: ours.two_views(x3d),
           "simclr_nb_1ch": lambda: ours.two_views(x1d),
           "torchvision_v2_per_sample": lambda: [(tv(im), tv(im)) for im in x3],
           }
    if have_lightly: fns["lightly_SimCLRTransform"] = lambda: [lt(im) for im in pil]
    for f in fns.values(): f(); sync(device)  # warm-up
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter(); f(); sync(device); times[k].append(time.perf_counter() - t0)
    res = {k: dict(median_s=med(t), times_s=t, images_per_s=n / med(t)) for k, t in times.items()}
    res["simclr_nb"]["impl"] = f"SimCLRAugment({SIZE}, strength={STRENGTH}).two_views on the {device.type} (batched, per-image parameters)"
    res["simclr_nb_1ch"]["impl"] = "the same on the 1-channel images (saturation and hue are identities)"
    res["torchvision_v2_per_sample"]["impl"] = ("torchvision.transforms.v2 Compose(RandomResizedCrop, RandomHorizontalFlip, "
                                               "RandomApply(ColorJitter, 0.8), RandomGrayscale(0.2), ToDtype) twice per uint8 image, CPU")
    if have_lightly: res["lightly_SimCLRTransform"]["impl"] = "lightly SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0, normalize=None) per PIL RGB image, CPU"
    ratios = {"simclr_nb_vs_torchvision": res["torchvision_v2_per_sample"]["median_s"] / res["simclr_nb"]["median_s"]}
    if have_lightly: ratios["simclr_nb_vs_lightly"] = res["lightly_SimCLRTransform"]["median_s"] / res["simclr_nb"]["median_s"]
    return dict(what=f"two views of {n} Fashion-MNIST training images (28 px, made RGB) at {SIZE} px, strength {STRENGTH}, no blur",
                images=n, rounds=rounds, results=res, ratios=ratios)


# ---------------------------------------------------------------- 2. end to end
def _fastai_clock(device):
    "A fastai callback: perf_counter at the start of training and after every training batch; skips validation."
    from fastai.callback.core import Callback, CancelValidException
    class StepClock(Callback):
        order = 0
        def __init__(self): self.marks = []
        def before_train(self): sync(device); self.marks = [time.perf_counter()]
        def after_batch(self):
            if self.training: sync(device); self.marks.append(time.perf_counter())
        def before_validate(self): raise CancelValidException()
    return StepClock()


@contextlib.contextmanager
def keeping_freed_memory(on=True):
    "`glibc_keep_freed_memory` for the length of a block when `on` (process-wide, so it is always switched back)."
    if on: glibc_keep_freed_memory(True)
    try: yield
    finally:
        if on: glibc_keep_freed_memory(False)


class SimclrNbRunner:
    "simclr_nb's fastai loop: pretrain_learner(**learner_kw) + fit_pretrain on a TensorImageDL of exactly `n_batches` batches."
    def __init__(self, x3, width, bs, device, **learner_kw):
        self.x3, self.bs, self.device, self.learner_kw = x3, bs, device, learner_kw
        self.precision = resolve_precision(learner_kw.get("precision", "fp32"), device)   # what the learner trains in
        self.model = make_model(width, device)
        self.aug = SimCLRAugment(SIZE, strength=STRENGTH)
        self.aug_s, make_views = [], self.aug.two_views
        def timed_two_views(x, generator=None):   # the views' own time inside the fit: their share of the training step
            sync(device); t0 = time.perf_counter()
            views = make_views(x, generator); sync(device)
            self.aug_s.append(time.perf_counter() - t0)
            return views
        self.aug.two_views = timed_two_views
        self.clock = _fastai_clock(device)
        self.cbs, self.learn, self.n = [self.clock], None, None

    def _learner(self, n_batches):
        if self.learn is not None and self.n == n_batches: return self.learn
        n = n_batches * self.bs
        data = ImageData("fmnist_rgb", self.x3[:n], torch.zeros(n, dtype=torch.long), self.x3[:2], torch.zeros(2, dtype=torch.long), ["0"])
        dls = unlabeled_dls(data, bs=self.bs, device=self.device)
        if self.learn is None:
            self.learn = pretrain_learner(dls, self.model, self.aug, base_lr=BASE_LR, wd=WD, temperature=TEMPERATURE, cbs=self.cbs,
                                          **self.learner_kw)
        else: self.learn.dls = dls
        self.n = n_batches
        return self.learn

    def run(self, warm, steps):
        "Train warm+steps batches; return the seconds of the last `steps` (`last_aug_s`: of their views)."
        learn = self._learner(warm + steps)
        self.aug_s = []
        with learn.no_bar(), learn.no_logging(): fit_pretrain(learn, 1)
        m = self.clock.marks
        self.last_aug_s = sum(self.aug_s[warm:])
        return m[-1] - m[warm]


class _PilViews(torch.utils.data.Dataset):
    "lightly's usual data path for grayscale image files: PIL image -> RGB -> SimCLRTransform -> [view0, view1]."
    def __init__(self, x_uint8, transform): self.x, self.t = x_uint8.numpy(), transform
    def __len__(self): return len(self.x)
    def __getitem__(self, i):
        from PIL import Image
        return self.t(Image.fromarray(self.x[i, 0]).convert("RGB")), 0


class LightlyRunner:
    "lightly's standard SimCLR recipe: its transform in a DataLoader with 2 workers, two forwards, NTXentLoss."
    def __init__(self, x1, width, bs, device, workers=2, keep_freed_memory=False, bf16=False):
        from lightly.loss import NTXentLoss
        self.x1, self.bs, self.device, self.workers, self.bf16 = x1, bs, device, workers, bf16
        self.precision = "bf16" if bf16 else "fp32"
        self.keep = keep_freed_memory and device.type == "cpu"
        self.model = make_model(width, device)
        self.opt = make_lars(self.model, bs)
        self.crit = NTXentLoss(temperature=TEMPERATURE)
        self.ds = _PilViews(x1, lightly_transform())
        self.loader, self.n = None, None

    def _loader(self, n_batches):
        if self.loader is not None and self.n == n_batches: return self.loader
        sub = torch.utils.data.Subset(self.ds, range(n_batches * self.bs))
        self.loader = torch.utils.data.DataLoader(sub, batch_size=self.bs, shuffle=True, drop_last=True,
                                                  num_workers=self.workers, persistent_workers=self.workers > 0)
        self.n = n_batches
        return self.loader

    def run(self, warm, steps):
        loader = self._loader(warm + steps)
        with keeping_freed_memory(self.keep):
            sync(self.device); marks = [time.perf_counter()]
            for (x0, x1), _ in loader:
                x0, x1 = x0.to(self.device), x1.to(self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                    z0, z1 = self.model(x0), self.model(x1)
                loss = self.crit(z0.float(), z1.float())
                loss.backward(); self.opt.step(); self.opt.zero_grad()
                sync(self.device); marks.append(time.perf_counter())
            return marks[-1] - marks[warm]


# ---------------------------------------------------------------- 3. model-only step
def simclr_step(model, opt, views, channels_last=False, bf16=False):
    model.train()   # a runner's model leaves fastai's fit in eval mode (its validation is skipped after `model.eval()`)
    x = torch.cat(views)
    if channels_last: x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16): z = model(x)
    loss = nt_xent(*z.float().chunk(2), TEMPERATURE)
    loss.backward()
    if opt is not None: opt.step(); opt.zero_grad()


def lightly_step(model, opt, views, crit, bf16=False):
    model.train()
    with torch.autocast(views[0].device.type, dtype=torch.bfloat16, enabled=bf16):
        z0, z1 = model(views[0]), model(views[1])
    loss = crit(z0.float(), z1.float())
    loss.backward(); opt.step(); opt.zero_grad()


# ---------------------------------------------------------------- 4. roofline: the machine's matmul peak, the step's FLOPs
def achieved_gflops(f, flops, device, repeats=5):
    "GFLOP/s of `f()`, which does `flops` FLOPs: median of `repeats` timed calls after one warm-up."
    f(); sync(device)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); f(); sync(device); ts.append(time.perf_counter() - t0)
    return flops / med(ts) / 1e9


def matmul_gflops(device, dtype, n=2048, repeats=5):
    "Achieved GFLOP/s of a large square `torch.mm` (2 n^3 FLOPs)."
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    return achieved_gflops(lambda: torch.mm(a, b), 2 * n ** 3, device, repeats)


def conv_gflops(device, dtype, c=128, hw=32, bs=32, repeats=5):
    """Achieved GFLOP/s of a 3x3 convolution forward in channels-last (`c` -> `c` channels at `hw` px, batch `bs`:
    2 bs hw^2 c^2 9 FLOPs): the training step's own kind of kernel (oneDNN's on a CPU, cuDNN's on a GPU). On the EPYC with
    AVX512-BF16 the step's convolutions ran at 135% (fp32) and 141% (bf16) of `torch.mm`'s rate (speed_cpu.json,
    2026-12-04): there torch.mm's fp32 BLAS is MKL, which does not reach on that AMD processor what oneDNN's kernels do,
    so the matmul alone is not the machine's peak."""
    x = torch.randn(bs, c, hw, hw, device=device).to(dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(c, c, 3, 3, device=device).to(dtype).contiguous(memory_format=torch.channels_last)
    return achieved_gflops(lambda: torch.nn.functional.conv2d(x, w, padding=1), 2 * bs * hw * hw * c * c * 9, device, repeats)


def step_flops(width, views, device):
    """FLOPs of one SimCLR training step (forward and backward of the 2B views; convolutions and matmuls, as counted by
    `torch.utils.flop_counter.FlopCounterMode`; BN, ReLU and the optimizer are memory-bound and not counted)."""
    from torch.utils.flop_counter import FlopCounterMode
    model = make_model(width, device)
    with FlopCounterMode(display=False) as fc: simclr_step(model, None, views)
    return fc.get_total_flops()


def roofline(device, repeats=5):
    """The machine's rate in each precision the kit can run here: a large `torch.mm` and a 3x3 convolution (the step's
    own kind), and the peak a step's share is read against, the better of the two."""
    # 2048 keeps a 2-core CPU's product near a second; a GPU needs 8192 to approach its peak (2048 finishes in microseconds)
    n = 8192 if device.type == "cuda" else 2048
    conv_size = dict(c=256, hw=32, bs=256) if device.type == "cuda" else dict(c=128, hw=32, bs=32)   # ~1 ms on an H100; ~50 ms on 2 cores
    # on a GPU cuDNN runs fp32 convolutions on TF32 tensor cores (torch.backends.cudnn.allow_tf32, on by default) while
    # torch.mm stays in true fp32: the fp32 rows' peak is the TF32 matmul there (the H200 run of 2026-12-04 divided by the
    # true-fp32 one, 51 TFLOP/s, and showed shares above 100%)
    tf32 = device.type == "cuda" and torch.backends.cudnn.allow_tf32
    old_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32 or old_tf32
    dtypes = {"fp32": torch.float32, **({"bf16": torch.bfloat16} if resolve_precision("auto", device) == "bf16" else {})}
    try: mm = {k: matmul_gflops(device, d, n=n, repeats=repeats) for k, d in dtypes.items()}
    finally: torch.backends.cuda.matmul.allow_tf32 = old_tf32
    conv = {k: conv_gflops(device, d, repeats=repeats, **conv_size) for k, d in dtypes.items()}
    return dict(what=f"the better of torch.mm on {n}x{n} matrices and a 3x3 channels-last convolution ({conv_size['c']} channels, "
                     f"{conv_size['hw']} px, batch {conv_size['bs']}), achieved GFLOP/s, medians of {repeats}"
                     + ("; fp32 on TF32 tensor cores, as cuDNN runs the fp32 convolutions" if tf32 else ""),
                matmul_gflops=mm, conv_gflops=conv, peak_gflops={k: max(mm[k], conv[k]) for k in mm})


# ---------------------------------------------------------------- 5. torch.compile: what it costs and when it pays
def bench_compile(x3, width, bs, device, precision, steps=5):
    "Eager vs `torch.compile(model)` model-only steps at the kit's precision: compile time, steady state, break-even steps."
    aug = SimCLRAugment(SIZE, strength=STRENGTH)
    views = [v.contiguous() for v in aug.two_views(x3[:bs].to(device))]
    cl, bf16 = device.type == "cpu", precision == "bf16"
    eager = make_model(width, device, channels_last=cl); opt_e = make_lars(eager, bs)
    comp_src = make_model(width, device, channels_last=cl); opt_c = make_lars(comp_src, bs)
    torch._dynamo.reset()
    comp = torch.compile(comp_src)
    simclr_step(eager, opt_e, views, cl, bf16); sync(device)
    with empty_inductor_cache():   # the compile time a first run pays, whatever an earlier run left in the cache
        t0 = time.perf_counter(); simclr_step(comp, opt_c, views, cl, bf16); sync(device)
        first = time.perf_counter() - t0
        for _ in range(2):   # untimed: a second compile for the optimizer's changed state, the kernels' first use
            simclr_step(eager, opt_e, views, cl, bf16); simclr_step(comp, opt_c, views, cl, bf16); sync(device)
    te, tc = [], []
    for _ in range(steps):   # interleaved
        t0 = time.perf_counter(); simclr_step(eager, opt_e, views, cl, bf16); sync(device); te.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); simclr_step(comp, opt_c, views, cl, bf16); sync(device); tc.append(time.perf_counter() - t0)
    e, c = med(te), med(tc)
    gain = e - c
    out = dict(width=width, precision=precision, channels_last=cl, batch_size=bs, steps=steps, inductor_cache="empty",
               first_compiled_step_s=first, compile_overhead_s=first - e, eager_step_s=e, compiled_step_s=c,
               eager_times_s=te, compiled_times_s=tc, speedup=e / c,
               break_even_steps=(first - e) / gain if gain > 0 else None)
    return out


# ---------------------------------------------------------------- main
def build_variants(x1, x3, width, bs, device, have_lightly, bf16):
    "The rows measured at `width`: end-to-end runners and model-only step functions (name -> (step, keep freed memory))."
    cpu, large = device.type == "cpu", width > 0.5
    runners = {"simclr_nb": SimclrNbRunner(x3, width, bs, device, precision="auto")}   # the kit's defaults
    if bf16: runners["simclr_nb_fp32"] = SimclrNbRunner(x3, width, bs, device, precision="fp32")
    if not large:
        runners["simclr_nb_nchw_glibc_default"] = SimclrNbRunner(x3, width, bs, device, channels_last=False,
                                                                keep_freed_memory=False, precision="fp32")
    if have_lightly:
        runners["lightly"] = LightlyRunner(x1, width, bs, device)
        if bf16: runners["lightly_bf16"] = LightlyRunner(x1, width, bs, device, bf16=True)
        if cpu and not large: runners["lightly_keep_freed_memory"] = LightlyRunner(x1, width, bs, device, keep_freed_memory=True)
    for r in runners.values():
        if isinstance(r, SimclrNbRunner): r._learner(1)   # builds the learner: the model takes its layout
    aug = SimCLRAugment(SIZE, strength=STRENGTH)
    views = [v.contiguous() for v in aug.two_views(x3[:bs].to(device))]
    steppers = {}
    for k, r in runners.items():   # model-only: the runners' models (values do not matter for speed)
        if isinstance(r, SimclrNbRunner):
            cl = cpu and r.learner_kw.get("channels_last", True) is not False
            steppers[k] = (partial(simclr_step, r.model, make_lars(r.model, bs), views, cl, r.precision == "bf16"),
                           cpu and r.learner_kw.get("keep_freed_memory", True))
        else: steppers[k] = (partial(lightly_step, r.model, r.opt, views, r.crit, r.bf16), r.keep)
    return runners, steppers, views


def measure_width(res, args, width, x1, x3, device, have_lightly, bf16):
    "Interleaved end-to-end and model-only repeats of every variant at `width`; results, ratios and roofline shares into `res`."
    ch, large = int(round(64 * width)), width > 0.5
    steps, warm = (args.steps_large, 1) if large else (args.steps_small, 1)   # the warm-in batch: a kept heap fills, oneDNN plans
    print(f"[width {width} = {ch} channels] building runners ...", flush=True)
    runners, steppers, views = build_variants(x1, x3, width, args.bs, device, have_lightly, bf16)
    if not large:
        print("  warm-up (one untimed batch each) ...", flush=True)
        for r in runners.values(): r.run(0, 1)
    e2e = {k: [] for k in runners}; mo = {k: [] for k in steppers}; aug_share = []
    for rep in range(args.repeats):
        for k, r in runners.items():
            e2e[k].append(r.run(warm, steps) / steps)
            if k == "simclr_nb": aug_share.append(r.last_aug_s / steps / e2e[k][-1])
            print(f"  rep {rep} {k:40s} {args.bs / e2e[k][-1]:7.1f} images/s (end to end)", flush=True)
        for k, (f, keep) in steppers.items():
            with keeping_freed_memory(keep):
                if keep or large: f()   # one untimed step fills the kept heap / plans the kernels
                sync(device); t0 = time.perf_counter()
                for _ in range(steps): f()
                sync(device); mo[k].append((time.perf_counter() - t0) / steps)
            print(f"  rep {rep} {k:40s} {args.bs / mo[k][-1]:7.1f} images/s (model only)", flush=True)
    key = f"{ch}ch"
    flops = step_flops(width, views, device)
    peak = res["roofline"]["peak_gflops"]
    def prec_of(k): return runners[k].precision
    res["end_to_end"][key] = dict(width=width, base_channels=ch, parameters=count_parameters(runners["simclr_nb"].model),
        warm_in_steps=warm, timed_steps=steps,
        results={k: dict(step_s=t, median_step_s=med(t), images_per_s=args.bs / med(t), precision=prec_of(k)) for k, t in e2e.items()})
    res["model_only"][key] = dict(width=width, base_channels=ch, timed_steps=steps, step_gflop=flops / 1e9,
        results={k: dict(step_s=t, median_step_s=med(t), images_per_s=args.bs / med(t), precision=prec_of(k),
                         achieved_gflops=flops / med(t) / 1e9, share_of_peak=flops / med(t) / 1e9 / peak[prec_of(k)])
                 for k, t in mo.items()})
    res["end_to_end"][key]["simclr_nb_augment_in_training"] = dict(share_of_step=aug_share, what=(
        "the seconds of `two_views` inside simclr_nb's fit (the kit's defaults) over the step's, per repeat (its timed steps)"))
    res["end_to_end"][key]["ratios"] = ratios = width_ratios(res, key, args.bs)
    for k, v in ratios.items(): print(f"  {k}: {v:.3f}")
    for r in runners.values():
        if isinstance(r, LightlyRunner): r.loader = None  # stops the persistent workers


def width_ratios(res, key, bs):
    "Speed-ups against lightly's fp32 recipe and against the best lightly row; data shares; augmentation's share."
    E, M = res["end_to_end"][key]["results"], res["model_only"][key]["results"]
    ratios = {}
    lightly_rows = [k for k in E if k.startswith("lightly")]
    if lightly_rows:
        best = min(lightly_rows, key=lambda k: E[k]["median_step_s"])
        res["end_to_end"][key]["lightly_best"] = best
        for k in (k for k in E if not k.startswith("lightly")):
            ratios[f"{k}_vs_lightly_end_to_end"] = E["lightly"]["median_step_s"] / E[k]["median_step_s"]
            ratios[f"{k}_vs_lightly_best_end_to_end"] = E[best]["median_step_s"] / E[k]["median_step_s"]
        bestm = min((k for k in M if k.startswith("lightly")), key=lambda k: M[k]["median_step_s"])
        ratios["simclr_nb_vs_lightly_best_model_only"] = M[bestm]["median_step_s"] / M["simclr_nb"]["median_step_s"]
    for k in E:   # what the data pipeline and the loop add to the model-only step
        ratios[f"{k}_data_share"] = max(0.0, 1 - M[k]["median_step_s"] / E[k]["median_step_s"])
    aug_s = res["augment"]["results"]["simclr_nb"]["median_s"] * bs / res["augment"]["images"]
    ratios["simclr_nb_augment_share_of_step"] = aug_s / E["simclr_nb"]["median_step_s"]
    ratios["simclr_nb_augment_in_training_share_of_step"] = med(res["end_to_end"][key]["simclr_nb_augment_in_training"]["share_of_step"])
    return ratios


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default, i.e. the cores)")
    ap.add_argument("--widths", type=float, nargs="+", default=[0.25, 1.0])
    ap.add_argument("--bs", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds of the end-to-end and model-only timings")
    ap.add_argument("--aug-rounds", type=int, default=3)
    ap.add_argument("--steps-small", type=int, default=3, help="timed steps per repeat at width <= 0.5")
    ap.add_argument("--steps-large", type=int, default=1, help="timed steps per repeat at width > 0.5")
    ap.add_argument("--no-lightly", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smoke run: width 0.25 only, 2 steps, 3 repeats")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", default=None)
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                    help="measure torch.compile of the model-only step at the first width (default on)")
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    if args.quick: args.widths, args.steps_small = [0.25], 2
    device = torch.device(args.device)
    try:
        import lightly  # noqa: F401
        have_lightly = not args.no_lightly
    except ImportError:
        have_lightly = False
        print("lightly is not installed: run `bash bench/setup_env.sh` and use .venv-bench/bin/python; lightly rows skipped")
    t_start = time.time()
    load_before = os.getloadavg()
    data = load_dataset("fashion_mnist")
    n_needed = args.bs * (1 + max(args.steps_small, args.steps_large))
    x1 = data.train_x[:max(n_needed, 512)]
    x3 = x1.expand(-1, 3, -1, -1).contiguous()
    res = dict(machine=machine_info(device), command=" ".join([Path(sys.executable).name] + sys.argv),
               settings=dict(image_size=SIZE, color_strength=STRENGTH, temperature=TEMPERATURE, batch_size=args.bs,
                             optimizer=f"simclr_nb LARS(lr={BASE_LR}*sqrt(B), momentum 0.9, eta 0.001, wd {WD}) for both",
                             data="Fashion-MNIST training images, gray channel repeated to RGB (3 channels) for both libraries",
                             repeats=args.repeats, note=args.note),
               load_average_1min=dict(before=load_before[0]))

    print(f"[augment] {args.aug_rounds} interleaved rounds ...", flush=True)
    res["augment"] = bench_augment(x1[:512], device, args.aug_rounds, have_lightly)
    for k, v in res["augment"]["results"].items(): print(f"  {k:28s} {v['images_per_s']:8.0f} images/s")
    save(res, args, device, t_start, complete=False)

    kit_precision = resolve_precision("auto", device)   # what the kit's `precision='auto'` picks here
    bf16 = kit_precision == "bf16"
    res["settings"]["kit_precision"] = kit_precision
    res["settings"]["bf16_path"] = (f"native: torch CPU capability {torch.backends.cpu.get_cpu_capability()}, "
                                    f"flags {[f for f in cpu_flags() if 'bf16' in f]}" if bf16 and device.type == "cpu"
                                    else "GPU bf16" if bf16 else "not native here: bf16 rows skipped")
    print(f"[roofline] matmul and convolution rates ...", flush=True)
    res["roofline"] = rf = roofline(device)
    for k, v in rf["peak_gflops"].items(): print(f"  {k}: matmul {rf['matmul_gflops'][k]:.0f}, convolution {rf['conv_gflops'][k]:.0f} GFLOP/s")
    res["end_to_end"], res["model_only"] = {}, {}
    for width in args.widths:
        measure_width(res, args, width, x1, x3, device, have_lightly, bf16)
        save(res, args, device, t_start, complete=False)
    if args.compile:
        print(f"[compile] width {args.widths[0]}, {kit_precision} ...", flush=True)
        res["compile"] = bench_compile(x3, args.widths[0], args.bs, device, kit_precision)
        c = res["compile"]
        print(f"  compile overhead {c['compile_overhead_s']:.0f} s, eager {c['eager_step_s']:.2f} s, compiled {c['compiled_step_s']:.2f} s,"
              f" break-even after {c['break_even_steps']} steps", flush=True)
    save(res, args, device, t_start, complete=True)


def save(res, args, device, t_start, complete):
    "Write the JSON and markdown (also after every section, so that an interrupted run keeps what it measured)."
    res["complete"] = complete
    res["load_average_1min"]["after"] = os.getloadavg()[0]
    res["wall_s"] = round(time.time() - t_start, 1)
    res["targets"] = targets(res)
    tag = ("speed_quick_" if args.quick else "speed_") + device.type
    out = Path(args.out) if args.out else RESULTS / f"{tag}.json"
    atomic_write(out, json.dumps(res, indent=2) + "\n")   # the package's one atomic writer: an interrupted run leaves whole files
    md = markdown(res)
    atomic_write(out.with_suffix(".md"), md)
    if complete:
        print(md)
        print(f"wrote {out} and {out.with_suffix('.md')} in {res['wall_s']:.0f} s")


def targets(res):
    "The issue's targets, measured: met or missed and by how much."
    t = {}
    a = res["augment"]["ratios"]["simclr_nb_vs_torchvision"]
    t["augment_10x_torchvision"] = dict(target=10.0, measured=a, met=a >= 10)
    gpu = res["machine"]["device"] == "cuda"
    for key, e in res.get("end_to_end", {}).items():
        r = e["ratios"]
        if "simclr_nb_vs_lightly_best_end_to_end" in r:
            v = r["simclr_nb_vs_lightly_best_end_to_end"]
            t[f"end_to_end_1.5x_lightly_best_{key}"] = dict(target=1.5, measured=v, met=v >= 1.5, lightly_best=e["lightly_best"])
            if res["settings"].get("kit_precision") == "bf16":
                v = r["simclr_nb_vs_lightly_end_to_end"]
                t[f"end_to_end_2x_lightly_fp32_{key}"] = dict(target=2.0, measured=v, met=v >= 2.0)
        lim = 0.10 if gpu else 0.05
        s = r["simclr_nb_augment_share_of_step"]   # the augmentation row's time (interleaved with the per-sample pipelines)
        t[f"augment_under_{int(lim * 100)}pct_of_step_{key}"] = dict(target=lim, op="<", measured=s, met=s < lim)
        s = r["simclr_nb_augment_in_training_share_of_step"]   # the views' own time inside the fit
        t[f"augment_in_training_under_{int(lim * 100)}pct_of_step_{key}"] = dict(target=lim, op="<", measured=s, met=s < lim)
    return t


def markdown(res):
    m = res["machine"]
    L = [f"# Speed: simclr_nb vs lightly ({m['device']})", "",
         f"Machine: {m['cpu']} (flags: {', '.join(m['cpu_flags'])}), {m['cores']} cores, {m['torch_threads']} torch threads"
         + (f", GPU {m['gpu']}" if m["gpu"] else "") + f"; torch {m['torch']}, torchvision {m['torchvision']}, "
         f"fastai {m['fastai']}, lightly {m['lightly']}; {m['date']}, commit {m['git_commit']}. "
         f"1-min load average {res['load_average_1min']['before']:.1f} before, {res['load_average_1min']['after']:.1f} after "
         f"(the machine is shared). Command: `{res['command']}` ({res['wall_s']:.0f} s)"
         + ("." if res.get("complete") else "; INCOMPLETE: the run was stopped before every section was measured."), "",
         f"The kit's `precision='auto'` here: **{res['settings'].get('kit_precision')}** ({res['settings'].get('bf16_path')}).", "",
         "Images/s count source images (each gets two views). Medians of interleaved repeats; ratios from this run.", "",
         f"## Two-view augmentation ({res['augment']['what']})", "",
         "| pipeline | images/s | time per batch relative to simclr_nb (3 ch) |", "|---|---:|---:|"]
    A = res["augment"]["results"]
    for k, v in A.items():
        L.append(f"| {k} | {v['images_per_s']:,.0f} | {v['median_s'] / A['simclr_nb']['median_s']:.1f} |")
    if "roofline" in res:
        rf = res["roofline"]
        L += ["", "## Roofline", "", "Peak (" + rf["what"] + "): " + ", ".join(
                  f"{k} {v:,.0f} GFLOP/s (matmul {rf['matmul_gflops'][k]:,.0f}, convolution {rf['conv_gflops'][k]:,.0f})" for k, v in rf["peak_gflops"].items())
              + ". A step's FLOPs are its convolutions and "
              "matmuls, forward and backward (torch's FlopCounterMode); BN, ReLU, the loss's softmax and the optimizer are "
              "memory-bound and add time but no counted FLOPs."]
    L += ["", f"## Pretraining, images/s: end to end and model-only step (ResNet-18 CIFAR stem, 3-layer head, batch {res['settings']['batch_size']}, 32 px, LARS)", "",
          "| width | variant | precision | end to end | model-only step | data + loop share | vs lightly fp32 | vs lightly's best | model-only GFLOP/s | share of peak |",
          "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, e in res.get("end_to_end", {}).items():
        E, M = e["results"], res["model_only"][key]["results"]
        best = e.get("lightly_best")
        for k, v in E.items():
            mo = M[k]
            share = max(0.0, 1 - mo["median_step_s"] / v["median_step_s"])
            vs = [f"{E[ref]['median_step_s'] / v['median_step_s']:.2f}x" if ref in E else "" for ref in ("lightly", best)]
            L.append(f"| {key} | {k} | {v['precision']} | {v['images_per_s']:.1f} | {mo['images_per_s']:.1f} | {100 * share:.0f}% | "
                     f"{vs[0]} | {vs[1]} | {mo.get('achieved_gflops', float('nan')):.1f} | {100 * mo.get('share_of_peak', float('nan')):.0f}% |")
        L.append(f"| {key} | (step: {res['model_only'][key].get('step_gflop', float('nan')):.1f} GFLOP; lightly's best: {best}) | | | | | | | | |")
    if "compile" in res:
        c = res["compile"]
        be = "never (no gain)" if c["break_even_steps"] is None else f"{c['break_even_steps']:.0f} steps"
        L += ["", f"## torch.compile (model-only step, width {c['width']}, {c['precision']}, batch {c['batch_size']})", "",
              "| eager step | compiled step | speed-up | compile overhead | pays off after |", "|---:|---:|---:|---:|---:|",
              f"| {c['eager_step_s']:.3f} s | {c['compiled_step_s']:.3f} s | {c['speedup']:.2f}x | {c['compile_overhead_s']:.0f} s | {be} |"]
    L += ["", "## Targets", "", "| target | measured | met |", "|---|---:|---|"]
    for k, t in res["targets"].items():
        L.append(f"| {k} ({t.get('op', '>=')} {t['target']}) | {t['measured']:.3g} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
