"""Shared fixtures: every kernel test runs on each instruction-set level this CPU can use."""
import numpy as np
import pytest

import cnn
from cnn import _ext


@pytest.fixture(params=_ext.available_isas())
def isa(request):
    """Run the test with the kernels compiled for each available instruction-set level."""
    previous = _ext.backend.isa
    _ext.select(request.param)
    yield request.param
    _ext.select(previous)


@pytest.fixture
def threads():
    """Restore the kernel thread count after a test that changes it."""
    previous = cnn.get_num_threads()
    yield
    cnn.set_num_threads(previous)


@pytest.fixture
def small_layers_shared(monkeypatch):
    """Let the convolution kernels share even the smallest layers among the threads
    (MIN_PARALLEL_MACS = 1 in every level's conv module), so that tests at 2 threads reach the
    paths that cut a batch smaller than the team (batch 1) on small shapes."""
    for isa in _ext.available_isas():
        monkeypatch.setattr(_ext._load(isa).conv, "MIN_PARALLEL_MACS", 1)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# Fixtures here (the instruction-set level, the thread count) hold for every example of a test.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("cnn", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile("cnn")
