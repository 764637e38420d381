"""The object id mapper inside a buffer (FORMAT.md §8.4): every dict's index.

    u64 row count, u64 index position (relative to the mapper)
    the keys, RTTI-wrapped, back to back (None is not written: its key offset is 1)
    rows (stable_hash(key), key offset, value) of u64, sorted by hash (numpy's argsort,
    as 1.x, so that equal hashes keep 1.x's order)
    zero padding to a multiple of 32, counted from ``padding_origin``

Each key is written as if alone in a fresh scratch buffer: its internal padding counts from
the key's own start.  Keys still share values written earlier with the same idmap (so a key
offset can be negative; it is stored as two's complement).  Lookups binary-search the hash
column and compare the decoded keys of equal-hash rows with ``==``.
"""
import struct

from .. import _native
from ..buffers import out_of_bounds
from ..packing import PackContext
from ..stable_hash import stable_hash
from .base import rtti

__all__ = ['write_object_index', 'ObjectIndexView']

M64 = (1 << 64) - 1
NONE_KEY = 1
_HEADER = struct.Struct('=QQ')
_ROW = struct.Struct('=QQQ')


def _key_context(context):
    """A context whose padding counts from the current end: the key's own start."""
    nested = PackContext.__new__(PackContext)
    nested.out = context.out
    nested.base = -len(context.out)
    nested.origin = context.origin
    nested.idmap = context.idmap
    nested.capacity = None
    nested.isolated = None
    return nested


def write_object_index(pairs, context, padding_origin=None):
    """Append an id mapper of ``pairs`` ((key, int value)...); return its logical position.

    ``padding_origin`` is the index in ``context.out`` the final 32-byte padding counts from
    (default: the mapper's start, as inside a dict).
    """
    write_object = rtti().write_object
    out = context.out
    start = len(out)
    mapper_position = context.origin + start
    out += bytes(16)
    hashes = []
    key_offsets = []
    for key, _ in pairs:
        hashes.append(stable_hash(key))
        if key is None:
            key_offsets.append(NONE_KEY)
        else:
            key_offsets.append(write_object(key, _key_context(context)) - mapper_position)
    index_position = len(out) - start
    if pairs:
        import numpy        # writing a dict needs numpy's argsort; reading one does not
        order = numpy.argsort(numpy.array(hashes, dtype=numpy.uint64))
    else:
        order = ()
    for row in order:
        out += _ROW.pack(hashes[row], key_offsets[row] & M64, pairs[row][1])
    gap = (len(out) - (start if padding_origin is None else padding_origin)) % 32
    if gap:
        out += bytes(32 - gap)
    _HEADER.pack_into(out, start, len(pairs), index_position)
    return mapper_position


class ObjectIndexView:
    """Reads an id mapper in a buffer: rows, keys and lookups, every offset checked."""
    __slots__ = ('buffer', 'offset', 'count', 'index')

    def __init__(self, buffer, offset):
        size = len(buffer)
        if offset < 0 or offset + 16 > size:
            raise out_of_bounds('id mapper header', offset, 16, size)
        count, index_position = _HEADER.unpack_from(buffer, offset)
        index = offset + index_position
        if index_position < 16:
            raise ValueError('id mapper at offset %d puts its index at +%d, inside its header: corrupt'
                             % (offset, index_position))
        if index + count * _ROW.size > size:
            raise out_of_bounds('id mapper index of %d rows' % count, index, count * _ROW.size, size)
        self.buffer = buffer
        self.offset = offset
        self.count = count
        self.index = index

    def row(self, number):
        """(hash, key offset (signed, relative), value) of row ``number``."""
        hash_value, key_offset, value = _ROW.unpack_from(self.buffer, self.index + number * _ROW.size)
        if key_offset > 0x7FFFFFFFFFFFFFFF:
            key_offset -= 1 << 64
        return hash_value, key_offset, value

    def key_at(self, key_offset):
        if key_offset == NONE_KEY:
            return None
        return rtti().read_object(self.buffer, self.offset + key_offset)

    def items(self):
        """(key, value) of every row, in row (hash) order."""
        for number in range(self.count):
            _, key_offset, value = self.row(number)
            yield self.key_at(key_offset), value

    def get(self, key, default=None):
        """The value of the first row whose key equals ``key``.

        With the C module the whole search is one call (``object_index_find`` in
        ``_native/searches.c``); it leaves to the code below every key it does not hash and
        every stored key it does not decode, which then give their values or errors here.
        """
        native = _native.objects
        if native is not None:
            found = native.object_index_find(self.buffer, self.offset, key)
            if found is not NotImplemented:
                return default if found is None else found
        try:
            wanted = stable_hash(key)
        except TypeError:
            return default
        low, high = 0, self.count
        while low < high:                       # first row with hash >= wanted
            middle = (low + high) // 2
            if self.row(middle)[0] < wanted:
                low = middle + 1
            else:
                high = middle
        while low < self.count:
            hash_value, key_offset, value = self.row(low)
            if hash_value != wanted:
                break
            if self.key_at(key_offset) == key:     # Python equality, as 1.x (True finds 1)
                return value
            low += 1
        return default

