#!/usr/bin/env python
"""Before and after of a change to the augmentation: `SimCLRAugment.apply` of the working tree against the same method
of `simclr_nb/augment.py` at an earlier git revision, on the same images with the same random parameters, timed in
interleaved rounds (each round runs both, alternating which goes first) so that both see the same load on a shared
machine. The outputs must agree (to float rounding): a speed-up that changed the views would not be one.

Images: the 512 Fashion-MNIST training images of `bench/speed.py`'s augmentation row, made RGB with a random tint per
image and channel so that saturation and hue act (on grey images they are the identity), and as speed.py makes them
RGB (the grey channel repeated), and the 1-channel images themselves (`--images` picks), two views at 32 px, colour
strength 0.5. Writes bench/results/augment_ab_<device>.json.

    .venv/bin/python bench/augment_ab.py --rev 820d10c~1 [--threads 1 2] [--rounds 40]
    python bench/augment_ab.py --rev 2fe7a23 --device cuda --threads 16   # on a GPU: the images on the device, the
        random parameters drawn on the CPU as the training loop draws them; each call timed to the GPU's finish
"""
import argparse, importlib.util, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info, sync  # noqa: E402
from augment import load_fashion_mnist  # noqa: E402  (bench/augment.py)
import simclr_nb.augment as current  # noqa: E402
from simclr_nb.checkpoint import atomic_write  # noqa: E402


def module_at(rev):
    "simclr_nb/augment.py as it was at git revision `rev`, imported under another name."
    src = subprocess.run(["git", "show", f"{rev}:simclr_nb/augment.py"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "augment_at_rev.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("simclr_nb.augment_at_rev", path)   # its relative imports resolve in simclr_nb
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rev", required=True, help="the git revision to compare with (e.g. the commit before the change)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--images", nargs="+", default=["tinted", "grey", "grey1"], choices=["tinted", "grey", "grey1"],
                    help="tinted: a random colour per image and channel; grey: the grey channel repeated (speed.py's row); "
                         "grey1: the 1-channel images themselves (as quality.py pretrains)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    rev = subprocess.run(["git", "rev-parse", "--short", args.rev], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    before = module_at(args.rev)
    augs = dict(before=before.SimCLRAugment(32, strength=0.5), after=current.SimCLRAugment(32, strength=0.5))
    res = dict(what="SimCLRAugment.apply on two views of 512 Fashion-MNIST images at 32 px, strength 0.5, made RGB: "
                    "tinted (a random colour per image and channel) and grey (the grey channel repeated, speed.py's row); "
                    "grey1: as they are (1 channel)",
               rev_before=rev, rounds=args.rounds, by_images={}, machine=machine_info(args.device),
               load_average_1min=[round(os.getloadavg()[0], 2)], command=" ".join(["python", "bench/augment_ab.py"] + sys.argv[1:]))
    threads0 = torch.get_num_threads()
    grey = load_fashion_mnist(512).float().div(255)   # read and decompressed once for every kind of image
    for kind in args.images:
        g = torch.Generator().manual_seed(0)
        x = grey if kind == "grey1" else grey.expand(-1, 3, -1, -1)
        if kind == "tinted": x = x * torch.rand(512, 3, 1, 1, generator=g)
        xx = torch.cat([x, x]).to(device)   # two views of every image in one call, as `two_views`
        params = augs["after"].sample_params(xx, g)
        max_diff = (augs["before"].apply(xx, params) - augs["after"].apply(xx, params)).abs().max().item()
        if max_diff > 1e-5: raise SystemExit(f"{kind}: the views differ by {max_diff:.2e}: not the same augmentation")
        row = res["by_images"][kind] = dict(max_abs_difference=max_diff, by_torch_threads={})
        for n in args.threads:
            torch.set_num_threads(n)
            t = {k: [] for k in augs}
            for k in augs: augs[k].apply(xx, params); sync(device)   # warm-up
            for i in range(args.rounds):
                for k in (("before", "after") if i % 2 else ("after", "before")):
                    t0 = time.perf_counter(); augs[k].apply(xx, params); sync(device); t[k].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) for k, v in t.items()}
            row["by_torch_threads"][str(n)] = dict(median_ms={k: round(1e3 * v, 2) for k, v in med.items()},
                                                   speedup=round(med["before"] / med["after"], 3))
            print(f"{kind}, {n} thread(s): before ({rev}) {1e3 * med['before']:.1f} ms, after {1e3 * med['after']:.1f} ms: "
                  f"{med['before'] / med['after']:.2f}x (views within {max_diff:.1e})", flush=True)
        torch.set_num_threads(threads0)
    res["load_average_1min"].append(round(os.getloadavg()[0], 2))
    out = Path(args.out or ROOT / "bench" / "results" / f"augment_ab_{device.type}.json")
    atomic_write(out, json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
