#!/usr/bin/env python
"""Does bf16 cost accuracy? (issue 13) The same small Fashion-MNIST runs in fp32 and in bf16 autocast, on the same seeds.

For each seed (the pretraining's seed, its label split and the fine-tuning's seed) and each precision, the pipeline runs
two stages on a fixed random subset of Fashion-MNIST (`--train-images` training images, `--test-images` test images,
28 px): SimCLR pretraining (its kNN accuracy on the validation hold-out is the first measure) and fine-tuning from head
layer 1 on `--fraction` of the labels (test accuracy, and accuracy on the validation hold-out). The two precisions of a
seed run back to back, so they see the same load of a shared machine; every number is a mean ± std over the seeds,
and the bf16 - fp32 difference is paired by seed. A third arm fine-tunes each seed's bf16 pretraining in fp32, so that a
difference can be traced to the stage it comes from. A fourth arm trains in bf16 with the contrastive network's
projection head (`ContrastiveNet.head`) in fp32 (`simclr_nb.precision.FP32_MODULES`): the head's output is what NT-Xent
compares, and bf16 would round it to an 8-bit mantissa before the loss. The fine-tuning network has no submodule
`head` (its layers are `head_layers`), so that arm fine-tunes wholly in bf16.

"Inside the seed spread" means |mean paired difference| <= the larger of the two precisions' seed standard deviations
(the issue's criterion); the paired difference's own standard error is reported beside it.
Finished runs are cached in `--runs` (the pipeline's run folders): an interrupted run resumes where it stopped.

    python bench/precision_accuracy.py            # writes bench/results/precision_accuracy_<cpu|cuda>.json and .md
"""
import argparse, contextlib, json, math, sys, time
from pathlib import Path

import torch

from machine import machine_info  # bench/machine.py
from simclr_nb.checkpoint import atomic_write  # the package's one atomic writer: a resumable run never reads half a file

import simclr_nb.precision as P
from simclr_nb.data import ImageData, load_dataset
from simclr_nb.evaluate import spread, verdict
from simclr_nb.pipeline import PipelineConfig, run_pipeline, share_stages, stage_key

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def subset(data, n_train, n_test, seed=0):
    "A fixed random subset of the training and test images (the same for every run)."
    g = torch.Generator().manual_seed(seed)
    i = torch.randperm(len(data.train_x), generator=g)[:n_train]
    j = torch.randperm(len(data.test_x), generator=g)[:n_test]
    return ImageData(f"{data.name}_{n_train}", data.train_x[i], data.train_y[i], data.test_x[j], data.test_y[j], data.classes)


def config(args, seed, precision):
    return PipelineConfig(dataset="fashion_mnist", image_size=28, label_fractions=(args.fraction,), seed=seed, seeds=(seed,),
                          precision=precision, width=args.width, pretrain_epochs=args.epochs, baselines=False,
                          self_distill=False, student_depth=None, finetune_steps=args.finetune_steps,
                          ft_schedule="cosine")   # what its committed runs fine-tuned with (PipelineConfig's default is one-cycle since 2026-12-05)


def paired(a: dict, b: dict) -> dict:
    "b - a over the seeds both have: mean, sample std and standard error of the paired differences."
    d = [b[s] - a[s] for s in sorted(set(a) & set(b))]
    sd = spread(d)
    return dict(values=d, mean=sd.mean, std=sd.std, sem=sd.std / math.sqrt(sd.n) if sd.n > 1 else float("nan"))


ARMS = {"fp32": "fp32", "bf16": "bf16", "bf16_pretrain_fp32_finetune": "bf16 pretraining, fp32 fine-tuning",
        "bf16_fp32_head": "bf16, projection head in fp32"}


@contextlib.contextmanager
def fp32_modules(names):
    "Every learner built inside keeps the submodules `names` in fp32 under bf16 autocast (`simclr_nb.precision.FP32_MODULES`)."
    old, P.FP32_MODULES = P.FP32_MODULES, tuple(names)
    try: yield
    finally: P.FP32_MODULES = old


def summarize(runs, fraction):
    "Per measure and arm: per-seed values, mean and std; each other arm minus fp32, paired by seed."
    out = {}
    for measure, get in (("pretrain_knn_accuracy", lambda m, s: m["pretrain"]["knn_accuracy"]),
                         ("finetune_test_accuracy", lambda m, s: m[stage_key("finetune", fraction, s)]["accuracy"]),
                         ("finetune_valid_accuracy", lambda m, s: m[stage_key("finetune", fraction, s)]["valid_accuracy"]),
                         ("pretrain_wall_s", lambda m, s: m["pretrain"]["wall_s"])):
        arms = [a for a in runs if runs[a] and not (a == "bf16_pretrain_fp32_finetune" and measure.startswith("pretrain"))]
        per = {a: {s: get(m, s) for s, m in runs[a].items()} for a in arms}
        row = {a: dict(per_seed=v, mean=spread(v).mean, std=spread(v).std) for a, v in per.items()}
        for a in arms[1:]:
            row[f"{a}_minus_fp32"] = d = paired(per["fp32"], per[a])
            if not measure.endswith("wall_s"):
                d["inside_seed_spread"] = abs(d["mean"]) <= max(row["fp32"]["std"], row[a]["std"])
                d["fp32_better"] = str(verdict(per["fp32"], per[a]))   # the kit's one verdict: 2 SE, paired by seed
        out[measure] = row
    return out


