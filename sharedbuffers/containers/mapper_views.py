"""``keys()``, ``values()`` and ``items()`` of id mappers and mappings: views, as a dict's are.

1.x returned a different thing from each of these depending on the mapper: a numpy column, a
list, or a generator that could be read once (REFERENCE-API §1.10).  Code written for it takes
``len()`` of them, walks them twice, tests ``in``, or hands a numeric column to numpy.  A view
does all of that without reading the mapper into memory first:

* ``len()`` is known from the header (for a multi mapper's keys, distinct keys are counted once,
  on first ask, and remembered);
* every iteration reads the mapper afresh, in row order, so a view can be walked any number of
  times;
* ``key in mapper.keys()`` is a lookup, not a scan; keys views also have the set operations of
  ``dict.keys()`` (``&``, ``|``, ``-``, ``isdisjoint``...);
* the numeric columns (a numeric mapper's keys, every id mapper's values) convert to numpy
  arrays without a copy, through ``__array__``: ``numpy.asarray(mapper.values())`` is a
  read-only view of the mapped column, as 1.x's ``values()`` was.

The owner (an id mapper or a mapping) provides ``_iter_keys``, ``_iter_values``, ``_iter_items``,
``_key_count`` and ``_row_count``; numeric columns come from ``_key_column`` and
``_value_column``.
"""
import collections.abc

__all__ = ['MapperKeysView', 'NumericKeysView', 'MapperValuesView', 'ColumnValuesView', 'MapperItemsView']


def _as_array(column, dtype, copy):
    import numpy
    if dtype is not None and numpy.dtype(dtype) != column.dtype:
        if copy is False:
            raise ValueError('converting a mapped %s column to %s needs a copy' % (column.dtype, numpy.dtype(dtype)))
        return column.astype(dtype)
    return column.copy() if copy else column


class _Described:
    """``repr`` of a view: what it shows of which mapper, and how many."""
    __slots__ = ()
    _shows = None

    def __repr__(self):
        return '<%s of %s: %d>' % (self._shows, type(self._mapping).__name__, len(self))


class MapperKeysView(_Described, collections.abc.KeysView):
    """The keys of a mapper, each once: ``len``, iteration (row order), ``in`` (a lookup), set operations."""
    __slots__ = ()
    _shows = 'keys'

    def __len__(self):
        return self._mapping._key_count()

    def __iter__(self):
        return self._mapping._iter_keys()

    def __contains__(self, key):
        return key in self._mapping


class NumericKeysView(MapperKeysView):
    """Keys of a numeric mapper, which are also a numpy column (``numpy.asarray(view)``, no copy)."""
    __slots__ = ()

    def __array__(self, dtype=None, copy=None):
        return _as_array(self._mapping._key_column(), dtype, copy)


class MapperValuesView(_Described, collections.abc.ValuesView):
    """The value of every row (every key's, and every value of a multi mapper's keys): ``len``, iteration."""
    __slots__ = ()
    _shows = 'values'

    def __len__(self):
        return self._mapping._row_count()

    def __iter__(self):
        return self._mapping._iter_values()

    def __contains__(self, value):
        return any(stored is value or stored == value for stored in self)


class ColumnValuesView(MapperValuesView):
    """Values of an id mapper, which are also a numpy column (``numpy.asarray(view)``, no copy)."""
    __slots__ = ()

    def __array__(self, dtype=None, copy=None):
        return _as_array(self._mapping._value_column(), dtype, copy)


class MapperItemsView(_Described, collections.abc.ItemsView):
    """(key, value) of every row: ``len``, iteration, ``in`` (a lookup of the key), set operations."""
    __slots__ = ()
    _shows = 'items'

    def __len__(self):
        return self._mapping._row_count()

    def __iter__(self):
        return self._mapping._iter_items()

    def __contains__(self, item):
        try:
            key, value = item
        except (TypeError, ValueError):
            return False
        if key not in self._mapping:
            return False
        return any(stored is value or stored == value for stored in self._mapping.get_iter(key))
