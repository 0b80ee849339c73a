#!/usr/bin/env python
"""Does channels-last pretraining cost accuracy? (issues 12 and 13)

In bf16 on a CPU, channels-last training cost the labeled stages 0.3-0.5 points (`labeled_layout_accuracy.py`), and
pretraining runs channels-last in bf16 by default. This study pretrains the same small Fashion-MNIST runs as
`precision_accuracy.py` (a fixed subset, 28 px, ResNet-18 at width 1/4, `--precision`, the projection head in fp32) in
both layouts on the same seeds, then fine-tunes each from head layer 1 (NCHW, the labeled stages' default) on
`--fraction` of the labels. The `nchw` arm undoes pretraining's layout rule by a patch
(`pretrain.resolve_channels_last` answers False). Measures: the pretraining's kNN accuracy on the validation
hold-out, the fine-tuned accuracy on validation and test; channels-last minus NCHW, paired by seed, judged by
`verdict`. Finished runs are cached in `--runs`; more `--seeds` extend the study.

    .venv/bin/python bench/pretrain_layout_accuracy.py --seeds 0 1 2 3 4 5   # writes bench/results/pretrain_layout_accuracy_cpu.json
"""
import argparse, json, statistics, sys, time
from pathlib import Path

from machine import machine_info               # bench/machine.py
from precision_accuracy import subset, config, subset_arguments  # the same subset and settings as the precision study

from simclr_nb import pretrain
from simclr_nb.checkpoint import atomic_write_json
from simclr_nb.data import load_dataset
from simclr_nb.evaluate import verdict
from simclr_nb.pipeline import run_pipeline, stage_key

ROOT = Path(__file__).resolve().parent.parent
RULE = pretrain.resolve_channels_last


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    subset_arguments(ap, seeds=range(6))
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--runs", default=str(ROOT / "runs" / "pretrain_layout_accuracy"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "pretrain_layout_accuracy_cpu.json"))
    a = ap.parse_args(argv)
    out, t0 = Path(a.out), time.time()
    data = subset(load_dataset("fashion_mnist"), a.train_images, a.test_images)
    cfg = lambda seed: config(a, seed, a.precision)
    res = dict(command=" ".join(["python", "bench/pretrain_layout_accuracy.py"] + (argv if argv is not None else sys.argv[1:])),
               machine=machine_info("cpu"), what=__doc__.split("\n\n")[0], config=cfg(a.seeds[0]).to_dict(),
               settings=dict(train_images=len(data.train_x), test_images=len(data.test_x), epochs=a.epochs, fraction=a.fraction), runs={})
    for seed in a.seeds:
        for arm in ("nchw", "nhwc"):   # interleaved per seed
            pretrain.resolve_channels_last = RULE if arm == "nhwc" else (lambda *args, **kw: False)
            m = run_pipeline(cfg(seed), out=Path(a.runs) / f"{arm}_seed{seed}", device="cpu", stages=("pretrain", "finetune"),
                             data=data, log=lambda *args: None, progress=False).metrics
            ft = m[stage_key("finetune", a.fraction, seed)]
            res["runs"].setdefault(arm, {})[str(seed)] = dict(knn=m["pretrain"]["knn_accuracy"], pretrain_s=m["pretrain"]["wall_s"],
                                                              precision=m["pretrain"]["precision"], accuracy=ft["accuracy"],
                                                              valid_accuracy=ft["valid_accuracy"])
            print(f"[{time.time() - t0:6.0f} s] seed {seed} {arm}: {res['runs'][arm][str(seed)]}", flush=True)
            atomic_write_json(out, res)   # nothing finished is lost
    get = lambda arm, key: {int(s): v[key] for s, v in res["runs"][arm].items()}
    res["verdicts"] = {key: verdict(get("nhwc", key), get("nchw", key)).to_dict() for key in ("knn", "valid_accuracy", "accuracy")}
    res["median_pretrain_speedup"] = round(statistics.median(res["runs"]["nchw"][s]["pretrain_s"] / res["runs"]["nhwc"][s]["pretrain_s"] for s in res["runs"]["nhwc"]), 3)
    res["wall_s"] = round(time.time() - t0, 1)
    atomic_write_json(out, res)
    print(json.dumps({k: v["text"] for k, v in res["verdicts"].items()}, indent=1), "pretraining speed-up", res["median_pretrain_speedup"])


if __name__ == "__main__":
    main()
