"""Searching and merging sorted numpy arrays: 1.x's ``bsearch`` helpers and ``index_merge``.

Users of 1.x kept their own sorted columns (ids, timestamps, the key column of a mapper's
index) next to the mapped structures and searched them with these helpers, so they stay
available from ``sharedbuffers.mapped_struct`` with the same names and arguments.

``bsearch(a, x)`` is ``bisect_left``: the number of elements of ``a`` that sort before ``x``.
In this module's Python code the search itself is numpy's ``searchsorted``; what is ours is
turning ``x`` into a value of the array's own dtype with the same answer.  Asking numpy with a
value of another type would make it cast the whole array (a copy of a mapped file per call),
and 1.x's C conversion truncated ``x`` instead, so ``bsearch(ints, 3.5)`` counted the 3s as
after it.  Here the answer is exact for every number, whatever the dtype:

* an integer beyond the dtype's range sorts after (or before) every element;
* a float in an integer array is rounded up (``e < 3.5`` exactly when ``e < 4``);
* a number that a float dtype cannot hold exactly is compared as the nearest float with the
  side that keeps the comparison exact;
* NaN sorts after everything, as ``numpy.sort`` places it.

With the C module, ``_native/searches.c`` (``numbers_bisect``) answers for native 1-D buffers
and int or float values, with the same exact comparisons and galloping; everything else, and
every error, is this module's Python code.

Other 1.x behaviour that was an accident is not kept: arrays in non-native byte order, and
strided views, are searched correctly (1.x read the raw bytes, or refused strided views).
"""
import math
import operator

from . import _native

__all__ = ['bsearch', 'hinted_bsearch', 'sorted_contains', 'hinted_sorted_contains', 'index_merge']

_SEARCHABLE_KINDS = frozenset('iuf')
_GALLOP_STEPS = 16


def _sorted_array(a):
    """``a`` as a 1-D numpy array of a searchable dtype (no copy of an array or a buffer)."""
    import numpy        # here, not at the top: importing sharedbuffers does not import numpy
    if not isinstance(a, numpy.ndarray):
        if isinstance(a, (list, tuple)):
            raise TypeError('bsearch searches numpy arrays and buffers, not %s (use the bisect module)'
                            % type(a).__name__)
        try:
            a = numpy.asarray(memoryview(a))
        except TypeError:
            raise TypeError('bsearch searches numpy arrays and buffers, not %s' % type(a).__name__) from None
    if a.ndim != 1:
        raise ValueError('bsearch searches 1-D arrays, not %d-D ones' % a.ndim)
    if a.dtype.kind not in _SEARCHABLE_KINDS or a.dtype.itemsize not in (1, 2, 4, 8) or (
            a.dtype.kind == 'f' and a.dtype.itemsize < 4):
        raise NotImplementedError('Unsupported array type %s: bsearch takes int8-64, uint8-64, float32 and float64'
                                  % a.dtype)
    return a


def _number(x):
    """``x`` as a Python int or float (TypeError for anything that is not a real number)."""
    import numpy
    if isinstance(x, (float, numpy.floating)):
        return float(x)
    try:
        return operator.index(x)
    except TypeError:
        raise TypeError('bsearch needs an int or a float, not %s' % type(x).__name__) from None


def _probe(dtype, x):
    """(value of ``dtype``, side) such that ``searchsorted(a, value, side)`` is ``bisect_left(a, x)``;
    value None: every element sorts before ``x`` (side 'end') or none does (side 'start')."""
    import numpy
    if dtype.kind == 'f':
        if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
            return dtype.type(x), 'left'         # numpy sorts NaN last: its first position
        largest = float(numpy.finfo(dtype).max)
        if x > largest:                          # only infinities sort after it
            return dtype.type(numpy.inf), 'left'
        if x < -largest:                         # only -inf sorts before it
            return dtype.type(-numpy.inf), 'right'
        value = dtype.type(x)
        # ``value`` is x or a float next to it.  Python compares floats and ints exactly: when
        # x was rounded down, the elements before x are those <= value; else those < value.
        return value, 'right' if float(value) < x else 'left'
    info = numpy.iinfo(dtype)
    if isinstance(x, float):
        if math.isnan(x) or x > info.max:
            return None, 'end'
        if x < info.min:
            return None, 'start'
        x = math.ceil(x)
    if x > info.max:
        return None, 'end'
    if x < info.min:
        return None, 'start'
    return dtype.type(x), 'left'


