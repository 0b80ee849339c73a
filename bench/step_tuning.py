#!/usr/bin/env python
"""What else narrows the gap between the kit's training step and the machine's limit (issue 13, build item 3):
batch size, the optimizer step, batch-norm folding at evaluation, thread settings.

Same network and step as `bench/speed.py`'s model-only rows (its `make_model`, `make_lars` and `simclr_step`): the kit's SimCLRv2 ResNet-18 (small-image stem) + 3-layer
projection head at width 0.25 (16 base channels), two 32 px views of RGB Fashion-MNIST images made once, one forward
over the 2B views under the kit's precision (`precision='auto'`), NT-Xent, backward, the kit's LARS step; channels-last
on a CPU. Every arm runs its alternatives interleaved (A, B, A, B, ...) after an untimed step each; medians of
`--repeats`; every ratio comes from medians of this same run.

1. Batch size: images/s of the step at 128, 256 (the kit's default) and 512.
2. Optimizer step: the kit's `LARS` tensor by tensor (`foreach=False`, one `lars_step` per tensor, its CPU default) timed
   alone after a backward, against the same `LARS` with `foreach=True` (`torch._foreach_*` over all tensors at once, its
   GPU default; the largest weight difference after 3 steps from the same state is recorded), and the per-tensor
   step's share of the whole training step. (The committed JSON predates `foreach`: its foreach arm was a class
   written here with the same update.)
3. Batch-norm folding at evaluation: `extract_features` of the encoder in eval mode on 4,096 images with
   `fold_bn=False` and `fold_bn=True` (every convolution + batch-norm pair folded into one convolution on a copy,
   `cputune.fold_batchnorm`; the folding is counted in its time); the largest feature difference is recorded.
4. Threads: the step with `torch.set_num_threads(1)` against all usable cores.
5. The kit's compiled path (`compile_kit`): `bench/speed.py` compiles the bare model under whole-model autocast; here
   the kit's pretraining learner end to end (augmentation, `precision='auto'`, the projection head kept in fp32 by
   `Autocast`'s hooks, which break the compiled graph) with `cputune.CompileModel` against the same learner eager.

    .venv/bin/python bench/step_tuning.py      # writes bench/results/step_tuning_<cpu|cuda>.json (about 3.5 minutes on 2 cores, a minute of it compiling)
"""
import argparse, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import empty_inductor_cache, machine_info, sync  # noqa: E402  (bench/machine.py)
from speed import SIZE, STRENGTH, BASE_LR, WD, make_model, make_lars, simclr_step, med  # noqa: E402  (bench/speed.py: the same network and step)

import torch  # noqa: E402

from simclr_nb.augment import SimCLRAugment  # noqa: E402
from simclr_nb.checkpoint import atomic_write_json  # noqa: E402
from simclr_nb.data import load_dataset  # noqa: E402
from simclr_nb.evaluate import extract_features  # noqa: E402
from simclr_nb.models import simclrv2_resnet  # noqa: E402
from simclr_nb.optim import LARS  # noqa: E402
from simclr_nb.precision import resolve_precision  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
WIDTH = 0.25


def interleaved(fns, repeats):
    "{name: [seconds, ...]} timing each function once per round, the rounds interleaved."
    out = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter(); f(); out[k].append(time.perf_counter() - t0)
    return out


def arm_batch_size(x3, device, cl, bf16, repeats):
    aug, fns = SimCLRAugment(SIZE, strength=STRENGTH), {}
    for bs in (128, 256, 512):
        views = [v.contiguous() for v in aug.two_views(x3[:bs].to(device))]
        model = make_model(WIDTH, device, cl)
        def step(model=model, opt=make_lars(model, bs), views=views): simclr_step(model, opt, views, cl, bf16); sync(device)
        step(); fns[str(bs)] = step
    t = interleaved(fns, repeats)
    ips = {bs: int(bs) / med(ts) for bs, ts in t.items()}
    return dict(what="images/s of the model-only step (source images; two views each)", times_s=t, images_per_s=ips,
                ratio_to_256={bs: v / ips["256"] for bs, v in ips.items()})


