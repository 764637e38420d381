"""Schema pickling: 1.x's state keys, 1.x pickles load, and only through the allow-list."""
import pickle
import pickletools

import pytest

from sharedbuffers.mapped_struct import Schema, float32, mapped_object, uint16
from sharedbuffers.safe_pickle import load_schema


class Part:
    __slot_types__ = {'x': int, 'name': str}


Part.schema = Schema.from_typed_slots(Part)
mapped_object.register_schema(Part, Part.schema, 0xC5)


class Whole:
    __slot_types__ = {'a': uint16, 'b': float, 'c': bool, 'd': float32, 'e': str, 'f': bytes,
                      'o': object, 'part': Part}


def test_state_has_the_1x_keys():
    state = Schema.from_typed_slots(Whole).__getstate__()
    assert set(state) == {'slot_types', 'slot_keys', 'alignment', 'bases', 'version'}
    assert state['slot_keys'] == ('b', 'e', 'f', 'o', 'part', 'd', 'a', 'c')
    assert state['version'] == 2 and state['alignment'] == 8 and state['bases'] is None


def test_the_pickle_names_exactly_the_globals_1_2_3_writes():
    data = pickle.dumps(Schema.from_typed_slots(Whole), 2)
    names = {arg for op, arg, _ in pickletools.genops(data) if op.name == 'GLOBAL'}
    assert names == {
        'sharedbuffers.mapped_struct Schema', 'sharedbuffers.mapped_struct ushort', '__builtin__ float',
        '__builtin__ bool', 'sharedbuffers.mapped_struct float32', 'sharedbuffers.mapped_struct mapped_unicode',
        'sharedbuffers.mapped_struct mapped_bytes', 'sharedbuffers.mapped_struct mapped_object',
        'sharedbuffers.mapped_struct mapped_object_with_schema', '__builtin__ long',
    }


@pytest.mark.parametrize('protocol', [2, pickle.HIGHEST_PROTOCOL])
def test_a_schema_round_trips_through_pickle_and_the_safe_loader(protocol):
    schema = Schema.from_typed_slots(Whole, alignment=4)
    schema.set_user_data({'k': [1, 'two']})
    for loaded in (pickle.loads(pickle.dumps(schema, protocol)), load_schema(pickle.dumps(schema, protocol))):
        assert loaded.compatible(schema)
        assert loaded.user_data == {'k': [1, 'two']}
        assert loaded.slot_types['part'].schema.compatible(Part.schema)


# Written by sharedbuffers 1.2.3: pickle.dumps(Schema.from_typed_slots(Whole1x), 2) where Part1x was
# registered with code 0xa5 and user_data {'k': [1, 'two']} (see tests/fixtures/README-pickles).
with open(__file__.replace('test_schema_pickle.py', 'fixtures/schema_1_2_3.pickle'), 'rb') as _f:
    PICKLE_1_2_3 = _f.read()


def test_a_pickle_written_by_1_2_3_loads_through_the_allow_list():
    schema = load_schema(PICKLE_1_2_3)
    assert schema.slot_keys == ('b', 'e', 'f', 'inner', 'o', 'd', 'a', 'c')
    assert schema.user_data == {'k': [1, 'two']}
    assert schema.version == 2
    inner = schema.slot_types['inner']
    assert inner.schema.slot_keys == ('name', 'x')


def test_the_loaded_1_2_3_schema_reads_data_packed_with_it():
    schema = load_schema(PICKLE_1_2_3)
    obj = type('Obj', (), {})()
    obj.a, obj.e = 7, 'text'
    proxy = schema.unpack_from(schema.pack(obj))
    assert (proxy.a, proxy.e) == (7, 'text')


def test_the_allow_list_refuses_any_other_global():
    evil = b'\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.'
    with pytest.raises(pickle.UnpicklingError, match='refusing to load global os.system'):
        load_schema(evil)


def test_a_corrupt_pickle_is_an_unpickling_error_and_a_value_error():
    # ValueError is what readers raise for every other corrupt field of a file.
    for corrupt in (PICKLE_1_2_3[:40], b'\x80\x02\x01', PICKLE_1_2_3.replace(b'long', b'lIng')):
        with pytest.raises(pickle.UnpicklingError) as raised:
            load_schema(corrupt)
        assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize('value', [5, {'slot_types': {}}, [int], None])
def test_a_pickle_of_anything_but_a_schema_is_refused(value):
    with pytest.raises(ValueError, match='not a Schema'):
        load_schema(pickle.dumps(value, 2))