def _position(a, probe, side, low=0, high=None):
    if high is None:
        high = len(a)
    if probe is None:
        return high if side == 'end' else low
    return low + int(a[low:high].searchsorted(probe, side))


def _search_in_python(a, x, hint, contains):
    """What the C search (searches.c: numbers_bisect) answers, for every case it leaves to Python,
    errors included: the position of ``x`` (from ``hint`` when not None), or whether ``a`` holds it."""
    if hint is not None:
        hint = operator.index(hint)
        if hint < 0:
            raise OverflowError('hint must not be negative, got %d' % hint)
    a = _sorted_array(a)
    x = _number(x)
    probe, side = _probe(a.dtype, x)
    if hint is None or probe is None:
        position = _position(a, probe, side)
    else:
        position = _hinted_position(a, probe, side, hint)
    if contains:
        return position < len(a) and a[position].item() == x       # exact: Python numbers
    return position


# Each public function asks the C search first (one call, for native buffers and int or float
# values) and runs the Python search for whatever it declines.

def bsearch(a, x):
    """The number of elements of the sorted 1-D array ``a`` that sort before ``x`` (``bisect_left``).

    The first of equal elements when ``x`` is in ``a``.  ``a``: a numpy array (or a buffer) of
    int8-64, uint8-64, float32 or float64; other dtypes raise NotImplementedError."""
    native = _native.objects
    answer = NotImplemented if native is None else native.numbers_bisect(a, x, None, False)
    return answer if answer is not NotImplemented else _search_in_python(a, x, None, False)


def sorted_contains(a, x):
    """True when ``x`` is an element of the sorted 1-D array ``a`` (see :func:`bsearch`)."""
    native = _native.objects
    answer = NotImplemented if native is None else native.numbers_bisect(a, x, None, True)
    return answer if answer is not NotImplemented else _search_in_python(a, x, None, True)


def hinted_bsearch(a, x, hint):
    """:func:`bsearch`, starting from position ``hint`` (where the answer is expected).

    Searches of nearby values (ascending keys, a previous answer as the hint) look at a few
    elements around the hint instead of the whole array: it checks the hint, then gallops away
    from it (1, 2, 4... elements) to bracket the answer, and bisects only the bracket.  The
    answer is :func:`bsearch`'s whatever the hint; a hint past the end counts as the end, and a
    negative one raises OverflowError (as in 1.x)."""
    native = _native.objects
    answer = NotImplemented if native is None else native.numbers_bisect(a, x, hint, False)
    return answer if answer is not NotImplemented else _search_in_python(a, x, hint, False)


def hinted_sorted_contains(a, x, hint):
    """:func:`sorted_contains`, searching from ``hint`` as :func:`hinted_bsearch` does."""
    native = _native.objects
    answer = NotImplemented if native is None else native.numbers_bisect(a, x, hint, True)
    return answer if answer is not NotImplemented else _search_in_python(a, x, hint, True)


def _hinted_position(a, probe, side, hint):
    count = len(a)
    if count == 0:
        return 0
    hint = min(hint, count - 1)
    nan_probe = probe != probe

    def before(index):          # element ``index`` sorts before x (numpy's order: NaN last)
        element = a[index]
        if side == 'left':
            return element < probe or (nan_probe and element == element)
        return element <= probe

    if not before(hint):
        high, step = hint, 1        # the answer is at most the hint: gallop down
        for _ in range(_GALLOP_STEPS):
            low = high - step
            if low < 0 or before(low):
                return _position(a, probe, side, max(low, 0), high)
            high, step = low, step * 2
        return _position(a, probe, side, 0, high)
    low, step = hint + 1, 1         # above the hint: gallop up
    for _ in range(_GALLOP_STEPS):
        high = low + step
        if high > count or not before(high - 1):
            return _position(a, probe, side, low, min(high, count))
        low, step = high, step * 2
    return _position(a, probe, side, low, count)


