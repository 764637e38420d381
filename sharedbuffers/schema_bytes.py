"""The bytes a typed array stores for its schema, and the check that a file stores a given one.

A typed array keeps its schema as a protocol-2 pickle, as 1.x wrote it (FORMAT.md §10.2):
``pickle.dumps(schema, 2)``, which ``stored_schema_bytes`` returns (files are always written
by the pickle module).

Opening a file with a declared schema compares the stored bytes with the declared schema's,
so that a file written with another layout is never read with this one (``stores_schema``).
That comparison runs at every open; the native module writes the same bytes as ``pickle.dumps``
in half its time, without its import lookups and general dispatch (``_native/schema_pickle.c``).
For what it does not handle (user data of other types, nested classes...) it answers None and
``pickle.dumps`` writes them.  Both give the same bytes: the tests compare them over generated schemas.
"""
import _compat_pickle
import copyreg
import pickle
import sys

from . import _native
from .schema import Schema, mapped_object_with_schema

__all__ = ['stored_schema_bytes', 'stores_schema']

# What the native writer needs of pickle's configuration: the objects its reductions may call
# __reduce_ex__ on, the Python 2 names protocol 2 writes (fix_imports), the extension registry
# and the reducers registered with copyreg (both left to pickle), and where classes are found.
_PICKLE_CONTEXT = ((Schema, mapped_object_with_schema), _compat_pickle.REVERSE_NAME_MAPPING,
                   _compat_pickle.REVERSE_IMPORT_MAPPING, copyreg._extension_registry, copyreg.dispatch_table,
                   sys.modules)


def stored_schema_bytes(schema):
    """The bytes a typed array stores for ``schema``: ``pickle.dumps(schema, 2)``, as 1.x wrote.

    Files are always written by the pickle module itself; the native writer only serves the
    comparison below, where a difference would cost time, never a wrong answer.
    """
    return pickle.dumps(schema, 2)


def stores_schema(data, schema):
    """True when ``data`` is exactly what a typed array stores for ``schema``.

    A schema that cannot be pickled is never stored as ``data``: False, and the caller
    compares the schemas the long way (unpickling ``data`` through the allow-list).
    """
    native = _native.objects
    try:
        expected = native.schema_pickle(schema, *_PICKLE_CONTEXT) if native is not None else None
        if expected is None:
            expected = pickle.dumps(schema, 2)
    except Exception:
        return False
    return expected == data
