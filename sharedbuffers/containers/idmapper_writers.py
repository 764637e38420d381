"""Writing id mappers (FORMAT.md §8) as a stream: the build side of ``idmappers``.

A writer is opened at an output file's position, takes (key, value) pairs one at a time
(``add``, what mappings use while they stream their values) or from an iterable
(``add_pairs``), and ``finish`` completes the mapper.  Pairs are converted a chunk at a time
(``_CHUNK_ROWS``) into numpy rows, validated in bulk where they are plain ints, and handed to
an external sort (:mod:`.external_sort`) that keeps at most ``memory_budget`` bytes of rows
in memory.  What is written, in order::

    16 zero bytes                 the header, written last: the row count is known only after
                                  the discard options
    key data (string mappers)     each key as it arrives, in input order (the format's order),
                                  so no key is kept past its chunk
    rows                          out of the sort, the discard options applied on the way
    zero padding                  to a multiple of 32 of the file position

Object mappers cannot stream (a key points into equal values written before it through one
dedup map, as 1.x did), so their writer keeps the pairs and writes them at the end.
"""
import itertools
import struct
import tempfile

import numpy

from .. import _native
from ..types.strings import COMPRESSION_THRESHOLD, LONG_LENGTH, encode_payload, read_bytes
from .external_sort import RowSorter

__all__ = ['NumericRowsWriter', 'StringRowsWriter', 'ObjectRowsWriter']

_HEADER = struct.Struct('=QQ')
_U16 = struct.Struct('=H')
_U64 = struct.Struct('=Q')
_CHUNK_ROWS = 1 << 14           # pairs converted to numpy rows at a time
_KEY_CHUNK = 1 << 20            # key characters buffered before a chunk is written
_PLAIN_INT = frozenset([int])
# encode_payload(data) of up to COMPRESSION_THRESHOLD bytes is never compressed: it is the u16
# length, then the bytes; the build joins these headers with the keys instead of calling it per key.
_SHORT_HEADERS = [_U16.pack(length) for length in range(COMPRESSION_THRESHOLD + 1)]


def _int_column(items, check, dtype):
    """The list ``items`` as an array of ``dtype``: in bulk when all are plain ints that fit,
    else one by one through ``check`` (which converts, or raises the precise error)."""
    if set(map(type, items)) <= _PLAIN_INT:
        try:
            return numpy.array(items, dtype)
        except OverflowError:
            pass
    return numpy.array([check(item) for item in items], dtype)


def _readable(output):
    readable = getattr(output, 'readable', None)
    return bool(readable is not None and readable())


def _read_payload(source, position):
    """The bytes value (FORMAT.md §4.1) written at ``position`` of the file ``source``."""
    source.seek(position)
    head = source.read(10)
    length = _U16.unpack_from(head)[0] & LONG_LENGTH
    size = 10 + _U64.unpack_from(head, 2)[0] if length == LONG_LENGTH else 2 + length
    data = head[:size] if size <= len(head) else head + source.read(size - len(head))
    return read_bytes(data, 0)


