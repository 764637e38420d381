"""Id mappers: compact, sorted hash indexes from keys to integers (FORMAT.md §8).

Layout shared by every kind::

    u64 row count, u64 index position (relative to the mapper)
    key data        (string and object mappers only)
    rows            count x (2 or 3) unsigned ints of the mapper's width, sorted by column 0
    zero padding    up to a multiple of 32 bytes of the *file* position

Kinds (column 0 is what rows are sorted and searched by):

===============================  ==========================  ===================  =========
class                            rows                        column 0             width
===============================  ==========================  ===================  =========
NumericIdMapper (+32, +Multi)    (key, value)                the key              64 / 32
StringIdMapper (+32, +Multi)     (hash, key offset, value)   xxh64 / xxh32 (UTF-8) 64 / 32
ApproxStringIdMultiMapper (+32)  (hash, value)               xxh64 / xxh32        64 / 32
ObjectIdMapper                   (hash, key offset, value)   the stable hash      64
===============================  ==========================  ===================  =========

Key offsets are relative to the mapper (1.x wrote absolute file positions in string mappers,
so a mapper built at a non-zero offset could not be read back).  Lookups search column 0
and, for string and object mappers, compare the stored keys of equal-hash rows.  Numeric and
string lookups are one native call each (``_native.idmap_find*``: hash, search, compare, all
bounds-checked); ``get_many`` looks a batch up in chunks, on a thread pool when it is big, as
the kernels run without the GIL.  Keys come back with their Python type: str keys as ``str``.
"""
import collections
import functools
import itertools
import os
import struct
import threading

from .. import _native
from ..buffers import as_byte_buffer, out_of_bounds
from ..numpy_in_use import is_numpy_integer
from ..packing import PackContext
from ..stable_hash import stable_hash
from ..types.object_index import ObjectIndexView, write_object_index
from ..types.strings import read_bytes
from .filemaps import MappedLifetime, write_destination
from .mapper_views import ColumnValuesView, MapperItemsView, MapperKeysView, NumericKeysView

__all__ = ['NumericIdMapper', 'NumericId32Mapper', 'NumericIdMultiMapper', 'NumericId32MultiMapper',
           'StringIdMapper', 'StringId32Mapper', 'StringIdMultiMapper', 'StringId32MultiMapper',
           'ApproxStringIdMultiMapper', 'ApproxStringId32MultiMapper', 'ObjectIdMapper']

_HEADER = struct.Struct('=QQ')
_KEY_CHUNK_ROWS = 4096               # stored keys decoded per C call when iterating a string mapper
_MISSING = object()


def _utf8(key):
    if isinstance(key, str):
        return key.encode('utf-8')
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise TypeError('string mapper keys are str or bytes, got %s' % type(key).__name__)


def _utf8_or_none(key):
    """The UTF-8 bytes a string mapper looks ``key`` up by; None when no string mapper holds it."""
    if type(key) is bytes:
        return key
    try:
        return _utf8(key)
    except TypeError:
        return None


# Single lookups' kernels and results as module globals: cheaper to reach than attributes.
_idmap_get = _native.idmap_get
_idmap_get_bytes = _native.idmap_get_bytes
_IDMAP_MISSING = _native.IDMAP_MISSING


# -- batch lookups: one native call per chunk of keys, chunks on a thread pool -----------------

_IDMAP_FOUND = _native.IDMAP_FOUND
_IDMAP_DEFERRED = _native.IDMAP_DEFERRED
# Below this many keys a batch runs in the calling thread: handing pieces to threads costs more
# than it saves.
_PARALLEL_MIN_KEYS = 50_000
_MAX_THREADS = 8
# Pieces per thread: while the pool looks some up, the calling thread prepares the next pieces'
# keys and turns finished ones into Python values (work that needs the GIL); small pieces keep
# every thread busy to the end (8 measured best on 2 cores for 200k-1M keys).
_PIECES_PER_THREAD = 8
_pool = None
_pool_lock = threading.Lock()