def arm_optimizer(x3, device, cl, bf16, repeats, bs=256):
    aug = SimCLRAugment(SIZE, strength=STRENGTH)
    views = [v.contiguous() for v in aug.two_views(x3[:bs].to(device))]
    lr = BASE_LR * bs ** 0.5   # make_lars's rate
    # the same update? three steps of each from the same weights and gradients
    a, b = make_model(WIDTH, device, cl), make_model(WIDTH, device, cl)
    oa, ob = LARS(list(a.parameters()), lr=lr, wd=WD, foreach=False), LARS(list(b.parameters()), lr=lr, wd=WD, foreach=True)
    for _ in range(3):
        simclr_step(a, None, views, cl, False)
        for pa, pb in zip(a.parameters(), b.parameters()): pb.grad = pa.grad.clone()
        oa.step(); ob.step(); oa.zero_grad(); ob.zero_grad()
    diff = max((pa - pb).abs().max().item() for pa, pb in zip(a.parameters(), b.parameters()))
    model = make_model(WIDTH, device, cl)
    kit, fe = (LARS(list(model.parameters()), lr=lr, wd=WD, foreach=f) for f in (False, True))
    simclr_step(model, None, views, cl, bf16)
    grads = [p.grad.clone() for p in model.parameters()]
    def with_grads(opt):
        def run():
            for p, g in zip(model.parameters(), grads): p.grad = g
            t0 = time.perf_counter(); opt.step(); sync(device); return time.perf_counter() - t0
        return run
    kit_run, fe_run = with_grads(kit), with_grads(fe)
    kit_run(); fe_run()
    tk, tf = [], []
    for _ in range(max(repeats, 9)):
        tk.append(kit_run()); tf.append(fe_run())
    def full(): simclr_step(model, kit, views, cl, bf16); sync(device)
    full()
    tfull = interleaved({"step": full}, repeats)["step"]
    return dict(what="seconds of the optimizer step alone (gradients of one backward), and of the whole model-only step",
                tensors=len(grads), kit_lars_s=med(tk), foreach_lars_s=med(tf), speedup=med(tk) / med(tf),
                kit_times_s=tk, foreach_times_s=tf, whole_step_s=med(tfull),
                kit_share_of_step=med(tk) / med(tfull), max_weight_difference_after_3_steps=diff)


def arm_bn_fold(x3, device, repeats, n=4096):
    torch.manual_seed(0)
    enc = simclrv2_resnet(18, WIDTH, sk=False, small_images=True, in_channels=3).to(device)
    # batch-norm statistics that are not the identity, as after training
    enc.train()
    with torch.no_grad():
        for i in range(0, 2048, 256): enc(torch.rand(256, 3, SIZE, SIZE, device=device))
    x = x3[:n]
    run = {"as_is": lambda: extract_features(enc, x, size=SIZE, fold_bn=False),
           "folded": lambda: extract_features(enc, x, size=SIZE, fold_bn=True)}   # folding (a copy, traced) counted in its time
    ref, got = run["as_is"](), run["folded"]()
    t = interleaved(run, repeats)
    return dict(what=f"extract_features of {n} images at {SIZE} px (encoder, eval mode, batch 512), fold_bn False/True, seconds", times_s=t,
                images_per_s={k: n / med(v) for k, v in t.items()}, speedup=med(t["as_is"]) / med(t["folded"]),
                max_feature_difference=(ref - got).abs().max().item(), feature_scale=ref.abs().max().item())


def arm_threads(x3, device, cl, bf16, repeats, bs=256):
    cores = torch.get_num_threads()
    aug = SimCLRAugment(SIZE, strength=STRENGTH)
    views = [v.contiguous() for v in aug.two_views(x3[:bs].to(device))]
    model = make_model(WIDTH, device, cl); opt = make_lars(model, bs)
    def step_with(n):
        def run():
            torch.set_num_threads(n)
            try: simclr_step(model, opt, views, cl, bf16)
            finally: torch.set_num_threads(cores)
        return run
    fns = {str(n): step_with(n) for n in sorted({1, cores})}
    for f in fns.values(): f()
    t = interleaved(fns, repeats)
    return dict(what="seconds of the model-only step at batch 256", times_s=t, default_threads=cores,
                step_s={k: med(v) for k, v in t.items()})


