"""Registered schemas: typecodes, nested struct slots, dynamically typed structs (FORMAT.md §6)."""
import pytest

from sharedbuffers.mapped_struct import Schema, mapped_object, mapped_object_with_schema


def _registered(name, slot_types, typecode):
    cls = type(name, (), {'__slot_types__': slot_types,
                          '__init__': lambda self, **kw: self.__dict__.update(kw)})
    cls.schema = Schema.from_typed_slots(cls)
    cls.packer = mapped_object.register_schema(cls, cls.schema, typecode)
    return cls


Point = _registered('Point', {'x': int, 'y': int}, b'\xb0')
Label = _registered('Label', {'text': str}, 'L')
Tag = _registered('Tag', {'code': int}, 0xB2)


def test_register_schema_returns_the_struct_packer():
    assert isinstance(Point.packer, mapped_object_with_schema)
    assert Point.packer.schema is Point.schema


@pytest.mark.parametrize('cls, code', [(Point, 0xB0), (Label, ord('L')), (Tag, 0xB2)])
def test_typecodes_may_be_bytes_str_or_int(cls, code):
    buffer = bytearray(64)
    mapped_object.pack_into(cls(**{name: 1 if name != 'text' else 't' for name in cls.__slot_types__}), buffer, 0)
    assert buffer[0] == code and buffer[1:8] == bytes(7)


def test_registering_the_same_thing_again_is_a_no_op():
    assert mapped_object.register_schema(Point, Point.schema, 0xB0) is Point.packer


def test_a_code_taken_by_another_schema_is_a_value_error():
    Other = type('Other', (), {'__slot_types__': {'z': int}})
    with pytest.raises(ValueError, match='already registered'):
        mapped_object.register_schema(Other, Schema.from_typed_slots(Other), 0xB0)


def test_a_class_cannot_take_a_second_code():
    with pytest.raises(ValueError):
        mapped_object.register_schema(Point, Point.schema, 0xB9)


@pytest.mark.parametrize('code', [b's', 'u', ord('q'), b'T', 'o'])
def test_builtin_codes_are_refused(code):
    Other = type('Other', (), {'__slot_types__': {'z': int}})
    with pytest.raises(ValueError, match='built-in'):
        mapped_object.register_schema(Other, Schema.from_typed_slots(Other), code)


@pytest.mark.parametrize('code', [b'ab', 'xy', 256, -1, 1.5])
def test_malformed_codes_are_refused(code):
    Other = type('Other', (), {'__slot_types__': {'z': int}})
    with pytest.raises(ValueError, match='one byte'):
        mapped_object.register_schema(Other, Schema.from_typed_slots(Other), code)


def test_a_registered_class_is_a_slot_type_holding_a_bare_struct():
    Segment = type('Segment', (), {'__slot_types__': {'start': Point, 'end': Point, 'name': str},
                                   '__init__': lambda self, **kw: self.__dict__.update(kw)})
    schema = Schema.from_typed_slots(Segment)
    data = schema.pack(Segment(start=Point(x=1, y=2), end=Point(x=3, y=4), name='s'))
    proxy = schema.unpack_from(data)
    assert (proxy.start.x, proxy.start.y, proxy.end.x, proxy.end.y) == (1, 2, 3, 4)
    assert proxy.start == Point(x=1, y=2)
    assert isinstance(proxy.start, Point.schema.ProxyClass.__mro__[1])


def test_a_registered_object_in_an_object_slot_reads_back_as_a_proxy():
    schema = Schema({'anything': object})
    holder = type('Holder', (), {})()
    holder.anything = Label(text='hello')
    proxy = schema.unpack_from(schema.pack(holder))
    assert proxy.anything.text == 'hello'
    assert type(proxy.anything)._proxy_schema is Label.schema


def test_proxies_of_registered_schemas_can_be_stored_again():
    proxy = Point.schema.unpack_from(Point.schema.pack(Point(x=5, y=6)))
    buffer = bytearray(64)
    mapped_object.pack_into(proxy, buffer, 0)
    assert mapped_object.unpack_from(buffer, 0) == Point(x=5, y=6)


def test_register_subclass_packs_subclasses_as_the_parent():
    class Point3(Point):
        pass
    mapped_object.register_subclass(Point3, Point)
    buffer = bytearray(64)
    mapped_object.pack_into(Point3(x=7, y=8), buffer, 0)
    assert buffer[0] == 0xB0
    assert mapped_object.unpack_from(buffer, 0).x == 7


def test_an_unregistered_subclass_is_a_type_error_naming_it():
    class Stray(Point):
        pass
    with pytest.raises(TypeError, match='Stray'):
        mapped_object.pack_into(Stray(x=1, y=1), bytearray(64), 0)


def test_self_referencing_classes_register_then_reinitialize():
    Node = type('Node', (), {'__init__': lambda self, **kw: self.__dict__.update(kw)})
    Node.__slot_types__ = {'value': int, 'next': Node}
    schema = Schema.from_typed_slots(Node)
    with pytest.raises(TypeError, match='not registered'):
        schema.pack(Node(value=1, next=Node(value=2)))
    mapped_object.register_schema(Node, schema, 0xB3)
    schema.reinitialize()
    proxy = schema.unpack_from(schema.pack(Node(value=1, next=Node(value=2, next=Node(value=3)))))
    assert (proxy.value, proxy.next.value, proxy.next.next.value) == (1, 2, 3)
    assert not hasattr(proxy.next.next, 'next')


def test_a_class_registered_without_a_code_works_only_as_a_slot_type():
    Plain = _registered('Plain', {'v': int}, None)
    holder = Schema({'p': Plain, 'o': object})
    obj = type('Obj', (), {})()
    obj.p = Plain(v=3)
    assert holder.unpack_from(holder.pack(obj)).p.v == 3
    obj.o = Plain(v=4)
    with pytest.raises(TypeError, match='without a typecode'):
        holder.pack(obj)


def test_unknown_typecodes_in_data_are_a_value_error_with_the_offset():
    with pytest.raises(ValueError, match='unknown typecode 0xfe at offset 8'):
        mapped_object.unpack_from(bytes(8) + b'\xfe' + bytes(15), 8)


def test_a_struct_that_contains_itself_can_be_printed_and_compared():
    Loop = type('Loop', (), {'__init__': lambda self, **kw: self.__dict__.update(kw)})
    Loop.__slot_types__ = {'name': str, 'next': object}
    schema = Schema.from_typed_slots(Loop)
    mapped_object.register_schema(Loop, schema, 0xB4)
    node = Loop(name='n')
    node.next = node
    proxy = schema.unpack_from(schema.pack(node))
    assert proxy.next.next.name == 'n'
    assert repr(proxy) == "Loop(name='n', next=Loop(name='n', next=...))"
    assert proxy == proxy.next
