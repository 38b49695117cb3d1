"""cnn from several Python threads at once (issue 16): models trained side by side, one model
serving several threads, captures of cnn.compile, grad mode and the thread count, each giving
the very bits of a serial run."""
import threading

import numpy as np
import pytest

import cnn
import cnn.nn.functional as F
from cnn import nn

THREADS = 4
STEPS = 6
# (input channels, image size, conv channels, kernel, batch): a geometry and batch per thread.
SHAPES = [(1, 12, 4, 3, 8), (3, 10, 6, 5, 5), (2, 16, 8, 3, 1), (1, 9, 5, 2, 13)]


def make_problem(index):
    """A model (fused conv-relu-pool, then linear), its optimizer and data for thread `index`."""
    channels, size, filters, kernel, batch = SHAPES[index]
    cnn.manual_seed(index)
    pooled = (size - kernel + 1) // 2
    model = nn.Sequential(nn.Conv2d(channels, filters, kernel), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(filters * pooled * pooled, 10))
    optimizer = cnn.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(index)
    data = [(cnn.tensor(rng.standard_normal((batch, channels, size, size), np.float32)),
             rng.integers(0, 10, batch)) for _ in range(STEPS)]
    return model, optimizer, data


def train(problem):
    model, optimizer, data = problem
    outputs = []
    for x, y in data:
        optimizer.zero_grad()
        out = model(x)
        F.cross_entropy(out, y).backward()
        optimizer.step()
        outputs.append(out._data.copy())
    return outputs + [p._data.copy() for p in model.parameters()]


def run_in_threads(functions):
    """Call each function in its own thread, all released at once; their results in order."""
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)
    errors = []

    def body(i):
        try:
            barrier.wait()
            results[i] = functions[i]()
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(functions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def assert_same_bits(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def test_models_trained_in_threads_end_with_the_bits_of_serial_runs():
    serial = [train(make_problem(i)) for i in range(THREADS)]
    problems = [make_problem(i) for i in range(THREADS)]  # built serially: one generator
    threaded = run_in_threads([lambda p=p: train(p) for p in problems])
    for ours, reference in zip(threaded, serial):
        assert_same_bits(ours, reference)


def test_the_thread_count_changed_from_another_thread_changes_no_bits():
    serial = [train(make_problem(i)) for i in range(2)]
    problems = [make_problem(i) for i in range(2)]
    before = cnn.get_num_threads()
    stop = threading.Event()

    def toggle():
        n = 0
        while not stop.is_set():
            cnn.set_num_threads(1 + n % 2)  # read by every kernel call as it starts
            n += 1

    toggler = threading.Thread(target=toggle)
    toggler.start()
    try:
        threaded = run_in_threads([lambda p=p: train(p) for p in problems])
    finally:
        stop.set()
        toggler.join()
        cnn.set_num_threads(before)
    for ours, reference in zip(threaded, serial):
        assert_same_bits(ours, reference)


def test_set_num_threads_from_another_thread_applies_to_the_next_call():
    before = cnn.get_num_threads()
    try:
        run_in_threads([lambda: cnn.set_num_threads(1)])
        assert cnn.get_num_threads() == 1 or not cnn.openmp_enabled()
    finally:
        cnn.set_num_threads(before)


def test_one_model_serves_several_threads_at_once():
    model, _, _ = make_problem(0)
    model.eval()
    rng = np.random.default_rng(7)
    batches = [cnn.tensor(rng.standard_normal((n, 1, 12, 12), np.float32))
               for n in (1, 3, 8, 17)]
    with cnn.no_grad():
        serial = [model(x)._data for x in batches]

    def infer(x):
        with cnn.no_grad():
            return [model(x)._data for _ in range(5)]

    threaded = run_in_threads([lambda x=x: infer(x) for x in batches])
    for outputs, reference in zip(threaded, serial):
        assert_same_bits(outputs, [reference] * 5)


def test_compiled_models_capture_in_several_threads_at_once():
    serial = [train(make_problem(i)) for i in range(THREADS)]
    problems = []
    for i in range(THREADS):
        model, optimizer, data = make_problem(i)
        problems.append((cnn.compile(model), optimizer, data))
    # Every thread captures at its first step, at the same moment: traces are per thread.
    threaded = run_in_threads([lambda p=p: train(p) for p in problems])
    for ours, reference in zip(threaded, serial):
        assert_same_bits(ours, reference)


def test_grad_mode_is_per_thread():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def without_grad():
        with cnn.no_grad():
            inside.set()
            release.wait(10)
            seen["no_grad thread"] = cnn.is_grad_enabled()

    thread = threading.Thread(target=without_grad)
    thread.start()
    inside.wait(10)
    seen["main"] = cnn.is_grad_enabled()
    x = cnn.ones(2, requires_grad=True)
    seen["graph"] = (x * 2).requires_grad
    release.set()
    thread.join()
    assert seen == {"no_grad thread": False, "main": True, "graph": True}


def test_profiles_enabled_from_threads_do_not_collide():
    models = [make_problem(i)[0] for i in range(THREADS)]

    def profile(model):
        for _ in range(20):
            cnn.profiler.enable(model)
            cnn.profiler.disable(model)

    run_in_threads([lambda m=m: profile(m) for m in models])
    assert cnn.Tensor.backward.__name__ == "backward" and not cnn.profiler._active


@pytest.mark.parametrize("repeat", range(2))
def test_tracing_in_two_threads_sees_each_threads_own_ops(repeat):
    from cnn.autograd.function import tracing
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())

    def trace():
        ops = []
        with tracing(lambda function, args, kwargs, out: ops.append(function.__name__)):
            for _ in range(10):
                model(cnn.randn(1, 3))
        return ops

    for ops in run_in_threads([trace, trace]):
        assert ops == ["Linear", "ReLU"] * 10
