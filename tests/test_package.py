"""Checks of the installed package from outside the notebooks: console script, imports, checkpoint format."""
import subprocess, sys, importlib
from pathlib import Path
import pytest, torch

BIN = Path(sys.executable).parent
MODULES = ['data', 'models', 'augment', 'losses', 'optim', 'precision', 'evaluate', 'pretrain', 'checkpoint', 'distributed',
           'finetune', 'distill', 'pipeline', 'report', 'cli', 'experiments', 'panels', 'official', 'predict', 'cputune']

@pytest.mark.parametrize('mod', MODULES)
def test_module_imports(mod):
    m = importlib.import_module(f'simclr_nb.{mod}')
    assert m.__all__, f'simclr_nb.{mod} exports nothing'

def test_console_script_help():
    r = subprocess.run([str(BIN/'simclr-nb'), '--help'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for cmd in ('run', 'pretrain', 'finetune', 'distill', 'evaluate', 'data'): assert cmd in r.stdout

def test_run_help_documents_options():
    r = subprocess.run([str(BIN/'simclr-nb'), 'run', '--help'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for opt in ('--dataset', '--label-fractions', '--ft-layer', '--pretrain-epochs', '--tau-self', '--force', '--out',
                '--seeds', '--precision', '--valid-fraction'): assert opt in r.stdout

@pytest.mark.parametrize('opt,bad,msg', [('--seeds', '0,x', '--seeds must be'), ('--precision', 'fp8', '--precision must be one of'),
                                         ('--valid-fraction', '1.5', '--valid-fraction must be')])
def test_run_refuses_bad_values_clearly(tmp_path, opt, bad, msg):
    r = subprocess.run([str(BIN/'simclr-nb'), 'run', opt, bad, '--out', str(tmp_path/'run')], capture_output=True, text=True)
    assert r.returncode != 0 and msg in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path/'run').exists()   # refused before anything was written

def test_one_share_stages():
    "The experiments reuse the pipeline's `share_stages`, not a copy of their own."
    from simclr_nb import pipeline, experiments
    assert experiments.share_stages is pipeline.share_stages

def test_report_names_still_import_from_pipeline():
    "The report's functions moved to `simclr_nb.report`; the old import path finds the same objects, and no copy was left behind."
    from simclr_nb import pipeline, report
    for name in ('seed_values', 'summarize', 'results_table', 'markdown_table', 'common_seed_verdict', 'claims', 'write_report'):
        assert getattr(pipeline, name) is getattr(report, name), name
        assert name not in pipeline.__dict__, f'{name} is defined twice'
    with pytest.raises(AttributeError): pipeline.no_such_name

def test_one_seed_parser():
    "`simclr-nb run --seeds` reads seeds with the pipeline's `parse_seeds` (as the panels' seeds box does): the same words for each bad value."
    from fastcore.script import CliError
    from simclr_nb.cli import _seeds
    from simclr_nb.pipeline import parse_seeds
    assert _seeds('(0, 1, 2)') == parse_seeds('0 1 2') == (0, 1, 2)
    for bad in ('0,x', '1,1', '-1', ' '):
        with pytest.raises(ValueError) as a: parse_seeds(bad, '--seeds')
        with pytest.raises(CliError) as b: _seeds(bad)
        assert str(a.value) == str(b.value), bad

def test_data_command(tmp_path):
    r = subprocess.run([str(BIN/'simclr-nb'), 'data', 'digits', '--out', str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert '10% labeled' in r.stdout and (tmp_path/'digits_examples.png').exists()

def test_unknown_dataset_is_a_clear_error(tmp_path):
    r = subprocess.run([str(BIN/'simclr-nb'), 'data', 'imagenet', '--out', str(tmp_path)], capture_output=True, text=True)
    assert r.returncode != 0 and 'Known datasets' in r.stderr and 'Traceback' not in r.stderr

def test_checkpoint_loads_weights_only(tmp_path):
    from simclr_nb.models import simclrv2_resnet, save_checkpoint
    enc = simclrv2_resnet(18, width=0.125, small_images=True, in_channels=1)
    p = save_checkpoint(tmp_path/'enc.pth', enc, stage='test')
    ck = torch.load(p, weights_only=True)
    assert ck['format'] == 'simclr_nb/1' and ck['spec']['depth'] == 18 and ck['stage'] == 'test'
