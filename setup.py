"""Build the Cython kernels of `cnn`.

Every kernel module `cnn/_ext/<name>.pyx` (names without a leading underscore) is compiled once per
x86-64 instruction-set level into `cnn._ext.<level>.<name>`; `cnn._ext` picks the best level the CPU
supports at import, so one build is fast here and still runs on any x86-64 CPU. Helper modules
(`cnn/_ext/_*.pyx`) are built once, at the baseline level.

What keeps the build short (every kernel module three times, the helpers once):
  - Cython's memoryview machinery, about 1 MB of C that every module would otherwise carry, is
    generated once into a shared module, `cnn._ext._cyutility` (Cython >= 3.1).
  - The modules are compiled in parallel, one compiler per CPU this process may use
    (`build_ext -j N` overrides), the largest first.
  - No debug information (`-g0`): it made the object files seven times larger and cost a fifth
    of the compile time. `CNN_CYTHON_DEBUG=1` keeps it.
  - A module is compiled again only when its fingerprint (C sources, compiler, flags) changed:
    `pip install .` then `pip install '.[test]'` compiles once (see BuildExt.build_extension).

Environment switches:
  CNN_NO_OPENMP=1       build serial kernels even when the compiler supports OpenMP
  CNN_CYTHON_DEBUG=1    bounds checks on and debug information kept (a debug build for the tests)
  CNN_NATIVE=1          add -march=native to every module (fast here, may crash on other CPUs)
"""
import hashlib
import os
import platform
import shutil
import tempfile
import textwrap
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

EXT_DIR = Path("cnn") / "_ext"
SHARED_UTILITY = "cnn._ext._cyutility"
DEBUG = os.environ.get("CNN_CYTHON_DEBUG", "") not in ("", "0")
NATIVE = os.environ.get("CNN_NATIVE", "") not in ("", "0")
NO_OPENMP = os.environ.get("CNN_NO_OPENMP", "") not in ("", "0")
BUILD_DIR = Path("build") / ("cython-debug" if DEBUG else "cython")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "initializedcheck": DEBUG,
    "wraparound": False,
    "cdivision": True,
    "nonecheck": False,
}

# Instruction-set levels, best first at run time (cnn/_ext/__init__.py keeps the same names).
# The flags are GCC's and clang's. On Windows only the baseline is built: cnn/_ext/_cpu.pyx
# detects the levels with GCC's builtins, which clang-cl does not offer.
IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
ISA_FLAGS = {"baseline": []}
if IS_X86:
    _AVX2 = ["-mavx2", "-mfma", "-mbmi", "-mbmi2"]
    ISA_FLAGS["avx2"] = _AVX2
    ISA_FLAGS["avx512"] = _AVX2 + [
        "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512cd",
        "-mprefer-vector-width=512",
    ]

# Modules compiled without contracting a multiply and an add into one fused multiply-add: the
# optimizer updates (optim.pyx) run a parameter's chunks either in a loop or in a parallel
# region, and gcc contracted the same formula differently in the two (Nesterov's update gave
# other last bits on two threads); uncontracted, each element is computed as written, the same
# everywhere (and as the NumPy formulas). The kernels that want a fused multiply-add write it.
UNCONTRACTED = {"optim"}

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


