"""The header of a storage file: its layout, how a new file is made, how a file is checked.

Layout (format version 1.0)
---------------------------
Integers are in the byte order of the machine that wrote the file, like the packed values
themselves (FORMAT.md); the header records it and other machines refuse the file.

======  ====  =====================================================================
offset  size  field
======  ====  =====================================================================
0       8     magic ``\\x93SBSTORE``
8       2     major format version (1): readers refuse any other
10      2     minor format version (0): additions an older reader may ignore
12      4     byte-order mark 0x01020304
16      8     header size (128)
24      8     root record offset (128)
32      8     root record size
40      8     schema offset: right after the root record
48      8     schema size
56      4     CRC-32 of the schema bytes
60      4     reserved (0)
64      8     heap start (a multiple of 16, after the schema)
72      8     heap end: the file size when it last grew, rounded down to 16
80      8     the largest size the file may grow to (0: no limit)
88      8     head of the heap's free list (0: none)
96      32    reserved (0)
128           the root record (:mod:`sharedbuffers.storage_root`)
              the schema: a protocol-2 pickle of the root :class:`Schema` (its user data
              is ``{'storage root name': class name}``), loaded only through the
              allow-list unpickler (:mod:`sharedbuffers.safe_pickle`)
heap start    the heap (:mod:`sharedbuffers.storage_allocator`): one block per
              variable-size value, the value packed by its attribute's codec (buffer-typed
              attributes: :mod:`sharedbuffers.storage_buffers`)
======  ====  =====================================================================

Checking
--------
:func:`check_header` compares every field with the others and with the file size before
anything else is read, and raises a ``ValueError`` naming the offset of the first bad field.
The schema is read only when its checksum matches, and only through
:class:`~sharedbuffers.safe_pickle.SchemaUnpickler`, which resolves sharedbuffers' own types
and nothing else.
"""
import os
import pickle
import struct
import zlib

from .mapped_files import MappedFile
from .safe_pickle import load_schema
from .schema import Schema
from .storage_allocator import BlockHeap, block_size_for
from .storage_root import RECORD_OFFSET, RootLayout

__all__ = ['MAGIC', 'FORMAT_VERSION', 'HEADER_SIZE', 'DEFAULT_SIZE', 'HEAP_END_FIELD', 'MAX_SIZE_FIELD',
           'FREE_HEAD_FIELD', 'check_header', 'create_file', 'load_stored_schema', 'stored_root_name']

MAGIC = b'\x93SBSTORE'
FORMAT_VERSION = (1, 0)
BYTE_ORDER_MARK = 0x01020304
HEADER_SIZE = RECORD_OFFSET
DEFAULT_SIZE = 1 << 16
HEAP_END_FIELD = 72
MAX_SIZE_FIELD = 80
FREE_HEAD_FIELD = 88
_HEADER = struct.Struct('=8sHHIQQQQQIIQQQQ32x')
_ROOT_NAME_KEY = 'storage root name'


def align(value, alignment=16):
    """``value`` rounded up to a multiple of ``alignment``."""
    return (value + alignment - 1) // alignment * alignment


def _stored_schema_bytes(schema):
    """The pickle of ``schema`` a file keeps, checked to load through the allow-list unpickler.

    Proxy bases and user data (which can name any class) are left out; the root's class
    name is kept as user data, for messages when the file is reopened without ``root``.
    """
    clean = Schema(dict(schema.slot_types), alignment=schema.alignment, version=schema.version,
                   user_data={_ROOT_NAME_KEY: schema.display_name})
    clean.init(schema.slot_types, schema.slot_keys, schema.alignment, version=schema.version)
    data = pickle.dumps(clean, 2)
    try:
        load_schema(data)
    except pickle.UnpicklingError as error:
        raise TypeError('the root schema cannot be stored safely: %s' % (error,)) from None
    return data


