"""Tests for sharedbuffers._native: the compiled kernels and the pure-Python fallback.

Every test runs against both implementations (the native cases are deselected when the
extension is not in use, i.e. in the SHAREDBUFFERS_PURE=1 pass of run-tests.sh, which
follows a full native pass); parity tests check that they agree bit for bit, including
the exceptions they raise.
"""
import math
import mmap
import multiprocessing
import os
import struct
import subprocess
import sys
import threading
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharedbuffers import _native
from sharedbuffers._native import fallback

M64 = (1 << 64) - 1

NATIVE_ONLY = pytest.mark.native_only
IMPLS = [
    pytest.param(fallback, id="fallback"),
    pytest.param(_native, id="native", marks=NATIVE_ONLY),
]


@pytest.fixture(params=IMPLS)
def impl(request):
    return request.param


def _pattern(n):
    """Deterministic test data (the vectors below were computed on it)."""
    return bytes((i * 31 + 7) & 0xFF for i in range(n))


# Computed with the reference `xxhash` package (not a dependency).
XXH64_VECTORS = [  # (length, seed, digest); data = _pattern(length)
    (0, 0x0, 0xef46db3751d8e999),
    (0, 0x9e3779b97f4a7c15, 0xc4349fc93c010000),
    (1, 0x0, 0xa96c7f0ce858bbb7),
    (1, 0x9e3779b97f4a7c15, 0x585882422a6165e7),
    (3, 0x0, 0x56e6957632a487f9),
    (3, 0x9e3779b97f4a7c15, 0x5acb303e78133c22),
    (4, 0x0, 0xc60d15b1e3ff8f04),
    (4, 0x9e3779b97f4a7c15, 0x7d51d5e2461732b3),
    (7, 0x0, 0xafbefc3d6c6f9a8e),
    (7, 0x9e3779b97f4a7c15, 0x2ce9adec2b2c8104),
    (8, 0x0, 0x3da5c7aa269683e0),
    (8, 0x9e3779b97f4a7c15, 0x758848f033fa76a2),
    (15, 0x0, 0xae2a37eb9357caa7),
    (15, 0x9e3779b97f4a7c15, 0xa18d5c90d722cee3),
    (16, 0x0, 0xa19ad429b02bc413),
    (16, 0x9e3779b97f4a7c15, 0xe3594f9058b426e7),
    (31, 0x0, 0x4a74f3a1a39ad4a1),
    (31, 0x9e3779b97f4a7c15, 0x8137041f5af88413),
    (32, 0x0, 0x8d57d6a4671cc43d),
    (32, 0x9e3779b97f4a7c15, 0x184ebcf3745cd46c),
    (33, 0x0, 0x62c9fd21ed857664),
    (33, 0x9e3779b97f4a7c15, 0x52fac3c981f3cc2e),
    (63, 0x0, 0x5c320a0d2707057f),
    (63, 0x9e3779b97f4a7c15, 0x64ef99a2e94cc7bd),
    (64, 0x0, 0x7bbabbc45729d17e),
    (64, 0x9e3779b97f4a7c15, 0xf7f22435fe1ab128),
    (100, 0x0, 0xefa0ad2d3e70c151),
    (100, 0x9e3779b97f4a7c15, 0xbc7ab33be7528c18),
    (1000, 0x0, 0x99594f4828043d35),
    (1000, 0x9e3779b97f4a7c15, 0xda717f741f399f3f),
    (100, 0xffffffffffffffff, 0xbd4fcaabf7cad1a6),
]
XXH32_VECTORS = [
    (0, 0x0, 0x02cc5d05),
    (0, 0x2545f491, 0x72fdad7c),
    (1, 0x0, 0x002e0d32),
    (1, 0x2545f491, 0x3472c9f2),
    (3, 0x0, 0xaca17380),
    (3, 0x2545f491, 0x51281424),
    (4, 0x0, 0x073faa82),
    (4, 0x2545f491, 0xb456d6ea),
    (7, 0x0, 0xa9a7eebf),
    (7, 0x2545f491, 0x9ff99761),
    (8, 0x0, 0xb9893c6c),
    (8, 0x2545f491, 0x3d3e3efe),
    (15, 0x0, 0x9f29f87b),
    (15, 0x2545f491, 0x6a1fd4be),
    (16, 0x0, 0x3f6c9665),
    (16, 0x2545f491, 0x70d9057f),
    (31, 0x0, 0x00f1525c),
    (31, 0x2545f491, 0x69519b61),
    (32, 0x0, 0xee42e668),
    (32, 0x2545f491, 0x7e312cd5),
    (33, 0x0, 0x770b5126),
    (33, 0x2545f491, 0x816b8a38),
    (63, 0x0, 0x471925bb),
    (63, 0x2545f491, 0xf90ea231),
    (64, 0x0, 0xf2a797fa),
    (64, 0x2545f491, 0xd5fa31dc),
    (100, 0x0, 0x75936eb8),
    (100, 0x2545f491, 0x099b07c4),
    (1000, 0x0, 0xa793e7c7),
    (1000, 0x2545f491, 0x0c10bc8d),
    (100, 0xffffffff, 0x8c2af6d6),
]


# --------------------------------------------------------------------------
# xxHash
# --------------------------------------------------------------------------

@pytest.mark.parametrize("length, seed, expected", XXH64_VECTORS)
def test_xxh64_vectors(impl, length, seed, expected):
    assert impl.xxh64(_pattern(length), seed) == expected


@pytest.mark.parametrize("length, seed, expected", XXH32_VECTORS)
def test_xxh32_vectors(impl, length, seed, expected):
    assert impl.xxh32(_pattern(length), seed) == expected


