"""sharedbuffers: typed, zero-copy data structures in bytearrays, mapped files and shared memory.

``sharedbuffers.NATIVE`` tells whether the compiled kernels are in use (set
``SHAREDBUFFERS_PURE=1`` to force the pure-Python fallback, which gives identical results).

Modules: ``mapped_struct`` (schemas, proxies, arrays, mappings: the 1.x facade), ``pool``
(1.x object pools), ``files`` (file modes and resizable regions), ``Storage`` (a persistent
file with a typed root), ``sharedctypes`` (multiprocessing.sharedctypes in named shared
memory) and ``shared_memory`` (the segments).
"""
from ._native import NATIVE
from .mapped_struct import *  # noqa: F401,F403  (the 1.x package exported these names)
from .mapped_struct import __all__ as _mapped_struct_names
from .files import MappedFile, RegionFile, ViewsAliveError
from .shared_memory import SharedSegment
from .storage import Storage, StorageFullError

__version__ = '2.0.0.dev0'
__all__ = ['NATIVE', '__version__', 'MappedFile', 'RegionFile', 'ViewsAliveError', 'SharedSegment', 'Storage',
           'StorageFullError'] + list(
    _mapped_struct_names)
