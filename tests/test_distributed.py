"""Several processes equal one: 2 gloo CPU processes with batch B each against 1 process with batch 2B, from the same
weights, for pretraining (global BN, gathered NT-Xent, LARS, memory), fine-tuning and distillation (also with half label
loss, alpha 0.5); bf16 keeps the projection head in fp32 in each process; and a
`torchrun --nproc_per_node 2` run of `simclr-nb run` that writes one report."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest, torch
from fastai.callback.core import Callback, CancelValidException

from simclr_nb.distributed import launch, get_rank, gathered_features, n_sync_batchnorm, DistributedCallback

BIN = Path(sys.executable).parent
B, STEPS = 8, 3                     # per-process batch, optimiser steps
SPEC = dict(depth=18, width=0.125, sk=False, small_images=True, in_channels=1)
TOL = 1e-5
# float64: the comparison measures the method, not float32 rounding; there the runs agree to ~1e-12, while a missing
# all-reduce or a wrong gradient scale moves the weights by ~1e-2 or more. In float32 at the learners' own rate (peak
# 0.1 * sqrt(16) = 0.4, no warm-up), ONE float32 process against ONE float64 process from the same weights already
# differs by 1.2e-5, 6.9e-5, 2.4e-2 after steps 1, 2, 3 (2 processes against 1, both float32: 1.3e-5, 5.0e-5, 7.7e-3;
# `bench/distributed.py --float32-drift`): the batch-norm scales and shifts, excluded from LARS's trust ratio as in the
# official code, take plain steps of lr * g (several units per step on this untrained net), and each step multiplies
# the rounding. That is the 3-step map's own sensitivity, not a difference between the runs, so float32 is checked at a
# peak rate of 0.01 (FP32_LR), where one float32 process is within 1.8e-6 of float64 after 3 steps (2 vs 1: 1.7e-6).
DTYPE = torch.float64
FP32_LR = 0.01


class TwoViews:
    "Deterministic 'augmentation': the views differ (flip, contrast) but draw no random numbers, so every process makes the same ones."
    def __init__(self, dtype=DTYPE): self.dtype = dtype
    def two_views(self, x):
        a = x.to(self.dtype) / 255
        return a, a.flip(-1) * 0.8 + 0.1


def _as_dtype(x):
    from simclr_nb.augment import to_float
    return to_float(x).to(DTYPE)


class ExactRun(Callback):
    "The training steps only (no validation pass), with the recorded loss in float32 (fastai's smoother keeps float32)."
    def after_loss(self): self.learn.loss = self.learn.loss.float()
    def before_validate(self): raise CancelValidException


def _data():
    from simclr_nb.data import load_dataset
    d = load_dataset('digits')
    return d.train_x[:2 * B * STEPS], d.train_y[:2 * B * STEPS], d.test_x[:16], d.test_y[:16]


def _learner(kind, dtype=DTYPE, lr=None, precision='fp32', memory=True):
    "The learner of one stage with a global batch of 2B, built the same way in one process and in each of two (`dtype`, `lr`, `precision`, `memory`: pretraining)."
    from fastai.data.core import DataLoaders
    from simclr_nb.data import TensorImageDL
    from simclr_nb.models import build_encoder, ProjectionHead, ContrastiveNet, FineTuneNet, ClassifierNet
    x, y, tx, ty = _data()
    valid = TensorImageDL(tx, ty, bs=16)
    torch.manual_seed(0)
    enc = build_encoder(SPEC)
    if kind == 'pretrain':
        from simclr_nb.pretrain import pretrain_learner, MemoryCallback
        dls = DataLoaders(TensorImageDL(x, bs=2 * B, drop_last=True), valid, device='cpu')
        model = ContrastiveNet(enc, ProjectionHead(enc.num_features, 3, out_dim=16))
        return pretrain_learner(dls, model.to(dtype), TwoViews(dtype), memory=MemoryCallback(momentum=0.9, queue_size=4 * B) if memory else False,
                                warmup_frac=0., channels_last=False, keep_freed_memory=False, precision=precision, temperature=0.2, cbs=ExactRun(), lr=lr)
    dls = DataLoaders(TensorImageDL(x, y, bs=2 * B, drop_last=True), valid, device='cpu')
    if kind == 'finetune':
        from simclr_nb.finetune import finetune_learner
        model = FineTuneNet(enc, ProjectionHead(enc.num_features, 3, out_dim=16), 10, ft_layer=1)
        torch.nn.init.normal_(model.classifier.weight, std=0.1)   # zero-init would hide the encoder's gradient in step 1
        return finetune_learner(dls, model.to(DTYPE), 8, base_lr=0.05, train_tfm=_as_dtype, precision='fp32', cbs=[ExactRun()])
    from simclr_nb.distill import distill_learner
    teacher = ClassifierNet(build_encoder(SPEC), 10).to(DTYPE)
    student = ClassifierNet(enc, 10).to(DTYPE)
    # distill_alpha: half label loss on labeled batches of 2B in a fixed order, which each rank must split as the unlabeled ones
    alpha = dict(alpha=0.5, labeled_dl=TensorImageDL(x.flip(0), y.flip(0), bs=2 * B, drop_last=True)) if kind == 'distill_alpha' else {}
    return distill_learner(dls, student, teacher, 8, tau=1.0, train_tfm=_as_dtype, precision='fp32', warmup_frac=0., cbs=[ExactRun()], **alpha)


def _fit(learn, kind):
    "One epoch of STEPS steps (pretraining through `fit_pretrain`, with its schedule); the weights after."
    from simclr_nb.pretrain import fit_pretrain
    with learn.no_bar(), learn.no_logging():
        if kind == 'pretrain': fit_pretrain(learn, 1)
        else: learn.fit(1)
    return {k: v.detach().clone() for k, v in learn.model.state_dict().items()}


def _memory_queue(learn):
    return learn.cbs.filter(lambda c: type(c).__name__ == 'MemoryCallback')[0].queue.oldest_first().clone()


def _run(distributed:bool):
    "Every stage's weights after STEPS steps (and the memory queue, kNN features); `distributed`: with the DistributedCallback."
    from simclr_nb.models import build_encoder
    from simclr_nb.evaluate import extract_features
    res = {}
    for kind in ('pretrain', 'finetune', 'distill', 'distill_alpha', 'pretrain_fp32'):
        learn = _learner('pretrain', torch.float32, FP32_LR) if kind == 'pretrain_fp32' else _learner(kind)
        res[kind + '_start'] = {k: v.clone() for k, v in learn.model.state_dict().items()}
        if distributed: learn.add_cb(DistributedCallback())
        res[kind] = _fit(learn, kind.split('_')[0])
        res[kind + '_sync_bn'] = n_sync_batchnorm(learn.model)
        res[kind + '_losses'] = torch.tensor(learn.recorder.losses)   # the recorded (smoothed) training loss of each step
        if kind == 'pretrain': res['queue'] = _memory_queue(learn)
    res['bf16_dtypes'] = _bf16_output_dtypes(distributed)
    if distributed:   # the same pretraining with per-process batch norm: what global BN is for
        learn = _learner('pretrain'); learn.add_cb(DistributedCallback(sync_bn=False))
        res['pretrain_local_bn'] = _fit(learn, 'pretrain')
    torch.manual_seed(1)
    res['features'] = (gathered_features if distributed else extract_features)(build_encoder(SPEC), _data()[0][:11], bs=4)
    return res


def _bf16_output_dtypes(distributed:bool) -> dict:
    "The dtypes the encoder's and the projection head's outputs had in a bf16 pretraining fit (in a launcher: DDP-wrapped)."
    learn = _learner('pretrain', torch.float32, FP32_LR, precision='bf16', memory=False)
    if distributed: learn.add_cb(DistributedCallback())
    seen = {}
    hooks = [getattr(learn.model, n).register_forward_hook(lambda mod, args, out, n=n: seen.setdefault(n, set()).add(str(out.dtype)))
             for n in ('encoder', 'head')]
    try: _fit(learn, 'pretrain')
    finally:
        for h in hooks: h.remove()
    return {k: sorted(v) for k, v in seen.items()}


def _worker(out):
    torch.save(_run(True), os.path.join(out, f'rank{get_rank()}.pt'))


@pytest.fixture(scope='module')
def two_process_results(tmp_path_factory):
    out = tmp_path_factory.mktemp('ddp')
    launch(_worker, args=(str(out),), nprocs=2, device='cpu')
    return [torch.load(out/f'rank{r}.pt', weights_only=True) for r in range(2)]


@pytest.fixture(scope='module')
def one_process_results(): return _run(False)


def _max_diff(a, b, where=False):
    d = {k: (a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point()}
    k = max(d, key=d.get)
    return (d[k], k) if where else d[k]


@pytest.mark.parametrize('kind', ['pretrain', 'finetune', 'distill', 'distill_alpha', 'pretrain_fp32'])
def test_two_processes_equal_one(two_process_results, one_process_results, kind):
    ref, (r0, r1) = one_process_results[kind], (two_process_results[0][kind], two_process_results[1][kind])
    assert r0.keys() == ref.keys()
    moved = _max_diff(ref, one_process_results[kind + '_start'])
    assert moved > 100 * TOL, f"{kind}: the {STEPS} steps barely moved the weights ({moved:.2e}): the test could not fail"
    d, where = _max_diff(r0, ref, where=True)
    print(f"{kind}: max |2 processes - 1 process| = {d:.2e} at {where} (weights moved {moved:.2e})")
    assert d < TOL, f"{kind}: 2 processes of batch {B} differ from 1 of batch {2 * B} by {d:.2e} (at {where})"
    assert _max_diff(r0, r1) == 0, f"{kind}: the two ranks' weights differ"
    assert two_process_results[0][kind + '_sync_bn'] > 0 and one_process_results[kind + '_sync_bn'] == 0


@pytest.mark.parametrize('kind', ['pretrain', 'finetune', 'distill'])
def test_recorded_loss_is_the_global_batch_loss(two_process_results, one_process_results, kind):
    "Every rank records the mean of the ranks' losses, the loss of one process with the whole batch (rank 0's own differs)."
    ref, r0, r1 = one_process_results[kind + '_losses'], two_process_results[0][kind + '_losses'], two_process_results[1][kind + '_losses']
    assert len(ref) == STEPS
    torch.testing.assert_close(r0, ref, rtol=1e-5, atol=0)
    assert torch.equal(r0, r1)


def test_per_process_batch_norm_is_not_equivalent(two_process_results, one_process_results):
    "The check above can fail: batch norm over each process's half batch gives other weights."
    d = _max_diff(two_process_results[0]['pretrain_local_bn'], one_process_results['pretrain'])
    print(f"pretrain with per-process BN: max |2 processes - 1 process| = {d:.2e}")
    assert d > 1e3 * TOL


def test_bf16_keeps_the_projection_head_fp32_under_ddp(two_process_results, one_process_results):
    "Under bf16 autocast the encoder runs in bf16 and the projection head in fp32 (`FP32_MODULES`), also in each process of a launcher, where DDP wraps the model."
    want = dict(encoder=['torch.bfloat16'], head=['torch.float32'])
    assert one_process_results['bf16_dtypes'] == want
    for r in range(2): assert two_process_results[r]['bf16_dtypes'] == want, f"rank {r}: {two_process_results[r]['bf16_dtypes']}"


def test_memory_queue_holds_every_rank_keys(two_process_results, one_process_results):
    q, ref = two_process_results[0]['queue'], one_process_results['queue']
    assert q.shape == ref.shape == (4 * B, 16)
    assert (q - ref).abs().max() < TOL


def test_gathered_features_equal_one_process(two_process_results, one_process_results):
    for r in range(2): torch.testing.assert_close(two_process_results[r]['features'], one_process_results['features'], atol=1e-6, rtol=1e-5)


TINY = ['--image-size', '8', '--width', '0.125', '--pretrain-epochs', '1', '--pretrain-bs', '256', '--finetune-steps', '4',
        '--supervised-steps', '4', '--distill-epochs', '1', '--distill-bs', '256', '--student-depth', '0', '--label-fractions', '0.1', '--seeds', '0',
        '--precision', 'fp32', '--device', 'cpu']


def test_torchrun_two_processes_run_the_pipeline(tmp_path):
    "`torchrun --nproc_per_node 2 simclr-nb run`: every stage on 2 gloo processes; rank 0 alone prints and writes one report."
    out, scratch = tmp_path/'run', tmp_path/'tmp'
    scratch.mkdir()
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'TMPDIR': str(scratch)}
    cmd = [str(BIN/'torchrun'), '--standalone', '--nproc_per_node', '2', str(BIN/'simclr-nb'), 'run', *TINY, '--out', str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count('Full report:') == 1, r.stdout[-2000:]           # one summary: rank 0's
    assert len(list(tmp_path.rglob('report.md'))) == 1
    m = json.loads((out/'metrics.json').read_text())
    assert m['processes'] == dict(world_size=2, global_bs=dict(pretrain=256, finetune=64, distill=256),
                                  per_process_bs=dict(pretrain=128, finetune=32, distill=128),
                                  jobs=1, threads=max(1, (os.cpu_count() or 1) // 2))   # each rank's share of the cores (06b_distributed)
    assert 0 <= m['pretrain']['knn_accuracy'] <= 1
    for k in ('supervised', 'linear', 'finetune', 'distill_self'): assert 0 <= m[f'{k}_10pct_seed0']['accuracy'] <= 1, k
    assert 'Processes: 2' in (out/'report.md').read_text()
    assert not list(scratch.glob('simclr_nb_rank*'))                       # rank 1's scratch copy is gone
