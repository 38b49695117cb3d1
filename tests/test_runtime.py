"""What cnn sets up in the process: malloc policy, BLAS thread control, show_config."""
import os
import platform
from pathlib import Path

import pytest

import child_python
import cnn
from cnn import _blas

# The subprocesses import the very cnn these tests import (the source tree's, or the installed
# one when the tests run from an unpacked sdist, whose source tree has no compiled kernels).
PACKAGE_PARENT = Path(cnn.__file__).resolve().parents[1]
GLIBC = platform.libc_ver()[0] == "glibc"


def _fresh_malloc_run(code, env_extra=None):
    """What `code` prints in a fresh interpreter with no malloc settings of the user's (plus
    env_extra)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.update(env_extra or {})
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_PARENT), env.get("PYTHONPATH", "")])
    out = child_python.run(code, env=env, check=True)
    return out.stdout.strip()


def _malloc_state(env_extra):
    """cnn._malloc.state() in a fresh interpreter whose environment adds env_extra."""
    return _fresh_malloc_run("import cnn; print(cnn._malloc.state())", env_extra)


@pytest.mark.skipif(not GLIBC, reason="the malloc thresholds are glibc's")
def test_import_keeps_freed_memory_for_the_next_step():
    assert _malloc_state({}).startswith("glibc malloc keeps freed memory")


@pytest.mark.skipif(not GLIBC, reason="the malloc thresholds are glibc's")
def test_arrays_above_the_largest_mmap_threshold_are_reused_without_page_faults():
    # Four 64 MiB arrays (above glibc's largest mmap threshold) must come from the heap, and
    # the 256 MiB they free at its top must stay there (below the trim threshold): the next
    # four reuse their pages (a fresh mapping or a trimmed heap faults at least once per
    # 2 MiB).
    code = ("import resource, numpy as np, cnn\n"
            "arrays = [np.ones(16 << 20, np.float32) for _ in range(4)]; del arrays\n"
            "before = resource.getrusage(0).ru_minflt\n"
            "arrays = [np.ones(16 << 20, np.float32) for _ in range(4)]\n"
            "print(resource.getrusage(0).ru_minflt - before)")
    assert int(_fresh_malloc_run(code)) < 16


@pytest.mark.skipif(not GLIBC, reason="the malloc thresholds are glibc's")
@pytest.mark.parametrize("setting", [{"MALLOC_TRIM_THRESHOLD_": "131072"},
                                     {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"}])
def test_a_user_who_tuned_malloc_keeps_their_settings(setting):
    assert _malloc_state(setting) == "left as is (MALLOC_* or GLIBC_TUNABLES set)"


def test_show_config_reports_the_runtime(capsys):
    info = cnn.show_config(mode="dicts")
    assert info["threads"] == cnn.get_num_threads()
    assert info["isa"] in info["isa_available"]
    assert info["malloc"] == cnn._malloc.state()
    assert cnn.show_config() is None
    printed = capsys.readouterr().out
    assert f"instruction set {info['isa']}" in printed and "memory:" in printed
    with pytest.raises(ValueError, match="mode"):
        cnn.show_config(mode="json")


@pytest.mark.skipif(_blas._set_threads is None, reason="numpy's BLAS is not OpenBLAS")
def test_the_first_matrix_product_of_an_op_leaves_blas_on_one_thread():
    """Set once for the process (a save and restore around each product raced between Python
    threads), in a fresh interpreter so that no earlier op has set it."""
    code = ("import cnn, numpy as np; from cnn import _blas; _blas._set_threads(2); "
            "assert _blas._get_threads() == 2; "
            "cnn.nn.functional.linear(cnn.ones(4, 3), cnn.ones(5, 3)); "
            "assert _blas._get_threads() == 1, _blas._get_threads(); print(_blas.info())")
    result = child_python.run(code)
    assert result.returncode == 0, result.stderr
    assert "set to 1 by cnn" in result.stdout
