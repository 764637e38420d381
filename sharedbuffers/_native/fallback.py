"""Pure-Python implementation of the ``sharedbuffers._native`` kernels.

Used when the compiled ``_kernels`` extension is unavailable (or when
``SHAREDBUFFERS_PURE`` is set).  Every function returns bit-identical results
to the C kernels and raises the same exceptions with the same messages.

This module is also the single source of truth for argument validation and
error messages: the native wrappers in ``__init__`` call the ``check_*``
helpers and error constructors below whenever the C side (or cffi's argument
conversion) rejects a call, so both implementations fail identically.

Atomicity: the atomic operations here serialise on one module-level
``threading.Lock``.  That makes them atomic among threads of this process
(and only among callers going through this module), which is the best pure
Python can offer; they are *not* atomic across processes sharing memory.
"""

import bisect
import collections
import math
import sys
import threading
from operator import index
from pickle import PickleBuffer
from struct import iter_unpack, pack, pack_into, unpack_from

__all__ = [
    "xxh64", "xxh32", "hash_float", "fold_hashes", "search_handle", "lower_bound",
    "idmap_handle", "idmap_find", "idmap_find_bytes", "idmap_get", "idmap_get_bytes",
    "idmap_find_many", "idmap_find_many_bytes",
    "atomic_cas", "atomic_add", "atomic_load", "atomic_store",
]

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1

# --------------------------------------------------------------------------
# Buffers
# --------------------------------------------------------------------------

READ_ONLY_MESSAGE = "cannot write to a read-only buffer"


def buffer_error(buf, writable=False):
    """The canonical exception for a ``buf`` the kernels cannot use, or None.

    The kernels accept exactly what ``ffi.from_buffer`` accepts: any
    C-contiguous buffer, whatever its item format or shape, writable when
    ``writable`` is true.  The native wrappers use this to translate cffi's
    varied exceptions into the ones the fallback raises.
    """
    try:
        view = memoryview(buf)
    except TypeError:
        return TypeError(f"a bytes-like object is required, not {type(buf).__name__!r}")
    if writable and view.readonly:
        return TypeError(READ_ONLY_MESSAGE)
    if not view.c_contiguous:
        return BufferError("buffer is not C-contiguous")
    return None


def byte_view(buf, writable=False):
    """A flat unsigned-byte memoryview over the raw memory of ``buf``."""
    error = buffer_error(buf, writable)
    if error is not None:
        raise error
    # PickleBuffer.raw() reinterprets any contiguous buffer as 1-D 'B',
    # which memoryview.cast() refuses for some formats.
    return PickleBuffer(buf).raw()


# --------------------------------------------------------------------------
# xxHash
# --------------------------------------------------------------------------

P64_1 = 0x9E3779B185EBCA87
P64_2 = 0xC2B2AE3D27D4EB4F
P64_3 = 0x165667B19E3779F9
P64_4 = 0x85EBCA77C2B2AE63
P64_5 = 0x27D4EB2F165667C5

P32_1 = 0x9E3779B1
P32_2 = 0x85EBCA77
P32_3 = 0xC2B2AE3D
P32_4 = 0x27D4EB2F
P32_5 = 0x165667B1


def check_seed(seed, bits):
    """Validate a hash seed: an integer in [0, 2**bits)."""
    seed = index(seed)
    if not 0 <= seed < 1 << bits:
        raise OverflowError(
            f"seed {seed} out of range for xxh{bits} (0..{(1 << bits) - 1})"
        )
    return seed