def _index_matrix(index, name):
    import numpy
    if not isinstance(index, numpy.ndarray):
        raise TypeError('index_merge merges numpy arrays; %s is %s' % (name, type(index).__name__))
    if index.ndim != 2:
        raise ValueError('Indices must be two-dimensional: %s has %d dimensions' % (name, index.ndim))
    if index.shape[1] != 2:
        raise ValueError('Indices must be N x 2 matrices: %s is %d x %d' % ((name,) + index.shape))
    if index.dtype.kind not in _SEARCHABLE_KINDS:
        raise NotImplementedError('Unsupported index type %s' % index.dtype)
    return index


def index_merge(index1, index2, dest):
    """Merge two N x 2 index matrices sorted by (column 0, column 1) into ``dest``; returns the rows written.

    The rows of both, in (column 0, column 1) order; equal rows keep ``index1``'s first.  An
    input that is not sorted raises ValueError naming it and the row (1.x merged it anyway;
    ``dest`` may then hold part of the merge).
    The merge runs in C without the GIL when compiled (``_native/index_merge.c``).
    ``dest`` must have room for every row (1.x silently wrote only what fitted) and must not
    share memory with either input (NotImplementedError, as in 1.x: the merge is not in
    place).  All three must have the same dtype."""
    import numpy
    index1 = _index_matrix(index1, 'index1')
    index2 = _index_matrix(index2, 'index2')
    dest = _index_matrix(dest, 'dest')
    if not (index1.dtype == index2.dtype == dest.dtype):
        raise ValueError('Incompatible indexes: %s, %s and %s (all three must have one dtype)'
                         % (index1.dtype, index2.dtype, dest.dtype))
    if not dest.flags.writeable:
        raise ValueError('dest is read-only')
    if numpy.may_share_memory(dest, index1) or numpy.may_share_memory(dest, index2):
        raise NotImplementedError('In-place merge not implemented, destination must not overlap')
    total = len(index1) + len(index2)
    if len(dest) < total:
        raise ValueError('dest holds %d rows; merging needs %d' % (len(dest), total))
    native = _native.objects
    if native is not None:
        written = native.index_merge(index1, index2, dest)
        if written is not NotImplemented:
            return written
    for number, index in ((1, index1), (2, index2)):
        row = _first_unsorted_row(index)
        if row:
            raise ValueError('index%d is not sorted: row %d sorts before row %d' % (number, row, row - 1))
    rows = numpy.concatenate((index1, index2))
    # a stable sort of two sorted runs is their merge: equal rows keep index1's first
    rows = rows[numpy.lexsort((rows[:, 1], rows[:, 0]))]
    dest[:total] = rows
    return total


def _first_unsorted_row(index):
    """The first row that sorts before the row above it (numpy's order: NaN last), or 0."""
    import numpy
    if len(index) < 2:
        return 0
    keys, values = index[:, 0], index[:, 1]

    def less(left, right):
        if index.dtype.kind != 'f':
            return left < right
        return (left < right) | (numpy.isnan(right) & ~numpy.isnan(left))

    def same(left, right):
        if index.dtype.kind != 'f':
            return left == right
        return (left == right) | (numpy.isnan(left) & numpy.isnan(right))

    above_keys, above_values, below_keys, below_values = keys[:-1], values[:-1], keys[1:], values[1:]
    out_of_order = less(below_keys, above_keys) | (same(below_keys, above_keys) & less(below_values, above_values))
    rows = numpy.flatnonzero(out_of_order)
    return int(rows[0]) + 1 if len(rows) else 0