def test_xxh_short_vectors(impl):
    assert impl.xxh64(b"a") == 0xD24EC4F1A98C6E5B
    assert impl.xxh64(b"bb") == 0x2DB8B883A1405484
    assert impl.xxh32(b"a") == 0x550D7456
    assert impl.xxh32(b"bb") == 0x85BBC966


def _buffer_kinds(data):
    """The same bytes exposed through various buffer exporters."""
    m = mmap.mmap(-1, max(len(data), 1))
    m[:len(data)] = data
    return {
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "memoryview-slice": memoryview(b"xx" + data + b"yy")[2:-2],
        "memoryview-cast-int": memoryview(bytearray(data)).cast("i"),
        "array": array("i", data),
        "mmap": memoryview(m)[:len(data)],
    }


@pytest.mark.parametrize("kind", list(_buffer_kinds(b"")))
def test_xxh_accepts_buffers(impl, kind):
    data = _pattern(64)
    buf = _buffer_kinds(data)[kind]
    assert impl.xxh64(buf, 7) == impl.xxh64(data, 7)
    assert impl.xxh32(buf, 7) == impl.xxh32(data, 7)


def test_xxh_accepts_mmap_object(impl):
    with mmap.mmap(-1, 100) as m:
        m[:] = _pattern(100)
        assert impl.xxh64(m) == impl.xxh64(_pattern(100))


def test_xxh_accepts_numpy_arrays(impl):
    np = pytest.importorskip("numpy")
    arr = np.arange(12, dtype=">i4").reshape(3, 4)  # non-native format, 2-D
    assert impl.xxh64(arr) == impl.xxh64(arr.tobytes())


@pytest.mark.parametrize("func", ["xxh64", "xxh32"])
def test_xxh_rejects_non_contiguous(impl, func):
    with pytest.raises(BufferError, match="not C-contiguous"):
        getattr(impl, func)(memoryview(b"abcdef")[::2])


@pytest.mark.parametrize("bad", ["text", 42, None])
def test_xxh_rejects_non_buffers(impl, bad):
    with pytest.raises(TypeError, match="bytes-like object is required"):
        impl.xxh64(bad)


@pytest.mark.parametrize("func, seed, exc", [
    ("xxh64", -1, OverflowError),
    ("xxh64", 1 << 64, OverflowError),
    ("xxh32", 1 << 32, OverflowError),
    ("xxh32", -1, OverflowError),
    ("xxh64", 1.0, TypeError),
])
def test_xxh_seed_errors(impl, func, seed, exc):
    with pytest.raises(exc):
        getattr(impl, func)(b"abc", seed)


def test_xxh_max_seeds(impl):
    assert impl.xxh64(b"abc", M64) == fallback.xxh64(b"abc", M64)
    assert impl.xxh32(b"abc", 0xFFFFFFFF) == fallback.xxh32(b"abc", 0xFFFFFFFF)


# --------------------------------------------------------------------------
# Stable-hash helpers
# --------------------------------------------------------------------------

def _reference_hash_float(x):
    """The 1.x definition, transcribed from the specification."""
    mant, expo = math.frexp(x)
    if expo < 0:
        expo += 0xFFFF
    if math.isinf(mant):
        mant = 1.0 if mant > 0 else -1.0
    elif math.isnan(mant):
        mant = 2.0
    expo &= M64
    rotated = ((expo << 5) | (expo >> 59)) & M64
    return rotated ^ (int(mant * 0xFFFFFFFFFFFF) & M64)


def test_hash_float_vectors(impl):
    assert impl.hash_float(1.5) == 0xBFFFFFFFFFDF
    assert impl.hash_float(2.0 ** 64) == 0x7FFFFFFFF7DF
    assert impl.hash_float(float("nan")) == 0x1FFFFFFFFFFFE


@pytest.mark.parametrize("x", [
    math.inf, -math.inf, -float("nan"), 0.1, -0.1, -1.5, 1e300, -1e-300,
    5e-324, 2.0 ** 63, -(2.0 ** 70), 0.0, -0.0,
])
def test_hash_float_matches_definition(impl, x):
    assert impl.hash_float(x) == _reference_hash_float(x)


def _reference_fold(seed, hashes):
    h = seed
    for v in hashes:
        h = (((h << 5) | (h >> 59)) & M64) ^ (v & M64)
    return h


@pytest.mark.parametrize("hashes", [
    [], [0], [M64], [1, 2], [1, 2, 3], list(range(100)), (5, M64, 0, 12345),
])
def test_fold_hashes(impl, hashes):
    seed = 0x1692E9D3BFA120F4
    assert impl.fold_hashes(seed, hashes) == _reference_fold(seed, hashes)


def test_fold_hashes_reduces_out_of_range_values(impl):
    hashes = [-1, 1 << 70, 3, -(1 << 65)]
    assert impl.fold_hashes(-5, hashes) == _reference_fold(-5 & M64, hashes)


def test_fold_hashes_accepts_iterables(impl):
    expected = _reference_fold(9, [1, 2, 3, -4])
    assert impl.fold_hashes(9, iter([1, 2, 3, -4])) == expected
    assert impl.fold_hashes(9, (v for v in [1, 2, 3, -4])) == expected


def test_fold_hashes_rejects_floats(impl):
    with pytest.raises(TypeError):
        impl.fold_hashes(0, [1, 2, 3.5])


# --------------------------------------------------------------------------
# Native / fallback parity (property-based)
# --------------------------------------------------------------------------

PARITY = settings(max_examples=300, deadline=None)


@NATIVE_ONLY
@PARITY
@given(data=st.binary(max_size=600), seed=st.integers(0, M64))
def test_xxh64_parity(data, seed):
    assert _native.xxh64(data, seed) == fallback.xxh64(data, seed)


