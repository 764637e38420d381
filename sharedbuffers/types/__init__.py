"""Codecs: one module per value family, all with the same small interface.

Every codec class exposes, as class attributes / static methods:

``typecode``   its RTTI byte (``bytes`` of length 1), or ``None``
``fixed_size`` the in-struct size of a fixed-size type, or ``None`` for variable-size ones
``write(value, context) -> position``  (variable-size) append the encoding, return its logical position
``read(buffer, offset) -> value``      decode the value stored at an absolute offset

and the 1.x class methods ``pack_into(obj, buf, offset, idmap=None, implicit_offs=0) -> end`` and
``unpack_from(buf, offset=0, idmap=None)``.
"""
