"""Typed mappings: keys to struct values, in one file (FORMAT.md §11).

    0            an id mapper (any kind) from key to value index
                 zero padding to a multiple of 32 (file position)
    values       a typed array (§10) of the values
    end - 8      u64 footer: where the values start, relative to the mapping

A mapping is found from its end, so readers need its size (``map_file(f, offset, size)``;
by default it runs to the end of the file or buffer).  Several mappings can sit at any
offsets of one file.

Values are deduplicated by their packed bytes (a bounded LRU of ``value_cache_size``
entries): equal bytes are the same value, so two values that merely compare equal (1 and
True, or objects with a loose ``__eq__``) are never merged, as 1.x's cache did.
"""
import collections
import struct

from .. import _native
from ..buffers import as_byte_buffer
from .filemaps import MappedLifetime, temporary_file, write_destination
from .mapper_views import MapperItemsView, MapperValuesView

__all__ = ['MappedMappingProxyBase', 'MappedMultiMappingProxyBase']

_FOOTER = struct.Struct('=Q')
_COPY_CHUNK = 1 << 20


class _PackedValues:
    """Distinct values, packed once: their bytes are both the dedup key and what the array stores."""

    def __init__(self, schema, cache_size):
        self.schema = schema
        self.cache = collections.OrderedDict()
        self.cache_size = cache_size
        self.pending = []
        self.count = 0

    def index_of(self, value):
        data = self.schema.pack(value)
        index = self.cache.get(data)
        if index is not None:
            self.cache.move_to_end(data)
            return index
        index = self.count
        self.count += 1
        self.pending.append(data)
        self.cache[data] = index
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return index