class _RowWriter:
    """What numeric and string writers share: the header, the sort, the rows, the padding."""

    def __init__(self, mapper, output, tempdir, discard_duplicates=False, discard_duplicate_keys=False,
                 memory_budget=None):
        self.mapper = mapper
        self.output = output
        self.tempdir = tempdir
        self.discard_duplicates = discard_duplicates
        self.discard_duplicate_keys = discard_duplicate_keys
        self.dtype = numpy.dtype('=u%d' % (mapper.width // 8))
        self.sorter = RowSorter(mapper.columns, self.dtype, tempdir, memory_budget)
        self.chunk_rows = min(_CHUNK_ROWS, self.sorter.run_rows)
        self.keys = []
        self.values = []
        self.start = output.tell()
        output.write(bytes(_HEADER.size))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Drop the sort's run files (also when the build failed midway)."""
        self.sorter.close()

    def add_pairs(self, pairs):
        add = self.add
        for key, value in pairs:
            add(key, value)

    def finish(self):
        """Write the rows, the padding and the header; leaves the output at the mapper's end."""
        self._flush()
        index_position = self._end_of_keys()
        output = self.output
        discarding = self.discard_duplicates or self.discard_duplicate_keys
        count = 0
        for rows in self.sorter.sorted_blocks():
            if discarding:
                rows = self._discard(rows)
            output.write(rows.data)
            count += len(rows)
        output.write(bytes(-output.tell() % 32))
        end = output.tell()
        output.seek(self.start)
        output.write(_HEADER.pack(count, index_position))
        output.seek(end)


class NumericRowsWriter(_RowWriter):
    """Rows (key, value) of numeric and approximate string mappers; the discard options compare
    neighbours in sorted order, the last row of a block carried to the next."""

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        self.previous = None

    def add(self, key, value):
        self.keys.append(key)
        self.values.append(value)
        if len(self.keys) >= self.chunk_rows:
            self._flush()

    def add_pairs(self, pairs):
        iterator = iter(pairs)
        while True:
            append_key, append_value = self.keys.append, self.values.append
            for key, value in itertools.islice(iterator, self.chunk_rows - len(self.keys)):
                append_key(key)
                append_value(value)
            if len(self.keys) < self.chunk_rows:
                return
            self._flush()

    def _flush(self):
        if not self.keys:
            return
        rows = numpy.empty((len(self.keys), 2), self.dtype)
        rows[:, 0] = _int_column(self.keys, self.mapper._key_for_build, self.dtype)
        rows[:, 1] = _int_column(self.values, self.mapper._check_value, self.dtype)
        self.keys, self.values = [], []
        self.sorter.extend(rows)

    def _end_of_keys(self):
        return _HEADER.size

    def _discard(self, rows):
        keys, values = rows[:, 0], rows[:, 1]
        keep = numpy.empty(len(rows), bool)
        keep[1:] = keys[1:] != keys[:-1]
        first = (int(keys[0]), int(values[0]))
        if self.discard_duplicate_keys:
            keep[0] = self.previous is None or first[0] != self.previous[0]
        else:
            keep[1:] |= values[1:] != values[:-1]
            keep[0] = first != self.previous
        self.previous = (int(keys[-1]), int(values[-1]))
        return rows[keep]


class StringRowsWriter(_RowWriter):
    """Rows (hash, key offset, value).  ``encode_key`` gives a key's UTF-8 bytes (or raises
    the TypeError of a key that is neither str nor bytes).  The discard options read back the
    keys of equal-hash rows: from the output, or from a copy when the output is write-only."""

    def __init__(self, mapper, output, tempdir, encode_key, **options):
        super().__init__(mapper, output, tempdir, **options)
        self.encode_key = encode_key
        self.hash = _native.xxh64 if mapper.width == 64 else _native.xxh32
        self.position = _HEADER.size            # offset of the next key, relative to the mapper
        self.pending_size = 0
        self.key_copy = None
        if (self.discard_duplicates or self.discard_duplicate_keys) and not _readable(output):
            self.key_copy = tempfile.TemporaryFile(dir=tempdir)
        self.group_hash = None
        self.group_seen = set()

    def close(self):
        super().close()
        if self.key_copy is not None:
            self.key_copy.close()

    def add(self, key, value):
        if type(key) is not str:
            key = self.encode_key(key)      # bytes-like keys are copied now: the caller may reuse them
        self.keys.append(key)
        self.values.append(value)
        self.pending_size += len(key)
        if len(self.keys) >= self.chunk_rows or self.pending_size >= _KEY_CHUNK:
            self._flush()

    def _flush(self):
        if not self.keys:
            return
        data = [key.encode('utf-8') if type(key) is str else key for key in self.keys]
        lengths = list(map(len, data))
        if max(lengths) <= COMPRESSION_THRESHOLD:
            key_data = b''.join(itertools.chain.from_iterable(zip(map(_SHORT_HEADERS.__getitem__, lengths), data)))
            sizes = map((2).__add__, lengths)
        else:
            payloads = [encode_payload(item) for item in data]
            key_data = b''.join(payloads)
            sizes = map(len, payloads)
        offsets = list(itertools.accumulate(sizes, initial=self.position))
        if self.mapper.width == 32 and offsets[-1] >= 1 << 32:
            raise OverflowError('a 32-bit string mapper holds at most 4 GiB of keys')
        self.position = offsets.pop()
        rows = numpy.empty((len(data), 3), self.dtype)
        rows[:, 0] = numpy.fromiter(map(self.hash, data), self.dtype, len(data))
        rows[:, 1] = offsets
        rows[:, 2] = _int_column(self.values, self.mapper._check_value, self.dtype)
        self.output.write(key_data)
        if self.key_copy is not None:
            self.key_copy.write(key_data)
        self.keys, self.values, self.pending_size = [], [], 0
        self.sorter.extend(rows)

    def _end_of_keys(self):
        return self.position

    def _discard(self, rows):
        """Keep the first row of each key (or (key, value)) among the rows of one hash."""
        hashes = rows[:, 0]
        tied = numpy.zeros(len(rows), bool)
        same = hashes[1:] == hashes[:-1]
        tied[1:] = same
        tied[:-1] |= same
        tied[-1] = True                     # its hash may go on in the next block
        tied[0] |= int(hashes[0]) == self.group_hash
        keep = numpy.ones(len(rows), bool)
        numbers = numpy.flatnonzero(tied)
        for number, key in zip(numbers.tolist(), self._stored_keys(rows[numbers, 1].tolist())):
            hash_value = int(hashes[number])
            if hash_value != self.group_hash:
                self.group_hash, self.group_seen = hash_value, set()
            identity = key if self.discard_duplicate_keys else (key, int(rows[number, 2]))
            if identity in self.group_seen:
                keep[number] = False
            else:
                self.group_seen.add(identity)
        return rows[keep]

    def _stored_keys(self, key_offsets):
        """The keys at ``key_offsets`` (relative to the mapper), read back from the key data written."""
        source, base = (self.output, self.start) if self.key_copy is None else (self.key_copy, -_HEADER.size)
        resume = source.tell()
        keys = [_read_payload(source, base + key_offset) for key_offset in key_offsets]
        source.seek(resume)
        return keys


class ObjectRowsWriter:
    """Object mappers keep their pairs and write them at the end (``ObjectIdMapper._encode``)."""

    def __init__(self, mapper, output, tempdir, discard_duplicates=False, discard_duplicate_keys=False,
                 memory_budget=None):
        self.mapper = mapper
        self.output = output
        self.discard_duplicates = discard_duplicates
        self.discard_duplicate_keys = discard_duplicate_keys
        self.pairs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.pairs = []

    def add(self, key, value):
        self.pairs.append((key, value))

    def add_pairs(self, pairs):
        self.pairs.extend(pairs)

    def finish(self):
        self.output.write(self.mapper._encode(self.pairs, self.output.tell(), self.discard_duplicates,
                                              self.discard_duplicate_keys))
