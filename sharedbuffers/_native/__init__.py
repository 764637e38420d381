"""Hashing and atomic kernels, compiled (cffi) when available, else pure Python.

Public interface::

    NATIVE                                  True when the compiled kernels are used
    objects                                 the C-API module that makes and reads Python objects
                                            (_objects: SnapshotUnpacker, FieldReader...; see
                                            objects.c), or None in pure mode.  Callers look it up
                                            when they generate code, so setting it to None
                                            switches new schemas to the Python twins.
    xxh64(data, seed=0) -> int              XXH64 of a C-contiguous buffer's raw bytes
    xxh32(data, seed=0) -> int              XXH32, likewise
    hash_float(x) -> int                    float part of the stable hash
    fold_hashes(seed, hashes) -> int        h = rotl64(h, 5) ^ v over the hashes
    atomic_load(buf, offset, code)          sequentially consistent read
    atomic_store(buf, offset, code, value)  sequentially consistent write
    atomic_cas(buf, offset, code, expected, new) -> bool
    atomic_add(buf, offset, code, delta)    returns the new value
    search_handle(buf), lower_bound(handle, index_offset, count, columns, width, key)
                                            first row of a sorted index whose column 0 >= key
    gather_field(buf, array_offset, items_start, index_offset, count, numbers, bitmap_size,
                 full_has, field_offset, out) -> int
                                            one fixed-size field of typed array items into a
                                            numpy array; how many items had the full shape
    gather_values(raw, starts, dtype)       numpy helper (no kernel): the values at byte offsets

Id-mapper lookups (one call per lookup or per batch; see kernels.c)::

    idmap_handle(buf, mapper_offset, index_offset, count, columns, width) -> handle
    idmap_find(handle, key, start_row) -> int
    idmap_find_bytes(handle, data, length, start_row) -> int     length must be len(data)
    idmap_get(handle, key) -> int, idmap_get_bytes(handle, data, length) -> int
    idmap_find_many(handle, keys, values, status) -> int
    idmap_find_many_bytes(handle, data, spans, values, status) -> int
    IDMAP_MISSING, IDMAP_DEFER, IDMAP_WIDE  find and get results besides a cell or value (>= 0)
    IDMAP_FOUND, IDMAP_NOT_FOUND, IDMAP_DEFERRED   per-key batch statuses

A find returns the cell of the value (counted from the start of the rows), IDMAP_MISSING,
IDMAP_DEFER (a candidate's stored key is compressed: compare in Python) or another negative
status for corrupt data, which the caller turns into an exception by reading the row in
Python.  The get functions (single-valued mappers, no start row) return the value itself
instead of its cell, or IDMAP_WIDE when it does not fit an int64: one read fewer in Python.
The batch functions return the number of keys, the index of the key that met corrupt data, or
a negative status for a bad argument.  The compiled and pure versions return the same values
for the same arguments; the compiled ones run without the GIL.

``code`` is one of ``bBhHiIqQ`` (integers), ``f``/``d`` (float32/float64,
compared and updated by bit pattern) or ``?`` (bool; no add).  Values are
native-endian and may be unaligned.  ``atomic_add`` raises OverflowError
instead of wrapping when the result does not fit the code.

Setting the environment variable ``SHAREDBUFFERS_PURE`` to anything but ""
or "0" forces the pure-Python fallback, which gives identical results and
errors (see fallback.py; its atomics are atomic only among threads of one
process).  With the compiled kernels, naturally aligned fields are atomic
across processes; misaligned ones only among threads of one process.
"""

import os
from operator import index

from . import fallback as _fb

__all__ = [
    "NATIVE", "xxh64", "xxh32", "hash_float", "fold_hashes",
    "atomic_load", "atomic_store", "atomic_cas", "atomic_add", "search_handle", "lower_bound", "gather_field", "gather_values",
    "idmap_handle", "idmap_find", "idmap_find_bytes", "idmap_get", "idmap_get_bytes",
    "idmap_find_many", "idmap_find_many_bytes",
    "IDMAP_MISSING", "IDMAP_DEFER", "IDMAP_WIDE", "IDMAP_FOUND", "IDMAP_NOT_FOUND", "IDMAP_DEFERRED",
]

_BUFFER_ERRORS = (TypeError, ValueError, BufferError)

# Status used when cffi itself refuses an argument (a value beyond 64 bits,
# or a non-number for a float code); the validators then find the reason.
_CONVERSION_FAILED = -1000


# Below this many hashes the Python loop beats the cost of a cffi call.
_FOLD_NATIVE_MIN = 3


def _pure_requested():
    return os.environ.get("SHAREDBUFFERS_PURE", "") not in ("", "0")


def _load_kernels():
    """The compiled extension module, or None (pure mode or not built)."""
    if _pure_requested():
        return None
    try:
        from . import _kernels
    except ImportError:
        return None
    return _kernels