class MappedMappingProxyBase(MappedLifetime):
    """A read-only mapping from keys to struct proxies; subclass it and set ``IdMapper`` and ``ValueArray``."""

    IdMapper = None
    ValueArray = None
    multi = False

    @classmethod
    def build(cls, initializer, destfile=None, tempdir=None, idmap=None, value_array_kwargs=None,
              id_mapper_kwargs=None, value_cache_size=1024, return_mapper=True, read_only=True, memory_budget=None):
        """Write a mapping of ``initializer`` (a dict or an iterable of (key, value) pairs).

        Builds in bounded memory: the distinct values stream into a temporary typed array while
        the keys stream into the id mapper, whose rows beyond ``memory_budget`` bytes (default
        64 MiB) are sorted in runs in ``tempdir`` (object-keyed mappings hold their keys).

        The arguments are 1.x's, in its order.  Each value is packed on its own and a value
        packed to the same bytes as one of the last ``value_cache_size`` is stored once.  So
        ``idmap`` (in 1.x a map shared by the values, also given as ``value_array_kwargs``'s
        ``idmap``) has nothing to share: it is accepted, must be None or a dict, and is not
        filled.  ``id_mapper_kwargs`` are the id mapper's build options
        (``discard_duplicates``, ``discard_duplicate_keys``).
        """
        value_array_kwargs = dict(value_array_kwargs or {})
        unknown = set(value_array_kwargs) - {'idmap'}
        if unknown:
            raise TypeError('value_array_kwargs: the value array of a mapping takes no option %s'
                            % ', '.join(sorted(map(repr, unknown))))
        for given in (idmap, value_array_kwargs.get('idmap')):
            if given is not None and not isinstance(given, dict):
                raise TypeError('idmap must be None or a dict, not %s' % type(given).__name__)

        def write(output):
            cls._write(initializer, output, tempdir, value_cache_size, id_mapper_kwargs or {}, memory_budget)
        return write_destination(destfile, tempdir, write, cls.map_file, return_mapper, read_only)

    @classmethod
    def _write(cls, initializer, output, tempdir, value_cache_size, id_mapper_kwargs, memory_budget=None):
        pairs = initializer.items() if isinstance(initializer, dict) else initializer
        values = _PackedValues(cls.ValueArray.schema, value_cache_size)
        start = output.tell()
        with temporary_file(dir=tempdir) as array_file, \
                cls.IdMapper._open_writer(output, tempdir, memory_budget=memory_budget, **id_mapper_kwargs) as keys:
            def unique_values():
                for key, value in pairs:
                    keys.add(key, values.index_of(value))
                    while values.pending:
                        yield values.pending.pop(0)
            cls.ValueArray._write(unique_values(), array_file, cls.ValueArray.schema, None, tempdir, packed=True)
            keys.finish()
            gap = output.tell() % 32
            if gap:
                output.write(bytes(32 - gap))
            values_position = output.tell() - start
            array_file.seek(0)
            while True:
                chunk = array_file.read(_COPY_CHUNK)
                if not chunk:
                    break
                output.write(chunk)
        output.write(_FOOTER.pack(values_position))

    @classmethod
    def map_buffer(cls, buf, offset=0, size=None):
        """The mapping stored at ``offset`` of a buffer (running to its end unless ``size``)."""
        buffer = as_byte_buffer(buf)
        if size is None:
            size = len(buffer) - offset
        return cls(memoryview(buffer)[offset:offset + size])

    def __init__(self, view):
        size = len(view)
        if size < 8:
            raise ValueError('a mapping needs at least its 8-byte footer; got %d bytes' % (size,))
        values_position = _FOOTER.unpack_from(view, size - 8)[0]
        if not 16 <= values_position <= size - 8 - 56:
            raise ValueError('mapping footer points at +%d, outside the mapping (%d bytes): corrupt'
                             % (values_position, size))
        self.buf = view
        self.id_mapper = self.IdMapper(view, 0)
        self.value_array = self.ValueArray(view, values_position)
        self._mmap = None
        keys = vars(self.id_mapper).get('_keys')
        values = vars(self.value_array).get('_items')
        if keys is not None and values is not None and not self.multi and _answers_in_c(type(self)):
            # m[key] and m.get(key) in one C call: the id mapper's lookup, then the value's proxy
            self._keys = keys
            self._values = values

    def __len__(self):
        """The number of keys (1.x counted distinct values)."""
        return len(self.id_mapper)

    def _value(self, index):
        if not 0 <= index < len(self.value_array):
            raise ValueError('mapping key points at value %d of %d: corrupt' % (index, len(self.value_array)))
        return self.value_array[index]

    def get(self, key, default=None):
        index = self.id_mapper.get(key)
        if index is None:
            return default
        if self.multi or isinstance(index, list):
            return [self._value(one) for one in index]
        return self._value(index)

    def __getitem__(self, key):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    if _native.objects is not None:
        # Instances with `_keys` and `_values` answer found and missing keys without a Python
        # frame; the methods above run for every other case.
        get = _native.objects.KeyedMethod(_native.objects.MAPPING_GET, get)
        __getitem__ = _native.objects.KeyedMethod(_native.objects.MAPPING_GETITEM, __getitem__)

    def __contains__(self, key):
        return key in self.id_mapper

    has_key = __contains__

    def get_iter(self, key):
        return iter(self.get(key, []) if self.multi else ([self[key]] if key in self else []))

    # keys(), values() and items() are views (see mapper_views): len(), any number of walks,
    # `in` as a lookup.

    def keys(self):
        """A view of the keys: the id mapper's (a numeric one's converts to a numpy array)."""
        return self.id_mapper.keys()

    def iterkeys(self):
        return self.id_mapper._iter_keys()

    def __iter__(self):
        return self.id_mapper._iter_keys()

    def items(self):
        """A view of (key, value proxy) for every stored key (every value of a multi mapping's keys)."""
        return MapperItemsView(self)

    def _iter_items(self):
        for key, index in self.id_mapper._iter_items():
            yield key, self._value(index)

    def _row_count(self):
        return len(self.id_mapper)

    def iteritems(self, g_kw=None, idm_kw=None):
        """:meth:`items`, with 1.x's arguments: ``idm_kw`` goes to the id mapper's ``iteritems``
        (``make_sequential``: keys in stored order), ``g_kw`` to the value array's ``getter``."""
        if g_kw:
            self.value_array.getter(**g_kw)         # checks them; proxies here are fresh values
        for key, index in self.id_mapper.iteritems(**(idm_kw or {})):
            yield key, self._value(index)

    def values(self):
        """A view of the value proxy of every stored key, in the id mapper's row order."""
        return MapperValuesView(self)

    def _iter_values(self):
        for _, index in self.id_mapper._iter_items():
            yield self._value(index)

    def itervalues(self):
        return self._iter_values()


class MappedMultiMappingProxyBase(MappedMappingProxyBase):
    """A mapping whose keys have several values (a multi id mapper); ``get`` returns a list."""
    multi = True


_MISSING = object()


def _answers_in_c(cls):
    """True when ``cls`` keeps the C get/[] and the plain value read (no subclass override)."""
    keyed = getattr(_native.objects, 'KeyedMethod', None)
    return (keyed is not None and isinstance(cls.get, keyed) and isinstance(cls.__getitem__, keyed)
            and cls._value is MappedMappingProxyBase._value)
