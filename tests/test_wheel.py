"""The package builds (`python -m build`: a wheel and an sdist), the wheel installs into a fresh virtual environment
outside the repository and works there (`simclr-nb --help`, `simclr-nb run --help`, `import simclr_nb` and every
module), and pyproject.toml declares every third-party package the code imports (issue 15).

Offline: the build uses this environment's setuptools (`--no-isolation`), the wheel is installed with `--no-deps`
and `--no-index`, and the fresh environment sees this environment's already installed dependencies through a `.pth`
line (a plain path line: the editable install of the repository that this environment also holds is not activated)."""
import ast, os, re, subprocess, sys, sysconfig, tomllib, zipfile
from importlib.metadata import packages_distributions
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT/'pyproject.toml').read_text())
ALIASES = {'PIL': 'pillow', 'sklearn': 'scikit-learn', 'IPython': 'ipython', 'tensorflow': 'tensorflow-cpu', 'cv2': 'opencv-python'}


def norm(name): return re.sub(r'[-_.]+', '-', name).lower()


def requirement_name(req): return norm(re.split(r'[\s<>=!~;\[]', req, maxsplit=1)[0])


def third_party_imports():
    "`{top-level module: [(file, line, at_module_level)]}` of every import in simclr_nb/ that is neither stdlib nor the package."
    found = {}
    for f in sorted((ROOT/'simclr_nb').glob('*.py')):
        tree = ast.parse(f.read_text())
        nested = {id(n) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Try))
                  for n in ast.walk(fn) if n is not fn}
        for n in ast.walk(tree):
            if isinstance(n, ast.Import): names = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom) and not n.level and n.module: names = [n.module]
            else: continue
            for m in names:
                top = m.split('.')[0]
                if top in sys.stdlib_module_names or top == 'simclr_nb': continue
                found.setdefault(top, []).append((f.name, n.lineno, id(n) not in nested))
    return found


def test_every_import_is_declared():
    required = {requirement_name(r) for r in PYPROJECT['project']['dependencies']}
    optional = {requirement_name(r) for rs in PYPROJECT['project'].get('optional-dependencies', {}).values() for r in rs}
    dists = packages_distributions()
    problems = []
    for top, where in third_party_imports().items():
        names = {norm(d) for d in dists.get(top, [])} | {norm(ALIASES.get(top, top))}
        if names & required: continue
        eager = [w for w in where if w[2]]
        if eager: problems.append(f"{top} ({', '.join(f'{f}:{l}' for f, l, _ in eager)}) is imported when the module loads but is not in dependencies")
        elif not names & optional: problems.append(f"{top} ({', '.join(f'{f}:{l}' for f, l, _ in where)}) is in no dependency list or extra")
    assert not problems, '\n'.join(problems)


def test_import_check_can_fail(monkeypatch):
    "The check above sees an undeclared import: pretend pyproject.toml declares no numpy."
    deps = [d for d in PYPROJECT['project']['dependencies'] if requirement_name(d) != 'numpy']
    monkeypatch.setitem(PYPROJECT['project'], 'dependencies', deps)
    with pytest.raises(AssertionError, match='numpy'): test_every_import_is_declared()


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp('dist')
    r = subprocess.run([sys.executable, '-m', 'build', '--no-isolation', '--outdir', str(out), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out


def test_build_makes_wheel_and_sdist(built):
    wheels, sdists = list(built.glob('simclr_nb-*.whl')), list(built.glob('simclr_nb-*.tar.gz'))
    assert len(wheels) == 1 and len(sdists) == 1, list(built.iterdir())
    names = zipfile.ZipFile(wheels[0]).namelist()
    for mod in (ROOT/'simclr_nb').glob('*.py'): assert f'simclr_nb/{mod.name}' in names, mod.name
    assert any(n.endswith('entry_points.txt') for n in names)


def test_wheel_installs_and_runs_outside_the_repo(built, tmp_path):
    venv = tmp_path/'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    py = venv/'bin'/'python'
    site = subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True, text=True,
                          check=True).stdout.strip()
    (Path(site)/'zz_host_deps.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')   # torch, fastai, ... of this environment
    wheel = next(built.glob('simclr_nb-*.whl'))
    r = subprocess.run([str(py), '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', str(wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    run = lambda *a: subprocess.run(list(a), capture_output=True, text=True, cwd=tmp_path, env=env)
    r = run(str(venv/'bin'/'simclr-nb'), '--help')
    assert r.returncode == 0 and 'commands:' in r.stdout and 'run' in r.stdout, r.stdout + r.stderr
    r = run(str(venv/'bin'/'simclr-nb'), 'run', '--help')
    assert r.returncode == 0 and '--pretrain-epochs' in r.stdout and '--force' in r.stdout, r.stdout + r.stderr
    mods = sorted(p.stem for p in (ROOT/'simclr_nb').glob('*.py') if not p.stem.startswith('_'))
    code = ("import importlib, simclr_nb; print(simclr_nb.__file__)\n"
            f"for m in {mods!r}: importlib.import_module('simclr_nb.' + m)")
    r = run(str(py), '-c', code)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().startswith(str(venv)), r.stdout                        # the installed wheel, not the repository