@NATIVE_ONLY
@PARITY
@given(data=st.binary(max_size=600), seed=st.integers(0, 0xFFFFFFFF))
def test_xxh32_parity(data, seed):
    assert _native.xxh32(data, seed) == fallback.xxh32(data, seed)


@NATIVE_ONLY
@PARITY
@given(x=st.floats(allow_nan=True, allow_infinity=True))
def test_hash_float_parity(x):
    assert _native.hash_float(x) == fallback.hash_float(x) == _reference_hash_float(x)


@NATIVE_ONLY
@PARITY
@given(seed=st.integers(0, M64), hashes=st.lists(st.integers(0, M64), max_size=40))
def test_fold_hashes_parity(seed, hashes):
    assert _native.fold_hashes(seed, hashes) == fallback.fold_hashes(seed, hashes)


@NATIVE_ONLY
@PARITY
@given(seed=st.integers(-(1 << 70), 1 << 70),
       hashes=st.lists(st.integers(-(1 << 70), 1 << 70), max_size=10))
def test_fold_hashes_parity_out_of_range(seed, hashes):
    assert _native.fold_hashes(seed, hashes) == fallback.fold_hashes(seed, hashes)


# --------------------------------------------------------------------------
# Atomics
# --------------------------------------------------------------------------

INT_CODES = "bBhHiIqQ"
ALL_CODES = INT_CODES + "fd?"


