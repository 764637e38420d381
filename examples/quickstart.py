"""The README's quickstart, runnable: ``python examples/quickstart.py``."""
from sharedbuffers.mapped_struct import Schema, mapped_object, int16, float32


class SomeStruct:
    __slot_types__ = {
        'a': int,
        'b': float32,
        'c': str,
        'd': int16,
    }

    def __init__(self, **attributes):
        self.__dict__.update(attributes)


schema = Schema.from_typed_slots(SomeStruct)

# pack() gives bytes; the proxy reads attributes straight from them
data = schema.pack(SomeStruct(a=3, b=1.5, c='hello', d=-7))
proxy = schema.unpack_from(data)
print(proxy.a, proxy.b, proxy.c, proxy.d)          # 3 1.5 hello -7
print(proxy)                                       # SomeStruct(a=3, b=1.5, c='hello', d=-7)

# pack_into() writes at an offset of any writable buffer and returns the end offset
buffer = bytearray(1024)
end = schema.pack_into(SomeStruct(a=5, c='world'), buffer, 10)
other = schema.unpack_from(buffer, 10)
print(other.a, other.c, hasattr(other, 'b'), end)  # 5 world False 48

# numbers can be changed in place in a writable buffer, also atomically
other.a = 6
type(other).a.add(other, 10)
print(schema.unpack_from(buffer, 10).a)            # 16


# a registered class can be nested, or stored in an `object` slot with its typecode
class Point:
    __slot_types__ = {'x': int, 'y': int}

    def __init__(self, x, y):
        self.x, self.y = x, y


Point.schema = Schema.from_typed_slots(Point)
mapped_object.register_schema(Point, Point.schema, 0x80)


class Shape:
    __slot_types__ = {'origin': Point, 'label': str, 'extra': object}

    def __init__(self, **attributes):
        self.__dict__.update(attributes)


shape_schema = Schema.from_typed_slots(Shape)
shape = shape_schema.unpack_from(shape_schema.pack(Shape(origin=Point(1, 2), label='square', extra=Point(3, 4))))
print(shape.origin.x, shape.origin.y, shape.label, shape.extra.y)   # 1 2 square 4
