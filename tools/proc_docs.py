"""Run nbdev's documentation steps up to (not including) Quarto's render, for machines without Quarto.

`nbdev-proc-nbs` itself tries to download Quarto first when it is missing; this script runs the same steps
(`_quarto.yml`/`nbdev.yml` refresh, module index, sidebar, notebook processing into `_proc/`) without that.
Where Quarto is installed, `make docs` runs `nbdev-docs` instead.
"""
import os
from nbdev.config import get_config
from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
from nbdev.serve import proc_nbs
import nbdev.doclinks

def main():
    cfg = get_config()
    os.chdir(cfg.config_path)
    refresh_quarto_yml()
    nbdev.doclinks._build_modidx()
    nbdev_sidebar.__wrapped__(path=cfg.nbs_path)
    cache = proc_nbs(cfg.nbs_path)
    print(f"processed notebooks are in {cache}; render them with `quarto render {cache}` or `nbdev-docs` where Quarto exists")

if __name__ == '__main__': main()  # guarded: proc_nbs starts worker processes that import this file
