"""What every codec shares: the 1.x class-method interface on top of ``write``/``read``."""
from ..buffers import as_byte_buffer
from ..packing import PackContext, check_idmap_position, finish_idmap, forget_from

__all__ = ['VariableCodec', 'pack_value_into', 'rtti']

_rtti_module = None


def rtti():
    """The ``rtti`` module, for the codecs of values that hold other values (sequences, sets,
    dicts, arrays).  rtti imports these modules, so they cannot import it while they load; and
    an import statement in a function that runs once per value costs about 1.3 µs (a relative
    import runs importlib's Python code every time), more than reading a short value.
    """
    global _rtti_module
    if _rtti_module is None:
        from .. import rtti as module
        _rtti_module = module
    return _rtti_module


def pack_value_into(write, value, buffer, offset, idmap, implicit_offs):
    """Shared body of the per-type ``pack_into`` class methods: write, then copy into place."""
    isolated = idmap is None
    if isolated:
        idmap = {}
    context = PackContext(offset, implicit_offs, idmap, len(buffer))
    if isolated:
        context.isolated = value
    check_idmap_position(idmap, context.origin)
    try:
        write(value, context)
        end = offset + len(context.out)
        if offset < 0 or end > len(buffer):
            raise IndexError('packing needs %d bytes at offset %d, but the buffer holds %d'
                             % (len(context.out), offset, len(buffer)))
        buffer[offset:end] = context.out
    except BaseException:
        if not isolated:
            forget_from(idmap, context.origin)     # nothing was written: its entries would lie
        raise
    finish_idmap(idmap, context.origin + len(context.out))
    return end


class VariableCodec:
    """The 1.x class-method interface shared by every variable-size codec class."""
    fixed_size = None

    @classmethod
    def pack_into(cls, obj, buf, offs, idmap=None, implicit_offs=0):
        """Write ``obj`` at ``offs`` of the writable buffer ``buf``; return the end offset."""
        return pack_value_into(cls.write, obj, buf, offs, idmap, implicit_offs)

    @classmethod
    def unpack_from(cls, buf, offs=0, idmap=None):
        """Decode the value at ``offs`` of ``buf``."""
        return cls.read(as_byte_buffer(buf), offs)
