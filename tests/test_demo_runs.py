"""bench/demo_runs.py times the Makefile's own demo command: it must find it, and the arguments it runs (with its --out and
--jobs) must be ones `simclr-nb run` accepts. Trains nothing."""
import importlib.util, sys
from pathlib import Path

BENCH = Path(__file__).parents[1]/'bench'
sys.path.insert(0, str(BENCH))   # the script imports bench/machine.py as `machine`
_spec = importlib.util.spec_from_file_location('demo_runs', BENCH/'demo_runs.py')
demo_runs = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(demo_runs)

from simclr_nb.cli import run_parser


def test_the_makefile_demo_command_is_found_and_parses():
    args = demo_runs.demo_command()
    assert args[0] == 'run' and '--out' in args
    ns = run_parser().parse_args(demo_runs.with_option(demo_runs.with_option(args[1:], '--out', 'elsewhere'), '--jobs', 3))
    assert (ns.out, ns.jobs, ns.ft_augment) == ('elsewhere', 3, 'none')


def test_with_option_replaces_or_appends():
    assert demo_runs.with_option(['run', '--jobs', '2'], '--jobs', 1) == ['run', '--jobs', '1']
    assert demo_runs.with_option(['run'], '--out', 'x') == ['run', '--out', 'x']
