"""``_stable_hash``: the hash 1.x stores in object id mappers and dicts (FORMAT.md §7).

It must give exactly 1.x's values, because files built by 1.x are looked up with it.  The
one place 1.x was not deterministic is a frozenset: it folds the element hashes in
iteration order, which for strings depends on the per-process hash seed, so a frozenset
key written by one process was often not found by another.  Here a frozenset's elements are
folded in a canonical order (ascending element hash, ties by value representation), which
equals 1.x's value whenever 1.x's own iteration order was already that order, and is the
same in every process.  Sets whose elements Python hashes without a seed (numbers, bools
and tuples of them) keep 1.x's iteration-order value, which 1.x computed reproducibly.
"""
import math

from . import _native

__all__ = ['stable_hash']

M64 = (1 << 64) - 1
TUPLE_SEED = 0x1692e9d3bfa120f4
FROZENSET_SEED = 0x71f86b2ef56cfd77
_INT64_MIN = -(1 << 63)
_INT64_LIMIT = 1 << 63

_xxh64 = _native.xxh64
_hash_float = _native.hash_float
_fold = _native.fold_hashes


def stable_hash(key):
    """The process-independent 64-bit hash of ``key`` (never 0).

    With the C module, ``_native/stable_hash.c`` hashes str, bytes, numbers, None and tuples
    of them, and calls this function for every other key.
    """
    kind = type(key)
    if kind is str:
        value = _xxh64(key.encode('utf-8'))
    elif kind is bytes:
        value = _xxh64(key)
    elif kind is int or kind is bool:
        value = key & M64
    elif key is None:
        return 1
    elif kind is float:
        value = _float_hash(key)
    elif kind is tuple:
        value = _fold(TUPLE_SEED, [stable_hash(item) for item in key])
    elif kind is frozenset or kind is set:
        value = _fold(FROZENSET_SEED, _canonical_element_hashes(key))
    else:
        value = _other_hash(key)
    return value or 1


def _float_hash(key):
    if math.isfinite(key):
        integral = int(key)
        if _INT64_MIN <= integral < _INT64_LIMIT and integral == key:
            return integral & M64
    return _hash_float(key)


_SEED_FREE = (int, float, bool)


def _seed_free(value):
    """True when CPython hashes ``value`` the same in every process (no str/bytes/None inside)."""
    if isinstance(value, _SEED_FREE):
        return True
    if isinstance(value, (tuple, frozenset)):
        return all(_seed_free(item) for item in value)
    return False


def _canonical_element_hashes(elements):
    hashes = [stable_hash(item) for item in elements]
    if all(_seed_free(item) for item in elements):
        return hashes           # 1.x's order: the set's own iteration order
    return sorted(hashes)


def _other_hash(key):
    """Subclasses and proxies of the hashable kinds hash like their base kind."""
    if isinstance(key, (str, bytes)):
        return _xxh64(key.encode('utf-8') if isinstance(key, str) else bytes(key))
    if isinstance(key, int):
        return int(key) & M64
    if isinstance(key, float):
        return _float_hash(float(key))
    if isinstance(key, tuple):
        return _fold(TUPLE_SEED, [stable_hash(item) for item in key])
    if isinstance(key, (frozenset, set)):
        return _fold(FROZENSET_SEED, _canonical_element_hashes(key))
    raise TypeError('unhashable type for a stable hash: %s' % (type(key).__name__,))


stable_hash_in_python = stable_hash
if _native.objects is not None:
    _native.objects.set_stable_hash(stable_hash_in_python)
    stable_hash = _native.objects.stable_hash      # noqa: F811 (the same function, in C)