def _int_range(code):
    bits = 8 * struct.calcsize("=" + code)
    if code.islower():
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _sample_values(code):
    if code in "fd":
        return [1.5, -2.25, 0.0, math.inf]
    if code == "?":
        return [True, False]
    lo, hi = _int_range(code)
    return [lo, hi, 0, 1, hi // 3]


OFFSETS = [0, 1, 3, 8, 13]  # includes misaligned offsets for every width


@pytest.mark.parametrize("code", list(ALL_CODES))
@pytest.mark.parametrize("offset", OFFSETS)
def test_store_load_roundtrip(impl, code, offset):
    buf = bytearray(32)
    for value in _sample_values(code):
        impl.atomic_store(buf, offset, code, value)
        assert impl.atomic_load(buf, offset, code) == value
        assert struct.unpack_from("=" + code, buf, offset)[0] == value


def test_store_touches_only_the_field(impl):
    buf = bytearray(b"\xAA" * 16)
    impl.atomic_store(buf, 3, "i", 0)
    assert buf == b"\xAA" * 3 + b"\x00" * 4 + b"\xAA" * 9


def test_load_works_on_read_only_buffers(impl):
    data = struct.pack("=qd?", -5, 2.5, True)
    assert impl.atomic_load(data, 0, "q") == -5
    assert impl.atomic_load(memoryview(data), 8, "d") == 2.5
    assert impl.atomic_load(data, 16, "?") is True


def test_load_bool_of_nonzero_byte(impl):
    assert impl.atomic_load(b"\x05", 0, "?") is True
    assert impl.atomic_load(b"\x00", 0, "?") is False


@pytest.mark.parametrize("code", list(ALL_CODES))
@pytest.mark.parametrize("offset", [0, 5])
def test_cas(impl, code, offset):
    buf = bytearray(16)
    first, second = _sample_values(code)[:2]
    impl.atomic_store(buf, offset, code, first)
    assert impl.atomic_cas(buf, offset, code, second, second) is False
    assert impl.atomic_load(buf, offset, code) == first
    assert impl.atomic_cas(buf, offset, code, first, second) is True
    assert impl.atomic_load(buf, offset, code) == second


@pytest.mark.parametrize("code", ["f", "d"])
def test_float_cas_compares_bit_patterns(impl, code):
    buf = bytearray(8)
    impl.atomic_store(buf, 0, code, math.nan)
    assert impl.atomic_cas(buf, 0, code, math.nan, 1.0) is True  # NaN matches its own bits
    assert impl.atomic_cas(buf, 0, code, -0.0, 2.0) is False
    impl.atomic_store(buf, 0, code, 0.0)
    assert impl.atomic_cas(buf, 0, code, -0.0, 2.0) is False  # 0.0 and -0.0 differ
    assert impl.atomic_cas(buf, 0, code, 0.0, 2.0) is True


def test_float32_cas_compares_converted_expected(impl):
    buf = bytearray(4)
    impl.atomic_store(buf, 0, "f", 0.1)  # stored as the nearest float32
    assert impl.atomic_cas(buf, 0, "f", 0.1, 0.5) is True
    assert impl.atomic_load(buf, 0, "f") == 0.5


@pytest.mark.parametrize("code", list(INT_CODES))
@pytest.mark.parametrize("offset", [0, 3])
def test_add_returns_new_value(impl, code, offset):
    buf = bytearray(16)
    lo, hi = _int_range(code)
    impl.atomic_store(buf, offset, code, lo)
    assert impl.atomic_add(buf, offset, code, 5) == lo + 5
    assert impl.atomic_add(buf, offset, code, -5) == lo
    assert impl.atomic_add(buf, offset, code, hi - lo) == hi
    assert impl.atomic_load(buf, offset, code) == hi


@pytest.mark.parametrize("code", list(INT_CODES))
def test_add_overflow_raises_and_leaves_value(impl, code):
    buf = bytearray(8)
    lo, hi = _int_range(code)
    impl.atomic_store(buf, 0, code, hi)
    with pytest.raises(OverflowError, match=rf"\({lo}\.\.{hi}\)"):
        impl.atomic_add(buf, 0, code, 1)
    impl.atomic_store(buf, 0, code, lo)
    with pytest.raises(OverflowError):
        impl.atomic_add(buf, 0, code, -1)
    with pytest.raises(OverflowError):
        impl.atomic_add(buf, 0, code, 1 << 64)  # beyond any uint64 magnitude
    with pytest.raises(OverflowError):
        impl.atomic_add(buf, 0, code, -(1 << 64))
    assert impl.atomic_load(buf, 0, code) == lo


def test_add_full_64_bit_span(impl):
    buf = bytearray(8)
    impl.atomic_store(buf, 0, "q", -(1 << 63))
    assert impl.atomic_add(buf, 0, "q", M64) == (1 << 63) - 1
    assert impl.atomic_add(buf, 0, "q", -M64) == -(1 << 63)
    impl.atomic_store(buf, 0, "Q", 0)
    assert impl.atomic_add(buf, 0, "Q", M64) == M64


@pytest.mark.parametrize("code, offset", [("f", 0), ("f", 1), ("d", 0), ("d", 3)])
def test_float_add(impl, code, offset):
    buf = bytearray(16)
    impl.atomic_store(buf, offset, code, 1.5)
    assert impl.atomic_add(buf, offset, code, 0.25) == 1.75
    assert impl.atomic_add(buf, offset, code, -3) == -1.25
    f32 = struct.unpack("=f", struct.pack("=f", 0.1))[0]
    impl.atomic_store(buf, offset, code, 0.0)
    expected = f32 if code == "f" else 0.1
    assert impl.atomic_add(buf, offset, code, 0.1) == expected


def test_float_add_overflow(impl):
    buf = bytearray(8)
    impl.atomic_store(buf, 0, "f", 3e38)
    with pytest.raises(OverflowError):
        impl.atomic_add(buf, 0, "f", 3e38)
    assert impl.atomic_load(buf, 0, "f") == struct.unpack("=f", struct.pack("=f", 3e38))[0]
    impl.atomic_store(buf, 0, "d", 1e308)
    with pytest.raises(OverflowError):
        impl.atomic_add(buf, 0, "d", 1e308)
    impl.atomic_store(buf, 0, "d", math.inf)  # infinities already present propagate
    assert impl.atomic_add(buf, 0, "d", 1.0) == math.inf


def test_add_bool_raises_type_error(impl):
    with pytest.raises(TypeError, match="'\\?'"):
        impl.atomic_add(bytearray(1), 0, "?", 1)


@pytest.mark.parametrize("code, value", [
    ("b", 128), ("b", -129), ("B", 256), ("B", -1), ("h", 1 << 15), ("H", 1 << 16),
    ("i", 1 << 31), ("I", -1), ("q", 1 << 63), ("Q", 1 << 64), ("Q", -1), ("?", 2),
    ("f", 1e39), ("f", -1e39),
])
def test_store_out_of_range(impl, code, value):
    buf = bytearray(8)
    with pytest.raises(OverflowError, match=r"out of range for code .*\.\."):
        impl.atomic_store(buf, 0, code, value)
    with pytest.raises(OverflowError):
        impl.atomic_cas(buf, 0, code, value, 0)
    with pytest.raises(OverflowError):
        impl.atomic_cas(buf, 0, code, 0, value)
    assert buf == bytearray(8)


def test_float32_accepts_inf_and_nan(impl):
    buf = bytearray(4)
    impl.atomic_store(buf, 0, "f", math.inf)
    assert impl.atomic_load(buf, 0, "f") == math.inf
    impl.atomic_store(buf, 0, "f", math.nan)
    assert math.isnan(impl.atomic_load(buf, 0, "f"))


@pytest.mark.parametrize("code, value", [("q", 1.5), ("i", "1"), ("d", "1.5"), ("f", None), ("B", 2.0)])
def test_wrong_value_types(impl, code, value):
    with pytest.raises(TypeError):
        impl.atomic_store(bytearray(8), 0, code, value)
    with pytest.raises(TypeError):
        impl.atomic_add(bytearray(8), 0, code, value)


def test_numpy_scalars(impl):
    np = pytest.importorskip("numpy")
    buf = bytearray(8)
    impl.atomic_store(buf, 0, "q", np.int64(7))
    assert impl.atomic_add(buf, 0, "q", np.uint8(3)) == 10
    with pytest.raises(TypeError):  # no silent truncation of 2.5 to 2
        impl.atomic_store(buf, 0, "q", np.float32(2.5))
    impl.atomic_store(buf, 0, "d", np.float32(2.5))
    assert impl.atomic_load(buf, 0, "d") == 2.5


@pytest.mark.parametrize("op, args", [
    ("atomic_load", ()), ("atomic_store", (1,)), ("atomic_cas", (0, 1)), ("atomic_add", (1,)),
])
@pytest.mark.parametrize("offset", [-1, 5, 6, 100, 1 << 70])
def test_bounds(impl, op, args, offset):
    buf = bytearray(12)
    with pytest.raises(IndexError, match=rf"offset {offset}\b.*\b12 bytes"):
        getattr(impl, op)(buf, offset, "q", *args)
    assert buf == bytearray(12)


def test_bounds_last_valid_offset(impl):
    buf = bytearray(12)
    impl.atomic_store(buf, 4, "q", -1)
    assert impl.atomic_load(buf, 4, "q") == -1
    assert impl.atomic_load(buf, 11, "B") == 255


def test_bounds_empty_buffer(impl):
    with pytest.raises(IndexError, match="offset 0"):
        impl.atomic_load(b"", 0, "B")


@pytest.mark.parametrize("op, args", [("atomic_store", (1,)), ("atomic_cas", (0, 1)), ("atomic_add", (1,))])
@pytest.mark.parametrize("make", [bytes, lambda n: memoryview(bytearray(n)).toreadonly()])
def test_read_only_buffers_rejected(impl, op, args, make):
    with pytest.raises(TypeError, match="cannot write to a read-only buffer"):
        getattr(impl, op)(make(8), 0, "q", *args)


def test_non_contiguous_buffer_rejected(impl):
    with pytest.raises(BufferError):
        impl.atomic_load(memoryview(bytearray(32))[::2], 0, "q")


@pytest.mark.parametrize("code, exc", [("x", ValueError), ("qq", ValueError), (b"q", TypeError), (113, TypeError), (["q"], TypeError)])
def test_bad_codes(impl, code, exc):
    with pytest.raises(exc):
        impl.atomic_load(bytearray(8), 0, code)
    with pytest.raises(exc):
        impl.atomic_add(bytearray(8), 0, code, 1)


def test_offset_must_be_an_integer(impl):
    with pytest.raises(TypeError):
        impl.atomic_load(bytearray(8), 0.0, "B")


def test_atomics_on_mmap(impl):
    with mmap.mmap(-1, 64) as m:
        impl.atomic_store(m, 8, "q", 41)
        assert impl.atomic_add(m, 8, "q", 1) == 42
        assert struct.unpack_from("=q", m, 8)[0] == 42


# --------------------------------------------------------------------------
# Identical errors in both implementations
# --------------------------------------------------------------------------

BAD_CALLS = [
    ("atomic_add", (bytearray(16), 1, "B", -1)),
    ("atomic_add", (bytearray(16), 1, "q", 1 << 64)),
    ("atomic_add", (bytearray(16), 16, "q", 1 << 64)),
    ("atomic_add", (bytearray(16), 1 << 70, "q", 1)),
    ("atomic_add", (bytearray(16), 0, "?", 1)),
    ("atomic_add", (bytearray(16), 0, "x", 1)),
    ("atomic_add", (bytearray(16), 0, b"q", 1)),
    ("atomic_add", (bytearray(16), 0, "f", 1e300)),
    ("atomic_add", (bytearray(16), 0, "d", "x")),
    ("atomic_add", (bytes(16), 0, "q", 1)),
    ("atomic_add", (memoryview(bytearray(16))[::2], 0, "q", 1)),
    ("atomic_add", ("abc", 0, "q", 1)),
    ("atomic_load", (bytes(16), 9, "q")),
    ("atomic_load", (bytes(16), 1.0, "i")),
    ("atomic_load", (None, 0, "i")),
    ("atomic_store", (bytearray(16), 0, "Q", -1)),
    ("atomic_store", (bytearray(16), 100, "q", 1 << 63)),
    ("atomic_store", (bytearray(16), 0, "f", 1e39)),
    ("atomic_store", (bytearray(16), 0, "f", 10 ** 400)),
    ("atomic_store", (bytearray(16), 0, "d", [])),
    ("atomic_cas", (bytearray(16), 0, "h", 0, 1 << 15)),
    ("atomic_cas", (bytearray(16), 0, "h", 1 << 15, "x")),
    ("atomic_cas", (bytearray(16), 0, "f", "a", 1.5)),
    ("atomic_cas", (bytearray(16), 99, "d", 1.0, 1.5)),
    ("xxh64", (memoryview(b"abcdef")[::2],)),
    ("xxh64", (b"abc", -1)),
    ("xxh64", (bytearray(b"abc"), 1 << 64)),
    ("xxh32", (b"abc", 1 << 32)),
    ("xxh32", ("abc",)),
    ("hash_float", ("x",)),
    ("hash_float", (10 ** 400,)),
    ("fold_hashes", (0, [1, 2, 3, 4.5])),
    ("fold_hashes", (0, 5)),
]


def _outcome(func, args):
    try:
        return ("ok", func(*args))
    except Exception as exc:  # noqa: BLE001 - comparing arbitrary failures
        return (type(exc), str(exc))


@NATIVE_ONLY
@pytest.mark.parametrize("name, args", BAD_CALLS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD_CALLS)])
def test_same_errors(name, args):
    copies = [tuple(bytearray(a) if isinstance(a, bytearray) else a for a in args) for _ in range(2)]
    native = _outcome(getattr(_native, name), copies[0])
    pure = _outcome(getattr(fallback, name), copies[1])
    assert native[0] != "ok"
    assert native == pure


