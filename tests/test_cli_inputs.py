"""Every bad input to `simclr-nb` ends in a one-paragraph message and an exit status, never a traceback, and leaves
the run folder as it was (issue 15). Table-driven: each case is (name, setup, argv, status, words of the message)."""
import hashlib, json, os, pickle, subprocess, sys
from pathlib import Path
import pytest
import torch

from simclr_nb.cli import main, CliExit

TINY = ['--image-size', '8', '--width', '0.125', '--pretrain-epochs', '1', '--pretrain-bs', '128', '--finetune-steps', '2',
        '--supervised-steps', '2', '--distill-epochs', '1', '--label-fractions', '0.1', '--seeds', '0', '--no-baselines',
        '--precision', 'fp32', '--device', 'cpu']


def snapshot(folder: Path) -> dict:
    "Every file under `folder` with the hash of its content: what 'nothing moved or lost' compares."
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
    "A tiny finished run (pretrain + fine-tune on digits), made once for the module."
    out = tmp_path_factory.mktemp('run')
    assert main(['run', *TINY, '--stages', 'pretrain,finetune', '--out', str(out)]) == 0
    return out


def run_case(argv, capsys):
    "Run `simclr-nb argv` in this process; return (exit status, stderr)."
    capsys.readouterr()
    try: status = main(argv)
    except CliExit as e: status = e.code
    return status, capsys.readouterr().err


def one_class_folder(tmp):
    from PIL import Image
    for split in ('train', 'test'):
        d = tmp/'imgs'/split/'cat'; d.mkdir(parents=True)
        for i in range(6): Image.new('L', (8, 8), color=i * 40).save(d/f'{i}.png')
    return ['--dataset', 'folder', '--data-root', str(tmp/'imgs')]


def write(tmp, name, data):
    p = tmp/name; p.write_bytes(data if isinstance(data, bytes) else data.encode()); return str(p)


class Payload:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))


def payload_file(tmp):
    p = tmp/'evil.pth'; torch.save({'format': 'simclr_nb/1', 'x': Payload(tmp/'pwned')}, p); return str(p)


