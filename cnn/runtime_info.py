"""`show_config()`: what this installation of cnn runs on (version, kernels, threads, BLAS,
malloc)."""
from __future__ import annotations

import platform
from typing import Any, Optional

import numpy as np

from cnn import _ext, _malloc
from cnn.threads import backoff, get_num_threads, openmp_enabled, wait_policy
from cnn.version import __version__


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '?')}"
    except Exception:  # numpy's config layout is not a stable interface
        return "unknown"


def config() -> dict[str, Any]:
    """The facts show_config prints, as a dict (bench/ records them next to its figures)."""
    return {
        "cnn": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas(),
        "cpu": _cpu_model(),
        "isa": _ext.backend.isa,
        "isa_available": _ext.available_isas(),
        "openmp": openmp_enabled(),
        "threads": get_num_threads(),
        "wait_policy": wait_policy(),
        "thread_backoff": backoff(),
        "malloc": _malloc.state(),
    }


def show_config(mode: str = "stdout") -> Optional[dict[str, Any]]:
    """Print the version, OpenMP, kernel threads, instruction set, numpy's BLAS and malloc policy.

    Args:
        mode: "stdout" to print them, "dicts" to return them as a dict instead (like
            ``numpy.show_config``).

    Raises:
        ValueError: For another mode.
    """
    info = config()
    if mode == "dicts":
        return info
    if mode != "stdout":
        raise ValueError(f"mode: expected 'stdout' or 'dicts', got {mode!r}")
    openmp = ("enabled" if info["openmp"] else "disabled: serial kernels (the build found no "
              "OpenMP in its compiler, or CNN_NO_OPENMP was set)")
    print(f"cnn {info['cnn']} (Python {info['python']}, numpy {info['numpy']})")
    print(f"  kernels:         compiled Cython, instruction set {info['isa']} "
          f"(this CPU can run: {', '.join(info['isa_available'])}; CNN_ISA forces one)")
    print(f"  OpenMP:          {openmp}")
    print(f"  kernel threads:  {info['threads']} (cnn.set_num_threads)")
    print(f"  idle threads:    {info['wait_policy']}")
    print(f"  busy machine:    {info['thread_backoff']}")
    print(f"  numpy BLAS:      {info['blas']}")
    print(f"  memory:          {info['malloc']}")
    print(f"  CPU:             {info['cpu']}")
    return None
