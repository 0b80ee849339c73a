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
