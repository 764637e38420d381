"""Generated packers for schemas (FORMAT.md §5.3).

For every schema one *dispatcher* is generated: it reads each declared attribute once, builds
the has/none bitmaps and hands the values to the *shape writer* of that bitmap pair.  Shape
writers are generated on first use, one per (has, none) pair actually met, as straight-line
code: reserve the fixed part, append each variable-size value and its padding, then fill the
fixed part with one ``struct.pack_into``.  Nothing is decided per value at run time except
what the data decides (dedup hits).

An error names the attribute path: ``Outer.inner.x: expected int, got str``.
"""
import struct

from . import _native
from .codegen import compile_function, identifier
from .types.numbers import check_fixed_value

__all__ = ['build_dispatcher', 'build_shape_writer', 'annotate_error', 'MISSING']


class _Missing:
    __slots__ = ()

    def __repr__(self):
        return '<missing>'


MISSING = _Missing()

_ANNOTATED = (TypeError, ValueError, OverflowError, IndexError, UnicodeError)


def annotate_error(error, owner, attribute):
    """A copy of ``error`` whose message starts with the attribute path ``owner.attribute``."""
    path = getattr(error, 'sharedbuffers_path', None)
    reason = getattr(error, 'sharedbuffers_reason', None)
    if path is None:
        path, reason = attribute, str(error)
    else:
        path = '%s.%s' % (attribute, path.split('.', 1)[1] if '.' in path else path)
    try:
        annotated = type(error)('%s.%s: %s' % (owner, path, reason))
    except Exception:
        return error
    annotated.sharedbuffers_path = '%s.%s' % (owner, path)
    annotated.sharedbuffers_reason = reason
    return annotated


def build_dispatcher(schema):
    """The function ``write(obj, context) -> logical position`` of ``schema``."""
    names = schema.slot_keys
    count = len(names)
    variables = ['v_%s' % identifier(name) for name in names]
    lines = ['def write_struct(obj, context):']
    for variable, name in zip(variables, names):
        lines.append('    %s = getattr(obj, %r, MISSING)' % (variable, name))
    namespace = {
        'MISSING': MISSING,
        'writers': schema._shape_writers,
        'make_writer': schema._make_shape_writer,
    }
    full = (1 << count) - 1
    try:
        body, body_namespace = _shape_writer_body(schema, full, 0)
    except TypeError:       # a slot's class is not registered yet: every shape goes through make_writer
        body = None
    if body is not None:
        # The common case, every attribute present and none None, runs inline: no bitmaps to
        # compute, no second call.
        namespace.update(body_namespace)
        lines.append('    if (%s):' % ('\n            and '.join(
            '%s is not MISSING and %s is not None' % (variable, variable) for variable in variables)))
        lines += ['    ' + line for line in body]
    lines.append('    has = 0')
    lines.append('    none = 0')
    for bit, variable in enumerate(variables):
        lines.append('    if %s is not MISSING:' % variable)
        lines.append('        has |= %#x' % (1 << bit))
        lines.append('        if %s is None:' % variable)
        lines.append('            none |= %#x' % (1 << bit))
    lines.append('    writer = writers.get(has | none << %d)' % count)
    lines.append('    if writer is None:')
    lines.append('        writer = make_writer(has, none)')
    lines.append('    return writer(context, %s)' % ', '.join(variables))
    return compile_function('\n'.join(lines) + '\n', 'write_struct', namespace,
                            'pack %s' % schema.display_name)


def build_shape_writer(schema, has, none):
    """The straight-line writer of one (has, none) bitmap pair of ``schema``."""
    variables = ['v_%s' % identifier(name) for name in schema.slot_keys]
    body, namespace = _shape_writer_body(schema, has, none)
    lines = ['def write_shape(context, %s):' % ', '.join(variables)] + body
    label = 'pack %s has=%#x none=%#x' % (schema.display_name, has, none)
    return compile_function('\n'.join(lines) + '\n', 'write_shape', namespace, label)


