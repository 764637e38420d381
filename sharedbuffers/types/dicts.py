"""dict values (FORMAT.md §4.6).

    u64 values position (relative to this header)
    an object id mapper (§8.4) of key -> index into the values, padded to 32 from its start
    the values, in the dict's iteration order, as a sequence (§4.4)

Reading gives a dict in the mapper's (hash) order, as 1.x does.
"""
import struct

from .._facade import public
from ..buffers import out_of_bounds
from .base import VariableCodec
from .object_index import ObjectIndexView, write_object_index
from .sequences import read_sequence, write_sequence

__all__ = ['mapped_dict', 'write_dict', 'read_dict', 'DictView']

_VALUES_POSITION = struct.Struct('=Q')


def write_dict(value, context):
    """Append a dict; return its logical position."""
    if not isinstance(value, dict):
        raise TypeError('expected dict, got %s' % type(value).__name__)
    out = context.out
    start = len(out)
    position = context.origin + start
    out += bytes(8)
    isolated = context.isolated is value
    keys_context = context.with_fresh_idmap() if isolated else context
    write_object_index([(key, number) for number, key in enumerate(value)], keys_context)
    values_position = len(out) - start
    write_sequence(list(value.values()), context.with_fresh_idmap() if isolated else context)
    _VALUES_POSITION.pack_into(out, start, values_position)
    return position


class DictView:
    """The parts of a dict stored at an offset: its key index and its values."""
    __slots__ = ('index', 'values_offset')

    def __init__(self, buffer, offset):
        if offset < 0 or offset + 8 > len(buffer):
            raise out_of_bounds('dict header', offset, 8, len(buffer))
        self.index = ObjectIndexView(buffer, offset + 8)
        self.values_offset = offset + _VALUES_POSITION.unpack_from(buffer, offset)[0]


def read_dict(buffer, offset):
    """The dict stored at ``offset``, in hash order."""
    view = DictView(buffer, offset)
    values = read_sequence(buffer, view.values_offset)
    result = {}
    for key, number in view.index.items():
        if number >= len(values):
            raise ValueError('dict at offset %d maps a key to value %d of %d' % (offset, number, len(values)))
        result[key] = values[number]
    return result


@public
class mapped_dict(VariableCodec):
    """Packer of ``dict`` values (RTTI code ``m``); reads back a dict."""
    typecode = b'm'
    python_types = (dict,)
    write = staticmethod(write_dict)
    read = staticmethod(read_dict)
