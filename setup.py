# Thin shim: all metadata lives in pyproject.toml (PEP 621 + [tool.nbdev]).
# Kept so that `python setup.py develop` and old pip/setuptools front-ends still work.
from setuptools import setup

setup()