def _thread_pool():
    """The executor batch lookups share, made on first use (and again in a forked child)."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                from concurrent.futures import ThreadPoolExecutor     # only batch lookups need it
                _pool = ThreadPoolExecutor(_MAX_THREADS, thread_name_prefix='sharedbuffers-idmap')
    return _pool


def _forget_thread_pool():
    # A forked child has none of the parent's threads; it makes its own pool when it needs one.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_thread_pool)


def _thread_count(threads):
    """How many kernels a batch runs at once: ``threads``, or one per core, at most 8."""
    if threads is None:
        threads = os.cpu_count() or 1
    return max(1, min(int(threads), _MAX_THREADS))


def _pieces(count, threads):
    """[start, end) pieces of a batch of ``count`` keys: one when it is small or single-threaded."""
    if count < _PARALLEL_MIN_KEYS or threads == 1:
        return [(0, count)]
    pieces = threads * _PIECES_PER_THREAD
    edges = [count * part // pieces for part in range(pieces + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _uint64_keys(keys):
    """``keys`` as a uint64 array when they are all ints of 0..2**64-1, else None."""
    import numpy
    wanted = numpy.asarray(keys)
    if wanted.ndim != 1 or wanted.dtype.kind not in 'iu' or (
            wanted.dtype.kind == 'i' and len(wanted) and wanted.min() < 0):
        return None
    return numpy.ascontiguousarray(wanted, numpy.uint64)


def _packed_keys(keys):
    """(data, spans, unusable): the UTF-8 of ``keys`` back to back, a (len(keys), 2) uint64 array
    of each key's [start, end) in data, and a bool mask of the keys that are not str or bytes
    (None when there are none).  Raises what ``get`` raises for a str that has no UTF-8."""
    import numpy
    try:
        joined = '\0'.join(keys)
        data = joined.encode('utf-8')
    except (TypeError, UnicodeEncodeError):
        data = None
    if data is not None:
        # The common case in one pass of C: split at the NULs unless a key holds one itself.
        separators = numpy.flatnonzero(numpy.frombuffer(data, numpy.uint8) == 0)
        if len(separators) == len(keys) - 1:
            spans = numpy.empty((len(keys), 2), numpy.uint64)
            spans[0, 0] = 0
            spans[1:, 0] = separators + 1
            spans[:-1, 1] = separators
            spans[-1, 1] = len(data)
            return data, spans, None
    encoded = [_utf8_or_none(key) for key in keys]
    unusable = numpy.fromiter((item is None for item in encoded), bool, len(encoded))
    lengths = numpy.fromiter((0 if item is None else len(item) for item in encoded), numpy.uint64, len(encoded))
    spans = numpy.empty((len(keys), 2), numpy.uint64)
    numpy.cumsum(lengths, out=spans[:, 1])
    spans[:, 0] = spans[:, 1] - lengths
    return b''.join(item for item in encoded if item is not None), spans, unusable if unusable.any() else None


class _SharedKernels:
    """The kernel calls of a batch's pieces, shared by the calling thread and pool threads.

    The caller adds each piece as soon as it has prepared it; pool threads (``serve``) run
    them in order as they come; when the caller needs a piece that is not done, it runs
    queued ones itself meanwhile.  So the caller's Python work (preparing, finishing) and the
    lookups spread over the threads without a fixed split.
    """

    def __init__(self, count):
        self._changed = threading.Condition()
        self._queued = collections.deque()
        self._closed = False
        from concurrent.futures import Future
        self._outcomes = [Future() for _ in range(count)]

    def add(self, number, call, *arguments):
        with self._changed:
            self._queued.append((number, call, arguments))
            self._changed.notify()

    def close(self):
        """No more pieces: pool threads leave once the queue is empty."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def serve(self):
        """A pool thread's part: run queued calls until the batch is closed and none are left."""
        while True:
            with self._changed:
                while not self._queued and not self._closed:
                    self._changed.wait()
                if not self._queued:
                    return
                queued = self._queued.popleft()
            self._run(*queued)

    def ready(self, number):
        return self._outcomes[number].done()

    def outcome(self, number):
        """The result of piece ``number``'s call, running queued calls here while it is not done."""
        outcome = self._outcomes[number]
        while not outcome.done():
            with self._changed:
                queued = self._queued.popleft() if self._queued else None
            if queued is None:
                break
            self._run(*queued)
        return outcome.result()

    def _run(self, number, call, arguments):
        try:
            result = call(*arguments)
        except BaseException as error:
            self._outcomes[number].set_exception(error)
        else:
            self._outcomes[number].set_result(result)



