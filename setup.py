"""Build the Cython kernels of `cnn`.

Every kernel module `cnn/_ext/<name>.pyx` (names without a leading underscore) is compiled once per
x86-64 instruction-set level into `cnn._ext.<level>.<name>`; `cnn._ext` picks the best level the CPU
supports at import, so one build is fast here and still runs on any x86-64 CPU. Helper modules
(`cnn/_ext/_*.pyx`) are built once, at the baseline level.

Environment switches:
  CNN_NO_OPENMP=1       build serial kernels even when the compiler supports OpenMP
  CNN_CYTHON_DEBUG=1    turn bounds checks back on (a debug build for the tests)
  CNN_NATIVE=1          add -march=native to every module (fast here, may crash on other CPUs)
"""
import os
import platform
import tempfile
import textwrap
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

EXT_DIR = Path("cnn") / "_ext"
DEBUG = os.environ.get("CNN_CYTHON_DEBUG", "") not in ("", "0")
NATIVE = os.environ.get("CNN_NATIVE", "") not in ("", "0")
NO_OPENMP = os.environ.get("CNN_NO_OPENMP", "") not in ("", "0")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "initializedcheck": DEBUG,
    "wraparound": False,
    "cdivision": True,
    "nonecheck": False,
}

# Instruction-set levels, best first at run time (cnn/_ext/__init__.py keeps the same names).
IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
ISA_FLAGS = {"baseline": []}
if IS_X86:
    _AVX2 = ["-mavx2", "-mfma", "-mbmi", "-mbmi2"]
    ISA_FLAGS["avx2"] = _AVX2
    ISA_FLAGS["avx512"] = _AVX2 + [
        "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512cd",
        "-mprefer-vector-width=512",
    ]

OPENMP_TEST = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)
EMPTY_TEST = "int main(void) { return 0; }\n"


def _compiles(compiler, source, flags, link=True):
    """True when `source` compiles (and links) with `flags` on this compiler."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=flags)
            if link:
                compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=flags)
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    """Add OpenMP and per-level instruction-set flags where the compiler supports them."""

    def build_extensions(self):
        openmp = []
        if NO_OPENMP:
            print("cnn: CNN_NO_OPENMP is set: building serial kernels")
        elif _compiles(self.compiler, OPENMP_TEST, ["-fopenmp"]):
            openmp = ["-fopenmp"]
        else:
            print("cnn: WARNING: the compiler cannot build OpenMP programs: kernels will run serially")
        supported = {isa for isa, flags in ISA_FLAGS.items()
                     if _compiles(self.compiler, EMPTY_TEST, flags, link=False)}
        kept = []
        for ext in self.extensions:
            if ext.isa not in supported:
                print(f"cnn: the compiler does not support {ext.isa} flags: skipping {ext.name}")
                continue
            native = ["-march=native"] if NATIVE else []
            # -fno-math-errno: sqrt() may then be vectorized (nothing here reads errno).
            ext.extra_compile_args = (["-O3", "-fno-math-errno"] + ISA_FLAGS[ext.isa] + native
                                      + openmp)
            ext.extra_link_args = openmp
            kept.append(ext)
        self.extensions = kept
        super().build_extensions()

    def run(self):
        super().run()
        # `python -m cnn` run from the repository root imports the source tree (the current
        # folder comes first on sys.path), so the compiled modules also go next to their sources.
        if not self.inplace:
            self.copy_extensions_to_source()

    def build_extension(self, ext):
        # One .c file is compiled into several modules (one per level); separate temp folders
        # keep their object files apart.
        base = self.build_temp
        self.build_temp = os.path.join(base, ext.name)
        try:
            super().build_extension(ext)
        finally:
            self.build_temp = base


def extensions():
    """The helper modules once, and every kernel module once per instruction-set level."""
    build_dir = os.path.join("build", "cython-debug" if DEBUG else "cython")
    pyx_files = sorted(EXT_DIR.glob("*.pyx"))
    generated = cythonize(
        [Extension(f"cnn._ext.{p.stem}", [str(p)]) for p in pyx_files],
        compiler_directives=DIRECTIVES,
        build_dir=build_dir,
        quiet=True,
    )
    result = []
    for ext in generated:
        stem = ext.name.rsplit(".", 1)[1]
        if stem.startswith("_"):
            ext.isa = "baseline"
            result.append(ext)
            continue
        for isa in ISA_FLAGS:
            # The headers are listed so that editing one rebuilds the modules.
            variant = Extension(f"cnn._ext.{isa}.{stem}", list(ext.sources),
                                include_dirs=[str(EXT_DIR)],
                                depends=[str(h) for h in sorted(EXT_DIR.glob("*.h"))])
            variant.isa = isa
            result.append(variant)
    return result


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