def _rotl64(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _rotl32(x, r):
    return ((x << r) | (x >> (32 - r))) & M32


def _xxh64_round(acc, lane):
    acc = (acc + lane * P64_2) & M64
    return (_rotl64(acc, 31) * P64_1) & M64


def xxh64(data, seed=0):
    """XXH64 of the raw bytes of ``data`` (any C-contiguous buffer)."""
    view = byte_view(data)
    seed = check_seed(seed, 64)
    n = len(view)
    pos = 0
    if n >= 32:
        pos = n - n % 32
        h = _xxh64_stripes(view[:pos], seed)
    else:
        h = (seed + P64_5) & M64
    h = (h + n) & M64
    lanes_end = n - (n - pos) % 8
    for (lane,) in iter_unpack("<Q", view[pos:lanes_end]):
        h ^= _xxh64_round(0, lane)
        h = (_rotl64(h, 27) * P64_1 + P64_4) & M64
    pos = lanes_end
    if n - pos >= 4:
        h ^= (unpack_from("<I", view, pos)[0] * P64_1) & M64
        h = (_rotl64(h, 23) * P64_2 + P64_3) & M64
        pos += 4
    for byte in view[pos:]:
        h ^= (byte * P64_5) & M64
        h = (_rotl64(h, 11) * P64_1) & M64
    return _xxh64_avalanche(h)


def _xxh64_stripes(view, seed):
    """Consume whole 32-byte stripes; the loop is hand-inlined because it
    dominates the running time for large inputs."""
    v1 = (seed + P64_1 + P64_2) & M64
    v2 = (seed + P64_2) & M64
    v3 = seed
    v4 = (seed - P64_1) & M64
    for a, b, c, d in iter_unpack("<4Q", view):
        v1 = (v1 + a * P64_2) & M64
        v1 = (((v1 << 31) | (v1 >> 33)) & M64) * P64_1 & M64
        v2 = (v2 + b * P64_2) & M64
        v2 = (((v2 << 31) | (v2 >> 33)) & M64) * P64_1 & M64
        v3 = (v3 + c * P64_2) & M64
        v3 = (((v3 << 31) | (v3 >> 33)) & M64) * P64_1 & M64
        v4 = (v4 + d * P64_2) & M64
        v4 = (((v4 << 31) | (v4 >> 33)) & M64) * P64_1 & M64
    h = (_rotl64(v1, 1) + _rotl64(v2, 7) + _rotl64(v3, 12) + _rotl64(v4, 18)) & M64
    for acc in (v1, v2, v3, v4):
        h ^= _xxh64_round(0, acc)
        h = (h * P64_1 + P64_4) & M64
    return h


def _xxh64_avalanche(h):
    h ^= h >> 33
    h = (h * P64_2) & M64
    h ^= h >> 29
    h = (h * P64_3) & M64
    return h ^ (h >> 32)


def xxh32(data, seed=0):
    """XXH32 of the raw bytes of ``data`` (any C-contiguous buffer)."""
    view = byte_view(data)
    seed = check_seed(seed, 32)
    n = len(view)
    pos = 0
    if n >= 16:
        pos = n - n % 16
        h = _xxh32_stripes(view[:pos], seed)
    else:
        h = (seed + P32_5) & M32
    h = (h + n) & M32  # the specification adds the length modulo 2**32
    lanes_end = n - (n - pos) % 4
    for (lane,) in iter_unpack("<I", view[pos:lanes_end]):
        h = (h + lane * P32_3) & M32
        h = (_rotl32(h, 17) * P32_4) & M32
    pos = lanes_end
    for byte in view[pos:]:
        h = (h + byte * P32_5) & M32
        h = (_rotl32(h, 11) * P32_1) & M32
    return _xxh32_avalanche(h)


def _xxh32_stripes(view, seed):
    """Consume whole 16-byte stripes (hand-inlined like _xxh64_stripes)."""
    v1 = (seed + P32_1 + P32_2) & M32
    v2 = (seed + P32_2) & M32
    v3 = seed
    v4 = (seed - P32_1) & M32
    for a, b, c, d in iter_unpack("<4I", view):
        v1 = (v1 + a * P32_2) & M32
        v1 = (((v1 << 13) | (v1 >> 19)) & M32) * P32_1 & M32
        v2 = (v2 + b * P32_2) & M32
        v2 = (((v2 << 13) | (v2 >> 19)) & M32) * P32_1 & M32
        v3 = (v3 + c * P32_2) & M32
        v3 = (((v3 << 13) | (v3 >> 19)) & M32) * P32_1 & M32
        v4 = (v4 + d * P32_2) & M32
        v4 = (((v4 << 13) | (v4 >> 19)) & M32) * P32_1 & M32
    return (_rotl32(v1, 1) + _rotl32(v2, 7) + _rotl32(v3, 12) + _rotl32(v4, 18)) & M32


def _xxh32_avalanche(h):
    h ^= h >> 15
    h = (h * P32_2) & M32
    h ^= h >> 13
    h = (h * P32_3) & M32
    return h ^ (h >> 16)


# --------------------------------------------------------------------------
# Stable-hash helpers
# --------------------------------------------------------------------------

def hash_float(x):
    """Float part of the stable hash (see kernels.c ``sb_hash_float``)."""
    mant, expo = math.frexp(x)
    if expo < 0:
        expo += 0xFFFF
    if math.isinf(mant):
        mant = 1.0 if mant > 0 else -1.0
    elif math.isnan(mant):
        mant = 2.0
    return _rotl64(expo & M64, 5) ^ (int(mant * 0xFFFFFFFFFFFF) & M64)


def fold_hashes(seed, hashes):
    """h = seed; h = rotl64(h, 5) ^ v for each v; every value taken mod 2**64."""
    h = index(seed) & M64
    for v in hashes:
        h = (((h << 5) & M64) | (h >> 59)) ^ (index(v) & M64)
    return h


# --------------------------------------------------------------------------
# Atomics: codes, validation and error messages
# --------------------------------------------------------------------------

# Smallest double that rounds to infinity as a float32 (halfway between
# FLT_MAX and 2**128); see SB_F32_LIMIT in kernels.c.
F32_LIMIT = float.fromhex("0x1.ffffffp+127")
F32_MAX = float.fromhex("0x1.fffffep+127")


class Code(collections.namedtuple('Code', 'code size is_float addable lo hi float_limit')):
    """What the atomics need to know about one struct code.

    ``code`` (str), ``size`` (bytes), ``is_float``, ``addable``; ``lo`` and ``hi``: the int
    range, or +-largest finite value for floats; ``float_limit``: finite magnitudes at or above
    it overflow (math.inf for ints: unused).  (collections.namedtuple, not typing.NamedTuple:
    importing typing would add a tenth to the package's import time.)
    """
    __slots__ = ()

    @property
    def fmt(self):
        """struct format: native byte order, standard sizes, no alignment."""
        return "=" + self.code

    @property
    def range_text(self):
        """The valid range, as quoted in OverflowError messages."""
        if self.is_float:
            return f"{self.lo!r}..{self.hi!r}, inf or nan"
        return f"{self.lo}..{self.hi}"


def _int_code(code, size, signed):
    bits = 8 * size
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return Code(code, size, False, True, lo, hi, math.inf)


CODES = {
    **{c: _int_code(c, size, c.islower()) for c, size in
       (("b", 1), ("B", 1), ("h", 2), ("H", 2), ("i", 4), ("I", 4), ("q", 8), ("Q", 8))},
    "?": Code("?", 1, False, False, 0, 1, math.inf),
    "f": Code("f", 4, True, True, -F32_MAX, F32_MAX, F32_LIMIT),
    "d": Code("d", 8, True, True, -sys.float_info.max, sys.float_info.max, math.inf),
}


def code_error(code, op):
    """The exception for a code that ``op`` does not support."""
    if not isinstance(code, str):
        return TypeError(f"{op}: code must be a str, not {type(code).__name__}")
    if code == "?" and op == "atomic_add":
        return TypeError("atomic_add does not support code '?' (bool)")
    return ValueError(f"{op}: unknown code {code!r}; expected one of {''.join(CODES)!r}")


def spec_for(code, op):
    """The Code for ``code``, or raise the canonical error."""
    spec = CODES.get(code) if isinstance(code, str) else None
    if spec is None or (op == "atomic_add" and not spec.addable):
        raise code_error(code, op)
    return spec


def bounds_error(spec, offset, buflen):
    """IndexError naming the offset and the buffer length."""
    return IndexError(
        f"offset {offset} out of range for code {spec.code!r} ({spec.size} bytes) "
        f"in a buffer of {buflen} bytes"
    )


def add_overflow_error(spec, delta):
    """OverflowError for an add whose result leaves the code's range."""
    return OverflowError(
        f"atomic_add of {delta!r} to a {spec.code!r} value leaves its range "
        f"({spec.range_text})"
    )


def to_float(value):
    """Convert like C code receiving a double: accept real numbers only
    (``float()`` would also parse strings)."""
    if isinstance(value, float):
        return value
    cls = type(value)
    if hasattr(cls, "__float__") or hasattr(cls, "__index__"):
        return float(value)
    raise TypeError(f"must be real number, not {cls.__name__}")


def convert_value(spec, value):
    """Normalise a value for ``spec`` to int or float (type check only)."""
    return to_float(value) if spec.is_float else index(value)


def check_range(spec, value):
    """Raise OverflowError unless the normalised ``value`` fits ``spec``."""
    if spec.is_float:
        fits = not math.isfinite(value) or abs(value) < spec.float_limit
    else:
        fits = spec.lo <= value <= spec.hi
    if not fits:
        raise OverflowError(
            f"value {value!r} out of range for code {spec.code!r} ({spec.range_text})"
        )


def check_bounds(spec, offset, buflen):
    """Raise IndexError unless [offset, offset + size) lies in the buffer."""
    if offset < 0 or offset + spec.size > buflen:
        raise bounds_error(spec, offset, buflen)


def check_value_args(spec, offset, values, buflen):
    """Validate load/store/cas arguments in the order the native path does:
    offset type, value types (cffi's argument conversion), value ranges
    (kernels.c), then bounds."""
    offset = index(offset)
    values = tuple(convert_value(spec, v) for v in values)
    for value in values:
        check_range(spec, value)
    check_bounds(spec, offset, buflen)
    return offset, values


def check_add_args(spec, offset, delta, buflen):
    """Validate atomic_add arguments: offset type, delta type, bounds, and
    deltas too large for any current value to absorb (which cannot reach the
    C kernel, whose delta magnitude is a uint64)."""
    offset = index(offset)
    delta = convert_value(spec, delta)
    check_bounds(spec, offset, buflen)
    if not spec.is_float and not spec.lo - spec.hi <= delta <= spec.hi - spec.lo:
        raise add_overflow_error(spec, delta)
    return offset, delta


def sum_fits(spec, old, delta, new):
    """Whether ``new = old + delta`` can be stored (same rule as kernels.c:
    integers must stay in range; floats must not overflow from finite
    operands to infinity in the field's format)."""
    if not spec.is_float:
        return spec.lo <= new <= spec.hi
    return not (math.isfinite(old) and math.isfinite(delta) and abs(new) >= spec.float_limit)


# --------------------------------------------------------------------------
# Atomics: operations
# --------------------------------------------------------------------------

_LOCK = threading.Lock()


def atomic_load(buf, offset, code):
    """Read the ``code`` value at ``offset`` (read-only buffers allowed)."""
    spec = spec_for(code, "atomic_load")
    view = byte_view(buf)
    offset, _ = check_value_args(spec, offset, (), len(view))
    with _LOCK:
        return unpack_from(spec.fmt, view, offset)[0]


def atomic_store(buf, offset, code, value):
    """Write ``value`` as ``code`` at ``offset``."""
    spec = spec_for(code, "atomic_store")
    view = byte_view(buf, writable=True)
    offset, (value,) = check_value_args(spec, offset, (value,), len(view))
    with _LOCK:
        pack_into(spec.fmt, view, offset, value)


def atomic_cas(buf, offset, code, expected, new):
    """Store ``new`` if the field's bits equal those of ``expected``;
    return whether it did."""
    spec = spec_for(code, "atomic_cas")
    view = byte_view(buf, writable=True)
    offset, (expected, new) = check_value_args(spec, offset, (expected, new), len(view))
    expected_bits = pack(spec.fmt, expected)
    with _LOCK:
        if view[offset:offset + spec.size].tobytes() != expected_bits:
            return False
        pack_into(spec.fmt, view, offset, new)
    return True


def atomic_add(buf, offset, code, delta):
    """Add ``delta`` to the field and return the new value; OverflowError
    (leaving the field unchanged) if the result does not fit the code."""
    spec = spec_for(code, "atomic_add")
    view = byte_view(buf, writable=True)
    offset, delta = check_add_args(spec, offset, delta, len(view))
    with _LOCK:
        old = unpack_from(spec.fmt, view, offset)[0]
        new = old + delta
        if not sum_fits(spec, old, delta, new):
            raise add_overflow_error(spec, delta)
        pack_into(spec.fmt, view, offset, new)
        return unpack_from(spec.fmt, view, offset)[0]


# --------------------------------------------------------------------------
# Sorted-index search (id mappers)
# --------------------------------------------------------------------------

def search_handle(buf):
    """What lower_bound() searches: a byte view of ``buf``, made once per mapper."""
    view = memoryview(buf)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def lower_bound(handle, index_offset, count, columns, width, key):
    """First row (of ``count`` rows of ``columns`` ints of ``width`` bytes at ``index_offset``)
    whose column 0 is >= ``key``.  IndexError when the rows do not fit in the buffer."""
    stride = columns * width
    if width not in (4, 8) or not 1 <= columns <= 3:
        raise ValueError("rows of %d columns of %d bytes are not an id mapper index" % (columns, width))
    if index_offset < 0 or index_offset + count * stride > len(handle):
        raise IndexError("index of %d rows at offset %d does not fit in %d bytes"
                         % (count, index_offset, len(handle)))
    column0 = handle[index_offset:index_offset + count * stride].cast("Q" if width == 8 else "I")
    return bisect.bisect_left(range(count), key, key=lambda row: column0[row * columns])


# --------------------------------------------------------------------------
# Id-mapper lookups (twins of kernels.c's sb_idmap_* functions)
# --------------------------------------------------------------------------

# Results of the find functions besides a cell (>= 0); corrupt data gives SB_E_BOUNDS, a shape
# that is not an id mapper's SB_E_CODE, a key span outside the keys' data SB_E_RANGE.
IDMAP_MISSING = -6
IDMAP_DEFER = -7
IDMAP_WIDE = -8         # idmap_get*: the value found does not fit an int64
SB_E_BOUNDS = -1
SB_E_RANGE = -2
SB_E_CODE = -5
# Per-key status of the batch functions.
IDMAP_NOT_FOUND = 0
IDMAP_FOUND = 1
IDMAP_DEFERRED = 2

_BYTES_LONG = 0x7FFF
_BYTES_COMPRESSED = 0x8000
_INT64_MAX = (1 << 63) - 1


class IdmapHandle(collections.namedtuple('IdmapHandle', 'buf buflen mapper_offset index_offset count columns '
                                                         'width cells column0')):
    """The fields of kernels.c's ``sb_idmap``, plus views of the rows for reading them.

    ``buf``: a memoryview of the bytes holding the mapper; ``mapper_offset``: where key offsets
    count from; ``columns``: 2 (key, value) or 3 (hash, key offset, value); ``width``: bytes per
    cell, 4 or 8; ``cells``: the rows as unsigned ints, row after row; ``column0``: cells[::columns].
    """
    __slots__ = ()


def check_idmap_geometry(buflen, mapper_offset, index_offset, count, columns, width):
    """Raise ValueError for a shape that is not an id mapper's, IndexError when the rows or the
    mapper start lie outside a buffer of ``buflen`` bytes."""
    if width not in (4, 8) or columns not in (2, 3):
        raise ValueError("rows of %d columns of %d bytes are not an id mapper index" % (columns, width))
    if not (0 <= mapper_offset <= buflen and 0 <= index_offset <= buflen and count >= 0
            and index_offset + count * columns * width <= buflen):
        raise IndexError("id mapper at offset %d: index of %d rows at offset %d does not fit in %d bytes"
                         % (mapper_offset, count, index_offset, buflen))


def idmap_handle(buf, mapper_offset, index_offset, count, columns, width):
    """What the idmap_find functions search, made once per mapper (checks the geometry)."""
    view = search_handle(buf)
    check_idmap_geometry(len(view), mapper_offset, index_offset, count, columns, width)
    cells = view[index_offset:index_offset + count * columns * width].cast("Q" if width == 8 else "I")
    return IdmapHandle(view, len(view), mapper_offset, index_offset, count, columns, width,
                       cells, cells[::columns])


def _as_uint64(value):
    """An argument converted as cffi converts it to a uint64_t."""
    value = index(value)
    if not 0 <= value <= M64:
        raise OverflowError("%d does not fit a uint64_t" % value)
    return value


def _idmap_shape_error(handle):
    """SB_E_CODE or SB_E_BOUNDS when a handle no longer describes an id mapper (kernels.c
    checks on every call), else None."""
    if handle.width not in (4, 8) or handle.columns not in (2, 3):
        return SB_E_CODE
    if (handle.mapper_offset > handle.buflen or handle.index_offset > handle.buflen
            or handle.index_offset + handle.count * handle.columns * handle.width > handle.buflen):
        return SB_E_BOUNDS
    return None


def _idmap_find_checked(handle, key, start_row):
    if handle.width == 4 and key > M32:
        return IDMAP_MISSING
    row = max(bisect.bisect_left(handle.column0, key), start_row)
    if row < handle.count and handle.column0[row] == key:
        return row * handle.columns + handle.columns - 1
    return IDMAP_MISSING


def _idmap_stored_key(handle, key_offset):
    """The stored key at ``key_offset`` (relative to the mapper) as bytes, IDMAP_DEFER when it is
    compressed, SB_E_BOUNDS when it does not lie in the buffer."""
    buf, buflen = handle.buf, handle.buflen
    position = handle.mapper_offset + key_offset
    if position + 2 > buflen:
        return SB_E_BOUNDS
    header = unpack_from("=H", buf, position)[0]
    position += 2
    size = header & _BYTES_LONG
    if size == _BYTES_LONG:
        if position + 8 > buflen:
            return SB_E_BOUNDS
        size = unpack_from("=Q", buf, position)[0]
        position += 8
    if position + size > buflen:
        return SB_E_BOUNDS
    if header & _BYTES_COMPRESSED:
        return IDMAP_DEFER
    return buf[position:position + size]


def _idmap_find_bytes_checked(handle, key, start_row):
    column0, cells = handle.column0, handle.cells
    digest = xxh64(key) if handle.width == 8 else xxh32(key)
    row = max(bisect.bisect_left(column0, digest), start_row)
    while row < handle.count and column0[row] == digest:
        stored = _idmap_stored_key(handle, cells[row * 3 + 1])
        if type(stored) is int:
            return stored
        if stored == key:
            return row * 3 + 2
        row += 1
    return IDMAP_MISSING


def idmap_find(handle, key, start_row):
    """Cell of the value of the first row at or after ``start_row`` whose column 0 is ``key``
    (numeric mappers), or IDMAP_MISSING; kernels.c's ``sb_idmap_find``."""
    key = _as_uint64(key)
    start_row = _as_uint64(start_row)
    return _idmap_shape_error(handle) or _idmap_find_checked(handle, key, start_row)


def idmap_find_bytes(handle, key, length, start_row):
    """Cell of the value of the first row at or after ``start_row`` whose stored key is the first
    ``length`` bytes of ``key`` (string mappers), IDMAP_MISSING, IDMAP_DEFER (a candidate's
    stored key is compressed) or SB_E_BOUNDS (corrupt data); ``sb_idmap_find_bytes``.
    ``length`` must not exceed ``len(key)``, as in C."""
    key = byte_view(key)
    length = _as_uint64(length)
    start_row = _as_uint64(start_row)
    if length > len(key):
        raise ValueError("key length %d exceeds the key's %d bytes" % (length, len(key)))
    error = _idmap_shape_error(handle)
    if error is None and handle.columns != 3:
        error = SB_E_CODE
    return error or _idmap_find_bytes_checked(handle, key[:length], start_row)


def _idmap_value_result(handle, cell):
    if cell < 0:
        return cell
    value = handle.cells[cell]
    return IDMAP_WIDE if value > _INT64_MAX else value


def idmap_get(handle, key):
    """The value of the first row whose column 0 is ``key``, IDMAP_WIDE when it does not fit an
    int64 (idmap_find gives its cell), or another result of idmap_find; ``sb_idmap_get``."""
    return _idmap_value_result(handle, idmap_find(handle, key, 0))


def idmap_get_bytes(handle, key, length):
    """idmap_find_bytes's answer as a value, like idmap_get; ``sb_idmap_get_bytes``."""
    return _idmap_value_result(handle, idmap_find_bytes(handle, key, length, 0))


def _batch_views(keys, key_format, keys_per_item, values, status):
    """Flat views of a batch's arrays and its key count; ValueError when the outputs are short."""
    keys = byte_view(keys).cast(key_format)
    values = byte_view(values, True).cast("Q")
    status = byte_view(status, True).cast("b")
    count = len(keys) // keys_per_item
    if len(values) < count or len(status) < count:
        raise ValueError("%d keys need %d values and statuses, got %d and %d"
                         % (count, count, len(values), len(status)))
    return keys, count, values, status


def idmap_find_many(handle, keys, values, status):
    """Look up every uint64 of ``keys``: ``values[i]`` and ``status[i]`` (IDMAP_FOUND or
    IDMAP_NOT_FOUND; 0 for keys not found).  Returns the number of keys, or a negative code for a
    bad handle; ``sb_idmap_find_many``.  ``values`` is a uint64 buffer, ``status`` an int8 one."""
    keys, count, values, status = _batch_views(keys, "Q", 1, values, status)
    error = _idmap_shape_error(handle)
    if error:
        return error
    cells = handle.cells
    for number, key in enumerate(keys):
        cell = _idmap_find_checked(handle, key, 0)
        found = cell >= 0
        values[number] = cells[cell] if found else 0
        status[number] = IDMAP_FOUND if found else IDMAP_NOT_FOUND
    return count


def idmap_find_many_bytes(handle, data, spans, values, status):
    """Look up the keys ``data[spans[2i]:spans[2i + 1]]``: ``values[i]`` and ``status[i]``
    (IDMAP_FOUND, IDMAP_NOT_FOUND or IDMAP_DEFERRED).  Returns the number of keys; the index of a
    key that met corrupt data (the keys from there on are left unset); or a negative code for a
    bad handle or a span outside ``data``; ``sb_idmap_find_many_bytes``."""
    data = byte_view(data)
    spans, count, values, status = _batch_views(spans, "Q", 2, values, status)
    error = _idmap_shape_error(handle)
    if error is None and handle.columns != 3:
        error = SB_E_CODE
    if error:
        return error
    if any(spans[2 * number] > spans[2 * number + 1] or spans[2 * number + 1] > len(data)
           for number in range(count)):
        return SB_E_RANGE
    cells = handle.cells
    for number in range(count):
        cell = _idmap_find_bytes_checked(handle, data[spans[2 * number]:spans[2 * number + 1]], 0)
        if cell >= 0:
            values[number], status[number] = cells[cell], IDMAP_FOUND
        elif cell == IDMAP_MISSING:
            values[number], status[number] = 0, IDMAP_NOT_FOUND
        elif cell == IDMAP_DEFER:
            values[number], status[number] = 0, IDMAP_DEFERRED
        else:
            return number
    return count


# --------------------------------------------------------------------------
# Column gather (twin of kernels.c's sb_gather_field), vectorized with numpy
# --------------------------------------------------------------------------

def gather_field(buf, array_offset, items_start, index_offset, count, numbers, bitmap_size, full_has,
                 field_offset, out):
    """Copy one fixed-size field of the items ``numbers`` (int64 array; None: all) into ``out``.

    Returns len(numbers) when every item has the full shape (bitmaps ``(full_has, 0)``) and a
    position inside the items area, else the index of the first item that has not; see
    kernels.c.  ``out`` is a writable numpy array of len(numbers) values of the field's size.
    """
    import numpy
    check_gather_output(out, count if numbers is None else len(numbers))
    field_size = out.dtype.itemsize
    if bitmap_size not in (1, 2, 4, 8) or field_size not in (1, 2, 4, 8):
        raise ValueError("bitmaps of %d bytes, fields of %d bytes: not a typed array's" % (bitmap_size, field_size))
    raw = numpy.frombuffer(buf, numpy.uint8)
    if (array_offset > len(raw) or index_offset > len(raw) - array_offset
            or count > (len(raw) - array_offset - index_offset) // 8 or items_start > index_offset
            or field_offset > index_offset):
        raise IndexError("typed array geometry does not fit in %d bytes" % len(raw))
    if numbers is None:
        numbers = numpy.arange(count, dtype=numpy.int64)
    if not len(numbers):
        return 0
    index = numpy.frombuffer(buf, numpy.uint64, count, array_offset + index_offset)
    positions = index[numbers]
    usable = ((positions >= items_start) & (positions < index_offset)
              & (positions.astype(numpy.float64) <= index_offset - field_offset - field_size)
              & (positions.astype(numpy.float64) <= index_offset - 2 * bitmap_size))
    starts = numpy.where(usable, positions, items_start).astype(numpy.int64) + array_offset
    bitmap = numpy.dtype('=u%d' % bitmap_size)
    has = gather_values(raw, starts, bitmap).astype(numpy.uint64)
    none = gather_values(raw, starts + bitmap_size, bitmap).astype(numpy.uint64)
    usable &= (has == numpy.uint64(full_has)) & (none == 0)
    taken = len(numbers) if usable.all() else int(numpy.argmin(usable))
    out[:taken] = gather_values(raw, starts[:taken] + field_offset, out.dtype)
    return taken


def check_gather_output(out, items):
    """``out`` must be a writable, contiguous numpy array with room for ``items`` values."""
    if not (getattr(out, 'flags', None) is not None and out.flags.c_contiguous and out.flags.writeable
            and out.ndim == 1 and len(out) >= items):
        raise ValueError('gather_field needs a writable, contiguous 1-d array of at least %d values' % items)


def gather_values(raw, starts, dtype):
    """The value of ``dtype`` at every start offset of ``raw`` (a uint8 array), as a new array.

    When every start is a multiple of the item size (the usual case: items are aligned) this
    is one fancy-index into a typed view; otherwise the bytes are gathered and reinterpreted.
    Plain numpy, used by both implementations (column() and the gather twin).
    """
    import numpy
    size = dtype.itemsize
    if size > 1 and len(starts) and not (starts % size).any():
        typed = raw[:len(raw) - len(raw) % size].view(dtype)
        return typed[starts // size]
    return raw[starts[:, None] + numpy.arange(size)].copy().view(dtype).ravel()
