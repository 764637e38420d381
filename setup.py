"""Only here for the two native parts, which setup() keywords declare.

* ``cffi_modules``: the cffi kernels (hashing, searching, atomics over raw memory);
* ``ext_modules``: ``_objects``, the code that makes and reads Python objects (proxies,
  decoded fields, encoded values), written against the CPython C API (see objects.c for why).

Everything else about the package lives in pyproject.toml.
"""
from setuptools import Extension, setup

setup(
    cffi_modules=["sharedbuffers/_native/build_kernels.py:ffibuilder"],
    ext_modules=[Extension("sharedbuffers._native._objects",
                           ["sharedbuffers/_native/objects.c", "sharedbuffers/_native/proxies.c",
                            "sharedbuffers/_native/items.c", "sharedbuffers/_native/encoders.c",
                            "sharedbuffers/_native/lookups.c", "sharedbuffers/_native/values.c",
                            "sharedbuffers/_native/stable_hash.c", "sharedbuffers/_native/searches.c",
                            "sharedbuffers/_native/number_runs.c", "sharedbuffers/_native/index_merge.c",
                            "sharedbuffers/_native/schema_pickle.c",
                            "sharedbuffers/_native/kernels.c"],
                           depends=["sharedbuffers/_native/objects.h", "sharedbuffers/_native/kernels.h"],
                           extra_compile_args=["-O2", "-std=gnu11", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                               "-Wno-missing-field-initializers"])],
)
