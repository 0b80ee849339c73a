"""Machine facts shared by the benchmark scripts (imported as `from machine import ...` when run as `python bench/x.py`)."""
import platform


def cpu_model():
    "The CPU's model name from /proc/cpuinfo (or what platform knows)"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"): return line.split(":", 1)[1].strip()
    except OSError: pass
    return platform.processor() or "unknown"
