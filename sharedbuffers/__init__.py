"""sharedbuffers: typed, zero-copy data structures in bytearrays, mapped files and shared memory.

``sharedbuffers.NATIVE`` tells whether the compiled kernels are in use (set
``SHAREDBUFFERS_PURE=1`` to force the pure-Python fallback, which gives identical results).
"""
from ._native import NATIVE
from .mapped_struct import *  # noqa: F401,F403  (the 1.x package exported these names)
from .mapped_struct import __all__ as _mapped_struct_names

__version__ = '2.0.0.dev0'
__all__ = ['NATIVE', '__version__'] + list(_mapped_struct_names)
