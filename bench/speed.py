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
3. Model-only step, images/s, on pre-made view tensors (no data pipeline): forward, loss, backward, LARS step, in a
   plain loop, for the same four variants (the keep-freed-memory ones run one untimed step first, inside the setting).
   Its share of the end-to-end step shows what the data pipeline (and the framework) costs.

glibc's setting is process-wide: `glibc_keep_freed_memory(False)` after each such variant sets glibc's limits to where its
dynamic threshold settles after large blocks (mmap above 32 MB) and returns the kept memory (`malloc_trim`), so that the
variants without it do not re-use it. bf16 autocast is not measured on CPUs without native bf16 (no avx512_bf16 / AMX):
there it is emulated and slower. torch.compile is not measured.

    bash bench/setup_env.sh && .venv-bench/bin/python bench/speed.py          # `make bench`; writes
    bench/results/speed_<cpu|cuda>.json and .md   (--quick: a smoke run of a few minutes, written to speed_quick_*.json)
"""
import argparse, contextlib, gzip, json, os, platform, statistics, subprocess, sys, time, warnings
from functools import partial
from pathlib import Path

from machine import cpu_model  # bench/machine.py

import numpy as np
import torch

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)

from simclr_nb.augment import SimCLRAugment
from simclr_nb.data import ImageData, load_dataset, unlabeled_dls
from simclr_nb.losses import nt_xent
from simclr_nb.models import simclrv2_resnet, ProjectionHead, ContrastiveNet, count_parameters
from simclr_nb.optim import LARS
from simclr_nb.pretrain import pretrain_learner, fit_pretrain, glibc_keep_freed_memory

RESULTS = Path(__file__).resolve().parent / "results"
SIZE, STRENGTH, TEMPERATURE, BASE_LR, WD = 32, 0.5, 0.5, 0.3, 1e-4


# ---------------------------------------------------------------- machine info


def cpu_flags():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                fl = set(line.split(":", 1)[1].split())
                return sorted(f for f in fl if f.startswith(("avx512", "amx")) or f in ("avx2", "fma", "avx_vnni"))
    except OSError: pass
    return []


def machine_info(device):
    try: import lightly; lightly_v = lightly.__version__
    except ImportError: lightly_v = None
    import torchvision, fastai
    try: commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                 cwd=Path(__file__).parent).stdout.strip() or None
    except OSError: commit = None
    return dict(cpu=cpu_model(), cpu_flags=cpu_flags(), cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                omp_num_threads=os.environ.get("OMP_NUM_THREADS"), python=platform.python_version(),
                torch=torch.__version__, torchvision=torchvision.__version__, fastai=fastai.__version__,
                lightly=lightly_v, gpu=torch.cuda.get_device_name(0) if device.type == "cuda" else None,
                device=device.type, git_commit=commit, date=time.strftime("%Y-%m-%d %H:%M %Z"))


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


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
        self.model = make_model(width, device)
        self.aug = SimCLRAugment(SIZE, strength=STRENGTH)
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
        "Train warm+steps batches; return the seconds of the last `steps`."
        learn = self._learner(warm + steps)
        with learn.no_bar(), learn.no_logging(): fit_pretrain(learn, 1)
        m = self.clock.marks
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
    def __init__(self, x1, width, bs, device, workers=2, keep_freed_memory=False):
        from lightly.loss import NTXentLoss
        self.x1, self.bs, self.device, self.workers = x1, bs, device, workers
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
                z0, z1 = self.model(x0), self.model(x1)
                loss = self.crit(z0, z1)
                loss.backward(); self.opt.step(); self.opt.zero_grad()
                sync(self.device); marks.append(time.perf_counter())
            return marks[-1] - marks[warm]


# ---------------------------------------------------------------- 3. model-only step
def simclr_step(model, opt, views, channels_last=False):
    x = torch.cat(views)
    if channels_last: x = x.contiguous(memory_format=torch.channels_last)
    z = model(x)
    loss = nt_xent(*z.float().chunk(2), TEMPERATURE)
    loss.backward(); opt.step(); opt.zero_grad()


def lightly_step(model, opt, views, crit):
    z0, z1 = model(views[0]), model(views[1])
    loss = crit(z0, z1)
    loss.backward(); opt.step(); opt.zero_grad()


# ---------------------------------------------------------------- main
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

    res["end_to_end"], res["model_only"] = {}, {}
    for width in args.widths:
        ch = int(round(64 * width))
        large = width > 0.5
        steps, warm = (args.steps_large, 1) if large else (args.steps_small, 1)   # the warm-in batch: a kept heap fills, oneDNN plans
        print(f"[width {width} = {ch} channels] building runners ...", flush=True)
        cpu = device.type == "cpu"
        runners = {"simclr_nb": SimclrNbRunner(x3, width, args.bs, device),
                   "simclr_nb_nchw_glibc_default": SimclrNbRunner(x3, width, args.bs, device, channels_last=False, keep_freed_memory=False)}
        if have_lightly:
            runners["lightly"] = LightlyRunner(x1, width, args.bs, device)
            if cpu: runners["lightly_keep_freed_memory"] = LightlyRunner(x1, width, args.bs, device, keep_freed_memory=True)
        for r in runners.values():
            if isinstance(r, SimclrNbRunner): r._learner(1)   # builds the learner: the model takes its layout
        # model-only: reuse the runners' models (values do not matter for speed); (step function, keep freed memory)
        aug = SimCLRAugment(SIZE, strength=STRENGTH)
        views = [v.contiguous() for v in aug.two_views(x3[:args.bs].to(device))]
        m = runners["simclr_nb"].model
        steppers = {"simclr_nb": (partial(simclr_step, m, make_lars(m, args.bs), views, cpu), cpu)}
        m = runners["simclr_nb_nchw_glibc_default"].model
        steppers["simclr_nb_nchw_glibc_default"] = (partial(simclr_step, m, make_lars(m, args.bs), views), False)
        if have_lightly:
            lr_ = runners["lightly"]
            steppers["lightly"] = (partial(lightly_step, lr_.model, lr_.opt, views, lr_.crit), False)
            if cpu:
                lk = runners["lightly_keep_freed_memory"]
                steppers["lightly_keep_freed_memory"] = (partial(lightly_step, lk.model, lk.opt, views, lk.crit), True)
        if not large:
            print("  warm-up (one untimed batch each) ...", flush=True)
            for r in runners.values(): r.run(0, 1)
        e2e = {k: [] for k in runners}; mo = {k: [] for k in steppers}
        for rep in range(args.repeats):
            for k, r in runners.items():
                e2e[k].append(r.run(warm, steps) / steps)
                print(f"  rep {rep} {k:40s} {args.bs / e2e[k][-1]:7.1f} images/s (end to end)", flush=True)
            for k, (f, keep) in steppers.items():
                with keeping_freed_memory(keep):
                    if keep: f()   # one untimed step fills the kept heap
                    sync(device); t0 = time.perf_counter()
                    for _ in range(steps): f()
                    sync(device); mo[k].append((time.perf_counter() - t0) / steps)
                print(f"  rep {rep} {k:40s} {args.bs / mo[k][-1]:7.1f} images/s (model only)", flush=True)
        key = f"{ch}ch"
        params = count_parameters(runners["simclr_nb"].model)
        res["end_to_end"][key] = dict(width=width, base_channels=ch, parameters=params, warm_in_steps=warm, timed_steps=steps,
            results={k: dict(step_s=t, median_step_s=med(t), images_per_s=args.bs / med(t)) for k, t in e2e.items()})
        res["model_only"][key] = dict(width=width, base_channels=ch, timed_steps=steps,
            results={k: dict(step_s=t, median_step_s=med(t), images_per_s=args.bs / med(t)) for k, t in mo.items()})
        E, M = res["end_to_end"][key]["results"], res["model_only"][key]["results"]
        ratios = {}
        if have_lightly:
            for ref in [k for k in ("lightly", "lightly_keep_freed_memory") if k in E]:
                for k in runners:
                    if not k.startswith("lightly"): ratios[f"{k}_vs_{ref}_end_to_end"] = E[ref]["median_step_s"] / E[k]["median_step_s"]
                ratios[f"simclr_nb_vs_{ref}_model_only"] = M[ref]["median_step_s"] / M["simclr_nb"]["median_step_s"]
        for k in E:   # what the data pipeline and the loop add to the model-only step
            ratios[f"{k}_data_share"] = max(0.0, 1 - M[k]["median_step_s"] / E[k]["median_step_s"])
        # augmentation's share of a simclr_nb step: the two-view time for one batch over the end-to-end step time
        aug_s = res["augment"]["results"]["simclr_nb"]["median_s"] * args.bs / res["augment"]["images"]
        ratios["simclr_nb_augment_share_of_step"] = aug_s / E["simclr_nb"]["median_step_s"]
        res["end_to_end"][key]["ratios"] = ratios
        for k, v in ratios.items(): print(f"  {k}: {v:.3f}")
        save(res, args, device, t_start, complete=False)
        for r in runners.values():
            if isinstance(r, LightlyRunner): r.loader = None  # stops the persistent workers
        del runners, steppers

    save(res, args, device, t_start, complete=True)


def save(res, args, device, t_start, complete):
    "Write the JSON and markdown (also after every section, so that an interrupted run keeps what it measured)."
    res["complete"] = complete
    res["load_average_1min"]["after"] = os.getloadavg()[0]
    res["wall_s"] = round(time.time() - t_start, 1)
    res["targets"] = targets(res)
    tag = ("speed_quick_" if args.quick else "speed_") + device.type
    out = Path(args.out) if args.out else RESULTS / f"{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    md = markdown(res)
    out.with_suffix(".md").write_text(md)
    if complete:
        print(md)
        print(f"wrote {out} and {out.with_suffix('.md')} in {res['wall_s']:.0f} s")


def targets(res):
    "The issue's targets, measured: met or missed and by how much."
    t = {}
    a = res["augment"]["ratios"]["simclr_nb_vs_torchvision"]
    t["augment_10x_torchvision"] = dict(target=10.0, measured=a, met=a >= 10)
    for key, e in res.get("end_to_end", {}).items():
        r = e["ratios"]
        if "simclr_nb_vs_lightly_end_to_end" in r:
            v = r["simclr_nb_vs_lightly_end_to_end"]
            t[f"end_to_end_1.5x_lightly_{key}"] = dict(target=1.5, measured=v, met=v >= 1.5)
            if "simclr_nb_vs_lightly_keep_freed_memory_end_to_end" in r:
                v = r["simclr_nb_vs_lightly_keep_freed_memory_end_to_end"]
                t[f"end_to_end_1.5x_lightly_keep_freed_memory_{key}"] = dict(target=1.5, measured=v, met=v >= 1.5)
        if res["machine"]["device"] == "cuda":
            s = r["simclr_nb_augment_share_of_step"]
            t[f"augment_under_10pct_of_step_{key}"] = dict(target=0.10, op="<", measured=s, met=s < 0.10)
    return t


def markdown(res):
    m = res["machine"]
    L = [f"# Speed: simclr_nb vs lightly ({m['device']})", "",
         f"Machine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads"
         + (f", GPU {m['gpu']}" if m["gpu"] else "") + f"; torch {m['torch']}, torchvision {m['torchvision']}, "
         f"fastai {m['fastai']}, lightly {m['lightly']}; {m['date']}, commit {m['git_commit']}. "
         f"1-min load average {res['load_average_1min']['before']:.1f} before, {res['load_average_1min']['after']:.1f} after "
         f"(the machine is shared). Command: `{res['command']}` ({res['wall_s']:.0f} s)"
         + ("." if res.get("complete") else "; INCOMPLETE: the run was stopped before every width was measured."), "",
         "Images/s count source images (each gets two views). Medians of interleaved repeats; ratios from this run.", "",
         f"## Two-view augmentation ({res['augment']['what']})", "",
         "| pipeline | images/s | time per batch relative to simclr_nb (3 ch) |", "|---|---:|---:|"]
    A = res["augment"]["results"]
    for k, v in A.items():
        L.append(f"| {k} | {v['images_per_s']:,.0f} | {v['median_s'] / A['simclr_nb']['median_s']:.1f} |")
    L += ["", "## Pretraining, images/s: end to end and model-only step (ResNet-18 CIFAR stem, 3-layer head, batch 256, 32 px, LARS)", "",
          "| width | variant | end to end | model-only step | data + loop share of the step | vs lightly end to end | vs lightly keeping freed memory |",
          "|---|---|---:|---:|---:|---:|---:|"]
    for key, e in res.get("end_to_end", {}).items():
        E, M, r = e["results"], res["model_only"][key]["results"], e["ratios"]
        for k, v in E.items():
            mo = M.get(k)
            share = 1 - mo["median_step_s"] / v["median_step_s"] if mo else float("nan")
            vs = [f"{E[ref]['median_step_s'] / v['median_step_s']:.2f}x" if ref in E else "" for ref in ("lightly", "lightly_keep_freed_memory")]
            L.append(f"| {key} | {k} | {v['images_per_s']:.1f} | {mo['images_per_s']:.1f} | {100 * max(share, 0):.0f}% | {vs[0]} | {vs[1]} |")
    L += ["", "## Targets", "", "| target | measured | met |", "|---|---:|---|"]
    for k, t in res["targets"].items():
        L.append(f"| {k} ({t.get('op', '>=')} {t['target']}) | {t['measured']:.2f} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