# --------------------------------------------------------------------------
# Concurrency
# --------------------------------------------------------------------------

@pytest.mark.parametrize("offset", [8, 11])  # aligned, and misaligned (spinlock path)
def test_threaded_adds_are_atomic(impl, offset):
    buf = bytearray(32)
    threads_n, adds = 4, 20000

    def work():
        for _ in range(adds):
            impl.atomic_add(buf, offset, "q", 1)

    threads = [threading.Thread(target=work) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert impl.atomic_load(buf, offset, "q") == threads_n * adds


def _add_in_child(shared, adds):
    for _ in range(adds):
        _native.atomic_add(shared, 64, "q", 1)


@NATIVE_ONLY
@pytest.mark.skipif(sys.platform == "win32", reason="needs fork")
def test_multiprocess_adds_are_atomic():
    shared = mmap.mmap(-1, 4096)  # anonymous MAP_SHARED: visible after fork
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add_in_child, args=(shared, 5000)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert _native.atomic_load(shared, 64, "q") == 15000
    shared.close()


# --------------------------------------------------------------------------
# Implementation selection
# --------------------------------------------------------------------------

def test_native_flag_is_bool():
    assert isinstance(_native.NATIVE, bool)


def test_pure_environment_variable_selects_fallback():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = "import sharedbuffers._native as n; print(n.NATIVE, n.xxh64 is n.fallback.xxh64)"
    env = dict(os.environ, SHAREDBUFFERS_PURE="1", PYTHONPATH=root)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root,
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


# --------------------------------------------------------------------------
# Sorted-index search (id mappers)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, M64), max_size=300), st.integers(0, M64), st.sampled_from([2, 3]),
       st.integers(0, 7))
