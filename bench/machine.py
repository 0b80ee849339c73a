"""Machine facts shared by the benchmark scripts (imported as `from machine import ...` when run as `python bench/x.py`).

`machine_info(device)` is the one record every result JSON carries: CPU model and the instruction-set flags that decide
the fast path (AVX2 / AVX512 / AMX, bf16), PyTorch's CPU capability, cores and threads, library versions, GPU, commit.
`empty_inductor_cache()` is the one way the scripts time `torch.compile`: from an empty cache, as a first run pays it;
`sync(device)` waits for a GPU's queued work before a clock is read."""
import contextlib, os, platform, subprocess, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def empty_inductor_cache():
    """A new, empty `TORCHINDUCTOR_CACHE_DIR` for the block, the old setting restored after: compile times measured inside
    are what a first run pays, not the seconds of a cache warmed by an earlier run (call `torch._dynamo.reset()` too)."""
    old = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        try: yield cache
        finally:
            if old is None: os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else: os.environ["TORCHINDUCTOR_CACHE_DIR"] = old


def sync(device):
    "Wait for the work queued on `device` (a `torch.device`): on a GPU, before reading a clock; nothing on a CPU."
    import torch
    if device.type == "cuda": torch.cuda.synchronize()


def cpu_model():
    "The CPU's model name from /proc/cpuinfo (or what platform knows)"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"): return line.split(":", 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags():
    "The flags that decide PyTorch's CPU kernels: AVX2/FMA, AVX512*, AMX*, AVX-VNNI (sorted)."
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                fl = set(line.split(":", 1)[1].split())
                return sorted(f for f in fl if f.startswith(("avx512", "amx")) or f in ("avx2", "fma", "avx_vnni"))
    except OSError: pass
    return []


def git_state():
    """(short commit, whether tracked files have uncommitted changes). The benchmarks' own result files (`bench/results/`)
    do not count: a resumed run rewrites its JSON, which says nothing about the code that trained"""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results"],
                                    capture_output=True, text=True, cwd=ROOT).stdout.strip())
    except OSError: commit, dirty = None, None
    return commit, dirty


def machine_info(device="cpu"):
    "Everything a benchmark result must say about where it ran."
    import torch
    dev = torch.device(device)
    versions = {}
    for mod in ("torchvision", "fastai", "lightly"):
        try: versions[mod] = __import__(mod).__version__
        except ImportError: versions[mod] = None
    try:
        from simclr_nb.precision import resolve_precision
        auto = resolve_precision("auto", dev)
    except ImportError: auto = None
    commit, dirty = git_state()
    return dict(cpu=cpu_model(), cpu_flags=cpu_flags(), cpu_capability=torch.backends.cpu.get_cpu_capability(),
                cores=os.cpu_count(), usable_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                torch_threads=torch.get_num_threads(), omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                python=platform.python_version(), torch=torch.__version__, **versions,
                gpu=torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
                cuda=torch.version.cuda if dev.type == "cuda" else None, device=dev.type, auto_precision=auto,
                git_commit=commit, uncommitted_changes=dirty, date=time.strftime("%Y-%m-%d %H:%M %Z"))
