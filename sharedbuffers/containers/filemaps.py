"""Mapping files (or parts of them) into memory, and writing them safely.

``map_file_region`` maps a whole file and returns a view of ``[offset, offset + size)``:
``mmap`` offsets must be multiples of the allocation granularity, and mapping from 0
sidesteps that while costing nothing (pages are only touched when read).

``atomic_output`` writes to a temporary file in the destination's directory and renames it
into place, so a reader never sees half a file and a crash leaves the previous file intact.
"""
import contextlib
import mmap
import os
import tempfile

__all__ = ['map_file_region', 'atomic_output']


def map_file_region(fileobj, offset=0, size=None, read_only=True):
    """(memoryview of the region, the mmap) for ``fileobj`` (an open file or a path)."""
    if isinstance(fileobj, (str, os.PathLike)):
        with open(fileobj, 'rb' if read_only else 'r+b') as opened:
            return map_file_region(opened, offset, size, read_only)
    if hasattr(fileobj, 'flush'):
        fileobj.flush()         # what was written through the file object must be visible in the map
    length = os.fstat(fileobj.fileno()).st_size
    if offset < 0 or offset > length:
        raise ValueError('offset %d is outside the file (%d bytes)' % (offset, length))
    if size is None:
        size = length - offset
    if offset + size > length:
        raise ValueError('region %d+%d is outside the file (%d bytes)' % (offset, size, length))
    if length == 0:
        return memoryview(b''), None
    mapping = mmap.mmap(fileobj.fileno(), length, access=mmap.ACCESS_READ if read_only else mmap.ACCESS_WRITE)
    return memoryview(mapping)[offset:offset + size], mapping


@contextlib.contextmanager
def atomic_output(path, tempdir=None):
    """An open binary file that becomes ``path`` only if the block completes."""
    directory = tempdir or os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix='.sharedbuffers-', suffix='.tmp')
    try:
        with os.fdopen(handle, 'w+b') as output:
            yield output
            output.flush()
            os.fsync(output.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
