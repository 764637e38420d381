"""Only here for the two native parts, which setup() keywords declare.

* ``cffi_modules``: the cffi kernels (hashing, searching, atomics over raw memory);
* ``ext_modules``: ``_objects``, the code that makes and reads Python objects (proxies,
  decoded fields, encoded values), written against the CPython C API (see objects.c for why).

Everything else about the package lives in pyproject.toml.
"""
import os
import platform
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: On x86-64, ask the assembler to keep jumps from crossing or ending on 32-byte boundaries.
#: Skylake to Cascade Lake processors (a common cloud server) carry a microcode fix for an
#: erratum that stops caching the decoded instructions of such jumps; a hot loop that happens to
#: hold one runs from the slower legacy decoders.  Which jumps do depends on where the linker
#: puts each function, so without this option an unrelated change to the module moved random
#: `arr[i].x` reads by 6% (455 -> 481 ns) on such a machine; with it they stay at the faster
#: figure.  Other processors lose nothing but a few bytes of padding.
ALIGNED_BRANCHES = "-Wa,-mbranches-within-32B-boundaries"


class BuildExtension(build_ext):
    """build_ext that adds ALIGNED_BRANCHES where the compiler and target take it."""

    def build_extensions(self):
        if platform.machine().lower() in ("x86_64", "amd64") and self._compiles_with(ALIGNED_BRANCHES):
            for extension in self.extensions:
                extension.extra_compile_args.append(ALIGNED_BRANCHES)
        super().build_extensions()

    def _compiles_with(self, flag):
        with tempfile.TemporaryDirectory() as directory:
            source = os.path.join(directory, "probe.c")
            with open(source, "w") as f:
                f.write("int probe(int x) { return x > 1 ? x * 3 : x; }\n")
            try:
                self.compiler.compile([source], output_dir=directory, extra_postargs=[flag])
            except Exception:       # CompileError, or a compiler that cannot run at all
                return False
        return True


setup(
    cmdclass={"build_ext": BuildExtension},
    cffi_modules=["sharedbuffers/_native/build_kernels.py:ffibuilder"],
    ext_modules=[Extension("sharedbuffers._native._objects",
                           ["sharedbuffers/_native/objects.c", "sharedbuffers/_native/proxies.c",
                            "sharedbuffers/_native/items.c", "sharedbuffers/_native/encoders.c",
                            "sharedbuffers/_native/lookups.c", "sharedbuffers/_native/values.c",
                            "sharedbuffers/_native/stable_hash.c", "sharedbuffers/_native/searches.c",
                            "sharedbuffers/_native/number_runs.c", "sharedbuffers/_native/index_merge.c",
                            "sharedbuffers/_native/schema_pickle.c", "sharedbuffers/_native/live_proxies.c",
                            "sharedbuffers/_native/deferred.c",
                            "sharedbuffers/_native/kernels.c"],
                           depends=["sharedbuffers/_native/objects.h", "sharedbuffers/_native/kernels.h"],
                           extra_compile_args=["-O2", "-std=gnu11", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                               "-Wno-missing-field-initializers"])],
)
