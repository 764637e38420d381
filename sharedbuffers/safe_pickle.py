"""Loading pickled schemas without running arbitrary code.

Typed arrays and mappings written by 1.x embed a pickled ``Schema`` (FORMAT.md §10.2).
``pickle.loads`` on bytes read from a file would let whoever wrote the file run any code in
the reader, so schemas are loaded by :class:`SchemaUnpickler`, which resolves only the
globals a schema can legitimately name: the ``sharedbuffers.mapped_struct`` classes and a
few builtins (``__builtin__``/``builtins`` names, as Python 2 and 3 write them).  Any other
global raises :class:`SchemaPickleError` naming it.

The bytes come from a file, so a bad pickle is bad input like any other corrupt field:
:class:`SchemaPickleError` is a ``ValueError`` (what every reader raises for corrupt files)
as well as the ``pickle.UnpicklingError`` that callers of the pickle module expect.
"""
import builtins
import io
import pickle

from .schema import Schema

__all__ = ['SchemaUnpickler', 'SchemaPickleError', 'load_schema', 'ALLOWED_MAPPED_STRUCT_NAMES']

ALLOWED_MAPPED_STRUCT_NAMES = frozenset((
    'Schema', 'ubyte', 'byte', 'ushort', 'short', 'uint32', 'int32', 'uint64', 'int64', 'float32',
    'float64', 'uint8', 'int8', 'uint16', 'int16', 'double', 'mapped_bytes', 'mapped_unicode',
    'mapped_list', 'mapped_tuple', 'mapped_frozenset', 'mapped_dict', 'mapped_object',
    'mapped_datetime', 'mapped_date', 'mapped_decimal', 'proxied_ndarray', 'proxied_buffer',
    'proxied_list', 'proxied_tuple', 'proxied_dict', 'proxied_frozenset', 'mapped_object_with_schema',
    '__pyx_unpickle_mapped_object_with_schema',
))

# Builtins a schema's slot types or plain user_data can name; all are inert types.
_ALLOWED_BUILTINS = {
    'int': int, 'long': int, 'float': float, 'bool': bool, 'str': str, 'unicode': str,
    'bytes': bytes, 'bytearray': bytearray, 'object': object, 'list': list, 'tuple': tuple,
    'dict': dict, 'set': set, 'frozenset': frozenset, 'complex': complex, 'NoneType': type(None),
}


class SchemaPickleError(pickle.UnpicklingError, ValueError):
    """A pickled schema that is corrupt, or names a global outside the allow-list."""


class SchemaUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed globals."""

    def find_class(self, module, name):
        if module in ('__builtin__', 'builtins') and name in _ALLOWED_BUILTINS:
            return _ALLOWED_BUILTINS[name]
        if module == 'copy_reg' and name == '_reconstructor' or module == 'copyreg' and name == '_reconstructor':
            return _reconstructor
        if module == 'sharedbuffers.mapped_struct' and name in ALLOWED_MAPPED_STRUCT_NAMES:
            from . import mapped_struct
            value = getattr(mapped_struct, name, None)
            if value is not None:
                return value
            raise SchemaPickleError(
                'the pickled schema uses sharedbuffers.mapped_struct.%s, which this version cannot read yet'
                % (name,))
        raise SchemaPickleError(
            'refusing to load global %s.%s from a pickled schema: only sharedbuffers schema types are '
            'allowed (a file could otherwise run arbitrary code)' % (module, name))


def _reconstructor(cls, base, state):
    """copyreg._reconstructor restricted to the allow-listed classes find_class returned."""
    if base is object:
        return object.__new__(cls)
    return base.__new__(cls, state)


def load_schema(data):
    """The :class:`~sharedbuffers.schema.Schema` pickled in ``data`` (bytes-like).

    Loaded with :class:`SchemaUnpickler`; anything else than a schema, or any failure to load,
    raises :class:`SchemaPickleError`.
    """
    try:
        loaded = SchemaUnpickler(io.BytesIO(bytes(data)), encoding='latin1').load()
    except SchemaPickleError:
        raise
    except Exception as error:
        raise SchemaPickleError('corrupt pickled schema: %s: %s' % (type(error).__name__, error)) from None
    if not isinstance(loaded, Schema):
        raise SchemaPickleError('the pickled schema holds an instance of %s, not a Schema' % (type(loaded).__name__,))
    return loaded


del builtins
