"""Mapping files (or parts of them) into memory, and writing them safely.

``map_file_region`` maps ``[offset, offset + size)`` of a file with one of numpy.memmap's
modes (``r``, ``r+``, ``c``) through :class:`~sharedbuffers.mapped_files.MappedFile`.

``atomic_output`` writes to a temporary file in the destination's directory and renames it
into place, so a reader never sees half a file and a crash leaves the previous file intact.
"""
import contextlib
import os
import struct

from ..mapped_files import MappedFile, normalize_mode
from .aligned_writes import AlignedWriter

__all__ = ['map_file_region', 'atomic_output', 'write_destination', 'MappedLifetime', 'GenericFileMapper']


def map_file_region(fileobj, offset=0, size=None, read_only=True, mode=None):
    """(memoryview of the region, its :class:`MappedFile`) for ``fileobj`` (an open file or a path).

    ``mode`` is one of MappedFile's modes; when None, ``read_only`` picks ``'r'`` or ``'r+'``.
    A container is made by ``build``, so ``'w+'`` (which would make an empty file) is refused.
    """
    mode = normalize_mode(mode) if mode is not None else ('r' if read_only else 'r+')
    if mode == 'w+':
        raise ValueError("mode 'w+' would create an empty file: a container is created by build(); "
                         "open an existing one with 'r', 'r+' or 'c'")
    mapped = MappedFile(fileobj, mode, offset, size)
    return mapped.buffer, mapped


class GenericFileMapper:
    """1.x's helper for mapping part of a file: ``map_file`` gives (memoryview, mapping).

    The mapping is a :class:`~sharedbuffers.mapped_files.MappedFile` (1.x gave the ``mmap``):
    it has the same ``flush()`` and ``close()``, and refuses to close while views are alive.
    """

    @staticmethod
    def map_file(fileobj, offset=0, size=None, read_only=True):
        return map_file_region(fileobj, offset, size, read_only)


