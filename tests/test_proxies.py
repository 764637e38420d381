"""Proxy semantics: attribute access, writes, atomics, equality, repr, pickling, bases."""
import copy
import pickle

import pytest

from sharedbuffers.mapped_struct import Schema, float32, int8, uint8


class Item:
    __slot_types__ = {'count': int, 'price': float, 'ratio': float32, 'level': uint8, 'delta': int8,
                      'on': bool, 'name': str, 'payload': bytes}

    def __init__(self, **attributes):
        for name, value in attributes.items():
            setattr(self, name, value)


SCHEMA = Schema.from_typed_slots(Item)
DATA = SCHEMA.pack(Item(count=3, price=9.5, ratio=0.25, level=7, delta=-1, on=True, name='widget', payload=b'\x01'))


def proxy(data=DATA):
    return SCHEMA.unpack_from(data)


def test_missing_attribute_raises_attribute_error():
    p = SCHEMA.unpack_from(SCHEMA.pack(Item(count=1)))
    with pytest.raises(AttributeError):
        p.name
    assert not hasattr(p, 'price')
    assert getattr(p, 'price', 'default') == 'default'


def test_undeclared_attribute_raises_attribute_error():
    with pytest.raises(AttributeError):
        proxy().undeclared


def test_none_reads_as_none():
    p = SCHEMA.unpack_from(SCHEMA.pack(Item(count=None, name=None)))
    assert p.count is None and p.name is None


def test_bool_slots_read_back_as_bool():
    assert proxy().on is True
    assert SCHEMA.unpack_from(SCHEMA.pack(Item(on=False))).on is False


def test_fixed_fields_read_back_their_values_and_types():
    p = proxy()
    assert (p.count, p.price, p.ratio, p.level, p.delta) == (3, 9.5, 0.25, 7, -1)
    assert type(p.count) is int and type(p.price) is float


def test_variable_fields_are_decoded_values():
    p = proxy()
    assert p.name == 'widget' and p.payload == b'\x01'
    assert p.name is p.name         # immutable values are decoded once


def test_proxy_buffer_and_offset():
    buffer = b'\x00' * 16 + DATA
    p = SCHEMA.unpack_from(buffer, 16)
    assert p._proxy_buffer is buffer and p._proxy_offset == 16


def test_repr_shows_the_values():
    assert repr(proxy()) == ("Item(count=3, price=9.5, ratio=0.25, level=7, delta=-1, on=True, "
                             "name='widget', payload=b'\\x01')")


def test_proxies_equal_objects_and_proxies_holding_the_same_values():
    assert proxy() == proxy()
    assert proxy() == Item(count=3, price=9.5, ratio=0.25, level=7, delta=-1, on=True, name='widget', payload=b'\x01')
    assert proxy() != Item(count=4, price=9.5, ratio=0.25, level=7, delta=-1, on=True, name='widget', payload=b'\x01')
    assert proxy() != Item(count=3)
    assert (proxy() == 5) is False


def test_pickling_a_proxy_gives_a_plain_copy_of_the_object():
    copy_ = pickle.loads(pickle.dumps(proxy()))
    assert type(copy_) is Item
    assert copy_.__dict__ == dict(count=3, price=9.5, name='widget', payload=b'\x01', ratio=0.25,
                                  level=7, delta=-1, on=True)


def test_pickling_a_proxy_of_a_dict_schema_gives_a_namespace():
    schema = Schema({'a': int})
    copy_ = pickle.loads(pickle.dumps(schema.unpack_from(schema.pack(Item(a=4)))))
    assert copy_.a == 4


def test_proxies_are_not_sequences():
    p = proxy()
    with pytest.raises(TypeError):
        len(p)
    with pytest.raises(TypeError):
        iter(p)
    with pytest.raises(TypeError):
        p[0]
    assert bool(p)


def test_copying_a_proxy_gives_the_same_immutable_proxy():
    p = proxy()
    assert copy.copy(p) is p and copy.deepcopy(p) is p


