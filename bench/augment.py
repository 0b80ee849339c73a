"""Throughput of two SimCLR views: simclr_nb's batched `SimCLRAugment.two_views` vs a per-sample torchvision v2 loop.

Batch: 512 Fashion-MNIST training images (28 px, 1 channel, uint8) -> two views at 32 px, colour strength s = 0.5
(the CIFAR-10 recipe, no blur). The per-sample pipeline has the same operations:
RandomResizedCrop(32, scale=(0.08, 1)), RandomHorizontalFlip(), RandomApply([ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)], p=0.8),
RandomGrayscale(0.2), applied twice to every image in a Python loop (on uint8 tensors, converted to float at the end
like our pipeline's output).

Medians of timed runs after warm-up; the two pipelines are timed in interleaved rounds (each round: a few runs of
ours, one of the per-sample loop) so both see the same load; the ratio comes from the same run. Writes
bench/results/augment_<cpu|cuda>.json (CUDA: our pipeline on the GPU vs the per-sample pipeline on the CPU, which is
how it would feed a GPU from a DataLoader worker).

Also timed (ours only, same rounds): the same 512 images made RGB by a random colour per image and channel, so that
saturation and hue act (on one channel they are the identity): `simclr_nb_rgb_by_torch_threads`.

    OMP_NUM_THREADS=2 .venv/bin/python bench/augment.py [--device cpu|cuda] [--note "..."]
"""
import argparse, gzip, json, os, platform, statistics, time
from pathlib import Path

from machine import machine_info  # bench/machine.py

import numpy as np
import torch
from torchvision.transforms import v2 as T

from simclr_nb.checkpoint import atomic_write
from simclr_nb.augment import SimCLRAugment

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def load_fashion_mnist(n):
    if not FMNIST.exists():
        raise FileNotFoundError(f"{FMNIST} not found: install Debian's dataset-fashion-mnist (make data-fashion-mnist).")
    with gzip.open(FMNIST) as f: raw = np.frombuffer(f.read(), np.uint8, offset=16)  # 16-byte IDX header
    return torch.from_numpy(raw.reshape(-1, 1, 28, 28)[:n].copy())




def timeit(fn, warmup, repeats, sync=lambda: None):
    for _ in range(warmup): fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); sync(); times.append(time.perf_counter() - t0)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--strength", type=float, default=0.5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--baseline-repeats", type=int, default=5)
    ap.add_argument("--note", default="")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device visible to torch.")

    x = load_fashion_mnist(args.batch)
    s, size = args.strength, args.size
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    ours = SimCLRAugment(size, strength=s)
    xd = x.to(dev)
    tint = torch.rand(len(x), 3, 1, 1, generator=torch.Generator().manual_seed(0))
    xd_rgb = (x.float() * tint).round().to(torch.uint8).to(dev)  # (B, 3, 28, 28): coloured Fashion-MNIST
    gen = torch.Generator().manual_seed(0)
    per_sample = T.Compose([
        T.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
        T.RandomGrayscale(0.2),
        T.ToDtype(torch.float32, scale=True),
    ])
    torch.manual_seed(0)
    def baseline():
        v1 = torch.stack([per_sample(img) for img in x]); v2 = torch.stack([per_sample(img) for img in x])
        return v1, v2

    default_threads = torch.get_num_threads()
    load_before = os.getloadavg()
    # ours at the default thread count (the one the headline numbers and ratio use) and, on the CPU, at 1 thread:
    # on a shared, oversubscribed machine the OpenMP barriers of a 2-thread team often wait for a descheduled thread.
    thread_counts = [default_threads] + ([1] if dev.type == "cpu" and default_threads != 1 else [])
    ours_by_threads = {nt: [] for nt in thread_counts}
    rgb_by_threads = {nt: [] for nt in thread_counts}
    for nt in thread_counts:  # warm-up
        torch.set_num_threads(nt); timeit(lambda: ours.two_views(xd, gen), args.warmup, 0, sync)
        timeit(lambda: ours.two_views(xd_rgb, gen), args.warmup, 0, sync)
    torch.set_num_threads(default_threads); baseline()
    # interleaved rounds, so that both pipelines see the same (changing) load of the shared machine
    per_round = max(1, -(-args.repeats // args.baseline_repeats))
    base_times = []
    for _ in range(args.baseline_repeats):
        for nt in thread_counts:
            torch.set_num_threads(nt)
            ours_by_threads[nt] += timeit(lambda: ours.two_views(xd, gen), 0, per_round, sync)
            rgb_by_threads[nt] += timeit(lambda: ours.two_views(xd_rgb, gen), 0, per_round, sync)
        torch.set_num_threads(default_threads)
        base_times += timeit(baseline, 0, 1)
    ours_times = ours_by_threads[default_threads]

    n = args.batch
    ours_med, base_med = statistics.median(ours_times), statistics.median(base_times)
    res = dict(
        what=f"two SimCLR views of {n} Fashion-MNIST images (28 px, 1 channel, uint8) at {size} px, strength {s}, no blur",
        simclr_nb=dict(impl="SimCLRAugment.two_views, batched on device", device=str(dev),
                       median_s=ours_med, times_s=ours_times, images_per_s=n / ours_med),
        torchvision_per_sample=dict(impl="torchvision.transforms.v2 Compose(RandomResizedCrop, RandomHorizontalFlip, "
                                         "RandomApply(ColorJitter, 0.8), RandomGrayscale(0.2)) twice per image, Python loop",
                                    device="cpu", median_s=base_med, times_s=base_times, images_per_s=n / base_med),
        speedup=base_med / ours_med,
        simclr_nb_by_torch_threads={str(nt): dict(median_s=statistics.median(ts), times_s=ts,
                                                  images_per_s=n / statistics.median(ts),
                                                  speedup=base_med / statistics.median(ts))
                                    for nt, ts in ours_by_threads.items()},
        simclr_nb_rgb_by_torch_threads={str(nt): dict(what=f"the same {n} images, RGB (random colour per image and channel)",
                                                      median_s=statistics.median(ts), times_s=ts,
                                                      images_per_s=n / statistics.median(ts))
                                        for nt, ts in rgb_by_threads.items()},
        load_average_1min=dict(before=load_before[0], after=os.getloadavg()[0]),
        note="images/s counts source images (each gets two views). " + args.note,
        machine=machine_info(dev),
        warmup=args.warmup, repeats=args.repeats, baseline_repeats=args.baseline_repeats,
    )
    out = Path(args.out or Path(__file__).parent / "results" / f"augment_{dev.type}.json")
    atomic_write(out, json.dumps(res, indent=2) + "\n")
    print(f"simclr_nb SimCLRAugment.two_views ({dev}): {n / ours_med:,.0f} images/s (median {ours_med * 1e3:.1f} ms)")
    print(f"torchvision v2 per-sample loop (cpu):     {n / base_med:,.0f} images/s (median {base_med * 1e3:.1f} ms)")
    for nt, ts in ours_by_threads.items():
        print(f"  simclr_nb at {nt} torch thread(s): {n / statistics.median(ts):,.0f} images/s, "
              f"{base_med / statistics.median(ts):.1f}x the per-sample loop")
    for nt, ts in rgb_by_threads.items():
        print(f"  simclr_nb RGB at {nt} torch thread(s): {n / statistics.median(ts):,.0f} images/s (median {statistics.median(ts) * 1e3:.1f} ms)")
    print(f"speed-up: {base_med / ours_med:.1f}x  -> {out}")


if __name__ == "__main__":
    main()