class MappedLifetime:
    """``flush``, ``close`` and ``with`` for a container that ``map_file`` opened.

    ``_mmap`` is the :class:`MappedFile` (None over a caller's buffer, which the caller
    owns).  Closing drops the container's own views of the mapping, then unmaps it; when a
    caller still holds a proxy or an array into it, the mapping refuses
    (:class:`~sharedbuffers.mapped_files.ViewsAliveError`) and the container is opened again
    over the same mapping, so nothing ever reads unmapped memory.
    """
    _mmap = None

    def flush(self):
        """Write changes back to the file (containers opened with mode ``r+``)."""
        if self._mmap is not None:
            self._mmap.flush()

    @classmethod
    def map_file(cls, fileobj, offset=0, size=None, read_only=True, mode=None):
        """The structure stored at ``offset`` of a file (an open file or a path), memory-mapped.

        ``size`` bounds the region (to the end of the file when None); ``mode`` is one of
        ``'r'``, ``'r+'``, ``'c'`` (``read_only`` picks between the first two when None).
        """
        view, mapping = map_file_region(fileobj, offset, size, read_only, mode)
        mapped = cls(view)
        mapped._mmap = mapping
        # 1.x kept the file object: id mappers show it as ``fileobj``.  (A path is told from a
        # file as MappedFile does, without the os.PathLike ABC check, which is slow cold.)
        if not (isinstance(fileobj, (str, bytes)) or hasattr(type(fileobj), '__fspath__')):
            mapped._fileobj = fileobj
        return mapped

    @classmethod
    def map_zipfile(cls, zipped, *args, **kwargs):
        """The structure stored as an uncompressed (ZIP_STORED) member of a zip file, memory-mapped.

        Two forms:

        * ``map_zipfile(archive, member, read_only=True)``: ``archive`` is a ``ZipFile`` or the
          archive's path, ``member`` the member's name;
        * 1.x's ``map_zipfile(zip_member, offset=0, size=None, read_only=True)``: ``zip_member``
          is the opened member (``ZipFile.open(name)``); ``offset`` and ``size`` select a
          region inside it.

        A zip member is mapped where its bytes lie in the archive, so it must be stored
        uncompressed and unencrypted.
        """
        import zipfile
        if isinstance(zipped, zipfile.ZipExtFile):
            return cls._map_zip_member(zipped, *args, **kwargs)
        return cls._map_zip_entry(zipped, *args, **kwargs)

    @classmethod
    def _map_zip_entry(cls, zipped, member, read_only=True):
        import zipfile
        archive = zipped if isinstance(zipped, zipfile.ZipFile) else zipfile.ZipFile(zipped)
        info = archive.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError('zip member %r is compressed; only ZIP_STORED members can be mapped' % (member,))
        if info.flag_bits & 0x1:
            raise ValueError('zip member %r is encrypted; it cannot be mapped' % (member,))
        with open(archive.filename, 'rb') as raw:
            raw.seek(info.header_offset)
            local = raw.read(30)
            if len(local) < 30 or local[:4] != b'PK\x03\x04':
                raise ValueError('zip member %r: no local header at offset %d' % (member, info.header_offset))
            name_length, extra_length = struct.unpack_from('<HH', local, 26)
            data_offset = info.header_offset + 30 + name_length + extra_length
            return cls.map_file(raw, data_offset, info.file_size, read_only)

    @classmethod
    def _map_zip_member(cls, member, offset=0, size=None, read_only=True):
        import zipfile
        # Where the member's bytes start in the archive: ZipExtFile keeps it (privately) for
        # seeking, as 1.x relied on too.
        start = getattr(member, '_orig_compress_start', None)
        length = getattr(member, '_orig_file_size', None)
        raw = getattr(getattr(member, '_fileobj', None), '_file', None)
        if start is None or length is None or raw is None or not hasattr(raw, 'fileno'):
            raise TypeError('cannot find where zip member %r lies in its archive; pass the archive and the '
                            "member's name instead: map_zipfile(archive, name)" % (getattr(member, 'name', None),))
        if getattr(member, '_compress_type', None) != zipfile.ZIP_STORED:
            raise ValueError('zip member %r is compressed; only ZIP_STORED members can be mapped' % (member.name,))
        if getattr(member, '_decrypter', None) is not None:
            raise ValueError('zip member %r is encrypted; it cannot be mapped' % (member.name,))
        if offset < 0 or offset > length:
            raise ValueError('offset %d is outside zip member %r (%d bytes)' % (offset, member.name, length))
        if size is None:
            size = length - offset
        if size < 0 or offset + size > length:
            raise ValueError('region %d+%d is outside zip member %r (%d bytes)' % (offset, size, member.name, length))
        return cls.map_file(raw, start + offset, size, read_only)

    def close(self):
        mapped = self._mmap
        if mapped is None:
            return
        vars(self).clear()
        try:
            mapped.close()
        except BufferError:
            self.__init__(mapped.buffer)
            self._mmap = mapped
            raise
        self.__class__ = _closed_variant(type(self))

    closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- shared memory ----------------------------------------------------------------------

    @classmethod
    def build_shared(cls, initializer, name=None, **build_options):
        """Build into a new named shared-memory segment; other processes open it by name.

        The structure is built into an anonymous temporary file (its size is known only at
        the end), then copied into a segment of exactly that size, which stays alive while
        this process does (or until ``shared_segment.unlink()``).
        """
        from ..shared_memory import SharedSegment
        with temporary_file(dir=build_options.pop('tempdir', None)) as staging:
            cls.build(initializer, destfile=staging, return_mapper=False, **build_options)
            size = staging.tell()
            segment = SharedSegment(max(size, 1), name)
            staging.seek(0)
            if staging.readinto(segment.buffer[:size]) != size:
                raise OSError('short read while copying the built structure into shared memory')
        return cls._over_segment(segment, 0, size)

    @classmethod
    def map_shared(cls, name, offset=0, size=None):
        """The structure stored at ``offset`` of the shared-memory segment called ``name``."""
        from ..shared_memory import attach
        segment = attach(name)
        if size is None:
            size = segment.size - offset
        if offset < 0 or size < 0 or offset + size > segment.size:
            raise ValueError('region %d+%d is outside shared segment %r (%d bytes)'
                             % (offset, size, name, segment.size))
        return cls._over_segment(segment, offset, size)

    @classmethod
    def _over_segment(cls, segment, offset, size):
        container = cls.map_buffer(segment.buffer[offset:offset + size])
        container.shared_segment = segment
        return container

    def __reduce__(self):
        """A container in shared memory pickles as (class, segment name, offset, size)."""
        from ..shared_memory import locate_buffer
        located = locate_buffer(self.buf, getattr(self, 'offset', 0))
        if located is None:
            raise TypeError('%s is not in shared memory and cannot be pickled; pickle the path of '
                            'its file, or build it with build_shared()' % type(self).__name__)
        segment, offset = located
        return (_open_shared, (self._pickled_class(), segment.name, offset, len(self.buf) - getattr(self, 'offset', 0)))

    def _pickled_class(self):
        return type(self)


