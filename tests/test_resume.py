"""A run killed with SIGKILL during pretraining and again during fine-tuning, then run again with the same command,
ends with the same metrics as a run never interrupted (issue 15). Ctrl-C ends with one line and exit status 130 and
leaves a folder the same command resumes. The runs are tiny (digits, 8 px, a width-1/8 ResNet-18) and use one thread,
so that two processes compute bit-identical floats: the metrics are compared to 1e-6."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest

ARGS = ['run', '--image-size', '8', '--width', '0.125', '--pretrain-epochs', '4', '--pretrain-bs', '256', '--finetune-steps', '80',
        '--label-fractions', '0.1', '--seeds', '0', '--no-baselines', '--precision', 'fp32', '--device', 'cpu',
        '--stages', 'pretrain,finetune', '--checkpoint-every-s', '0']
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
FT = 'finetune_10pct_seed0'


def start(out):
    return subprocess.Popen([sys.executable, '-c', 'import sys; from simclr_nb.cli import main; sys.exit(main())', *ARGS, '--out', str(out)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(proc, path, timeout=120):
    "Wait until `path` exists while `proc` runs; fail if the process ends first."
    t0 = time.time()
    while not path.exists():
        if proc.poll() is not None: pytest.fail(f"the run ended before {path.name} appeared: {proc.communicate()}")
        if time.time() - t0 > timeout: proc.kill(); pytest.fail(f"no {path} after {timeout} s")
        time.sleep(0.01)


def finished(out):
    m = out/'metrics.json'
    return set(json.loads(m.read_text())) if m.exists() else set()


def numbers(out):
    "The trained numbers of a run (not its wall times)."
    m = json.loads((out/'metrics.json').read_text())
    p, f = m['pretrain'], m[FT]
    return dict(final_loss=p['final_loss'], loss_per_epoch=p['loss_per_epoch'], knn=p['knn_per_epoch'],
                ft_accuracy=f['accuracy'], ft_valid=f['valid_accuracy'], ft_steps=f['steps'])


def close(a, b, eps=1e-6):
    if isinstance(a, list): return len(a) == len(b) and all(close(x, y, eps) for x, y in zip(a, b))
    return abs(a - b) <= eps


@pytest.fixture(scope='module')
def straight(tmp_path_factory):
    "A run never interrupted: its folder."
    out = tmp_path_factory.mktemp('straight')
    p = start(out); _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    return out


@pytest.fixture(scope='module')
def reference(straight): return numbers(straight)


def test_sigkill_in_pretraining_and_in_finetuning_resumes_exactly(reference, tmp_path):
    out = tmp_path/'killed'
    p = start(out)
    wait_for(p, out/'pretrain_state'/'checkpoints'/'epoch_0002.pth')
    p.send_signal(signal.SIGKILL); p.wait()
    assert 'pretrain' not in finished(out)                     # killed part-way through the pretraining
    newest = max((out/'pretrain_state'/'checkpoints').glob('epoch_*.pth'))
    raw = newest.read_bytes(); newest.write_bytes(raw[:len(raw) // 2])   # and its newest checkpoint damaged too
    p = start(out)
    wait_for(p, out/f'{FT}_state'/'epoch_0001.pth')
    p.send_signal(signal.SIGKILL); p.wait()
    assert 'pretrain' in finished(out) and FT not in finished(out)   # killed part-way through the fine-tuning
    p = start(out); _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    got = numbers(out)
    for k in reference: assert close(got[k], reference[k]), (k, got[k], reference[k])
    assert not (out/f'{FT}_state').exists()                   # a finished stage's epochs are in its checkpoint


def test_ctrl_c_one_line_and_resumable(reference, tmp_path):
    out = tmp_path/'ctrl-c'
    p = start(out)
    wait_for(p, out/'pretrain_state'/'checkpoints'/'epoch_0001.pth')
    p.send_signal(signal.SIGINT); _, err = p.communicate(timeout=120)
    assert p.returncode == 130, (p.returncode, err)
    assert err.strip().startswith('interrupted (Ctrl-C)') and err.strip().count('\n') == 0 and 'Traceback' not in err, err
    p = start(out); _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    got = numbers(out)
    for k in reference: assert close(got[k], reference[k]), (k, got[k], reference[k])
    pre = json.loads((out/'metrics.json').read_text())['pretrain']   # its time: both processes' epochs, not the second's alone
    assert pre['resumed_at_epoch'] == 1 and pre['earlier_processes_s'] > 0, pre
    assert abs(pre['wall_s'] - pre['wall_s_this_process'] - pre['earlier_processes_s']) <= 0.2, pre


def test_missing_pretrain_checkpoint_is_rebuilt_from_its_epochs(straight, reference, tmp_path):
    "Ctrl-C after the last epoch's checkpoint (or a lost pretrain.pth): the re-run replays the stored epochs, trains nothing."
    import shutil
    out = tmp_path/'lost'; shutil.copytree(straight, out)
    (out/'pretrain.pth').unlink()
    m = json.loads((out/'metrics.json').read_text()); del m['pretrain']; (out/'metrics.json').write_text(json.dumps(m))
    p = start(out); _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    got = numbers(out)
    for k in reference: assert close(got[k], reference[k]), (k, got[k], reference[k])
    pre, first = (json.loads((o/'metrics.json').read_text())['pretrain'] for o in (out, straight))
    assert pre['wall_s_this_process'] < first['wall_s'] and pre['resumed_at_epoch'] == 4, pre   # replayed, not trained again
    assert 0 < pre['earlier_processes_s'] <= first['wall_s'] <= pre['wall_s'] + 1, (pre, first)   # the stage's cost is kept


def test_non_finite_loss_stops_with_a_message_and_a_lower_rate_recovers(straight, tmp_path):
    "A fine-tuning rate far too high: the run stops at the first nan with stage, epoch and step, keeps the pretraining, and the same command with a lower rate finishes."
    import shutil
    out = tmp_path/'nan'; shutil.copytree(straight, out)
    (out/f'{FT}.pth').unlink()
    m = json.loads((out/'metrics.json').read_text()); del m[FT]; (out/'metrics.json').write_text(json.dumps(m))
    pre = (out/'pretrain.pth').read_bytes()
    p = subprocess.run([sys.executable, '-c', 'import sys; from simclr_nb.cli import main; sys.exit(main())', *ARGS, '--finetune-base-lr', '1e12',
                        '--out', str(out)], env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith(f'stopped: {FT}: the training loss became nan at epoch 1 of ') and ', step ' in p.stderr, p.stderr
    assert p.stderr.count('\n') == 1 and 'Traceback' not in p.stderr, p.stderr
    assert (out/'pretrain.pth').read_bytes() == pre and FT not in finished(out)
    p = subprocess.run([sys.executable, '-c', 'import sys; from simclr_nb.cli import main; sys.exit(main())', *ARGS, '--finetune-base-lr', '0.05',
                        '--out', str(out)], env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert FT in finished(out) and json.loads((out/'config.json').read_text())['finetune_base_lr'] == 0.05


def test_supervised_and_distill_learners_resume_exactly(tmp_path):
    "The baselines' and the distillation's learners (fastai's Adam with a TensorBase loss; LARS with a frozen teacher) resume bit-exactly through fit_resumable."
    import torch
    from fastai.torch_core import set_seed
    from fastai.callback.core import Callback
    from simclr_nb.data import load_dataset, label_fraction_split, labeled_dls, unlabeled_dls
    from simclr_nb.finetune import supervised_learner
    from simclr_nb.distill import distill_learner
    from simclr_nb.models import build_encoder, ClassifierNet
    from simclr_nb.checkpoint import fit_resumable
    torch.set_num_threads(1)
    d = load_dataset('digits')
    spec = dict(depth=18, width=0.125, sk=False, small_images=True, in_channels=1)
    split = label_fraction_split(d.train_y, 0.1, seed=0)

    class Kill(Callback):
        order = 100
        def after_epoch(self):
            if self.epoch == 1: raise KeyboardInterrupt

    def supervised(seed):
        set_seed(seed)
        return supervised_learner(labeled_dls(d, split, bs=32, device='cpu', passes=2), spec, 10, 8, base_lr=1e-2)

    def distill(seed):
        set_seed(0); teacher = ClassifierNet(build_encoder(spec), 10)
        set_seed(seed); student = ClassifierNet(build_encoder(dict(spec, width=0.0625)), 10)
        return distill_learner(unlabeled_dls(d, bs=256, device='cpu'), student, teacher, 8)

    for name, make in (('supervised', supervised), ('distill', distill)):
        quiet = lambda learn: (learn.remove_cb(learn.progress), learn)[1]
        a = quiet(make(0)); fit_resumable(a, 3, tmp_path/name/'a')              # each built just before its fit, as a run does
        b = quiet(make(0))
        with pytest.raises(KeyboardInterrupt): fit_resumable(b, 3, tmp_path/name/'b', cbs=Kill())
        c = quiet(make(7)); fit_resumable(c, 3, tmp_path/name/'b')              # another random state, as a new process has
        diff = max((pa - pc).abs().max().item() for pa, pc in zip(a.model.state_dict().values(), c.model.state_dict().values())
                   if pa.is_floating_point())
        assert diff == 0, (name, diff)