def arm_compile_kit(x3, device, repeats, bs=256, steps=3):
    """The kit's own compiled path end to end: `pretrain_learner` at `precision='auto'` (the projection head kept in fp32
    by `Autocast`'s hooks, which break the compiled graph) with `cputune.CompileModel` against the same learner eager."""
    from speed import SimclrNbRunner
    from simclr_nb.cputune import CompileModel
    from simclr_nb.evaluate import verdict
    eager = SimclrNbRunner(x3, WIDTH, bs, device, precision="auto")
    comp = SimclrNbRunner(x3, WIDTH, bs, device, precision="auto"); comp.cbs.append(CompileModel())
    torch._dynamo.reset()
    with empty_inductor_cache():   # the compile time a first run pays (a warm cache: seconds)
        eager.run(0, 1)
        t0 = time.perf_counter(); comp.run(0, 1); first = time.perf_counter() - t0   # a fit of one batch: compiling counted
        eager.run(0, 1); comp.run(0, 1)   # untimed: a second fit (any recompile for the optimizer's state, first use of kernels)
        t = {"eager": [], "compiled": []}
        for _ in range(repeats):   # interleaved fits of 1 + `steps` batches; the seconds of the last `steps` (fastai's own clock)
            for k, r in (("eager", eager), ("compiled", comp)): t[k].append(r.run(1, steps) / steps)
    e, c = med(t["eager"]), med(t["compiled"])
    v = verdict(dict(enumerate(t["eager"])), dict(enumerate(t["compiled"])))   # eager slower than compiled, paired over the rounds?
    return dict(what=f"seconds per training batch of the kit's pretraining learner end to end (augmentation, {eager.precision}, "
                     f"fp32 head), eager against CompileModel, batch {bs}; compiled from an empty inductor cache", step_s=t,
                eager_step_s=e, compiled_step_s=c, speedup=e / c, first_fit_of_one_batch_s=first, compile_overhead_s=first - e,
                break_even_steps=(first - e) / (e - c) if e > c else None,
                compiled_faster=dict(outcome=v.outcome, mean_difference_s=v.difference, se_s=v.se, rounds=v.n,
                                     rule="verdict: eager minus compiled seconds, paired over the interleaved rounds, beyond 2 SE"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=9, help="interleaved rounds per arm")
    args = ap.parse_args()
    device = torch.device(args.device)
    precision = resolve_precision("auto", device)
    cl, bf16 = device.type == "cpu", precision == "bf16"
    t0 = time.time()
    x1 = load_dataset("fashion_mnist").train_x[:4096]
    x3 = x1.expand(-1, 3, -1, -1).contiguous()
    res = dict(command=" ".join(["python", "bench/step_tuning.py"] + sys.argv[1:]), machine=machine_info(args.device),
               settings=dict(width=WIDTH, image_size=SIZE, precision=precision, channels_last=cl, repeats=args.repeats))
    out = RESULTS / f"step_tuning_{device.type}.json"
    for name, fn in (("batch_size", lambda: arm_batch_size(x3, device, cl, bf16, args.repeats)),
                     ("optimizer", lambda: arm_optimizer(x3, device, cl, bf16, args.repeats)),
                     ("bn_fold_eval", lambda: arm_bn_fold(x3, device, args.repeats)),
                     ("threads", lambda: arm_threads(x3, device, cl, bf16, args.repeats)),
                     ("compile_kit", lambda: arm_compile_kit(x3, device, args.repeats))):
        print(f"[{name}] ...", flush=True)
        res[name] = fn()
        print({k: v for k, v in res[name].items() if not isinstance(v, (list, dict)) or k in ("images_per_s", "step_s", "ratio_to_256")}, flush=True)
        res["wall_s"] = time.time() - t0
        atomic_write_json(out, res)
    print(f"wrote {out} ({res['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