def test_extra_attributes_can_be_set_on_a_proxy():
    p = proxy()
    p.note = 'kept'
    assert p.note == 'kept'


def test_numeric_attributes_are_writable_in_place_on_a_writable_buffer():
    buffer = bytearray(DATA)
    p = SCHEMA.unpack_from(buffer)
    p.count = -77
    p.price = 1.25
    p.on = False
    assert (p.count, p.price, p.on) == (-77, 1.25, False)
    again = SCHEMA.unpack_from(buffer)
    assert (again.count, again.price, again.on) == (-77, 1.25, False)


def test_writes_are_range_checked():
    p = SCHEMA.unpack_from(bytearray(DATA))
    with pytest.raises(OverflowError, match='Item.level: 256 is out of range for uint8'):
        p.level = 256
    with pytest.raises(TypeError, match='Item.count: expected int, got str'):
        p.count = 'many'
    assert p.level == 7 and p.count == 3


def test_writes_on_a_read_only_buffer_raise_type_error():
    p = proxy()
    with pytest.raises(TypeError, match='read-only buffer'):
        p.count = 4
    assert p.count == 3


def test_variable_size_attributes_cannot_be_changed_in_place():
    p = SCHEMA.unpack_from(bytearray(DATA))
    with pytest.raises(TypeError, match="'name'"):
        p.name = 'other'


def test_reads_on_a_writable_buffer_are_live():
    buffer = bytearray(DATA)
    first, second = SCHEMA.unpack_from(buffer), SCHEMA.unpack_from(buffer)
    first.count = 12
    assert second.count == 12


def test_cas_swaps_only_when_the_expected_value_is_there():
    p = SCHEMA.unpack_from(bytearray(DATA))
    field = type(p).count
    assert field.cas(p, 3, 10) is True
    assert field.cas(p, 3, 11) is False
    assert p.count == 10
    assert type(p).price.cas(p, 9.5, 0.5) and p.price == 0.5


def test_add_returns_the_new_value():
    p = SCHEMA.unpack_from(bytearray(DATA))
    assert type(p).count.add(p, 5) == 8
    assert type(p).ratio.add(p, 0.5) == 0.75
    assert p.count == 8


def test_add_that_would_overflow_raises_and_changes_nothing():
    p = SCHEMA.unpack_from(bytearray(DATA))
    with pytest.raises(OverflowError):
        type(p).level.add(p, 250)
    assert p.level == 7


def test_atomics_on_a_read_only_buffer_raise_type_error():
    p = proxy()
    with pytest.raises(TypeError, match='read-only buffer'):
        type(p).count.add(p, 1)
    with pytest.raises(TypeError, match='read-only buffer'):
        type(p).count.cas(p, 3, 4)


def test_bool_fields_have_cas_but_not_add():
    p = SCHEMA.unpack_from(bytearray(DATA))
    assert type(p).on.cas(p, True, False) and p.on is False
    with pytest.raises(TypeError):
        type(p).on.add(p, 1)


def test_slot_names_are_free():
    schema = Schema({'i': int, 'slot': int, 'typ': str, 'value_offs': int, 'count': int})
    p = schema.unpack_from(schema.pack(Item(i=1, slot=2, typ='t', value_offs=4, count=5)))
    assert (p.i, p.slot, p.typ, p.value_offs, p.count) == (1, 2, 't', 4, 5)


def test_proxy_into_returns_a_proxy_of_the_new_location():
    first = SCHEMA.pack(Item(count=1))
    second = SCHEMA.pack(Item(count=2, name='two'))
    empty = SCHEMA.Proxy()
    p = SCHEMA.unpack_from(first, 0, proxy_into=empty)
    assert p.count == 1
    p = SCHEMA.unpack_from(second, 0, proxy_into=p)
    assert (p.count, p.name) == (2, 'two')