def _reject(rc, check, *args):
    """Raise the canonical exception for a call the kernel refused.

    ``check`` is the fallback's validator for the operation; it re-derives
    the error the kernel found (same checks, same order) and raises it with
    the same message the fallback would use.
    """
    check(*args)
    raise SystemError(f"sharedbuffers kernel returned status {rc} for arguments that validate")


def _hash_functions(ffi, lib):
    """Wrappers for the hashing kernels (hot paths: few Python operations)."""
    from_buffer = ffi.from_buffer
    c_xxh64 = lib.sb_xxh64
    c_xxh32 = lib.sb_xxh32
    c_hash_float = lib.sb_hash_float
    c_fold = lib.sb_fold_hashes

    def xxh64(data, seed=0):
        """XXH64 of the raw bytes of ``data`` (any C-contiguous buffer)."""
        if type(data) is not bytes:  # cffi passes bytes without copying
            try:
                data = from_buffer(data)
            except _BUFFER_ERRORS as exc:
                raise _fb.buffer_error(data) or exc from None
        try:
            return c_xxh64(data, len(data), index(seed))
        except OverflowError:
            pass
        # check_seed raises the canonical OverflowError for this seed.
        return c_xxh64(data, len(data), _fb.check_seed(seed, 64))

    def xxh32(data, seed=0):
        """XXH32 of the raw bytes of ``data`` (any C-contiguous buffer)."""
        if type(data) is not bytes:
            try:
                data = from_buffer(data)
            except _BUFFER_ERRORS as exc:
                raise _fb.buffer_error(data) or exc from None
        try:
            return c_xxh32(data, len(data), index(seed))
        except OverflowError:
            pass
        return c_xxh32(data, len(data), _fb.check_seed(seed, 32))

    def hash_float(x):
        """Float part of the stable hash (no 0 -> 1 substitution)."""
        try:
            return c_hash_float(x)
        except (TypeError, OverflowError):
            pass
        # Not convertible to a C double: the fallback raises math.frexp's error.
        return _fb.hash_float(x)

    def fold_hashes(seed, hashes):
        """Fold 64-bit hashes: h = rotl64(h, 5) ^ v, starting from ``seed``.

        cffi converts the list straight into a C array.  Its conversion
        accepts the same ints as the fallback; the one difference is that it
        would truncate non-int objects defining ``__int__`` but not
        ``__index__`` (numpy floats, Decimal), which the fallback rejects.
        Hashes are ints by contract, and the strict alternative costs twice
        the time of a short fold.
        """
        if type(hashes) is not list and type(hashes) is not tuple:
            hashes = list(hashes)  # the slow path below iterates a second time
        if len(hashes) < _FOLD_NATIVE_MIN:
            return _fb.fold_hashes(seed, hashes)
        try:
            return c_fold(index(seed) & _fb.M64, hashes, len(hashes))
        except (TypeError, OverflowError):
            pass
        # Values outside [0, 2**64) fold modulo 2**64 and non-integers raise,
        # exactly as in the fallback.
        return _fb.fold_hashes(seed, hashes)

    return xxh64, xxh32, hash_float, fold_hashes


def _atomic_tables(ffi, lib):
    """Per-operation tables: code -> (spec, code as int, is_int, kernel, out type).

    The kernels come in three families so cffi converts each value straight
    to the matching C type: signed ints, unsigned ints (incl. bool), floats.
    """
    families = {
        "int": (lib.sb_load_int, lib.sb_store_int, lib.sb_cas_int, lib.sb_add_int,
                ffi.typeof("int64_t *")),
        "uint": (lib.sb_load_uint, lib.sb_store_uint, lib.sb_cas_uint, lib.sb_add_uint,
                 ffi.typeof("uint64_t *")),
        "float": (lib.sb_load_float, lib.sb_store_float, lib.sb_cas_float, lib.sb_add_float,
                  ffi.typeof("double *")),
    }
    loads, stores, cases, adds = {}, {}, {}, {}
    for code, spec in _fb.CODES.items():
        family = "float" if spec.is_float else "int" if spec.lo < 0 else "uint"
        c_load, c_store, c_cas, c_add, out_type = families[family]
        head = (spec, ord(code), not spec.is_float)
        loads[code] = head + (c_load, out_type)
        stores[code] = head + (c_store, None)
        cases[code] = head + (c_cas, None)
        if spec.addable:
            adds[code] = head + (c_add, out_type)
    return loads, stores, cases, adds


