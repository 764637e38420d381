"""Recognising numpy objects without importing numpy.

Importing numpy takes about 100 ms and several MB of private memory in every process (its
BLAS library and threads included): more than the rest of sharedbuffers together.  Opening
a file and reading it never needs numpy; columns, ``get_many``, builds and ndarray values
do, and those functions import it where they use it.

Code that only has to tell whether a value *is* a numpy object asks here.  A process in
which nobody imported numpy holds no numpy objects, so the answer comes from
``sys.modules`` and never costs an import.
"""
import sys

__all__ = ['ndarray_class', 'is_numpy_integer']


def ndarray_class():
    """``numpy.ndarray`` when numpy is imported, else None."""
    return getattr(sys.modules.get('numpy'), 'ndarray', None)


def is_numpy_integer(value):
    """True for numpy integer scalars (``numpy.uint64(5)``...), without importing numpy."""
    integer = getattr(sys.modules.get('numpy'), 'integer', None)
    return integer is not None and isinstance(value, integer)
