"""bench/machine.py's helpers: the inductor cache the compile timings start from."""
import importlib.util, os
from pathlib import Path

_spec = importlib.util.spec_from_file_location('machine', Path(__file__).parents[1]/'bench'/'machine.py')
machine = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(machine)

def test_empty_inductor_cache_is_new_and_empty_and_restored(monkeypatch):
    monkeypatch.setenv('TORCHINDUCTOR_CACHE_DIR', '/a/warm/cache')
    with machine.empty_inductor_cache() as d:
        assert os.environ['TORCHINDUCTOR_CACHE_DIR'] == d != '/a/warm/cache' and os.listdir(d) == []
    assert os.environ['TORCHINDUCTOR_CACHE_DIR'] == '/a/warm/cache' and not os.path.exists(d)
    monkeypatch.delenv('TORCHINDUCTOR_CACHE_DIR')
    try:
        with machine.empty_inductor_cache(): raise RuntimeError('a failed compile')
    except RuntimeError: pass
    assert 'TORCHINDUCTOR_CACHE_DIR' not in os.environ   # unset before: unset after, even when the block fails

def test_git_state_counts_code_not_benchmark_results(tmp_path, monkeypatch):
    "A rewritten bench/results/ file (a resumed run's JSON) is not an uncommitted change; an edited script is"
    import subprocess
    def git(*a): subprocess.run(['git', *a], cwd=tmp_path, check=True, capture_output=True)
    (tmp_path/'bench'/'results').mkdir(parents=True)
    (tmp_path/'bench'/'quality.py').write_text('x = 1\n'); (tmp_path/'bench'/'results'/'quality_cpu.json').write_text('{}\n')
    git('init', '-q'); git('add', '.'); git('-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', 'first')
    monkeypatch.setattr(machine, 'ROOT', tmp_path)
    commit, dirty = machine.git_state()
    assert len(commit) >= 7 and dirty is False
    (tmp_path/'bench'/'results'/'quality_cpu.json').write_text('{"wall_s": 1}\n')
    assert machine.git_state() == (commit, False)
    (tmp_path/'bench'/'quality.py').write_text('x = 2\n')
    assert machine.git_state() == (commit, True)