def test_lower_bound_matches_bisect(impl, keys, probe, columns, padding):
    import bisect
    keys.sort()
    rows = b"".join(struct.pack("=%dQ" % columns, key, *([0] * (columns - 1))) for key in keys)
    handle = impl.search_handle(b"\x00" * padding + rows)
    for wanted in keys[:10] + [probe, 0, M64]:
        assert impl.lower_bound(handle, padding, len(keys), columns, 8, wanted) == bisect.bisect_left(keys, wanted)


skewed_keys = st.one_of(
    st.lists(st.integers(0, 40), min_size=1, max_size=2000),                                  # many duplicates
    st.lists(st.integers(0, 64).map(lambda bits: (1 << bits) - 1), min_size=1, max_size=400),  # exponential
    st.lists(st.sampled_from([0, 1, M64 - 1, M64]), min_size=1, max_size=500),                # extremes
    st.integers(50, 3000).map(lambda n: [i * i * i for i in range(n)]),                      # convex
)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=150, deadline=None)
@given(skewed_keys, st.lists(st.integers(0, M64), max_size=5))
def test_lower_bound_matches_bisect_on_skewed_keys(impl, keys, probes):
    """Interpolation guesses go wrong on skewed data; the answer must not."""
    import bisect
    keys.sort()
    handle = impl.search_handle(struct.pack("=%dQ" % (2 * len(keys)), *[v for key in keys for v in (key, 0)]))
    for wanted in keys[::max(1, len(keys) // 20)] + [key + 1 for key in keys[:5]] + probes:
        wanted = min(wanted, M64)
        assert impl.lower_bound(handle, 0, len(keys), 2, 8, wanted) == bisect.bisect_left(keys, wanted)


def test_lower_bound_on_32_bit_rows(impl):
    keys = [1, 5, 5, 9, 2 ** 32 - 1]
    handle = impl.search_handle(b"".join(struct.pack("=II", key, 0) for key in keys))
    assert [impl.lower_bound(handle, 0, 5, 2, 4, probe) for probe in (0, 5, 6, 2 ** 32 - 1)] == [0, 1, 3, 4]


def test_lower_bound_checks_that_the_rows_fit(impl):
    with pytest.raises(IndexError, match="does not fit"):
        impl.lower_bound(impl.search_handle(bytes(40)), 8, 3, 2, 8, 1)


# --------------------------------------------------------------------------
# Id-mapper lookups (FORMAT.md §8): one call per lookup, native and fallback alike
# --------------------------------------------------------------------------

def _stored_key(key, compress=False):
    from sharedbuffers.types.strings import encode_payload
    if not compress:
        return encode_payload(key)
    import lz4.block
    data = lz4.block.compress(key)
    return struct.pack("=H", 0x8000 | len(data)) + data


def _string_mapper(rows, width=8, padding=0, compressed=()):
    """A string mapper written by hand, so rows may share a hash with different keys:
    ``rows`` are (hash, key bytes, value); the mapper starts at ``padding``.
    Returns (buffer, mapper offset, index offset, row count)."""
    head = bytearray(16)
    cells = []
    for number, (digest, key, value) in enumerate(sorted(rows, key=lambda row: row[0])):
        cells.append((digest, len(head), value))
        head += _stored_key(key, number in compressed)
    struct.pack_into("=QQ", head, 0, len(cells), len(head))
    code = "=3Q" if width == 8 else "=3I"
    index = b"".join(struct.pack(code, *row) for row in cells)
    return b"\xee" * padding + bytes(head) + index, padding, padding + len(head), len(cells)


def _numeric_mapper(rows, width=8, padding=0):
    code = "=2Q" if width == 8 else "=2I"
    index = b"".join(struct.pack(code, *row) for row in sorted(rows))
    return b"\xee" * padding + struct.pack("=QQ", len(rows), 16) + index, padding, padding + 16, len(rows)


def _both_handles(mapper, columns, width):
    buffer, mapper_offset, index_offset, count = mapper
    return [impl.idmap_handle(buffer, mapper_offset, index_offset, count, columns, width)
            for impl in (_native, fallback)]


def _hash(key, width):
    return fallback.xxh64(key) if width == 8 else fallback.xxh32(key)


@st.composite
def string_mappers(draw):
    """(rows, width, padding): distinct keys with their real hash, plus decoy rows that share
    a key's hash but hold other bytes (collisions, as only a forged hash can make them)."""
    width = draw(st.sampled_from([4, 8]))
    keys = draw(st.lists(st.binary(max_size=20), unique=True, max_size=12))
    value = st.integers(0, (1 << (8 * width)) - 1)
    rows = [(_hash(key, width), key, draw(value)) for key in keys]
    for key in draw(st.lists(st.sampled_from(keys), max_size=6)) if keys else []:
        rows.append((_hash(key, width), key + b"\x00decoy", draw(value)))
    return rows, width, draw(st.integers(0, 9))


@settings(max_examples=120, deadline=None)
@given(string_mappers(), st.lists(st.binary(max_size=20), max_size=4), st.integers(0, 3))
def test_idmap_string_lookups_agree_with_the_fallback_and_a_model(mapper, probes, start_row):
    rows, width, padding = mapper
    native, pure = _both_handles(_string_mapper(rows, width, padding), 3, width)
    ordered = sorted(rows, key=lambda row: row[0])
    for key in [row[1] for row in rows] + probes:
        matches = [number * 3 + 2 for number, (digest, stored, _) in enumerate(ordered)
                   if number >= start_row and digest == _hash(key, width) and stored == key]
        expected = matches[0] if matches else fallback.IDMAP_MISSING
        assert _native.idmap_find_bytes(native, key, len(key), start_row) == expected
        assert fallback.idmap_find_bytes(pure, key, len(key), start_row) == expected
        assert _native.idmap_get_bytes(native, key, len(key)) == fallback.idmap_get_bytes(pure, key, len(key))


@settings(max_examples=120, deadline=None)
@given(st.sampled_from([4, 8]), st.lists(st.tuples(st.integers(0, 40), st.integers(0, 2 ** 32 - 1)), max_size=30),
       st.lists(st.integers(0, 2 ** 64 - 1), max_size=4), st.integers(0, 9), st.integers(0, 5))
def test_idmap_numeric_lookups_agree_with_the_fallback_and_a_model(width, rows, probes, padding, start_row):
    native, pure = _both_handles(_numeric_mapper(rows, width, padding), 2, width)
    ordered = sorted(rows)
    for key in [key for key, _ in rows] + probes + [0, 41]:
        matches = [number * 2 + 1 for number, (stored, _) in enumerate(ordered)
                   if number >= start_row and stored == key]
        expected = matches[0] if matches else fallback.IDMAP_MISSING
        assert _native.idmap_find(native, key, start_row) == fallback.idmap_find(pure, key, start_row) == expected
        assert _native.idmap_get(native, key) == fallback.idmap_get(pure, key)


@settings(max_examples=60, deadline=None)
@given(string_mappers(), st.lists(st.binary(max_size=20), max_size=8))
def test_idmap_batch_string_lookups_agree_with_single_ones(mapper, probes):
    import numpy
    rows, width, padding = mapper
    handles = _both_handles(_string_mapper(rows, width, padding), 3, width)
    keys = [row[1] for row in rows] + probes
    data = b"".join(keys)
    ends = numpy.cumsum([len(key) for key in keys], dtype=numpy.uint64)
    spans = numpy.stack([ends - numpy.array([len(key) for key in keys], numpy.uint64), ends], axis=1) \
        if keys else numpy.zeros((0, 2), numpy.uint64)
    outcomes = []
    for impl, handle in zip((_native, fallback), handles):
        values, status = numpy.empty(len(keys), numpy.uint64), numpy.empty(len(keys), numpy.int8)
        assert impl.idmap_find_many_bytes(handle, data, spans, values, status) == len(keys)
        outcomes.append((values.tolist(), status.tolist()))
    assert outcomes[0] == outcomes[1]
    for key, value, status in zip(keys, *outcomes[0]):
        cell = fallback.idmap_find_bytes(handles[1], key, len(key), 0)
        assert (value, status) == ((handles[1].cells[cell], fallback.IDMAP_FOUND) if cell >= 0
                                   else (0, fallback.IDMAP_NOT_FOUND))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([4, 8]), st.lists(st.tuples(st.integers(0, 2 ** 33), st.integers(0, 2 ** 32 - 1)), max_size=30),
       st.lists(st.integers(0, 2 ** 64 - 1), max_size=8))
def test_idmap_batch_numeric_lookups_agree_with_single_ones(width, rows, probes):
    import numpy
    rows = [(key % (1 << (8 * width)), value) for key, value in rows]
    handles = _both_handles(_numeric_mapper(rows, width), 2, width)
    keys = numpy.array([key for key, _ in rows] + probes, numpy.uint64)
    outcomes = []
    for impl, handle in zip((_native, fallback), handles):
        values, status = numpy.empty(len(keys), numpy.uint64), numpy.empty(len(keys), numpy.int8)
        assert impl.idmap_find_many(handle, keys, values, status) == len(keys)
        outcomes.append((values.tolist(), status.tolist()))
    assert outcomes[0] == outcomes[1]
    for key, value, status in zip(keys.tolist(), *outcomes[0]):
        cell = fallback.idmap_find(handles[1], key, 0)
        assert (value, status) == ((handles[1].cells[cell], fallback.IDMAP_FOUND) if cell >= 0
                                   else (0, fallback.IDMAP_NOT_FOUND))


def test_idmap_compressed_stored_keys_are_left_to_python(impl):
    key = b"long key " * 100
    buffer, *geometry = _string_mapper([(_hash(key, 8), key, 5)], compressed={0})
    handle = impl.idmap_handle(buffer, *geometry, 3, 8)
    assert impl.idmap_find_bytes(handle, key, len(key), 0) == impl.IDMAP_DEFER
    assert impl.idmap_get_bytes(handle, key, len(key)) == impl.IDMAP_DEFER


def test_idmap_long_stored_keys_are_compared(impl):
    import random
    key = random.Random(1).randbytes(40000)     # incompressible, past 0x7FFF: the 10-byte header
    buffer, *geometry = _string_mapper([(_hash(key, 8), key, 5)])
    handle = impl.idmap_handle(buffer, *geometry, 3, 8)
    assert impl.idmap_get_bytes(handle, key, len(key)) == 5
    assert impl.idmap_get_bytes(handle, key[:-1], len(key) - 1) == impl.IDMAP_MISSING


def test_idmap_get_gives_values_beyond_63_bits_as_wide(impl):
    buffer, *geometry = _numeric_mapper([(7, 2 ** 64 - 1), (8, 2 ** 63 - 1)])
    handle = impl.idmap_handle(buffer, *geometry, 2, 8)
    assert impl.idmap_get(handle, 7) == impl.IDMAP_WIDE and impl.idmap_find(handle, 7, 0) == 1
    assert impl.idmap_get(handle, 8) == 2 ** 63 - 1


def test_idmap_32_bit_numeric_lookups_miss_keys_beyond_32_bits(impl):
    buffer, *geometry = _numeric_mapper([(5, 1)], width=4)
    handle = impl.idmap_handle(buffer, *geometry, 2, 4)
    assert impl.idmap_get(handle, 5 + 2 ** 32) == impl.IDMAP_MISSING


@pytest.mark.parametrize("key", [-1, 2 ** 64])
def test_idmap_numeric_keys_outside_64_bits_raise_overflow_error(impl, key):
    buffer, *geometry = _numeric_mapper([(5, 1)])
    with pytest.raises(OverflowError):
        impl.idmap_get(impl.idmap_handle(buffer, *geometry, 2, 8), key)


@pytest.mark.parametrize("geometry, error", [
    ((0, 16, 4, 2, 8), IndexError),         # rows beyond the buffer
    ((0, 80, 0, 2, 8), IndexError),         # index past the end
    ((70, 16, 0, 2, 8), IndexError),        # mapper past the end
    ((0, 16, 1, 4, 8), ValueError),         # four columns
    ((0, 16, 1, 3, 2), ValueError),         # two-byte cells
])
def test_idmap_handle_refuses_a_geometry_outside_the_buffer(impl, geometry, error):
    with pytest.raises(error):
        impl.idmap_handle(bytes(64), *geometry)


def _corrupt_mapper(key_offset=None, key_bytes=None):
    """A one-row string mapper whose row points at ``key_offset`` or stores ``key_bytes``."""
    key = b"k"
    buffer, mapper_offset, index_offset, count = _string_mapper([(_hash(key, 8), key, 9)], padding=3)
    buffer = bytearray(buffer)
    if key_offset is not None:
        struct.pack_into("=Q", buffer, index_offset + 8, key_offset)
    if key_bytes is not None:
        buffer[mapper_offset + 16:index_offset] = key_bytes[:index_offset - mapper_offset - 16].ljust(
            index_offset - mapper_offset - 16, b"\x00")
    return bytes(buffer), mapper_offset, index_offset, count


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.integers(0, 80), st.integers(0, 2 ** 64 - 1)).map(lambda offset: _corrupt_mapper(key_offset=offset))
       | st.binary(min_size=3, max_size=3).map(lambda data: _corrupt_mapper(key_bytes=data)))