def _shape_writer_body(schema, has, none):
    """Source lines (indented for a function body) and namespace of one shape's writer."""
    layout = schema.shape(has, none)
    names = schema.slot_keys
    variables = ['v_%s' % identifier(name) for name in names]
    alignment = schema.alignment
    namespace = {
        'ZEROS': bytes(64),
        'RESERVED': bytes(layout.fixed_padded_size),
        'pack_fixed': struct.Struct(layout.struct_format).pack_into,
        'pack_u16': struct.Struct('=H').pack,
        'diagnose': _make_diagnosis(schema, layout),
        'annotate_error': annotate_error,
        'ANNOTATED': _ANNOTATED,
        'OWNER': schema.display_name,
        'struct_error': struct.error,
    }
    fixed_arguments = ['%#x' % has, '%#x' % none]
    lines = ['    out = context.out',
             '    idmap = context.idmap',
             '    origin = context.origin',
             '    base = context.base',
             '    start = len(out)',
             '    struct_position = origin + start',
             '    out += RESERVED']
    for field in layout.fields:
        variable = 'v_%s' % identifier(field.name)
        if field.codec is None:
            fixed_arguments.append(variable)
            continue
        pointer = 'p_%s' % identifier(field.name)
        writer = 'write_%s' % identifier(field.name)
        fixed_arguments.append(pointer)
        lines += _variable_field_lines(field, variable, pointer, writer, namespace)
        lines += ['    %s -= struct_position' % pointer,
                  '    gap = (base + len(out)) %% %d' % alignment,
                  '    if gap:',
                  '        out += ZEROS[:%d - gap]' % alignment if alignment <= 64
                  else '        out += bytes(%d - gap)' % alignment]
    lines += ['    try:',
              '        pack_fixed(out, start, %s)' % ', '.join(fixed_arguments),
              '    except (struct_error, TypeError, OverflowError):',
              '        diagnose(%s)' % ', '.join(variables),
              '        raise',
              '    return struct_position']
    return lines, namespace


def _variable_field_lines(field, variable, pointer, writer, namespace):
    """Source that appends one variable-size value and leaves its logical position in ``pointer``.

    Short str and bytes values, the common case, are written inline (no call, no compression
    possible under 16 characters); nested structs call their schema's writer directly.
    Everything else, and every error, goes through the codec's ``write``.
    """
    from .schema import mapped_object_with_schema   # noqa: the schema module imports this one
    from .types.strings import SHORT_VALUE, mapped_bytes, mapped_unicode
    codec = field.codec
    namespace[writer] = codec.write
    call = ['        try:',
            '            %s = %s(%s, context)' % (pointer, writer, variable),
            '        except ANNOTATED as error:',
            '            raise annotate_error(error, OWNER, %r) from None' % field.name]
    if codec is mapped_unicode:
        return (['    %s = None' % pointer,
                 '    if type(%s) is str and len(%s) < %d:' % (variable, variable, SHORT_VALUE),
                 '        %s = idmap.get(%s)' % (pointer, variable),
                 '        if %s is None and %s.isascii():' % (pointer, variable),
                 '            %s = idmap[%s] = origin + len(out)' % (pointer, variable),
                 '            out += pack_u16(len(%s))' % variable,
                 '            out += %s.encode()' % variable,
                 '    if %s is None:' % pointer] + call)
    if codec is mapped_bytes:
        return (['    if type(%s) is bytes and len(%s) < %d:' % (variable, variable, SHORT_VALUE),
                 '        %s = idmap.get(%s)' % (pointer, variable),
                 '        if %s is None:' % pointer,
                 '            %s = idmap[%s] = origin + len(out)' % (pointer, variable),
                 '            out += pack_u16(len(%s))' % variable,
                 '            out += %s' % variable,
                 '    else:'] + call)
    encoder = _native_encoder(codec)
    if encoder is not None:
        # Numeric lists/tuples and int sets in one C call; None sends the value to the codec.
        namespace[encoder.__name__] = encoder
        return (['    %s = None' % pointer,
                 '    encoded = %s(%s)' % (encoder.__name__, variable),
                 '    if encoded is not None:',
                 '        %s = origin + len(out)' % pointer,
                 '        out += encoded',
                 '    if %s is None:' % pointer] + call)
    if isinstance(codec, mapped_object_with_schema):
        nested = 'schema_%s' % identifier(field.name)
        namespace[nested] = codec.schema
        return ['    entry = idmap.get(id(%s))' % variable,
                '    if entry is None:',
                '        try:',
                '            %s = %s._write(%s, context)' % (pointer, nested, variable),
                '        except ANNOTATED as error:',
                '            raise annotate_error(error, OWNER, %r) from None' % field.name,
                '        idmap[id(%s)] = (%s, %s)' % (variable, pointer, variable),
                '    else:',
                '        %s = entry[0]' % pointer]
    return [line[4:] for line in call]


def _native_encoder(codec):
    """The C encoder of this codec's common values, or None (pure mode, other codecs)."""
    from .types.sequences import mapped_list, mapped_tuple
    from .types.sets import mapped_frozenset
    native = _native.objects
    if native is None:
        return None
    if codec is mapped_list or codec is mapped_tuple:
        return native.encode_sequence
    if codec is mapped_frozenset:
        return native.encode_set
    return None


def _make_diagnosis(schema, layout):
    """A function that raises the precise error for the first fixed value struct refused."""
    checks = [(schema.slot_keys.index(field.name), field.name, field.struct_code)
              for field in layout.fields if field.codec is None]
    owner = schema.display_name

    def diagnose(*values):
        for index, name, code in checks:
            check_fixed_value(code, values[index], '%s.%s' % (owner, name))
    return diagnose