def test_empty_proxy_and_proxy_class_have_every_attribute_absent():
    empty = SCHEMA.Proxy()
    assert isinstance(empty, SCHEMA.ProxyClass)
    for name in SCHEMA.slot_keys:
        assert not hasattr(empty, name)


def test_proxy_bases_give_isinstance_and_methods():
    class Behaviour:
        def total(self):
            return self.count * self.price

    schema = Schema.from_typed_slots(Item)
    schema.set_proxy_bases((Behaviour,))
    p = schema.unpack_from(DATA)
    assert isinstance(p, Behaviour)
    assert p.total() == 28.5


def test_proxy_bases_survive_reinitialize():
    class Behaviour:
        def hello(self):
            return 'hello'

    schema = Schema.from_typed_slots(Item)
    schema.set_proxy_bases((Behaviour,))
    schema.reinitialize()
    assert schema.unpack_from(schema.pack(Item(count=1))).hello() == 'hello'


def test_user_data_is_kept_and_pickled():
    schema = Schema({'a': int}, user_data={'owner': 'me'})
    assert schema.user_data == {'owner': 'me'}
    schema.set_user_data([1, 2])
    assert pickle.loads(pickle.dumps(schema)).user_data == [1, 2]


def test_repacking_a_proxy_gives_the_same_bytes():
    assert SCHEMA.pack(proxy()) == DATA


def test_live_and_snapshot_proxies_of_the_same_data_are_equal():
    live, snapshot = SCHEMA.unpack_from(bytearray(DATA)), SCHEMA.unpack_from(DATA)
    assert type(live) is not type(snapshot)
    assert live == snapshot and repr(live) == repr(snapshot)


def test_pickling_a_live_proxy_gives_a_plain_copy():
    copy_ = pickle.loads(pickle.dumps(SCHEMA.unpack_from(bytearray(DATA))))
    assert type(copy_) is Item and copy_.count == 3 and copy_.name == 'widget'


def test_a_live_proxy_keeps_its_mmap_from_closing_until_it_is_gone():
    import gc
    import mmap
    mapping = mmap.mmap(-1, len(DATA))
    mapping[:] = DATA
    proxy = SCHEMA.unpack_from(mapping)
    assert proxy.count == 3
    with pytest.raises(BufferError):
        mapping.close()
    del proxy
    gc.collect()
    mapping.close()


def test_a_live_proxy_pins_its_bytearray_until_it_is_gone():
    import gc
    buffer = bytearray(DATA)
    proxy = SCHEMA.unpack_from(buffer)
    with pytest.raises(BufferError):
        buffer.extend(b'more')          # resizing would move the memory the proxy reads
    del proxy
    gc.collect()
    buffer.extend(b'more')
    assert SCHEMA.unpack_from(buffer).count == 3


def test_unpack_from_taken_before_the_first_unpack_keeps_working():
    schema = Schema.from_typed_slots(Item)
    early = schema.unpack_from                  # before anything was generated
    padded = bytes(8) + DATA
    assert early(DATA).count == 3 and early(padded, 8).name == 'widget'
    assert early(padded, offs=8).price == 9.5
    into = early(DATA, 0, proxy_into=schema.Proxy())
    assert into.count == 3 and into == schema.unpack_from(DATA)
    with pytest.raises(IndexError):
        early(DATA, len(DATA) + 100)
    schema.reinitialize()                       # generated code is dropped and made again
    assert early(schema.pack(Item(count=5))).count == 5


def test_unpack_from_takes_the_offset_by_1x_keyword_offs_and_by_offset():
    schema = Schema.from_typed_slots(Item)
    padded = bytes(16) + DATA
    for _ in range(2):                          # through the stand-in, then the generated code
        assert schema.unpack_from(padded, offs=16).name == 'widget'
        assert schema.unpack_from(padded, offset=16).count == 3
        assert schema.unpack_from(buf=padded, offs=16, proxy_into=None).price == 9.5
