"""Compile generated Python source so that tracebacks and debuggers can show it.

Schemas generate their packers and proxy readers as straight-line Python source, once per
schema and bitmap shape, so the hot path has no per-value dispatch on configuration.  The
source is registered in :mod:`linecache` under a unique pseudo file name
(``<sharedbuffers pack Point 0x3>``), so a traceback through generated code shows the line
that failed instead of ``???``.
"""
import itertools
import linecache

_serial = itertools.count(1)


def compile_function(source, name, namespace, label):
    """Execute ``source`` (defining function ``name``) in ``namespace`` and return the function.

    ``label`` becomes part of the pseudo file name shown in tracebacks.
    """
    filename = '<sharedbuffers %s #%d>' % (label, next(_serial))
    code = compile(source, filename, 'exec')
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(code, namespace)
    return namespace[name]


def identifier(text):
    """A valid, readable Python identifier derived from an attribute name."""
    cleaned = ''.join(ch if ch.isalnum() or ch == '_' else '_' for ch in text)
    if not cleaned or cleaned[0].isdigit():
        cleaned = '_' + cleaned
    return cleaned