def test_idmap_corrupt_key_data_gives_the_same_status_native_and_fallback(mapper):
    native, pure = _both_handles(mapper, 3, 8)
    native_result = _native.idmap_get_bytes(native, b"k", 1)
    assert native_result == fallback.idmap_get_bytes(pure, b"k", 1)
    assert native_result in (9, fallback.IDMAP_MISSING, fallback.IDMAP_DEFER, fallback.SB_E_BOUNDS)


@pytest.mark.parametrize("offset, why", [(2 ** 64 - 1, "offset wraps around"), (60, "header past the end"),
                                         (45, "data past the end")])
def test_idmap_key_offsets_outside_the_buffer_are_a_bounds_status(impl, offset, why):
    handle = impl.idmap_handle(*_corrupt_mapper(key_offset=offset), 3, 8)
    assert impl.idmap_get_bytes(handle, b"k", 1) == fallback.SB_E_BOUNDS, why


def test_idmap_a_long_header_claiming_more_than_the_buffer_is_a_bounds_status(impl):
    handle = impl.idmap_handle(*_corrupt_mapper(key_bytes=b"\xff\x7f\xff"), 3, 8)
    assert impl.idmap_find_bytes(handle, b"k", 1, 0) == fallback.SB_E_BOUNDS


def test_idmap_batch_stops_at_the_key_that_meets_corrupt_data(impl):
    import numpy
    handle = impl.idmap_handle(*_corrupt_mapper(key_offset=2 ** 40), 3, 8)
    spans = numpy.array([[0, 1], [1, 2], [0, 1]], numpy.uint64)
    values, status = numpy.zeros(3, numpy.uint64), numpy.zeros(3, numpy.int8)
    assert impl.idmap_find_many_bytes(handle, b"zk", spans, values, status) == 1
    assert status[0] == impl.IDMAP_NOT_FOUND


