"""Schema construction: slot order, bitmap widths, alignment, limits (FORMAT.md §5.1-5.3)."""
import struct

import pytest

from sharedbuffers.mapped_struct import Schema, float32, int8, int16, uint16, uint64


def test_slots_are_ordered_by_descending_size_then_name():
    schema = Schema({'a': int, 'b': float, 'c': bool, 'd': int8, 'e': str, 'f': bytes})
    assert schema.slot_keys == ('a', 'b', 'e', 'f', 'c', 'd')


def test_variable_size_slots_count_as_eight_bytes():
    schema = Schema({'a': int, 'b': float32, 'c': str, 'o': object})
    assert schema.slot_keys == ('a', 'c', 'o', 'b')


def test_names_sort_by_code_point():
    schema = Schema({'aa': int8, 'a': int8, '_x': int8, 'Z': int8, 'B': int8})
    assert schema.slot_keys == ('B', 'Z', '_x', 'a', 'aa')


@pytest.mark.parametrize('count, alignment, version, width', [
    (1, 8, 2, 'I'), (32, 8, 2, 'I'), (33, 8, 2, 'Q'), (64, 8, 2, 'Q'),
    (8, 1, 2, 'B'), (9, 1, 2, 'H'), (16, 4, 2, 'H'), (17, 4, 2, 'I'), (3, 16, 2, 'Q'),
    (8, 8, 1, 'B'), (9, 8, 1, 'H'), (16, 8, 1, 'H'), (17, 8, 1, 'I'), (33, 8, 1, 'Q'),
])
def test_bitmap_width_follows_the_binary_version_rules(count, alignment, version, width):
    schema = Schema({'f%02d' % i: int8 for i in range(count)}, alignment=alignment, version=version)
    assert schema.bitmap_format == width


def test_a_fresh_schema_is_binary_version_2():
    assert Schema({'a': int}).version == 2
    assert Schema.VERSION == 2


def test_reinitialize_gives_binary_version_1_like_1x():
    schema = Schema({'a': int})
    schema.reinitialize()
    assert schema.version == 1
    assert schema.bitmap_format == 'B'


def test_sixty_four_attributes_are_accepted():
    schema = Schema({'f%02d' % i: int8 for i in range(64)})
    assert len(schema.slot_keys) == 64


def test_more_than_sixty_four_attributes_is_a_type_error_that_says_so():
    with pytest.raises(TypeError, match='Too many attributes: 65'):
        Schema({'f%02d' % i: int8 for i in range(65)})


@pytest.mark.parametrize('alignment, size', [(1, 14), (2, 16), (4, 20), (8, 32), (16, 48)])
def test_alignment_pads_the_struct_and_each_variable_value(alignment, size):
    class Obj:
        pass
    obj = Obj()
    obj.a, obj.b = -1, b'x'
    schema = Schema({'a': int8, 'b': bytes}, alignment=alignment)
    assert len(schema.pack(obj)) == size


def test_from_typed_slots_takes_a_class_or_a_dict():
    class Point:
        __slot_types__ = {'x': int, 'y': int}
    assert Schema.from_typed_slots(Point).slot_keys == ('x', 'y')
    assert Schema.from_typed_slots({'x': int}).slot_keys == ('x',)


def test_from_typed_slots_refuses_a_class_without_slot_types():
    with pytest.raises(ValueError):
        Schema.from_typed_slots(object)


def test_unsupported_slot_types_name_the_slot():
    with pytest.raises(TypeError, match="slot 'when'"):
        Schema({'when': 3})


def test_header_then_fixed_fields_without_gaps():
    class Obj:
        pass
    obj = Obj()
    obj.big, obj.small, obj.mid = 2 ** 40, -2, 700
    schema = Schema({'big': uint64, 'small': int8, 'mid': int16})
    data = schema.pack(obj)
    assert struct.unpack_from('=IIQhb', data) == (7, 0, 2 ** 40, 700, -2)
    assert len(data) == 24 and data[19:] == bytes(5)


def test_compatible_compares_layout_and_types():
    assert Schema({'a': int, 'b': str}).compatible(Schema({'b': str, 'a': int}))
    assert not Schema({'a': int}).compatible(Schema({'a': uint16}))
    assert not Schema({'a': int}).compatible(Schema({'a': int}, alignment=4))


def test_the_layout_uses_the_struct_sizes_of_every_fixed_code():
    import struct
    from sharedbuffers.schema import _CODE_SIZES
    from sharedbuffers.types.numbers import FIXED_FORMATS
    for code in set(FIXED_FORMATS.values()) | set('bBhHiIqQ'):
        assert _CODE_SIZES[code] == struct.calcsize('=' + code), code
