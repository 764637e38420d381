"""Where files are mapped: numpy.memmap's modes and numarray.memmap's resizable regions.

Names only, no logic:

* :class:`MappedFile`: a file, or ``size`` bytes of it from any ``offset``, mapped with mode
  ``r``, ``r+``, ``w+`` or ``c``; ``flush()``, ``close()``, counted views.
* :class:`RegionFile` (numarray's name, ``Memmap``, is an alias): one file divided into
  named, non-overlapping regions that can be inserted, deleted and resized, and reopened.
* :class:`ViewsAliveError`: what closing or moving memory raises while views of it live.

Typed arrays, id mappers and mappings open files with the same modes:
``SomeArray.map_file(path, mode='c')``.
"""
from .mapped_files import MODES, MappedFile, ViewsAliveError
from .regions import Memmap, Region, RegionFile

__all__ = ['MappedFile', 'RegionFile', 'Region', 'Memmap', 'ViewsAliveError', 'MODES']
