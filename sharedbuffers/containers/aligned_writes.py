"""Builds write their files in 2 MB pieces at 2 MB boundaries, so that the page cache can hold them in huge pages.

Why: Linux keeps the data a ``write()`` puts in a file's page cache in folios as large as the
write allows, up to 2 MB, each aligned to its size in the file (XFS, tmpfs, and ext4 from Linux
6.16 have large folios).  A file mapping whose folios are 2 MB and whose address is 2 MB-aligned
to the file (``mmap`` places big file mappings so) is mapped with one page-table entry per 2 MB
instead of one per 4 KB, and one page fault maps 2 MB.  On a 30 MB typed array, ``arr[i].field``
at random indexes took 2% less time than over the folios the builds produced before (1 MB
writes starting anywhere: folios of 4 to 512 KB), 8% less than over 4 KB pages, and a cold open
with its first read 5% less.

:class:`AlignedWriter` sits between a build and its output file: it gathers what is written and
hands the file the part that ends on a 2 MB boundary of the file, in one ``write``.  It keeps
less than 2 MB plus the last write in memory.  Reads, seeks and ``flush()`` write out what it
holds first, so the builds that read back or seek (headers written last, string mappers
comparing stored keys) see the file as they wrote it.  Elsewhere (other systems, older kernels)
the writes are simply bigger.
"""

__all__ = ['AlignedWriter', 'ALIGNMENT']

#: The size of a huge page on x86-64 and arm64 with 4 KB pages: what the writes are aligned to.
ALIGNMENT = 2 << 20


class AlignedWriter:
    """The ``write``/``tell``/``seek``/``read``/``flush`` of a binary file, written to it in aligned pieces."""

    def __init__(self, output):
        self._output = output
        self._pending = bytearray()
        self._start = output.tell()         # the file position of pending[0]

    def write(self, data):
        self._pending += data
        end = self._start + len(self._pending)
        ready = end - end % ALIGNMENT - self._start
        if ready > 0:
            with memoryview(self._pending) as pending:
                self._output.write(pending[:ready])
            del self._pending[:ready]
            self._start += ready
        return len(data)

    def tell(self):
        return self._start + len(self._pending)

    def _write_pending(self):
        if self._pending:
            self._output.write(self._pending)
            self._start += len(self._pending)
            self._pending = bytearray()

    def seek(self, position, whence=0):
        self._write_pending()
        self._start = self._output.seek(position, whence)
        return self._start

    def read(self, size=-1):
        self._write_pending()
        data = self._output.read(size)
        self._start += len(data)
        return data

    def flush(self):
        self._write_pending()
        self._output.flush()
