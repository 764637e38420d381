"""Deduplication: shared values are stored once, and the idmap can never be fooled (§5.5)."""
import struct

import pytest

from sharedbuffers.mapped_struct import Schema


class Pair:
    __slot_types__ = {'a': str, 'b': str, 'x': object, 'y': object}

    def __init__(self, **attributes):
        self.__dict__.update(attributes)


SCHEMA = Schema.from_typed_slots(Pair)


def _pointers(data):
    return struct.unpack_from('=qqqq', data, 8)


def test_an_object_referenced_twice_is_stored_once():
    long_text = 'L' * 40
    data = SCHEMA.pack(Pair(a=long_text, b=long_text))
    pointer_a, pointer_b = _pointers(data)[:2]
    assert pointer_a == pointer_b       # both relative to the struct start
    assert data.count(b'L' * 40) == 1


def test_equal_short_strings_share_one_copy():
    data = SCHEMA.pack(Pair(a='short', b=''.join(['sh', 'ort'])))
    assert data.count(b'short') == 1


def test_equal_long_strings_that_are_different_objects_are_stored_twice():
    data = SCHEMA.pack(Pair(a='L' * 40, b=''.join(['L'] * 40)))
    assert data.count(b'L' * 40) == 2


def test_true_and_one_are_never_merged():
    proxy = SCHEMA.unpack_from(SCHEMA.pack(Pair(x=1, y=True)))
    assert proxy.x == 1 and type(proxy.x) is int
    assert proxy.y is True


def test_a_typed_string_after_a_dynamic_one_points_into_its_payload():
    # slot order: 'first' (object) is written before 'second' (str), as in 1.x (FORMAT.md §5.5)
    schema = Schema({'first': object, 'second': str})
    data = schema.pack(Pair(first='hello', second='hello'))
    proxy = schema.unpack_from(data)
    assert proxy.first == proxy.second == 'hello'
    assert data.count(b'hello') == 1
    first_pointer, second_pointer = struct.unpack_from('=qq', data, 8)
    assert second_pointer == first_pointer + 8


def test_temporary_objects_packed_with_a_reused_dict_idmap_are_never_confused():
    # 1.x keyed identity by id() alone: a temporary freed after one pack could hand its id to
    # the next one, whose pointer then went to the old data (1,997 of 2,000 items corrupted).
    schema = Schema({'text': str})
    idmap = {}
    buffer = bytearray(200_000)
    offset = 0
    positions = []
    for i in range(2000):
        obj = Pair(text='value number %06d and some padding' % i)
        positions.append(offset)
        offset = schema.pack_into(obj, buffer, offset, idmap)
        del obj
    for i, position in enumerate(positions):
        assert schema.unpack_from(buffer, position).text == 'value number %06d and some padding' % i


def test_reusing_an_idmap_for_a_new_buffer_raises_instead_of_corrupting():
    schema = Schema({'text': str})
    idmap = {}
    schema.pack(Pair(text='shared'), idmap)
    with pytest.raises(ValueError, match='stale'):
        schema.pack(Pair(text='shared'), idmap)


def test_an_idmap_spanning_consecutive_packs_shares_across_them():
    schema = Schema({'text': str})
    idmap = {}
    first = schema.pack(Pair(text='shared'), idmap)
    second = schema.pack(Pair(text='shared'), idmap, implicit_offs=len(first))
    pointer = struct.unpack_from('=q', second, 8)[0]
    assert pointer < 0      # points back into the first pack
    whole = first + second
    assert schema.unpack_from(whole, len(first)).text == 'shared'


def test_a_failed_rtti_pack_takes_back_its_idmap_entries():
    from sharedbuffers.mapped_struct import mapped_object
    idmap = {}
    shared = 'a shared string that is long enough'
    with pytest.raises(IndexError):
        mapped_object.pack_into(['before', shared], bytearray(8), 0, idmap)
    assert all(key is not shared and key != shared for key in idmap)
    buffer = bytearray(200)
    end = mapped_object.pack_into(['after', shared], buffer, 0, idmap)
    assert mapped_object.unpack_from(buffer, 0) == ['after', shared] and end <= 200