def test_idmap_batch_refuses_spans_outside_the_data(impl):
    import numpy
    handle = impl.idmap_handle(*_string_mapper([]), 3, 8)
    values, status = numpy.zeros(1, numpy.uint64), numpy.zeros(1, numpy.int8)
    for spans in ([[0, 3]], [[2, 1]]):
        assert impl.idmap_find_many_bytes(handle, b"ab", numpy.array(spans, numpy.uint64), values, status) \
            == fallback.SB_E_RANGE


def test_idmap_batch_refuses_outputs_shorter_than_the_keys(impl):
    import numpy
    handle = impl.idmap_handle(*_numeric_mapper([(1, 2)]), 2, 8)
    with pytest.raises(ValueError, match="2 keys need"):
        impl.idmap_find_many(handle, numpy.zeros(2, numpy.uint64), numpy.zeros(1, numpy.uint64),
                             numpy.zeros(2, numpy.int8))


def test_idmap_handle_keeps_its_buffer_alive():
    import gc
    buffer, *geometry = _numeric_mapper([(3, 4)])
    handle = _native.idmap_handle(bytearray(buffer), *geometry, 2, 8)
    gc.collect()
    assert _native.idmap_get(handle, 3) == 4


@NATIVE_ONLY
def test_idmap_result_codes_match_the_kernels():
    from sharedbuffers._native import _kernels
    lib = _kernels.lib
    assert (lib.SB_IDMAP_MISSING, lib.SB_IDMAP_DEFER, lib.SB_IDMAP_WIDE, lib.SB_IDMAP_FOUND,
            lib.SB_IDMAP_NOT_FOUND, lib.SB_IDMAP_DEFERRED, lib.SB_E_BOUNDS, lib.SB_E_RANGE, lib.SB_E_CODE) == (
        fallback.IDMAP_MISSING, fallback.IDMAP_DEFER, fallback.IDMAP_WIDE, fallback.IDMAP_FOUND,
        fallback.IDMAP_NOT_FOUND, fallback.IDMAP_DEFERRED, fallback.SB_E_BOUNDS, fallback.SB_E_RANGE,
        fallback.SB_E_CODE)
