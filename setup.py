"""Only here for the two native parts, which setup() keywords declare.

* ``cffi_modules``: the cffi kernels (hashing, searching, atomics over raw memory);
* ``ext_modules``: ``_proxies``, proxy construction and field decoding written against the
  CPython C API, because its results are Python objects (see proxies.c for why).

Everything else about the package lives in pyproject.toml.
"""
from setuptools import Extension, setup

setup(
    cffi_modules=["sharedbuffers/_native/build_kernels.py:ffibuilder"],
    ext_modules=[Extension("sharedbuffers._native._proxies", ["sharedbuffers/_native/proxies.c"],
                           extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                               "-Wno-missing-field-initializers"])],
)
