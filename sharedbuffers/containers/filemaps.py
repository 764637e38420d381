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

__all__ = ['map_file_region', 'atomic_output', 'write_destination']


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


def write_destination(destfile, tempdir, write, open_written, return_mapper, read_only):
    """The shared ``build`` destination rule of arrays, id mappers and mappings.

    ``destfile`` is a path (written to a temporary file and renamed into place), an open
    binary file (written at its current position) or None (an anonymous temporary file).
    ``write(output)`` writes the structure at ``output``'s position; the result is
    ``open_written(file, offset, size, read_only)``, or None unless ``return_mapper``.
    """
    if isinstance(destfile, (str, os.PathLike)):
        with atomic_output(destfile, tempdir) as output:
            write(output)
        return open_written(destfile, 0, None, read_only) if return_mapper else None
    if destfile is None:
        destfile = tempfile.TemporaryFile(dir=tempdir)
    start = destfile.tell()
    write(destfile)
    destfile.flush()
    size = destfile.tell() - start
    return open_written(destfile, start, size, read_only) if return_mapper else None
