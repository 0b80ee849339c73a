#!/usr/bin/env python
"""Quality of SimCLRv2 on Fashion-MNIST with simclr_nb (issue 7): test accuracy on the 10,000 test images for one
architecture at label fractions 1%, 10% and 100%.

Methods (rows): supervised from scratch, linear evaluation of the frozen pretrained encoder, pretrained + fine-tuned
from projection-head layer 1 (v2's choice for 1%/10%) and from layer 0 (v2's choice for 100%), self-distilled student
(same size) and a smaller distilled student (both distilled from the layer-1 fine-tuned teacher on the unlabeled images).

Built on `simclr_nb.pipeline.run_pipeline`: one run folder with `ft_layer=1` holds pretraining, the baselines, the
teacher and the students; a second run folder with `ft_layer=0` re-uses the same pretraining (its `pretrain.pth` and
metrics entry are copied) and only fine-tunes. Run folders go to runs/bench_quality_<preset>/ (finished stages are
re-used when the command is run again); results to bench/results/quality_<preset>.json, .md and .png.

Presets:
  cpu        the CPU configuration meant to finish within 60 minutes on a free 2-core CPU: 10,000 training images
             (a class-balanced subset), 16 px views, ResNet-18 width 0.25, 15 pretraining epochs.
             Fine-tuning and the supervised baseline run at least 150 steps and at least 10 passes over the labeled
             images (`finetune_epochs`), so the 100% runs are trained as long per image as the 10% ones.
  cpu-small  a smaller CPU run for a shared machine: 3,000 training images, 16 px views, 8 pretraining epochs.
  smoke      a one-minute check that the script runs (numbers meaningless; not committed).
  gpu        the full configuration for one GPU: all 60,000 training images, 32 px views, ResNet-50 1x, 200 pretraining
             epochs at batch 512 (hundreds of epochs as the CIFAR-10 recipe; not run on a CPU); fine-tuning at least
             30 epochs (the paper's 10% schedule).
The test set is always the full 10,000 Fashion-MNIST test images.

    .venv/bin/python bench/quality.py --preset cpu-small        # or --preset cpu / --preset gpu (--device cuda)
"""
import argparse, dataclasses, json, os, platform, shutil, subprocess, sys, time
from pathlib import Path

import torch

from simclr_nb.data import ImageData, load_dataset, label_fraction_split
from simclr_nb.pipeline import PipelineConfig, RunFolder, run_pipeline, fraction_tag, METHODS, markdown_table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FRACTIONS = (0.01, 0.1, 1.0)

COMMON = dict(dataset="fashion_mnist", label_fractions=FRACTIONS, seed=0, depth=18, width=0.25, head_layers=3,
              temperature=0.5, color_strength=0.5, ft_layer=1, finetune_bs=64, student_depth=18, student_width=0.125)
PRESETS = {
    "cpu": dict(n_train=10000, cfg=dict(COMMON, image_size=16, pretrain_epochs=15, pretrain_bs=256,
                                         finetune_steps=150, finetune_epochs=10, distill_epochs=6, distill_bs=256)),
    "cpu-small": dict(n_train=3000, cfg=dict(COMMON, image_size=16, pretrain_epochs=8, pretrain_bs=256,
                                             finetune_steps=80, finetune_epochs=10, distill_epochs=4, distill_bs=256)),
    # a check that the script runs end to end (a minute or two); its numbers mean nothing
    "smoke": dict(n_train=300, cfg=dict(COMMON, image_size=8, pretrain_epochs=1, pretrain_bs=64, finetune_steps=3,
                                        distill_epochs=1, distill_bs=64)),
    "gpu": dict(n_train=None, cfg=dict(COMMON, image_size=32, depth=50, width=1.0, pretrain_epochs=200, pretrain_bs=512,
                                        pretrain_lr=0.075, finetune_steps=3000, finetune_epochs=30, finetune_bs=256, distill_epochs=100,
                                        distill_bs=512, student_depth=18, student_width=0.5)),
}


