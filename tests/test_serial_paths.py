"""Work too small to share runs outside any OpenMP parallel region.

Entering a region costs libgomp about 0.8 us even with one thread (a team is set up and two
futex calls are made), a good part of a batch-1 layer's time, so the kernels loop on the
calling thread instead. These tests count the regions entered, with a shim of libgomp's
GOMP_parallel preloaded into a fresh interpreter (built here with the C compiler, which is
there wherever the kernels were built from source).
"""
import os
import shutil
import subprocess
import sys

import pytest

import child_python
import cnn

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
static long regions;
typedef void (*parallel_t)(void (*)(void *), void *, unsigned, unsigned);
void GOMP_parallel(void (*fn)(void *), void *data, unsigned threads, unsigned flags)
{
    static parallel_t real;
    if (!real) {
        void *gomp = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);
        real = (parallel_t)dlsym(gomp ? gomp : RTLD_NEXT, "GOMP_parallel");
    }
    regions++;
    real(fn, data, threads, flags);
}
long cnn_test_regions(void) { return regions; }
"""

CHILD = r"""
import ctypes, sys
import numpy as np
import cnn
import cnn.nn.functional as F
from cnn.cli.lenet import lenet5

if not any(line.rstrip().endswith("/libgomp.so.1.0.0") or line.rstrip().endswith("/libgomp.so.1")
           for line in open("/proc/self/maps")):
    print("no libgomp")
    sys.exit()
shim = ctypes.CDLL(sys.argv[1])
shim.cnn_test_regions.restype = ctypes.c_long

def regions(run):
    run()
    before = shim.cnn_test_regions()
    run()
    return shim.cnn_test_regions() - before

cnn.manual_seed(0)
model = lenet5()
compiled = cnn.compile(model)
optimizer = cnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

def train(batch):
    x = cnn.tensor(np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32))
    y = np.arange(batch) % 10
    def step():
        optimizer.zero_grad()
        F.cross_entropy(compiled(x), y).backward()
        optimizer.step()
    return step

def infer():
    with cnn.no_grad():
        compiled.eval()(cnn.zeros(1, 1, 28, 28))
    compiled.train()

frozen = cnn.compile(lenet5().eval(), options={"freezing": True})

def infer_bound():
    with cnn.no_grad():
        frozen(cnn.zeros(1, 1, 28, 28))

cnn.set_num_threads(1)
print(regions(infer), regions(train(10)), regions(train(64)), regions(infer_bound))
cnn.set_num_threads(2)
print(regions(train(64)), regions(infer_bound))
"""


def _compiler():
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")


@pytest.mark.skipif(not sys.platform.startswith("linux")
                    or not cnn.show_config(mode="dicts")["openmp"],
                    reason="counts the regions of libgomp on Linux")
@pytest.mark.skipif(_compiler() is None, reason="needs a C compiler to build the shim")
@pytest.mark.skipif(cnn.threads.max_threads()[0] < 2, reason="needs two threads")
def test_one_thread_and_batch_one_enter_no_parallel_region(tmp_path):
    source = tmp_path / "shim.c"
    source.write_text(SHIM)
    shim = tmp_path / "libshim.so"
    subprocess.run([_compiler(), "-shared", "-fPIC", "-O1", str(source), "-o", str(shim),
                    "-ldl"], check=True, capture_output=True)
    preloaded = os.environ.get("LD_PRELOAD")
    env = dict(os.environ, LD_PRELOAD=f"{shim} {preloaded}" if preloaded else str(shim),
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(cnn.__file__)),
                                           os.environ.get("PYTHONPATH", "")]))
    out = child_python.run(CHILD, str(shim), env=env, check=True).stdout.split("\n")
    if out[0] == "no libgomp":
        pytest.skip("the kernels' OpenMP runtime is not the system's libgomp")
    # One thread: a batch-1 forward (replayed, and bound), a batch-10 and a batch-64
    # training step, no region.
    assert out[0].split() == ["0", "0", "0", "0"]
    # Two threads share a batch-64 step's kernels: the shim does see regions; and a bound
    # batch-1 forward's five layers, all in one.
    steps, bound = out[1].split()
    assert int(steps) > 0 and bound == "1"