def _use_clang_cl(compiler):
    """Make setuptools' MSVC compiler object run clang-cl: cl.exe cannot compile the GCC vector
    extensions of the convolution kernels (cnn/_ext/conv_tile.h), clang-cl can, with MSVC's
    command line, libraries and linker."""
    if not compiler.initialized:
        compiler.initialize()
    clang_cl = shutil.which("clang-cl")
    if clang_cl is None:
        raise RuntimeError("cnn: building on Windows needs clang-cl (LLVM, or Visual Studio's "
                           "'C++ Clang tools' component) on PATH: MSVC's cl.exe cannot compile "
                           "the kernels' GCC vector extensions")
    compiler.cc = clang_cl


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class BuildExt(build_ext):
    """Add OpenMP and per-level instruction-set flags where the compiler supports them, and
    compile in parallel."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = _cpus()
        # Whether a module is up to date is decided by its fingerprint (build_extension), not
        # by setuptools' file times.
        self.force = True

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        if msvc:
            _use_clang_cl(self.compiler)
        openmp_flag = "/openmp" if msvc else "-fopenmp"
        openmp = []
        if NO_OPENMP:
            print("cnn: CNN_NO_OPENMP is set: building serial kernels")
        elif _compiles(self.compiler, OPENMP_TEST, [openmp_flag]):
            openmp = [openmp_flag]
        else:
            # pip shows this only with -v; cnn.show_config() and set_num_threads() say it too.
            print("cnn: WARNING: the compiler cannot build OpenMP programs: kernels will run "
                  "serially")
        if msvc:
            optimize = ["/O2", "-fno-math-errno"]
            supported = {"baseline"}
        else:
            # -fno-math-errno: sqrt() may then be vectorized (nothing here reads errno).
            optimize = ["-O3", "-fno-math-errno", "-g" if DEBUG else "-g0"]
            supported = {isa for isa, flags in ISA_FLAGS.items()
                         if _compiles(self.compiler, EMPTY_TEST, flags, link=False)}
        native = ["-march=native"] if NATIVE and not msvc else []
        kept = []
        for ext in self.extensions:
            if ext.isa not in supported:
                print(f"cnn: the compiler does not support {ext.isa} flags: skipping {ext.name}")
                continue
            exact = []
            if ext.name.rsplit(".", 1)[1] in UNCONTRACTED:
                # (clang-cl takes a clang option through /clang:)
                exact = ["/clang:-ffp-contract=off" if msvc else "-ffp-contract=off"]
            ext.extra_compile_args = optimize + ISA_FLAGS[ext.isa] + native + openmp + exact
            ext.extra_link_args = [] if msvc else openmp
            kept.append(ext)
        # Largest first, so that the last compiler running is not the one with the most work.
        self.extensions = sorted(kept, key=lambda ext: ext.weight, reverse=True)
        super().build_extensions()

    def build_extension(self, ext):
        # pip builds every install in a fresh environment whose Cython headers are newer than
        # the generated C files, so Cython regenerates them (identical) and file times would
        # rebuild everything: `pip install .` then `pip install '.[test]'` compiled twice. A
        # module is rebuilt only when its fingerprint (its C sources, the compiler and its
        # flags) changed.
        stamp = Path(self.build_temp) / "fingerprints" / ext.name
        fingerprint = self._fingerprint(ext)
        module = Path(self.get_ext_fullpath(ext.name))
        if module.exists() and stamp.exists() and stamp.read_text() == fingerprint:
            print(f"cnn: {ext.name} is up to date")
            return
        super().build_extension(ext)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(fingerprint)

    def _fingerprint(self, ext):
        digest = hashlib.sha256()
        for part in (self.compiler.compiler_type, getattr(self.compiler, "compiler_so", None),
                     ext.extra_compile_args, ext.extra_link_args, ext.define_macros,
                     ext.include_dirs, self.include_dirs):
            digest.update(repr(part).encode())
        for path in list(ext.sources) + list(ext.depends):
            digest.update(Path(path).read_bytes())
        return digest.hexdigest()

    def run(self):
        super().run()
        # `python -m cnn` run from the repository root imports the source tree (the current
        # folder comes first on sys.path), so the compiled modules also go next to their sources.
        if not self.inplace:
            self.copy_extensions_to_source()


def _level_source(c_file, isa):
    """A one-line C file that includes `c_file`, for the `isa` build of a kernel module.

    Each level needs its own source path: setuptools names object files after their sources,
    so the levels' objects would otherwise overwrite each other during a parallel build.
    """
    wrapper = BUILD_DIR / isa / Path(c_file).name
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    text = f'#include "{Path(os.path.relpath(c_file, wrapper.parent)).as_posix()}"\n'
    if not wrapper.exists() or wrapper.read_text() != text:
        wrapper.write_text(text)
    return str(wrapper)


def extensions():
    """The shared utility and helper modules once, every kernel module once per level."""
    pyx_files = sorted(EXT_DIR.glob("*.pyx"))
    modules = [Extension(f"cnn._ext.{p.stem}", [str(p)]) for p in pyx_files]
    modules.append(Extension(SHARED_UTILITY, [str(EXT_DIR / "_cyutility.c")]))
    generated = cythonize(modules, compiler_directives=DIRECTIVES, build_dir=str(BUILD_DIR),
                          quiet=True, nthreads=_cpus(),
                          shared_utility_qualified_name=SHARED_UTILITY)
    headers = [str(h) for h in sorted(EXT_DIR.glob("*.h"))]
    result = []
    for ext in generated:
        stem = ext.name.rsplit(".", 1)[1]
        (c_file,) = ext.sources
        if stem.startswith("_"):
            ext.isa, ext.weight = "baseline", os.path.getsize(c_file)
            result.append(ext)
            continue
        for isa in ISA_FLAGS:
            # The generated file and the headers are listed so that editing one rebuilds.
            variant = Extension(f"cnn._ext.{isa}.{stem}", [_level_source(c_file, isa)],
                                include_dirs=[str(EXT_DIR)], depends=[c_file] + headers)
            variant.isa, variant.weight = isa, os.path.getsize(c_file)
            result.append(variant)
    return result


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
