"""A plain-PyTorch supervised reference: the floor the kit's tuned supervised baseline must reach (issue 12).

The recipe of issue 12, written without fastai or simclr_nb's training and augmentation code: the same network as the
kit fine-tunes (`simclr_nb.models`: `build_encoder(spec)` -> first `ft_layer` layers of a `head_layers` projection head
-> linear classifier, random init), float input in [0, 1], AdamW + one-cycle (`OneCycleLR`, defaults), cross-entropy,
and a batched pad-and-translate (zero padding, up to `pad` pixels, default size // 8) + horizontal flip augmentation.
Top-1 accuracy in eval mode. If the kit's supervised baseline scores below this, its recipe is the problem.

    .venv/bin/python bench/reference_supervised.py --fraction 0.01 --seed 0 --epochs 30 --size 28 --width 0.25
"""
import argparse, json, math, time

import torch
import torch.nn.functional as F

from simclr_nb.models import build_encoder, ProjectionHead, FineTuneNet

PRECISIONS = ('fp32', 'bf16')


def to_input(x, size):
    "uint8 (B, C, H, W) -> float in [0, 1] at size x size (bilinear; antialiased when shrinking)."
    x = x.float() / 255
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False, antialias=max(x.shape[-2:]) > size)
    return x


def translate_flip(x, pad, flip, generator):
    """Per image: zero-pad each side by `pad`, take a random window of the input's size, then flip it with p=0.5.
    Returns (augmented batch, offsets (B, 2) = top-left (row, col) of the window in the padded image, flip mask (B,))."""
    B, _, H, W = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (B, 2), generator=generator)
    flipped = torch.rand(B, generator=generator) < 0.5 if flip else torch.zeros(B, dtype=torch.bool)
    offsets, flipped = offsets.to(x.device), flipped.to(x.device)
    rows = offsets[:, :1] + torch.arange(H, device=x.device)                                  # (B, H)
    cols = offsets[:, 1:] + torch.arange(W, device=x.device)                                  # (B, W)
    cols = torch.where(flipped[:, None], cols.flip(1), cols)
    xp = F.pad(x, (pad,) * 4)
    out = xp[torch.arange(B, device=x.device)[:, None, None, None], torch.arange(x.shape[1], device=x.device)[:, None, None],
             rows[:, None, :, None], cols[:, None, None, :]]
    return out, offsets, flipped


@torch.no_grad()
def accuracy(model, x, y, size, device, bs=1024):
    "Top-1 accuracy in eval mode, fp32, batches of `bs`."
    model.eval()
    correct = sum((model(to_input(x[i:i + bs].to(device), size)).argmax(1).cpu() == y[i:i + bs]).sum().item()
                  for i in range(0, len(x), bs))
    return correct / max(1, len(x))


def _check_images(x, name):
    if not (isinstance(x, torch.Tensor) and x.dtype == torch.uint8 and x.ndim == 4):
        got = f"{x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 4-D uint8 tensor (N, C, H, W); got {got}")


def train_reference(train_x, train_y, *, spec: dict, n_classes: int, size: int, eval_sets: dict,
                    ft_layer: int = 1, head_layers: int = 3, epochs: float = 30, min_steps: int = 300,
                    bs: int = 128, lr: float = 3e-3, wd: float = 5e-4, pad: int | None = None, flip: bool = True,
                    seed: int = 0, precision: str = 'fp32', device: str = 'cpu') -> dict:
    "Train the kit's fine-tuning architecture from scratch on (train_x, train_y) with the issue-12 recipe; accuracy on `eval_sets`."
    _check_images(train_x, 'train_x')
    if len(train_x) != len(train_y):
        raise ValueError(f"train_x has {len(train_x)} images but train_y has {len(train_y)} labels")
    if len(train_x) == 0: raise ValueError("the training set is empty")
    if precision not in PRECISIONS: raise ValueError(f"precision={precision!r}: expected one of {PRECISIONS}")
    for name, (x, y) in eval_sets.items():
        _check_images(x, f"eval_sets[{name!r}] images")
        if len(x) != len(y): raise ValueError(f"eval_sets[{name!r}] has {len(x)} images but {len(y)} labels")
    pad = max(1, size // 8) if pad is None else pad
    n, nb = len(train_x), min(bs, len(train_x))
    per_pass = max(1, n // nb)
    steps = max(min_steps, math.ceil(epochs * per_pass))

    torch.manual_seed(seed)
    enc = build_encoder(spec)
    model = FineTuneNet(enc, ProjectionHead(enc.num_features, head_layers), n_classes, ft_layer).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    xs, ys = train_x.to(device), torch.as_tensor(train_y).long().to(device)
    dev_type = torch.device(device).type

    t0, step = time.perf_counter(), 0
    model.train()
    while step < steps:
        perm = torch.randperm(n, generator=g).to(device)
        for i in range(min(per_pass, steps - step)):  # drop_last: full batches only
            idx = perm[i * nb:(i + 1) * nb]
            xb, _, _ = translate_flip(to_input(xs[idx], size), pad, flip, g)
            with torch.autocast(dev_type, dtype=torch.bfloat16, enabled=precision == 'bf16'):
                logits = model(xb)
            loss = F.cross_entropy(logits.float(), ys[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step(); sched.step()
            step += 1
    if dev_type == 'cuda': torch.cuda.synchronize()
    wall = time.perf_counter() - t0

    res = {f'{name}_accuracy': accuracy(model, x, torch.as_tensor(y).long().cpu(), size, device)
           for name, (x, y) in eval_sets.items()}
    return {**res, 'steps': steps, 'epochs': steps / per_pass, 'wall_s': wall, 'lr': lr, 'wd': wd, 'bs': bs,
            'pad': pad, 'precision': precision}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--fraction', type=float, default=0.01, help='class-balanced label fraction of the training set')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--epochs', type=float, default=30)
    p.add_argument('--min-steps', type=int, default=300)
    p.add_argument('--size', type=int, default=28)
    p.add_argument('--width', type=float, default=0.25)
    p.add_argument('--ft-layer', type=int, default=1)
    p.add_argument('--bs', type=int, default=128)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--wd', type=float, default=5e-4)
    p.add_argument('--pad', type=int, default=None, help='default: max(1, size // 8)')
    p.add_argument('--no-flip', action='store_true')
    p.add_argument('--precision', choices=PRECISIONS, default='fp32')
    p.add_argument('--device', default='cpu')
    a = p.parse_args(argv)

    from simclr_nb.data import load_dataset, label_fraction_split
    data = load_dataset('fashion_mnist')
    lab = label_fraction_split(data.train_y, fraction=a.fraction, seed=a.seed).labeled
    spec = dict(depth=18, width=a.width, sk=False, small_images=a.size <= 32, in_channels=data.n_channels)
    res = train_reference(data.train_x[lab], data.train_y[lab], spec=spec, n_classes=data.n_classes, size=a.size,
                          eval_sets={'test': (data.test_x, data.test_y)}, ft_layer=a.ft_layer, epochs=a.epochs,
                          min_steps=a.min_steps, bs=a.bs, lr=a.lr, wd=a.wd, pad=a.pad, flip=not a.no_flip,
                          seed=a.seed, precision=a.precision, device=a.device)
    print(json.dumps({'dataset': 'fashion_mnist', 'fraction': a.fraction, 'n_labeled': len(lab), 'seed': a.seed,
                      'size': a.size, 'spec': spec, 'ft_layer': a.ft_layer, **res}, indent=1))
    return res


if __name__ == '__main__':
    main()