def subset(data, n, seed=0):
    "A class-balanced subset of `n` training images (the test split is kept whole)."
    if n is None or n >= len(data.train_x): return data
    idx = label_fraction_split(data.train_y, fraction=n / len(data.train_x), seed=seed).labeled
    return dataclasses.replace(data, train_x=data.train_x[idx], train_y=data.train_y[idx])


def machine(device):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    try: commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    except OSError: commit = None
    return dict(cpu=cpu, cores=os.cpu_count(), torch_threads=torch.get_num_threads(), torch=torch.__version__,
                gpu=torch.cuda.get_device_name(0) if device == "cuda" else None, device=device, git_commit=commit,
                date=time.strftime("%Y-%m-%d %H:%M %Z"))


def ft0_run(cfg, data, out1, out0, device, log, force=False):
    "Fine-tune from head layer 0 on the pretraining of `out1` (copied into `out0`)."
    cfg0 = dataclasses.replace(cfg, ft_layer=0, baselines=False, self_distill=False, student_depth=None)
    out0.mkdir(parents=True, exist_ok=True)
    m1 = json.loads((out1 / "metrics.json").read_text())
    mf0 = out0 / "metrics.json"
    m0 = json.loads(mf0.read_text()) if mf0.exists() else {}
    if force or ("pretrain" in m0 and m0["pretrain"] != m1["pretrain"]):
        # --force, or out0 was fine-tuned from an earlier pretraining: its results move to out0/previous-*, not deleted
        RunFolder(out0, cfg0, force=True, log=log)
        m0 = {}
    if "pretrain" not in m0 or not (out0 / "pretrain.pth").exists():
        shutil.copy2(out1 / "pretrain.pth", out0 / "pretrain.pth")
        m0["pretrain"] = m1["pretrain"]
        mf0.write_text(json.dumps(m0, indent=2))
    return run_pipeline(cfg0, out0, device=device, stages=("finetune",), log=log, data=data)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=None, help="run folder (default runs/bench_quality_<preset>)")
    ap.add_argument("--force", action="store_true", help="start over (earlier results are archived by the pipeline)")
    args = ap.parse_args()
    preset = PRESETS[args.preset]
    cfg = PipelineConfig(**preset["cfg"]).validate()
    out = Path(args.out or ROOT / "runs" / f"bench_quality_{args.preset}")
    t0 = time.time(); load_before = os.getloadavg()
    full = load_dataset("fashion_mnist")
    data = subset(full, preset["n_train"], cfg.seed)
    log = lambda *a: print(f"[{time.time() - t0:6.0f} s]", *a, flush=True)
    log(f"preset {args.preset}: {len(data.train_x)} training images, {len(data.test_x)} test images, config {cfg.to_dict()}")
    r1 = run_pipeline(cfg, out / "ft_layer1", force=args.force, device=args.device, log=log, data=data)
    r0 = ft0_run(cfg, data, out / "ft_layer1", out / "ft_layer0", args.device, log, force=args.force)
    rows = {"supervised": "supervised from scratch", "linear": "linear eval (frozen pretrained encoder)",
            "finetune": "fine-tuned from head layer 1", "finetune_l0": "fine-tuned from head layer 0",
            "distill_self": "self-distilled student (same size)", "distill_small": "smaller distilled student"}
    acc, n_labeled = {}, {}
    for f in FRACTIONS:
        tag = fraction_tag(f)
        col = f"{f:.0%} labels"
        for m in ("supervised", "linear", "finetune", "distill_self", "distill_small"):
            if f"{m}_{tag}" in r1.metrics: acc.setdefault(rows[m], {})[col] = round(100 * r1.metrics[f"{m}_{tag}"]["accuracy"], 2)
        if f"finetune_{tag}" in r0.metrics: acc.setdefault(rows["finetune_l0"], {})[col] = round(100 * r0.metrics[f"finetune_{tag}"]["accuracy"], 2)
        n_labeled[col] = int(r1.metrics.get(f"supervised_{tag}", {}).get("n_labeled", 0))
    import pandas as pd
    table = pd.DataFrame(acc).T.reindex([v for v in rows.values() if v in acc])[[f"{f:.0%} labels" for f in FRACTIONS]]
    targets = {}
    c1, c10, c100 = (f"{f:.0%} labels" for f in FRACTIONS)
    ft1 = max(acc[rows["finetune"]][c1], acc.get(rows["finetune_l0"], {}).get(c1, -1))
    gap = ft1 - acc[rows["supervised"]][c1]
    targets["finetune_beats_supervised_at_1pct_by_10_points"] = dict(measured_points=round(gap, 2), target=10, met=gap >= 10,
                                                                    note="best of the two fine-tuning layers")
    for m in ("distill_self", "distill_small"):
        d = acc[rows[m]][c10] - acc[rows["supervised"]][c100]
        targets[f"{m}_at_10pct_within_2_points_of_supervised_100pct"] = dict(measured_points=round(d, 2), target=-2, met=d >= -2)
    res = dict(preset=args.preset, command=" ".join(["python", "bench/quality.py"] + sys.argv[1:]), machine=machine(args.device),
               n_train_images=len(data.train_x), n_test_images=len(data.test_x), n_labeled=n_labeled,
               config=cfg.to_dict(), accuracy_percent=acc, targets=targets,
               pretrain=dict((k, r1.metrics["pretrain"][k]) for k in ("knn_at_init", "knn_accuracy", "final_loss", "epochs", "wall_s")),
               wall_s_per_stage={**{k: v.get("wall_s") for k, v in r1.metrics.items()},
                                 **{f"{k}_l0": v.get("wall_s") for k, v in r0.metrics.items() if k != "pretrain"}},
               wall_s=round(time.time() - t0, 1), load_average_1min=dict(before=load_before[0], after=os.getloadavg()[0]),
               run_folders=[str(out / "ft_layer1"), str(out / "ft_layer0")])
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"quality_{args.preset.replace('-', '_')}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    mach = res["machine"]
    md = [f"# Quality: SimCLRv2 on Fashion-MNIST, preset `{args.preset}`", "",
          f"ResNet-{cfg.depth} width {cfg.width} ({int(64 * cfg.width)} base channels), 3-layer head, {cfg.image_size} px views, "
          f"{len(data.train_x)} training images ({'all' if preset['n_train'] is None else 'class-balanced subset'}), "
          f"test accuracy (%) on the {len(data.test_x)} test images. Pretraining: {cfg.pretrain_epochs} epochs, "
          f"kNN accuracy {100 * res['pretrain']['knn_at_init']:.1f}% -> {100 * res['pretrain']['knn_accuracy']:.1f}%. "
          f"Labeled images: " + ", ".join(f"{k}: {v}" for k, v in n_labeled.items()) + ".", "",
          markdown_table(table), "",
          "| target | measured | met |", "|---|---:|---|"]
    for k, t in targets.items(): md.append(f"| {k} | {t['measured_points']:+.2f} points | {'yes' if t['met'] else 'no'} |")
    md += ["", f"Machine: {mach['cpu']}, {mach['cores']} cores" + (f", GPU {mach['gpu']}" if mach['gpu'] else "")
           + f"; {mach['date']}, commit {mach['git_commit']}; wall time {res['wall_s']:.0f} s "
           f"(1-min load average {load_before[0]:.1f} before, {res['load_average_1min']['after']:.1f} after). "
           f"Command: `{res['command']}`.", ""]
    stem.with_suffix(".md").write_text("\n".join(md))
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3.8))
    table.T.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("test accuracy (%)"); ax.set_ylim(max(0, table.min().min() - 10), 100)
    ax.set_title(f"Fashion-MNIST, ResNet-{cfg.depth} {cfg.width}x, preset {args.preset}")
    ax.legend(fontsize=7, loc="lower right"); fig.tight_layout(); fig.savefig(stem.with_suffix(".png"), dpi=100)
    print("\n".join(md))
    print(f"wrote {stem}.json/.md/.png in {res['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
