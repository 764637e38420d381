"""Only here because cffi's build hook (``cffi_modules``) is a setup() keyword.

Everything else about the package lives in pyproject.toml.
"""
from setuptools import setup

setup(cffi_modules=["sharedbuffers/_native/build_kernels.py:ffibuilder"])