def markdown(res):
    m = res["machine"]
    L = [f"# bf16 against fp32: accuracy on the same seeds ({m['device']})", "",
         f"Machine: {m['cpu']} ({m['cpu_capability']}; {', '.join(f for f in m['cpu_flags'] if 'bf16' in f or 'amx' in f) or 'no bf16 flags'}), "
         f"{m['cores']} cores; torch {m['torch']}; commit {m['git_commit']}"
         + (" with uncommitted changes" if m.get("uncommitted_changes") else "") + f"; {m['date']}; {res['wall_s']:.0f} s. "
         f"Command: `{res['command']}`.", "",
         f"Fashion-MNIST subset: {res['settings']['train_images']} training images ({res['settings']['valid_images']} of them the "
         f"validation hold-out), {res['settings']['test_images']} test images, 28 px; ResNet-18 width {res['settings']['width']}, "
         f"{res['settings']['pretrain_epochs']} pretraining epochs; fine-tuned from head layer 1 on {res['settings']['fraction']:.0%} "
         f"of the labels ({res['settings']['config']['finetune_steps']} steps). Seeds {res['settings']['seeds']}: mean ± std over seeds; the difference is paired by seed.", "",
         "| measure | arm | mean ± std over seeds | minus fp32 (paired by seed) | inside the seed spread | verdict on 'fp32 is better' |", "|---|---|---:|---:|---|---|"]
    for k, r in res["summary"].items():
        pct, unit = (1, " s") if k.endswith("wall_s") else (100, "")
        for a in (a for a in ARMS if a in r):
            d = r.get(f"{a}_minus_fp32")
            diff = f"{pct * d['mean']:+.1f} ± {pct * d['std']:.1f}{unit}" if d else ""
            inside = {True: "yes", False: "no", None: ""}[d.get("inside_seed_spread") if d else None]
            L.append(f"| {k} | {ARMS[a]} | {pct * r[a]['mean']:.1f} ± {pct * r[a]['std']:.1f}{unit} | {diff} | {inside} | "
                     f"{d.get('fp32_better', '') if d else ''} |")
    return "\n".join(L) + "\n"


def subset_arguments(ap, seeds=(0, 1, 2)):
    "The options of the small pretraining + fine-tuning runs on a subset: this study's and `pretrain_layout_accuracy.py`'s."
    ap.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    ap.add_argument("--train-images", type=int, default=4000)
    ap.add_argument("--test-images", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--finetune-steps", type=int, default=200)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    subset_arguments(ap)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--runs", default=str(ROOT / "runs" / "precision_accuracy"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    t0 = time.time()
    data = subset(load_dataset("fashion_mnist"), args.train_images, args.test_images)
    cfg0 = config(args, args.seeds[0], "fp32")
    res = dict(command=" ".join(["python", "bench/precision_accuracy.py"] + sys.argv[1:]), machine=machine_info(args.device),
               settings=dict(train_images=len(data.train_x), valid_images=round(cfg0.valid_fraction * len(data.train_x)),
                             test_images=len(data.test_x), width=args.width, pretrain_epochs=args.epochs,
                             fraction=args.fraction, seeds=args.seeds, config=cfg0.to_dict()))
    out = Path(args.out) if args.out else RESULTS / f"precision_accuracy_{torch.device(args.device).type}.json"
    runs = {a: {} for a in ARMS}
    for seed in args.seeds:
        for precision in ("fp32", "bf16"):
            folder = Path(args.runs) / f"{precision}_seed{seed}"
            print(f"[{time.time() - t0:6.0f} s] seed {seed}, {precision} -> {folder}", flush=True)
            with fp32_modules(()):   # plain bf16: the default keeps the head in fp32 (the fourth arm below)
                r = run_pipeline(config(args, seed, precision), out=folder, device=args.device, stages=("pretrain", "finetune"),
                                 data=data, log=lambda *a: None, progress=False)
            runs[precision][seed] = r.metrics
            if precision == "bf16":   # the same bf16 pretraining, fine-tuned in fp32: which stage a difference comes from
                mixed = Path(args.runs) / f"bf16_pretrain_fp32_finetune_seed{seed}"
                share_stages(folder, mixed, ["pretrain"])
                runs["bf16_pretrain_fp32_finetune"][seed] = run_pipeline(config(args, seed, "fp32"), out=mixed, device=args.device,
                                                                         stages=("finetune",), data=data, log=lambda *a: None, progress=False).metrics
                with fp32_modules(("head",)):   # the pretraining's projection head in fp32
                    runs["bf16_fp32_head"][seed] = run_pipeline(config(args, seed, "bf16"), out=Path(args.runs) / f"bf16_fp32_head_seed{seed}",
                                                                device=args.device, stages=("pretrain", "finetune"), data=data,
                                                                log=lambda *a: None, progress=False).metrics
            m = r.metrics
            print(f"    kNN {m['pretrain']['knn_accuracy']:.3f} ({m['pretrain']['precision']}, {m['pretrain']['wall_s']:.0f} s), "
                  f"fine-tuned {m[stage_key('finetune', args.fraction, seed)]['accuracy']:.3f}", flush=True)
            res["summary"] = summarize(runs, args.fraction)
            res["wall_s"] = round(time.time() - t0, 1)
            atomic_write(out, json.dumps(res, indent=2) + "\n")
    md = markdown(res)
    atomic_write(out.with_suffix(".md"), md)
    print(md)


if __name__ == "__main__":
    main()