def _atomic_functions(ffi, lib):
    """Wrappers for the atomic kernels.

    Integers are passed through operator.index first: cffi would otherwise
    truncate objects such as numpy floats via __int__.  Every failure goes
    through the fallback's validators so messages match the fallback's.
    """
    from_buffer = ffi.from_buffer
    char_array = ffi.typeof("char[]")  # positional form: keywords cost cffi a lot
    new_cdata = ffi.new
    loads, stores, cases, adds = _atomic_tables(ffi, lib)
    sb_e_overflow = lib.SB_E_OVERFLOW
    check_value_args = _fb.check_value_args

    def atomic_load(buf, offset, code):
        """Sequentially consistent read (read-only buffers allowed)."""
        try:
            spec, ch, _, c_load, out_type = loads[code]
        except (KeyError, TypeError):
            raise _fb.code_error(code, "atomic_load") from None
        try:
            cbuf = from_buffer(buf)
        except _BUFFER_ERRORS as exc:
            raise _fb.buffer_error(buf) or exc from None
        offset = index(offset)
        out = new_cdata(out_type)
        try:
            rc = c_load(cbuf, len(cbuf), offset, ch, out)
        except OverflowError:
            rc = _CONVERSION_FAILED
        if rc:
            _reject(rc, check_value_args, spec, offset, (), len(cbuf))
        return bool(out[0]) if code == "?" else out[0]

    def atomic_store(buf, offset, code, value):
        """Sequentially consistent write of ``value`` as ``code``."""
        try:
            spec, ch, is_int, c_store, _ = stores[code]
        except (KeyError, TypeError):
            raise _fb.code_error(code, "atomic_store") from None
        try:
            cbuf = from_buffer(char_array, buf, True)
        except _BUFFER_ERRORS as exc:
            raise _fb.buffer_error(buf, True) or exc from None
        offset = index(offset)
        if is_int:
            value = index(value)
        try:
            rc = c_store(cbuf, len(cbuf), offset, ch, value)
        except (TypeError, OverflowError):
            rc = _CONVERSION_FAILED
        if rc:
            _reject(rc, check_value_args, spec, offset, (value,), len(cbuf))

    def atomic_cas(buf, offset, code, expected, new):
        """Replace the field by ``new`` if its bits equal those of
        ``expected``; return whether the swap happened."""
        try:
            spec, ch, is_int, c_cas, _ = cases[code]
        except (KeyError, TypeError):
            raise _fb.code_error(code, "atomic_cas") from None
        try:
            cbuf = from_buffer(char_array, buf, True)
        except _BUFFER_ERRORS as exc:
            raise _fb.buffer_error(buf, True) or exc from None
        offset = index(offset)
        if is_int:
            expected = index(expected)
            new = index(new)
        try:
            rc = c_cas(cbuf, len(cbuf), offset, ch, expected, new)
        except (TypeError, OverflowError):
            rc = _CONVERSION_FAILED
        if rc < 0:
            _reject(rc, check_value_args, spec, offset, (expected, new), len(cbuf))
        return rc == 0

    def atomic_add(buf, offset, code, delta):
        """Add ``delta`` and return the new value; OverflowError (field
        unchanged) if the result does not fit the code."""
        try:
            spec, ch, is_int, c_add, out_type = adds[code]
        except (KeyError, TypeError):
            raise _fb.code_error(code, "atomic_add") from None
        try:
            cbuf = from_buffer(char_array, buf, True)
        except _BUFFER_ERRORS as exc:
            raise _fb.buffer_error(buf, True) or exc from None
        offset = index(offset)
        if is_int:
            delta = index(delta)
        out = new_cdata(out_type)
        try:
            if is_int:
                # Sign and magnitude: deltas span -(2**64-1)..2**64-1 for 64-bit codes.
                rc = c_add(cbuf, len(cbuf), offset, ch, delta < 0, abs(delta), out)
            else:
                rc = c_add(cbuf, len(cbuf), offset, ch, delta, out)
        except (TypeError, OverflowError):
            rc = _CONVERSION_FAILED
        if rc == sb_e_overflow:
            raise _fb.add_overflow_error(spec, delta if is_int else _fb.to_float(delta))
        if rc:
            _reject(rc, _fb.check_add_args, spec, offset, delta, len(cbuf))
        return out[0]

    return atomic_load, atomic_store, atomic_cas, atomic_add


def _gather_function(ffi, lib):
    """Wrapper for the column gather kernel (the GIL is released during the call)."""
    c_gather = lib.sb_gather_field
    from_buffer = ffi.from_buffer

    def gather_field(buf, array_offset, items_start, index_offset, count, numbers, bitmap_size, full_has,
                     field_offset, out):
        _fb.check_gather_output(out, count if numbers is None else len(numbers))
        memory = from_buffer(buf)
        taken = c_gather(memory, len(memory), array_offset, items_start, index_offset, count,
                         ffi.NULL if numbers is None else from_buffer("int64_t[]", numbers),
                         count if numbers is None else len(numbers), bitmap_size, full_has, field_offset,
                         out.dtype.itemsize, from_buffer(out, require_writable=True))
        if taken < 0:       # a geometry that does not fit: the twin raises the error that says why
            return _fb.gather_field(buf, array_offset, items_start, index_offset, count, numbers, bitmap_size,
                                    full_has, field_offset, out)
        return taken
    return gather_field


