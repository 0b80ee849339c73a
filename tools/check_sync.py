"""Fail if `nbdev-export` would change `simclr_nb/` or `nbdev-clean` would change a notebook.

Runs both tools, compares every file before and after, restores the originals and lists what differed,
so the check itself never leaves the working tree changed. Used by `make test` (and so by CI).
"""
import subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
bin_dir = Path(sys.executable).parent

def snapshot(paths): return {p: p.read_bytes() for p in paths}

def files():
    return sorted((root/'simclr_nb').rglob('*.py')) + sorted((root/'nbs').rglob('*.ipynb'))

def main():
    before = snapshot([p for p in files() if '.ipynb_checkpoints' not in p.parts])
    for tool in ('nbdev-export', 'nbdev-clean'):
        r = subprocess.run([str(bin_dir/tool)], cwd=root, capture_output=True, text=True)
        if r.returncode: sys.exit(f"{tool} failed:\n{r.stdout}\n{r.stderr}")
    after = snapshot([p for p in files() if '.ipynb_checkpoints' not in p.parts])
    changed = sorted({p for p in before.keys() | after.keys() if before.get(p) != after.get(p)})
    for p in changed:  # restore: this is a check, not a fixer
        if p in before: p.write_bytes(before[p])
        else: p.unlink()
    if changed:
        print("Out of step with the notebooks (run `make export clean-nbs`, then commit):")
        for p in changed: print("  ", p.relative_to(root))
        sys.exit(1)
    print(f"check-sync: simclr_nb/ matches the notebooks and all {sum(p.suffix=='.ipynb' for p in before)} notebooks are clean")

if __name__ == '__main__': main()
