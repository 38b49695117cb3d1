"""How the kernels' idle OpenMP threads wait (the runtime's own default, or the user's choice),
and what a build without OpenMP says when asked for threads.

The policy is read by the OpenMP runtime when it loads, so each case runs in a fresh
interpreter; libgomp's own report (``omp_display_env``) shows what it really took.
"""
import ast
import os
import warnings
from pathlib import Path

import pytest

import child_python
import cnn
from cnn import _ext

ENV = {k: v for k, v in os.environ.items() if k not in _ext.WAIT_POLICY_VARIABLES}
ENV["PYTHONPATH"] = os.pathsep.join([str(Path(cnn.__file__).parents[1]),
                                     os.environ.get("PYTHONPATH", "")])
LIBGOMP = next((path for path in _ext._openmp_runtimes() or ()
                if os.path.basename(path).startswith("libgomp")), None)
needs_libgomp = pytest.mark.skipif(LIBGOMP is None, reason="the kernels do not use libgomp")

REPORT = """
import ctypes, os, cnn
print(repr(cnn.show_config(mode="dicts")["wait_policy"]))
print(repr(os.environ.get("OMP_WAIT_POLICY")))
runtime = ctypes.CDLL({libgomp!r})
if hasattr(runtime, "omp_display_env"):
    runtime.omp_display_env(1)  # libgomp >= 9: its settings, on stderr
"""


def report(preload=False, **env):
    """(show_config's wait policy, OMP_WAIT_POLICY after import, libgomp's own report)."""
    code = REPORT.format(libgomp=LIBGOMP)
    if preload:  # another library loads the same runtime before cnn
        code = f"import ctypes; ctypes.CDLL({LIBGOMP!r})\n" + code
    done = child_python.run(code, env=dict(ENV, **env), check=True)
    policy, variable = done.stdout.splitlines()[:2]
    return ast.literal_eval(policy), ast.literal_eval(variable), done.stderr


@needs_libgomp
def test_cnn_leaves_the_runtimes_policy_alone():
    # The runtime is shared with the process's other OpenMP libraries (PyTorch's included):
    # a policy set by cnn would be theirs too.
    policy, variable, runtime = report()
    assert policy.startswith("the OpenMP runtime's default")
    assert variable is None
    if "OPENMP DISPLAY ENVIRONMENT" in runtime:
        assert "GOMP_SPINCOUNT = '300000'" in runtime  # libgomp's own default


@needs_libgomp
@pytest.mark.parametrize("setting, shown", [({"OMP_WAIT_POLICY": "active"}, "'ACTIVE'"),
                                            ({"GOMP_SPINCOUNT": "12345"}, "'12345'")])
def test_a_policy_the_user_set_is_kept(setting, shown):
    policy, variable, runtime = report(**setting)
    name, value = next(iter(setting.items()))
    assert policy == f"{name}={value} (from the environment)"
    assert variable == setting.get("OMP_WAIT_POLICY")
    if "OPENMP DISPLAY ENVIRONMENT" in runtime:
        assert f"{name} = {shown}" in runtime


@needs_libgomp
def test_a_runtime_loaded_before_cnn_is_reported():
    policy, _, runtime = report(preload=True)
    assert policy.startswith("as the OpenMP runtime read it when another library loaded it")
    if "OPENMP DISPLAY ENVIRONMENT" in runtime:
        assert "GOMP_SPINCOUNT = '300000'" in runtime  # libgomp's own default


def test_asking_a_serial_build_for_threads_warns(threads, monkeypatch):
    monkeypatch.setattr(cnn.threads, "openmp_enabled", lambda: False)
    with pytest.warns(RuntimeWarning, match=r"set_num_threads\(2\): this build of cnn has no "
                                             "OpenMP"):
        cnn.set_num_threads(2)
    assert cnn.get_num_threads() == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cnn.set_num_threads(1)  # what a serial build gives anyway: nothing to say


def test_show_config_says_who_chose_the_policy(monkeypatch, capsys):
    for state, phrase in [({"source": "serial", "settings": {}}, "none (serial kernels)"),
                          ({"source": "loaded before cnn", "settings": {}}, "set OMP_WAIT_POLICY"),
                          ({"source": "environment", "settings": {"GOMP_SPINCOUNT": "0"}},
                           "GOMP_SPINCOUNT=0 (from the environment)")]:
        monkeypatch.setattr(_ext, "wait_policy", state)
        assert phrase in cnn.threads.wait_policy()
        cnn.show_config()
        assert f"idle threads:    {cnn.threads.wait_policy()}" in capsys.readouterr().out
