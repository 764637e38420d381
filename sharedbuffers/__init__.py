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

# Imported on first use (PEP 562): a process that only maps arrays and mappings does not load
# the storage, region and shared-memory modules, which keeps imports fast and pages shared.
_LAZY_NAMES = {
    'MappedFile': 'files', 'RegionFile': 'files', 'ViewsAliveError': 'files',
    'SharedSegment': 'shared_memory', 'Storage': 'storage', 'StorageFullError': 'storage',
}


def __getattr__(name):
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    import importlib
    value = getattr(importlib.import_module('.' + module_name, __name__), name)
    globals()[name] = value
    return value

__version__ = '2.0.0.dev0'
__all__ = ['NATIVE', '__version__', 'MappedFile', 'RegionFile', 'ViewsAliveError', 'SharedSegment', 'Storage',
           'StorageFullError'] + list(
    _mapped_struct_names)