def check_header(memory, file_size):
    """The header fields as a dict; ValueError names the first bad offset."""
    if file_size < HEADER_SIZE:
        raise ValueError('truncated storage file: it ends at offset %d, inside the %d-byte header'
                         % (file_size, HEADER_SIZE))
    (magic, major, minor, byte_order, header_size, record_offset, record_size, schema_offset, schema_size,
     schema_crc, _, heap_start, heap_end, max_size, free_head) = _HEADER.unpack_from(memory, 0)

    def bad(offset, message, *values):
        raise ValueError('corrupt storage header at offset %d: %s' % (offset, message % values))

    if magic != MAGIC:
        raise ValueError('not a sharedbuffers storage: offset 0 holds %r, not the magic %r' % (magic, MAGIC))
    if byte_order != BYTE_ORDER_MARK:
        bad(12, 'byte-order mark %#x: %s', byte_order, 'the file was written on a machine of the other byte order'
            if byte_order == 0x04030201 else 'expected 0x01020304')
    if major != FORMAT_VERSION[0]:
        bad(8, 'format version %d.%d is not supported (this reader reads %d.x)', major, minor, FORMAT_VERSION[0])
    if header_size != HEADER_SIZE:
        bad(16, 'header size %d, expected %d', header_size, HEADER_SIZE)
    if record_offset != RECORD_OFFSET:
        bad(24, 'root record offset %d, expected %d', record_offset, RECORD_OFFSET)
    if record_size < 16 or record_size % 16 or record_offset + record_size > file_size:
        bad(32, 'root record size %d does not fit a %d-byte file', record_size, file_size)
    if schema_offset != record_offset + record_size:
        bad(40, 'schema offset %d, expected %d (right after the root record)', schema_offset,
            record_offset + record_size)
    if schema_size == 0 or schema_offset + schema_size > file_size:
        bad(48, 'schema size %d at offset %d does not fit a %d-byte file', schema_size, schema_offset, file_size)
    if heap_start % 16 or heap_start < schema_offset + schema_size:
        bad(64, 'heap start %d (the schema ends at %d)', heap_start, schema_offset + schema_size)
    if heap_end % 16 or heap_end < heap_start:
        bad(72, 'heap end %d (the heap starts at %d)', heap_end, heap_start)
    if heap_end > file_size:
        raise ValueError('truncated storage file: the header (offset 72) says the heap ends at offset %d, but '
                         'the file ends at %d' % (heap_end, file_size))
    if max_size and max_size < heap_end:
        bad(80, 'maximum size %d is below the heap end %d', max_size, heap_end)
    if free_head and (free_head % 16 or not heap_start <= free_head < heap_end):
        bad(88, 'free list head %d is outside the heap [%d, %d)', free_head, heap_start, heap_end)
    return dict(record_size=record_size, schema_offset=schema_offset, schema_size=schema_size,
                schema_crc=schema_crc, heap_start=heap_start, heap_end=heap_end, max_size=max_size)


def load_stored_schema(memory, header):
    """The root schema stored in the file; ValueError names its offset when it is corrupt."""
    offset, size = header['schema_offset'], header['schema_size']
    data = bytes(memory[offset:offset + size])
    if zlib.crc32(data) != header['schema_crc']:
        raise ValueError('corrupt storage file: the %d-byte schema at offset %d does not match its checksum '
                         '(header offset 56)' % (size, offset))
    try:
        schema = load_schema(data)
    except pickle.UnpicklingError as error:
        raise ValueError('the schema at offset %d cannot be loaded: %s' % (offset, error)) from None
    if not isinstance(schema, Schema):
        raise ValueError('the schema at offset %d is a %s, not a Schema' % (offset, type(schema).__name__))
    return schema


def create_file(path, schema, size, max_size):
    """Write a new, empty storage at ``path``: made under a temporary name, then renamed."""
    layout = RootLayout(schema)
    schema_bytes = _stored_schema_bytes(schema)
    schema_offset = RECORD_OFFSET + layout.size
    heap_start = align(schema_offset + len(schema_bytes))
    minimum = heap_start + block_size_for(0)
    if size is None:
        size = max(DEFAULT_SIZE, minimum)
    if not isinstance(size, int) or size < minimum:
        raise ValueError('size must be an int of at least %d bytes for this root (header, root record and '
                         'schema), not %r' % (minimum, size))
    if max_size is not None and max_size < size:
        raise ValueError('max_size %d is smaller than the size %d' % (max_size, size))
    heap_end = size // 16 * 16
    temporary = '%s.%d.tmp' % (path, os.getpid())
    try:
        with MappedFile(temporary, 'w+', size=size) as mapped:
            memory = mapped.buffer
            try:
                _HEADER.pack_into(memory, 0, MAGIC, FORMAT_VERSION[0], FORMAT_VERSION[1], BYTE_ORDER_MARK,
                                  HEADER_SIZE, RECORD_OFFSET, layout.size, schema_offset, len(schema_bytes),
                                  zlib.crc32(schema_bytes), 0, heap_start, heap_end, max_size or 0, 0)
                memory[schema_offset:schema_offset + len(schema_bytes)] = schema_bytes
                BlockHeap(memory, heap_start, heap_end, HEAP_END_FIELD, FREE_HEAD_FIELD).rebuild([])
            finally:
                memory.release()
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def stored_root_name(schema):
    """The class name of the root a file was made with ('' when unknown)."""
    user_data = schema.user_data
    return str(user_data.get(_ROOT_NAME_KEY) or '') if isinstance(user_data, dict) else ''
