"""Checks of bench/reference_supervised.py, the plain-PyTorch supervised floor of issue 12 (a few seconds on 1 thread)."""
import importlib.util
from pathlib import Path
import pytest, torch

_spec = importlib.util.spec_from_file_location('reference_supervised', Path(__file__).parents[1]/'bench'/'reference_supervised.py')
ref = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(ref)

SPEC = dict(depth=18, width=0.125, sk=False, small_images=True, in_channels=1)

@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

def dark_bright(n, seed):
    "n 8x8 one-channel images: class 0 dark (~60), class 1 bright (~190), with noise."
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = (60 + 130 * y[:, None, None, None] + 40 * torch.randn(n, 1, 8, 8, generator=g)).clamp(0, 255).to(torch.uint8)
    return x, y

def test_learns_separable_data():
    x, y = dark_bright(64, 0)
    res = ref.train_reference(x, y, spec=SPEC, n_classes=2, size=8, eval_sets={'held_out': dark_bright(128, 1)},
                              epochs=1, min_steps=30, bs=32, lr=3e-3)
    assert res['held_out_accuracy'] >= 0.9, res
    assert res['steps'] == 30 and res['epochs'] == 15 and res['pad'] == 1 and res['precision'] == 'fp32'

def test_resizes_and_bf16_runs():
    x, y = dark_bright(16, 0)
    res = ref.train_reference(x, y, spec=SPEC, n_classes=2, size=6, eval_sets={'a': (x, y)}, epochs=1, min_steps=2,
                              bs=8, precision='bf16')
    assert 0 <= res['a_accuracy'] <= 1 and res['steps'] == 2

def test_translate_identity_without_pad_or_flip():
    x = torch.rand(5, 3, 7, 7)
    out, offsets, flipped = ref.translate_flip(x, 0, False, torch.Generator().manual_seed(0))
    assert torch.equal(out, x) and not flipped.any() and (offsets == 0).all()

@pytest.mark.parametrize('pad,flip', [(2, False), (3, True)])
def test_translate_matches_per_image_loop(pad, flip):
    x = torch.rand(16, 2, 6, 9)
    out, offsets, flipped = ref.translate_flip(x, pad, flip, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and (offsets >= 0).all() and (offsets <= 2 * pad).all()
    for i in range(len(x)):  # slow reference: zero canvas, paste the image shifted by (pad - offset), then flip
        r, c = pad - int(offsets[i, 0]), pad - int(offsets[i, 1])
        want = torch.zeros_like(x[i])
        want[:, max(r, 0):6 + min(r, 0), max(c, 0):9 + min(c, 0)] = x[i, :, max(-r, 0):6 - max(r, 0), max(-c, 0):9 - max(c, 0)]
        if flipped[i]: want = want.flip(-1)
        assert torch.equal(out[i], want), i
    assert flipped.any() == flip

def test_clear_errors():
    x, y = dark_bright(8, 0)
    kw = dict(spec=SPEC, n_classes=2, size=8, eval_sets={}, min_steps=1)
    with pytest.raises(ValueError, match='8 images but train_y has 7'): ref.train_reference(x, y[:7], **kw)
    with pytest.raises(ValueError, match='empty'): ref.train_reference(x[:0], y[:0], **kw)
    with pytest.raises(ValueError, match='4-D uint8'): ref.train_reference(x.float(), y, **kw)
    with pytest.raises(ValueError, match='4-D uint8'): ref.train_reference(x[:, 0], y, **kw)
    with pytest.raises(ValueError, match="'fp16'"): ref.train_reference(x, y, precision='fp16', **kw)