_closed_variants = {}


def _closed_variant(cls):
    """The class a closed container of ``cls`` becomes: every use raises a clear ValueError.

    Switching the class (rather than defining ``__getattr__`` on the containers) keeps
    attribute lookups of open containers on the interpreter's fast path.
    """
    variant = _closed_variants.get(cls)
    if variant is None:
        def __getattr__(self, name):
            if name.startswith('__'):
                raise AttributeError(name)
            raise ValueError('%s is closed' % cls.__name__)

        def _refuse(self, *args, **kwargs):
            raise ValueError('%s is closed' % cls.__name__)
        variant = type(cls.__name__, (cls,), {
            '__getattr__': __getattr__, '__getitem__': _refuse, '__iter__': _refuse, '__len__': _refuse,
            '__contains__': _refuse, 'closed': True, 'close': lambda self: None,
            '__module__': cls.__module__, '__qualname__': cls.__qualname__})
        _closed_variants[cls] = variant
    return variant


def _open_shared(cls, name, offset, size):
    return cls.map_shared(name, offset, size)


def temporary_file(**options):
    """tempfile.TemporaryFile, imported on first use: readers never load tempfile and what
    it pulls in (random, shutil, the compression modules)."""
    import tempfile
    return tempfile.TemporaryFile(**options)


def make_temporary(**options):
    import tempfile
    return tempfile.mkstemp(**options)


@contextlib.contextmanager
def atomic_output(path, tempdir=None):
    """An open binary file that becomes ``path`` only if the block completes."""
    directory = tempdir or os.path.dirname(os.path.abspath(path))
    handle, temporary = make_temporary(dir=directory, prefix='.sharedbuffers-', suffix='.tmp')
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


def _write_aligned(write, output):
    """``write(output)`` through an AlignedWriter (huge pages in the page cache: see there), flushed."""
    aligned = AlignedWriter(output)
    write(aligned)
    aligned.flush()


def write_destination(destfile, tempdir, write, open_written, return_mapper, read_only):
    """The shared ``build`` destination rule of arrays, id mappers and mappings.

    ``destfile`` is a path (written to a temporary file and renamed into place), an open
    binary file (written at its current position) or None (an anonymous temporary file).
    ``write(output)`` writes the structure at ``output``'s position; the result is
    ``open_written(file, offset, size, read_only)``, or None unless ``return_mapper``.
    """
    if isinstance(destfile, (str, os.PathLike)):
        with atomic_output(destfile, tempdir) as output:
            _write_aligned(write, output)
        return open_written(destfile, 0, None, read_only) if return_mapper else None
    if destfile is None:
        destfile = temporary_file(dir=tempdir)
    start = destfile.tell()
    _write_aligned(write, destfile)
    size = destfile.tell() - start
    if not return_mapper:
        return None
    readable = getattr(destfile, 'readable', None)
    if readable is not None and not readable():
        # A write-only file cannot be memory-mapped: map what was written through its path.
        name = getattr(destfile, 'name', None)
        if not isinstance(name, (str, bytes)) or not os.path.isfile(name):
            raise ValueError('built into a write-only file with no path to reopen; open it with mode '
                             "'w+b' or pass return_mapper=False")
        return open_written(name, start, size, read_only)
    return open_written(destfile, start, size, read_only)
