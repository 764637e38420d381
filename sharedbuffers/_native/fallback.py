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
import math
import sys
import threading
from operator import index
from pickle import PickleBuffer
from struct import iter_unpack, pack, pack_into, unpack_from
from typing import NamedTuple

__all__ = [
    "xxh64", "xxh32", "hash_float", "fold_hashes", "search_handle", "lower_bound",
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


class Code(NamedTuple):
    """What the atomics need to know about one struct code."""

    code: str
    size: int
    is_float: bool
    addable: bool
    lo: object          # int range, or +-largest finite value for floats
    hi: object
    float_limit: float  # finite magnitudes >= this overflow (math.inf for ints: unused)

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