class _IdMapper(MappedLifetime):
    """What every kind shares: building into files, mapping, row access and lookups."""
    width = 64
    columns = 2
    multi = False
    #: The keys the C lookups take ('int', 'str' or 'hash': the approximate mappers' str keys,
    #: searched by their hash); they answer get/[]/in in one C call.  None: Python answers.
    _key_lookup = None
    #: Single lookups (``get``, ``[]``, ``in``) a mapper answers before it builds its directory:
    #: one or two bytes per row of this process's memory (4 MB at most) that put a key within a
    #: cache line or a few of its row, so that a search costs one cache miss instead of several.
    #: None: a 32nd of the rows, at least 1024 (a process that looks up a few keys builds
    #: nothing).  0 builds it at the first lookup; a huge number never.  Unsorted (corrupt) rows
    #: and rows over 256 MB (building reads them all) get no directory.
    lookup_directory_after = None

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def build(cls, initializer, destfile=None, tempdir=None, return_mapper=True, read_only=True,
              discard_duplicates=False, discard_duplicate_keys=False, memory_budget=None):
        """Write a mapper of ``initializer`` (a dict or an iterable of (key, value) pairs).

        ``discard_duplicate_keys`` keeps one row per key (numeric mappers: the smallest
        value; string mappers: the first given); ``discard_duplicates`` drops repeated
        (key, value) pairs.  Numeric and string mappers build in bounded memory: rows beyond
        ``memory_budget`` bytes (default 64 MiB) are sorted in runs in ``tempdir`` and merged
        (see :mod:`.external_sort`); string keys go straight to the output.  Object mappers
        hold their keys in memory (the format shares equal keys through a dedup map).
        """
        pairs = initializer.items() if isinstance(initializer, dict) else initializer

        def write(output):
            cls._write(pairs, output, tempdir, discard_duplicates=discard_duplicates,
                       discard_duplicate_keys=discard_duplicate_keys, memory_budget=memory_budget)
        return write_destination(destfile, tempdir, write, cls.map_file, return_mapper, read_only)

    @classmethod
    def _write(cls, pairs, output, tempdir=None, **options):
        """Write the mapper of ``pairs`` at ``output``'s position (options: those of ``build``)."""
        with cls._open_writer(output, tempdir, **options) as writer:
            writer.add_pairs(pairs)
            writer.finish()

    @classmethod
    def _check_value(cls, value):
        if isinstance(value, bool) or not (isinstance(value, int) or is_numpy_integer(value)):
            raise TypeError('mapper values are ints, got %s' % type(value).__name__)
        if not 0 <= value < 1 << cls.width:
            raise OverflowError('value %d does not fit a %d-bit mapper' % (value, cls.width))
        return int(value)

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def map_buffer(cls, buf, offset=0):
        return cls(as_byte_buffer(buf), offset)

    def __init__(self, buffer, offset=0):
        size = len(buffer)
        if offset < 0 or offset + 16 > size:
            raise out_of_bounds('id mapper header', offset, 16, size)
        count, index_position = _HEADER.unpack_from(buffer, offset)
        row_bytes = self.columns * self.width // 8
        if index_position < 16 or offset + index_position + count * row_bytes > size:
            raise ValueError('id mapper at offset %d: %d rows at +%d do not fit in the buffer (%d bytes)'
                             % (offset, count, index_position, size - offset))
        self.buf = buffer
        self.offset = offset
        self.count = count
        self.index_position = index_position
        start = offset + index_position
        self._index_start = start
        self._row_bytes = row_bytes
        native = _native.objects
        cls = type(self)
        if native is not None and self._key_lookup is not None and isinstance(cls.get, native.KeyedMethod) \
                and isinstance(cls.__getitem__, native.KeyedMethod) and isinstance(cls.__contains__, native.KeyedMethod):
            # get, [] and `in` of a key of the mapper's own type in one C call (see below)
            self._keys = native.KeyLookup(buffer, offset, start, count, self.columns, self.width // 8,
                                          self._key_lookup == 'str', self.lookup_directory_after,
                                          multi=self.multi, hashed_keys=self._key_lookup == 'hash',
                                          object_keys=self._key_lookup == 'object')
        self._mmap = None

    # Views of the rows, each made on first use: opening a mapper (the cold-open path of every
    # mapping) makes none of them when the C lookups answer.

    @functools.cached_property
    def rows(self):
        """The rows as a (count, columns) numpy array of unsigned ints."""
        import numpy
        dtype = numpy.dtype('=u%d' % (self.width // 8))
        return numpy.frombuffer(self.buf, dtype, self.count * self.columns, self._index_start).reshape(
            self.count, self.columns)

    @functools.cached_property
    def hashes(self):
        """Column 0 of the rows (the sorted keys or key hashes)."""
        return self.rows[:, 0]

    # -- 1.x's attributes ----------------------------------------------------------------------

    @property
    def _index_data(self):
        """1.x's name for :attr:`rows` (writable when the buffer is: a ``copy()``, or ``read_only=False``)."""
        return self.rows

    @property
    def dtype(self):
        """The numpy dtype of the index cells."""
        import numpy
        return numpy.dtype('=u%d' % (self.width // 8))

    @property
    def sliced_buf(self):
        """The mapper's own bytes (header, keys, index) as a view of the buffer, without what follows."""
        return memoryview(self.buf)[self.offset:self._index_start + self.count * self._row_bytes]

    @property
    def fileobj(self):
        """The file object ``map_file`` was given (None when it was given a path, or for a buffer)."""
        return self.__dict__.get('_fileobj')

    @property
    def fileno(self):
        """The descriptor of :attr:`fileobj` while it is open, else None."""
        fileobj = self.fileobj
        if fileobj is None or getattr(fileobj, 'closed', False):
            return None
        return fileobj.fileno()

    @property
    def name(self):
        """The path of the mapped file (None for a buffer)."""
        return self._mmap.filename if self._mmap is not None else None

    def preload(self):
        """Read the whole index once, so that its pages are in memory before lookups need them.

        As in 1.x the key data (string and object mappers) is not read."""
        if self.count:
            self.rows.max()

    def copy(self, mkbuf=bytearray):
        """The mapper copied out of its file into ``mkbuf(bytes)`` (a writable bytearray by default)."""
        return type(self).map_buffer(mkbuf(self.sliced_buf))

    @functools.cached_property
    def _cells(self):
        # Row reads in Python (multi mappers, object mappers, compressed keys) go through a
        # memoryview: a numpy scalar costs more than the whole search.
        start = self._index_start
        return memoryview(self.buf)[start:start + self.count * self._row_bytes].cast('Q' if self.width == 64 else 'I')

    @functools.cached_property
    def _search(self):
        return _native.search_handle(self.buf)

    @functools.cached_property
    def _idmap(self):
        # What the lookup kernels search: a whole lookup (search, stored-key comparison) is one
        # native call on it.
        return _native.idmap_handle(self.buf, self.offset, self._index_start, self.count, self.columns,
                                    self.width // 8)

    # -- reading ----------------------------------------------------------------------------

    def __len__(self):
        return self.count

    def _row_range(self, column0):
        """(first, end) rows whose column 0 equals ``column0``."""
        columns = self.columns
        cells = self._cells
        first = _native.lower_bound(self._search, self._index_start, self.count, columns, self.width // 8, column0)
        end = first
        while end < self.count and cells[end * columns] == column0:
            end += 1
        return first, end

    def _matching_values(self, key):
        """Values of the rows whose key equals ``key``, in row order, read in Python (object
        mappers; the stored keys the kernels leave to Python: compressed, or corrupt)."""
        column0 = self._column0(key)
        if column0 is None:
            return []
        first, end = self._row_range(column0)
        cells = self._cells
        last_column = self.columns - 1
        return [cells[row * self.columns + last_column] for row in range(first, end) if self._row_matches(row, key)]

    def _row_matches(self, row, key):
        return True

    def _kernel_values(self, find, probe, key):
        """Values of the rows the native ``find(handle, *probe, start_row)`` matches, in row order."""
        cells, columns, handle = self._cells, self.columns, self._idmap
        values = []
        cell = find(handle, *probe, 0)
        while cell >= 0:
            values.append(cells[cell])
            cell = find(handle, *probe, cell // columns + 1)
        if cell == _IDMAP_MISSING:
            return values
        return _IdMapper._matching_values(self, key)

    def _lookup_batch(self, keys, threads, prepare, kernel, finish):
        """The list of values of a batch of ``keys``, looked up in pieces.

        For keys [start, end): ``prepare(start, end)`` gives (arguments, context) in this thread;
        ``kernel(handle, *arguments, values, status)`` runs without the GIL, on this thread or
        one of ``threads - 1`` pool threads (see :class:`_SharedKernels`); ``finish(start, end,
        context, values, status)`` gives the piece's values in this thread, in order."""
        import numpy
        handle = self._idmap
        threads = _thread_count(threads)

        def run(arguments, size):
            values = numpy.empty(size, numpy.uint64)
            status = numpy.empty(size, numpy.int8)
            return kernel(handle, *arguments, values, status), values, status

        def collect(start, end, context, outcome):
            done, values, status = outcome
            if done != end - start:
                if done >= 0:       # corrupt data: reading the row in Python raises, naming the offset
                    _IdMapper._matching_values(self, keys[start + done])
                raise SystemError('id mapper batch kernel returned %d for %d keys' % (done, end - start))
            return finish(start, end, context, values, status)

        pieces = _pieces(len(keys), threads)
        if len(pieces) == 1:
            arguments, context = prepare(0, len(keys))
            return collect(0, len(keys), context, run(arguments, len(keys)))
        kernels = _SharedKernels(len(pieces))
        for _ in range(threads - 1):
            _thread_pool().submit(kernels.serve)
        result, contexts, finished = [], [], 0
        try:
            for number, (start, end) in enumerate(pieces):
                arguments, context = prepare(start, end)
                contexts.append(context)
                kernels.add(number, run, arguments, end - start)
                while finished <= number and kernels.ready(finished):     # finish while preparing
                    result += collect(*pieces[finished], contexts[finished], kernels.outcome(finished))
                    finished += 1
        finally:
            kernels.close()
        for number in range(finished, len(pieces)):
            result += collect(*pieces[number], contexts[number], kernels.outcome(number))
        return result

    def _values_list(self, values, status, default, keys):
        """The list ``get_many`` returns: found values, ``default`` for the rest; keys the
        kernel deferred (compressed stored keys) are looked up one by one."""
        import numpy
        result = values.tolist()
        if len(status) and status.min() != _IDMAP_FOUND:
            for number in numpy.flatnonzero(status != _IDMAP_FOUND).tolist():
                result[number] = self.get(keys[number], default) if status[number] == _IDMAP_DEFERRED else default
        return result

    def get(self, key, default=None):
        values = self._matching_values(key)
        if not values:
            return default
        return values if self.multi else values[0]

    def __getitem__(self, key):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key):
        return self.get(key, _MISSING) is not _MISSING

    has_key = __contains__

    def get_iter(self, key):
        return iter(self._matching_values(key))

    def get_many(self, keys, default=None, threads=None):
        """Look up a batch of keys; returns a list (of lists for multi mappers).

        Numeric and string mappers look a big batch up in chunks on ``threads`` threads (None:
        one per core, at most 8) without the GIL; other kinds ignore ``threads``."""
        return [self.get(key, default) for key in keys]

    # keys(), values() and items() are views (see mapper_views): len(), any number of walks in
    # row order, `in` as a lookup, and numpy columns without a copy where the column is numeric.

    def keys(self):
        """A view of every key, once each, in row order."""
        return self._keys_view(self)

    def values(self):
        """A view of the value of every row (numpy.asarray(view) is the mapped value column)."""
        return ColumnValuesView(self)

    def items(self):
        """A view of (key, value) for every row, in row order."""
        return MapperItemsView(self)

    _keys_view = MapperKeysView

    def _iter_keys(self):
        if not self.multi:
            return self._row_keys()
        return self._distinct_keys()

    def _iter_values(self):
        return iter(self._cells[self.columns - 1::self.columns])

    def _iter_items(self):
        return zip(self._row_keys(), self._iter_values())

    def _row_count(self):
        return self.count

    def _key_count(self):
        if not self.multi:
            return self.count
        counted = self.__dict__.get('_distinct_key_count')
        if counted is None:
            counted = self._distinct_key_count = self._count_distinct_keys()
        return counted

    def _count_distinct_keys(self):
        return sum(1 for _ in self._distinct_keys())

    def _value_column(self):
        """The value column as a read-only numpy array over the mapped rows."""
        return self.rows[:, self.columns - 1]

    #: The default of ``iteritems``/``iterkeys``'s ``make_sequential`` (1.x's: True for string mappers).
    _sequential_by_default = False

    def iteritems(self, make_sequential=None):
        """:meth:`items`; with ``make_sequential`` (string and object mappers), in the order the keys
        are stored instead of the rows' (hash) order.

        The key data is then read front to back: a mapper bigger than memory is read from the
        disk sequentially instead of at random.  It costs a sort of the rows by key offset
        (8 bytes per row, while iterating).  None takes 1.x's default: True for string mappers,
        False for the others."""
        chunks = self._row_chunks_in_key_order(make_sequential)
        if chunks is None:
            return self._iter_items()
        return itertools.chain.from_iterable(map(self._items_of_rows, chunks))

    def iterkeys(self, make_sequential=None):
        """:meth:`keys`, in the order the keys are stored with ``make_sequential`` (see :meth:`iteritems`)."""
        chunks = self._row_chunks_in_key_order(make_sequential)
        if chunks is None:
            return self._iter_keys()
        keys = itertools.chain.from_iterable(map(self._keys_of_rows, chunks))
        return self._distinct(keys) if self.multi else keys

    def _row_chunks_in_key_order(self, make_sequential):
        """The row numbers by key offset, in int64 arrays of up to _KEY_CHUNK_ROWS (an iterator), or
        None: rows in their own order."""
        if make_sequential is None:
            make_sequential = self._sequential_by_default
        if not make_sequential or self.columns != 3 or not self.count:     # no key data to read in order
            return None
        import numpy
        order = numpy.argsort(self.rows[:, 1])     # not a stable sort: 4x faster, and offsets are unique
        # but for an object mapper's shared keys, whose rows may then come in either order
        return (order[start:start + _KEY_CHUNK_ROWS] for start in range(0, len(order), _KEY_CHUNK_ROWS))

    def _keys_of_rows(self, rows):
        return [self._key_of_row(row) for row in rows.tolist()]

    def _items_of_rows(self, rows):
        return [self._item_of_row(row) for row in rows.tolist()]

    def _item_of_row(self, row):
        return self._key_of_row(row), self._cells[row * self.columns + self.columns - 1]

    def _row_keys(self):
        """The key of every row, in row order (map and memoryview iterators run in C)."""
        return map(self._key_of_row, range(self.count))

    def _distinct_keys(self):
        return self._distinct(self._row_keys())

    @staticmethod
    def _distinct(keys):
        seen = set()
        for key in keys:
            if key not in seen:
                seen.add(key)
                yield key

    def itervalues(self):
        return self._iter_values()

    def __iter__(self):
        return self._iter_keys()

    @classmethod
    def merge(cls, parts, destfile=None, tempdir=None, discard_duplicates=False, discard_duplicate_keys=False,
              memory_budget=None):
        """One mapper holding the rows of every mapper in ``parts`` (streamed, like ``build``)."""
        pairs = (pair for part in parts for pair in part.items())
        return cls.build(pairs, destfile, tempdir, discard_duplicates=discard_duplicates,
                         discard_duplicate_keys=discard_duplicate_keys, memory_budget=memory_budget)


class NumericIdMapper(_IdMapper):
    """Unsigned int keys to ints; rows (key, value) sorted by key then value."""

    @classmethod
    def _column0(cls, key):
        if isinstance(key, bool) or not (isinstance(key, int) or is_numpy_integer(key)) or not 0 <= key < 1 << cls.width:
            return None
        return int(key)

    @classmethod
    def _key_for_build(cls, key):
        if isinstance(key, bool) or not (isinstance(key, int) or is_numpy_integer(key)):
            raise TypeError('numeric mapper keys are ints, got %s' % type(key).__name__)
        if not 0 <= key < 1 << cls.width:
            raise OverflowError('key %d does not fit a %d-bit mapper' % (key, cls.width))
        return int(key)

    @classmethod
    def _open_writer(cls, output, tempdir=None, **options):
        from .idmapper_writers import NumericRowsWriter     # build-time code, loaded by builds
        return NumericRowsWriter(cls, output, tempdir, **options)

    def _key_of_row(self, row):
        return self._cells[row * self.columns]

    def _row_keys(self):
        return iter(self._cells[0::self.columns])

    _keys_view = NumericKeysView

    def _key_column(self):
        """The keys as a read-only numpy array over the mapped rows (each once: rows are sorted by key)."""
        keys = self.rows[:, 0]
        if self.multi and len(keys) > 1:
            import numpy
            keys = keys[numpy.concatenate(([True], keys[1:] != keys[:-1]))]
        return keys

    def _distinct_keys(self):
        # rows are sorted by key: equal keys are neighbours
        return (key for key, _ in itertools.groupby(self._row_keys()))

    def get(self, key, default=None):
        if type(key) is not int:
            key = self._column0(key)
            if key is None:
                return default
        try:
            value = _idmap_get(self._idmap, key)
        except OverflowError:       # a negative int, or one beyond 64 bits
            return default
        if value >= 0:
            return value
        if value == _IDMAP_MISSING:
            return default
        values = self._matching_values(key)     # a value beyond 63 bits
        return values[0] if values else default

    # [] and `in`: the common case in one kernel call; anything else goes through get.
    def __getitem__(self, key):
        if type(key) is int:
            try:
                value = _idmap_get(self._idmap, key)
            except OverflowError:
                raise KeyError(key) from None
            if value >= 0:
                return value
        return _IdMapper.__getitem__(self, key)

    def __contains__(self, key):
        if type(key) is int:
            try:
                value = _idmap_get(self._idmap, key)
            except OverflowError:
                return False
            if value >= 0 or value == _IDMAP_MISSING:
                return value >= 0
        return _IdMapper.__contains__(self, key)

    if _native.objects is not None:
        # Instances with a C KeyLookup (`_keys`) answer int keys without a Python frame; the
        # methods above run for every other case.
        _key_lookup = 'int'
        get = _native.objects.KeyedMethod(_native.objects.MAPPER_GET, get)
        __getitem__ = _native.objects.KeyedMethod(_native.objects.MAPPER_GETITEM, __getitem__)
        __contains__ = _native.objects.KeyedMethod(_native.objects.MAPPER_CONTAINS, __contains__)

    def _matching_values(self, key):
        column0 = self._column0(key)
        return [] if column0 is None else self._kernel_values(_native.idmap_find, (column0,), key)

    def get_many(self, keys, default=None, threads=None):
        """Look up many int keys in native calls (a uint64 numpy array is the fastest input)."""
        import numpy
        if self.multi:
            return super().get_many(keys, default)
        if not isinstance(keys, (list, tuple, numpy.ndarray)):
            keys = list(keys)

        def prepare(start, end):
            # Converted piece by piece, so that a list's conversion overlaps other pieces' lookups.
            wanted = _uint64_keys(keys[start:end])
            return ((numpy.zeros(end - start, numpy.uint64) if wanted is None else wanted,), wanted is None)

        def finish(start, end, one_by_one, values, status):
            if one_by_one:      # keys that are not all ints of 0..2**64-1: get decides for each
                return [self.get(key, default) for key in keys[start:end]]
            return self._values_list(values, status, default, None)
        return self._lookup_batch(keys, threads, prepare, _native.idmap_find_many, finish)


class NumericId32Mapper(NumericIdMapper):
    width = 32


class _MultiValued:
    """Multi mappers give every value of a key, as a list.  The Python methods are the generic
    lookups; with the C module a key of the mapper's own type is answered in one C call
    (``KeyLookup(multi=True)`` walks the key's rows), and these run for every other case."""
    multi = True
    get = _IdMapper.get
    __getitem__ = _IdMapper.__getitem__
    __contains__ = _IdMapper.__contains__

    if _native.objects is not None:
        get = _native.objects.KeyedMethod(_native.objects.MAPPER_GET, get)
        __getitem__ = _native.objects.KeyedMethod(_native.objects.MAPPER_GETITEM, __getitem__)
        __contains__ = _native.objects.KeyedMethod(_native.objects.MAPPER_CONTAINS, __contains__)


class NumericIdMultiMapper(_MultiValued, NumericIdMapper):
    """Int keys to every value stored for them."""


class NumericId32MultiMapper(NumericIdMultiMapper):
    width = 32


class StringIdMapper(_IdMapper):
    """str/bytes keys (as UTF-8) to ints; rows (xxh hash, key offset, value) sorted by hash."""
    columns = 3
    _sequential_by_default = True

    @classmethod
    def _hash(cls, data):
        return _native.xxh64(data) if cls.width == 64 else _native.xxh32(data)

    #: 1.x's name for how a key becomes the bytes that are hashed and stored
    encode = staticmethod(_utf8)

    @classmethod
    def _column0(cls, key):
        try:
            return cls._hash(_utf8(key))
        except TypeError:
            return None

    @classmethod
    def _open_writer(cls, output, tempdir=None, **options):
        from .idmapper_writers import StringRowsWriter
        return StringRowsWriter(cls, output, tempdir, _utf8, **options)

    def _stored_key(self, row):
        return read_bytes(self.buf, self.offset + self._cells[row * 3 + 1])

    def _row_matches(self, row, key):
        return self._stored_key(row) == _utf8(key)

    def get(self, key, default=None):
        data = key.encode() if type(key) is str else _utf8_or_none(key)
        if data is None:
            return default
        value = _idmap_get_bytes(self._idmap, data, len(data))
        if value >= 0:
            return value
        if value == _IDMAP_MISSING:
            return default
        # A value beyond 63 bits, a compressed stored key, or corrupt data (raises): read in Python.
        values = _IdMapper._matching_values(self, key)
        return values[0] if values else default

    # [] and `in`: the common case in one kernel call; anything else goes through get.
    def __getitem__(self, key):
        if type(key) is str:
            data = key.encode()
            value = _idmap_get_bytes(self._idmap, data, len(data))
            if value >= 0:
                return value
        return _IdMapper.__getitem__(self, key)

    def __contains__(self, key):
        if type(key) is str:
            data = key.encode()
            value = _idmap_get_bytes(self._idmap, data, len(data))
            if value >= 0 or value == _IDMAP_MISSING:
                return value >= 0
        return _IdMapper.__contains__(self, key)

    if _native.objects is not None:
        _key_lookup = 'str'      # str keys in one C call, as for NumericIdMapper
        get = _native.objects.KeyedMethod(_native.objects.MAPPER_GET, get)
        __getitem__ = _native.objects.KeyedMethod(_native.objects.MAPPER_GETITEM, __getitem__)
        __contains__ = _native.objects.KeyedMethod(_native.objects.MAPPER_CONTAINS, __contains__)

    def _matching_values(self, key):
        data = _utf8_or_none(key)
        return [] if data is None else self._kernel_values(_native.idmap_find_bytes, (data, len(data)), key)

    def get_many(self, keys, default=None, threads=None):
        """Look up many str or bytes keys in native calls that hash and compare in C."""
        if self.multi:
            return super().get_many(keys, default)
        if not isinstance(keys, (list, tuple)):
            keys = list(keys)

        def prepare(start, end):
            data, spans, unusable = _packed_keys(keys[start:end])
            return (data, spans), unusable

        def finish(start, end, unusable, values, status):
            if unusable is not None:
                status[unusable] = _native.IDMAP_NOT_FOUND
            return self._values_list(values, status, default, keys[start:end])
        return self._lookup_batch(keys, threads, prepare, _native.idmap_find_many_bytes, finish)

    def _key_of_row(self, row):
        data = self._stored_key(row)
        try:
            return data.decode('utf-8')
        except UnicodeDecodeError:
            return data

    def _row_keys(self):
        lookup = vars(self).get('_keys')
        if lookup is None:          # without the C module: each row's own read
            return super()._row_keys()
        return self._row_keys_read_in_c(lookup)

    def _row_keys_read_in_c(self, lookup):
        # Chunks of keys decoded by the C lookup, chained in C (no Python frame per key).
        def chunk(start):
            return self._fill_deferred(lookup.stored_keys(start, start + _KEY_CHUNK_ROWS), range(start, self.count),
                                       self._key_of_row)
        return itertools.chain.from_iterable(map(chunk, range(0, self.count, _KEY_CHUNK_ROWS)))

    def _keys_of_rows(self, rows):
        lookup = vars(self).get('_keys')
        if lookup is None:
            return super()._keys_of_rows(rows)
        return self._fill_deferred(lookup.stored_keys(rows), rows, self._key_of_row)

    def _items_of_rows(self, rows):
        lookup = vars(self).get('_keys')
        if lookup is None:
            return super()._items_of_rows(rows)
        return self._fill_deferred(lookup.stored_items(rows), rows, self._item_of_row)

    @staticmethod
    def _fill_deferred(answer, rows, read_row):
        """What the C read gave, with the rows it left to Python (None: compressed keys, corrupt
        offsets) read by ``read_row``, which gives their value or raises their error."""
        read, deferred = answer
        if deferred:
            rows = rows.tolist() if hasattr(rows, 'tolist') else rows
            read = [entry if entry is not None else read_row(row) for row, entry in zip(rows, read)]
        return read


class StringId32Mapper(StringIdMapper):
    width = 32


class StringIdMultiMapper(_MultiValued, StringIdMapper):
    """str/bytes keys to every value stored for them."""


class StringId32MultiMapper(StringIdMultiMapper):
    width = 32


class ApproxStringIdMultiMapper(NumericIdMultiMapper):
    """str keys reduced to their xxh hash (ints are taken as hashes): may give false positives."""
    _key_lookup = 'hash' if _native.objects is not None else None

    @classmethod
    def _hash_key(cls, key):
        if (isinstance(key, int) or is_numpy_integer(key)) and not isinstance(key, bool):
            return int(key)
        data = _utf8(key)
        return _native.xxh64(data) if cls.width == 64 else _native.xxh32(data)

    #: 1.x's name for how a str key becomes the bytes that are hashed
    encode = staticmethod(_utf8)

    @classmethod
    def _column0(cls, key):
        try:
            return super()._column0(cls._hash_key(key))
        except TypeError:
            return None

    @classmethod
    def _key_for_build(cls, key):
        return super()._key_for_build(cls._hash_key(key))


class ApproxStringId32MultiMapper(ApproxStringIdMultiMapper):
    width = 32


class ObjectIdMapper(_IdMapper):
    """Keys of any stable-hashable type (None, ints, floats, str, bytes, tuples, frozensets)."""
    columns = 3

    @classmethod
    def _encode(cls, pairs, start, discard_duplicates, discard_duplicate_keys):
        if discard_duplicate_keys or discard_duplicates:
            seen = {}
            unique = []
            for key, value in pairs:
                identity = (type(key), key) if discard_duplicate_keys else (type(key), key, value)
                if identity not in seen:
                    seen[identity] = True
                    unique.append((key, value))
            pairs = unique
        context = PackContext(start, 0, {})
        write_object_index([(key, cls._check_value(value)) for key, value in pairs], context,
                           padding_origin=-start)
        return bytes(context.out)

    @classmethod
    def _open_writer(cls, output, tempdir=None, **options):
        from .idmapper_writers import ObjectRowsWriter
        return ObjectRowsWriter(cls, output, tempdir, **options)

    if _native.objects is not None:
        # Keys the C module hashes (str, bytes, numbers, None, tuples of them) are looked up in
        # one C call, stored keys decoded by _native/values.c; the Python methods run for the rest.
        _key_lookup = 'object'
        get = _native.objects.KeyedMethod(_native.objects.MAPPER_GET, _IdMapper.get)
        __getitem__ = _native.objects.KeyedMethod(_native.objects.MAPPER_GETITEM, _IdMapper.__getitem__)
        __contains__ = _native.objects.KeyedMethod(_native.objects.MAPPER_CONTAINS, _IdMapper.__contains__)

    def __init__(self, buffer, offset=0):
        super().__init__(buffer, offset)
        self._view = ObjectIndexView(buffer, offset)

    def _column0(self, key):
        try:
            return stable_hash(key)
        except TypeError:
            return None

    def _row_matches(self, row, key):
        return self._key_of_row(row) == key

    def _key_of_row(self, row):
        key_offset = self._cells[row * 3 + 1]
        if key_offset > 0x7FFFFFFFFFFFFFFF:
            key_offset -= 1 << 64
        return self._view.key_at(key_offset)