def truncated_copy(run, tmp):
    raw = (run/'finetune_10pct_seed0.pth').read_bytes(); return write(tmp, 'cut.pth', raw[:len(raw) // 2])


# name, argv (a function of the finished run folder `run` and an empty folder `tmp`), exit status, words the message must hold
CASES = [
    ('depth 19', lambda run, tmp: ['run', '--depth', '19'], 2, ['depth=19 is not supported']),
    ('depth 19 with --force on a finished run', lambda run, tmp: ['run', *TINY, '--depth', '19', '--force', '--out', str(run)], 2,
     ['depth=19 is not supported']),
    ('width 0', lambda run, tmp: ['run', '--width', '0'], 2, ['the teacher encoder: width=0.0 must be a positive number']),
    ('student width too small', lambda run, tmp: ['run', '--student-width', '0.001'], 2, ['the student encoder']),
    ('device tpu', lambda run, tmp: ['run', *TINY, '--device', 'tpu', '--out', str(tmp/'o')], 2, ["device 'tpu' is not a device torch knows"]),
    ('image size 100000', lambda run, tmp: ['run', '--image-size', '100000', '--device', 'cpu', '--out', str(tmp/'o')], 2,
     ['image_size=100000', 'GiB']),
    ('label fraction 0', lambda run, tmp: ['run', '--label-fractions', '0'], 2, ['out of range']),
    ('label fraction 1.5', lambda run, tmp: ['run', '--label-fractions', '1.5'], 2, ['out of range']),
    ('valid fraction 1', lambda run, tmp: ['run', '--valid-fraction', '1'], 2, ['--valid-fraction must be a number in [0, 1)']),
    ('seeds 1,1', lambda run, tmp: ['run', '--seeds', '1,1'], 2, ['--seeds must be distinct']),
    ('empty --stages', lambda run, tmp: ['run', '--stages', ''], 2, ['--stages is empty']),
    ('unknown stage', lambda run, tmp: ['run', *TINY, '--stages', 'pretrian', '--out', str(tmp/'o')], 2, ["unknown stage(s) ['pretrian']"]),
    ('unknown command', lambda run, tmp: ['trian'], 2, ["unknown command 'trian'"]),
    ('one-class folder', lambda run, tmp: ['run', *TINY, *one_class_folder(tmp), '--out', str(tmp/'o')], 2, ['has 1 class (cat)']),
    ('garbage --config', lambda run, tmp: ['run', '--config', write(tmp, 'c.json', 'depth: 18'), '--out', str(tmp/'o')], 2,
     ['c.json is not valid JSON']),
    ('list --config', lambda run, tmp: ['run', '--config', write(tmp, 'c.json', '[1, 2]'), '--out', str(tmp/'o')], 2, ['holds a list']),
    ('wrong type in --config', lambda run, tmp: ['run', '--config', write(tmp, 'c.json', '{"depth": "big"}'), '--out', str(tmp/'o')], 2,
     ["depth='big' is a str"]),
    ('missing --config', lambda run, tmp: ['run', '--config', str(tmp/'none.json')], 2, ['no such file']),
    ('config with a renamed key', lambda run, tmp: ['run', '--config', write(tmp, 'c.json', '{"finetune_lr": 0.1}'), '--out', str(tmp/'o')], 2,
     ["'finetune_lr' is now 'finetune_base_lr'"]),
    ('another config on a finished run', lambda run, tmp: ['run', *TINY, '--seed', '3', '--stages', 'pretrain,finetune', '--out', str(run)], 2,
     ['holds a run with a different config', 'seed: 0 -> 3']),
    ('evaluate garbage', lambda run, tmp: ['evaluate', write(tmp, 'g.pth', b'not a checkpoint' * 10)], 2, ['g.pth', 'not a']),
    ('evaluate empty', lambda run, tmp: ['evaluate', write(tmp, 'e.pth', b'')], 2, ['e.pth is empty (0 bytes)']),
    ('evaluate truncated', lambda run, tmp: ['evaluate', truncated_copy(run, tmp)], 2, ['cut.pth is not a readable PyTorch checkpoint']),
    ('evaluate pickled code', lambda run, tmp: ['evaluate', payload_file(tmp)], 2, ['evil.pth was refused', 'posix.system']),
    ('evaluate missing', lambda run, tmp: ['evaluate', str(tmp/'none.pth')], 2, ['no checkpoint at']),
    ('evaluate pretraining', lambda run, tmp: ['evaluate', str(run/'pretrain.pth')], 2, ['not a classifier']),
    ('evaluate on tpu', lambda run, tmp: ['evaluate', str(run/'finetune_10pct_seed0.pth'), '--device', 'tpu'], 2, ["device 'tpu'"]),
]
if not torch.cuda.is_available():
    CASES.append(('device cuda without a GPU', lambda run, tmp: ['run', *TINY, '--device', 'cuda', '--out', str(tmp/'o')], 2,
                  ['CUDA is not available on this machine']))


@pytest.mark.parametrize('name,argv,status,words', CASES, ids=[c[0] for c in CASES])
def test_bad_input(name, argv, status, words, finished_run, tmp_path, capsys):
    before_run, before_tmp = snapshot(finished_run), None
    args = argv(finished_run, tmp_path)
    before_tmp = snapshot(tmp_path)
    got, err = run_case(args, capsys)
    assert got == status, (got, err)
    assert 'Traceback' not in err and err.count('\n') == 1 and err.strip(), repr(err)   # one paragraph, one line
    for w in words: assert w in err, (w, err)
    assert snapshot(finished_run) == before_run                                         # nothing moved, lost or rewritten
    assert snapshot(tmp_path) == before_tmp and not (tmp_path/'o').exists()
    assert not (tmp_path/'pwned').exists()


@pytest.mark.parametrize('what', ['metrics.json', 'config.json'])
def test_corrupt_run_files_are_named(what, finished_run, tmp_path, capsys):
    import shutil
    run = tmp_path/'copy'; shutil.copytree(finished_run, run)
    (run/what).write_text('{"pretrain": ')
    before = snapshot(run)
    got, err = run_case(['run', *TINY, '--stages', 'pretrain,finetune', '--out', str(run)], capsys)
    assert got == 2 and f"{run/what} is not valid JSON" in err and 'Traceback' not in err, err
    assert snapshot(run) == before


def test_read_only_run_folder(finished_run, tmp_path, capsys, monkeypatch):
    "As root the permission bits do not stop a write, so the check is made to see a read-only folder the way access(2) reports one."
    import shutil, simclr_nb.pipeline as pl
    run = tmp_path/'ro'; shutil.copytree(finished_run, run)
    before = snapshot(run)
    real = os.access
    monkeypatch.setattr(pl.os, 'access', lambda p, mode: False if Path(p) == run else real(p, mode))
    got, err = run_case(['run', *TINY, '--stages', 'pretrain,finetune', '--force', '--out', str(run)], capsys)
    assert got == 2 and f'cannot write in {run}: it is read-only' in err, err
    assert snapshot(run) == before


def test_evaluate_alone_uses_the_checkpoints_image_size(finished_run, tmp_path, capsys):
    "A checkpoint copied away from its run (no config.json beside it) is evaluated at the size it was trained at."
    import shutil
    from simclr_nb.models import load_checkpoint
    ck = tmp_path/'alone.pth'; shutil.copy(finished_run/'finetune_10pct_seed0.pth', ck)
    meta = load_checkpoint(ck)
    assert (meta['image_size'], meta['dataset'], len(meta['classes'])) == (8, 'digits', 10) and 'no mean/std' in meta['preprocessing']
    capsys.readouterr()
    assert main(['evaluate', str(ck), '--device', 'cpu']) == 0
    want = json.loads((finished_run/'metrics.json').read_text())['finetune_10pct_seed0']['accuracy']
    assert f"{100 * want:.2f}%" in capsys.readouterr().out


def test_finetune_force_keeps_the_pretraining(finished_run, tmp_path, capsys):
    "`finetune --force` with a new fine-tuning rate retrains fine-tuning on the existing pretraining, which stays in place."
    import shutil
    run = tmp_path/'ft'; shutil.copytree(finished_run, run)
    pre = snapshot(run)['pretrain.pth']
    got, err = run_case(['finetune', *TINY, '--finetune-base-lr', '0.05', '--out', str(run)], capsys)
    assert got == 2 and 'finetune_10pct_seed0 depend on it' in err and '--force' in err, err
    assert main(['finetune', *TINY, '--finetune-base-lr', '0.05', '--force', '--out', str(run)]) == 0
    assert snapshot(run)['pretrain.pth'] == pre
    prev = next(run.glob('previous-*'))
    assert (prev/'finetune_10pct_seed0.pth').exists() and not (prev/'pretrain.pth').exists()
    m = json.loads((run/'metrics.json').read_text())
    assert 'finetune_10pct_seed0' in m and json.loads((run/'config.json').read_text())['finetune_base_lr'] == 0.05


def test_console_exit_status_and_no_traceback(tmp_path):
    "The installed console path: a real process, its exit status and its stderr."
    r = subprocess.run([sys.executable, '-c', 'import sys; from simclr_nb.cli import main; sys.exit(main())', 'run', '--device', 'tpu',
                        '--out', str(tmp_path/'o')], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == "error: device 'tpu' is not a device torch knows: use cpu, cuda, cuda:1 or mps", r.stderr
    assert not (tmp_path/'o').exists()