def _search_functions(ffi, lib):
    """Wrappers for the sorted-index search kernel (the GIL is released during the call)."""
    c_lower_bound = lib.sb_lower_bound

    def search_handle(buf):
        """What lower_bound() searches: the buffer's memory as cffi sees it, made once per mapper."""
        return ffi.from_buffer(buf)

    def lower_bound(handle, index_offset, count, columns, width, key):
        row = c_lower_bound(handle, len(handle), index_offset, count, columns, width, key)
        if row < 0:     # out of bounds or a bad shape: the fallback raises the precise error
            return _fb.lower_bound(_fb.search_handle(ffi.buffer(handle)), index_offset, count, columns, width, key)
        return row

    return search_handle, lower_bound


def _idmap_functions(ffi, lib):
    """Wrappers for the id-mapper kernels; the single-key finds are the kernels themselves."""
    from_buffer = ffi.from_buffer
    c_find_many = lib.sb_idmap_find_many
    c_find_many_bytes = lib.sb_idmap_find_many_bytes

    def idmap_handle(buf, mapper_offset, index_offset, count, columns, width):
        """An ``sb_idmap *`` describing the rows, which keeps ``buf``'s memory alive."""
        memory = from_buffer(buf)
        _fb.check_idmap_geometry(len(memory), mapper_offset, index_offset, count, columns, width)
        handle = ffi.new("sb_idmap *", {
            "buf": memory, "buflen": len(memory), "mapper_offset": mapper_offset,
            "index_offset": index_offset, "count": count, "columns": columns, "width": width})
        # The struct only points into the buffer: the destructor's default argument is what
        # holds the buffer for as long as anything can pass the handle to a kernel.
        return ffi.gc(handle, lambda _, memory=memory: None)

    def _batch_buffers(keys, keys_per_item, values, status):
        keys = from_buffer("uint64_t[]", keys)
        count = len(keys) // keys_per_item
        values = from_buffer("uint64_t[]", values, True)
        status = from_buffer("int8_t[]", status, True)
        if len(values) < count or len(status) < count:
            raise ValueError("%d keys need %d values and statuses, got %d and %d"
                             % (count, count, len(values), len(status)))
        return keys, count, values, status

    def idmap_find_many(handle, keys, values, status):
        keys, count, values, status = _batch_buffers(keys, 1, values, status)
        return c_find_many(handle, keys, count, values, status)

    def idmap_find_many_bytes(handle, data, spans, values, status):
        if type(data) is not bytes:
            data = from_buffer(data)
        spans, count, values, status = _batch_buffers(spans, 2, values, status)
        return c_find_many_bytes(handle, data, len(data), spans, count, values, status)

    return (idmap_handle, lib.sb_idmap_find, lib.sb_idmap_find_bytes, lib.sb_idmap_get, lib.sb_idmap_get_bytes,
            idmap_find_many, idmap_find_many_bytes)


def _load_objects():
    """The C-API module, or None (pure mode or not built): the callers keep their Python code."""
    if _pure_requested():
        return None
    try:
        from . import _objects
    except ImportError:
        return None
    return _objects


_kernels = _load_kernels()
NATIVE = _kernels is not None
objects = _load_objects()

if NATIVE:
    xxh64, xxh32, hash_float, fold_hashes = _hash_functions(_kernels.ffi, _kernels.lib)
    atomic_load, atomic_store, atomic_cas, atomic_add = _atomic_functions(_kernels.ffi, _kernels.lib)
    search_handle, lower_bound = _search_functions(_kernels.ffi, _kernels.lib)
    gather_field = _gather_function(_kernels.ffi, _kernels.lib)
    (idmap_handle, idmap_find, idmap_find_bytes, idmap_get, idmap_get_bytes,
     idmap_find_many, idmap_find_many_bytes) = _idmap_functions(_kernels.ffi, _kernels.lib)
else:
    from .fallback import (  # noqa: F401  (re-exported)
        atomic_add, atomic_cas, atomic_load, atomic_store,
        fold_hashes, gather_field, hash_float, lower_bound, search_handle, xxh32, xxh64,
        idmap_handle, idmap_find, idmap_find_bytes, idmap_get, idmap_get_bytes,
        idmap_find_many, idmap_find_many_bytes,
    )

from .fallback import gather_values  # noqa: E402,F401  (plain numpy either way)
from .fallback import (  # noqa: E402,F401  (one set of values; kernels.c defines the same)
    IDMAP_DEFER, IDMAP_DEFERRED, IDMAP_FOUND, IDMAP_MISSING, IDMAP_NOT_FOUND, IDMAP_WIDE,
)
