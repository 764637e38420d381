"""The golden files written by sharedbuffers 1.2.3 (tests/fixtures): read them, write them.

Every fixture whose values belong to the families this version implements must decode to
its manifest value (with the checker's own matching rules) and re-pack, from that value,
into exactly the recorded bytes.  Fixtures of families still to come must fail cleanly.
"""
import os

import struct

import numpy
import pytest

from conftest import FIXTURES_DIR, load_fixture_checker, load_manifest
from sharedbuffers import mapped_struct as ms
from sharedbuffers.types.numbers import smallest_int_code

CHECKER = load_fixture_checker()
MANIFEST = load_manifest()

# Value families implemented by this version, as tagged-JSON tags of the manifest.
SUPPORTED_TAGS = {'$float', '$bytes', '$bytes_digest', '$struct', '$list', '$tuple', '$frozenset', '$datetime',
                  '$date', '$decimal', '$buffer', '$ndarray', '$dict', '$seq', '$fset', '$mapping'}
SUPPORTED_SLOT_TYPES = {
    'int', 'float', 'bool', 'str', 'bytes', 'object', 'mapped_unicode', 'mapped_bytes',
    'uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'uint64', 'int64', 'float32', 'float64',
    'list', 'tuple', 'mapped_list', 'mapped_tuple', 'frozenset', 'set', 'mapped_frozenset',
    'datetime', 'date', 'Decimal', 'mapped_datetime', 'mapped_date', 'mapped_decimal',
    'memoryview', 'proxied_buffer', 'ndarray', 'proxied_ndarray', 'dict', 'mapped_dict',
    'proxied_list', 'proxied_tuple', 'proxied_frozenset', 'proxied_dict',
}
SUPPORTED_PACKERS = {'mapped_bytes', 'mapped_unicode', 'mapped_list', 'mapped_tuple', 'mapped_frozenset',
                     'proxied_list', 'proxied_tuple', 'proxied_frozenset', 'proxied_dict',
                     'mapped_datetime', 'mapped_date', 'mapped_decimal', 'proxied_buffer', 'proxied_ndarray',
                     'mapped_dict'}


def _value_supported(expected):
    if isinstance(expected, list):
        return all(_value_supported(item) for item in expected)
    if not isinstance(expected, dict):
        return True
    tag = CHECKER._tag(expected)
    if tag is None:
        return all(_value_supported(item) for item in expected.values())
    if tag not in SUPPORTED_TAGS:
        return False
    if tag == '$struct':
        return _class_supported(expected['$struct']) and _value_supported(expected.get('attrs', {}))
    return True


def _class_supported(name, seen=()):
    if name in seen:
        return True
    for slot_type in MANIFEST['classes'][name]['slots'].values():
        if slot_type.startswith('class:'):
            if not _class_supported(slot_type[len('class:'):], seen + (name,)):
                return False
        elif slot_type not in SUPPORTED_SLOT_TYPES:
            return False
    return True


def _in_scope(fixture):
    kind = fixture['kind']
    if kind == 'hash':
        return True
    if kind == 'schema_state':
        return _class_supported(fixture['class'])
    if kind == 'struct':
        return _class_supported(fixture['class']) and _value_supported(fixture['expected'])
    if kind == 'rtti':
        return _value_supported(fixture['expected'])
    if kind == 'bare':
        return fixture['packer'] in SUPPORTED_PACKERS
    return kind in ('array', 'idmapper', 'mapping')


IN_SCOPE = [fixture for fixture in MANIFEST['fixtures'] if _in_scope(fixture)]
REPACKABLE = [fixture for fixture in IN_SCOPE if fixture['kind'] in ('struct', 'rtti', 'bare')]


@pytest.fixture(scope='module')
def registry():
    return CHECKER.Registry(ms, MANIFEST)


def test_every_fixture_is_in_scope():
    value_kinds = ('struct', 'rtti', 'bare', 'schema_state', 'hash', 'array', 'idmapper', 'mapping')
    assert [f['name'] for f in MANIFEST['fixtures'] if f['kind'] in value_kinds and f not in IN_SCOPE] == []


@pytest.mark.parametrize('fixture', IN_SCOPE, ids=lambda fixture: fixture['name'])
def test_fixture_decodes_to_its_manifest_value(fixture, registry):
    if fixture['kind'] == 'mapping' and not fixture.get('multi'):
        fixture = _with_key_count_as_len(fixture)
    CHECKER.CHECKERS[fixture['kind']](ms, registry, FIXTURES_DIR, fixture)


def _with_key_count_as_len(fixture):
    """1.x's len() of a mapping counted distinct values; here it counts keys (the mapper's rows)."""
    with open(os.path.join(FIXTURES_DIR, fixture['file']), 'rb') as f:
        f.seek(fixture.get('offset', 0))
        key_count = struct.unpack('=Q', f.read(8))[0]
    assert key_count > fixture['expected']['len']           # these fixtures share values between keys
    return dict(fixture, expected=dict(fixture['expected'], len=key_count))


MARKERS_BY_CODE = {'b': ms.int8, 'B': ms.uint8, 'h': ms.int16, 'H': ms.uint16, 'i': ms.int32, 'I': ms.uint32,
                   'q': ms.int64, 'Q': ms.uint64}
MARKER_NAMES = ('ubyte', 'byte', 'ushort', 'short', 'uint32', 'int32', 'uint64', 'int64', 'float32', 'float64')


def _build(value, registry, decoded):
    """A Python value (objects of the fixture classes for structs) from tagged JSON.

    ``decoded`` is what the library read from the fixture at the same place: blobs that the
    manifest records only by digest are taken from it (their digest is checked elsewhere).
    """
    tag = CHECKER._tag(value) if isinstance(value, dict) else None
    if tag == '$struct':
        cls = registry.classes[value['$struct']]
        return cls(**{name: _with_stored_marker(_build(item, registry, getattr(decoded, name, None)), decoded, name)
                      for name, item in value.get('attrs', {}).items()})
    if tag in ('$bytes_digest', '$seq', '$fset', '$mapping'):
        return decoded          # the proxied containers re-pack from the views read (their type picks the code)
    if tag in ('$list', '$tuple'):
        items = [_build(item, registry, decoded_item) for item, decoded_item in zip(value[tag], decoded)]
        return items if tag == '$list' else tuple(items)
    if tag == '$dict':
        decoded = decoded if isinstance(decoded, dict) else {}
        return {CHECKER.decode(key): _build(item, registry, decoded.get(CHECKER.decode(key)))
                for key, item in value[tag]}
    if tag == '$ndarray':
        spec = value[tag]
        return numpy.frombuffer(bytes.fromhex(spec['hex']), dtype=CHECKER._dtype_from_json(spec['dtype'])).reshape(
            spec['shape'])
    if tag == '$buffer':
        return memoryview(bytes.fromhex(value[tag]))
    if tag == '$frozenset':
        # The manifest lists elements in the order 1.x iterated the set it packed (ties in the
        # stable-hash order keep that order), so build the set in the same order.
        return frozenset(CHECKER.decode(item) for item in value[tag])
    return CHECKER.decode(value)


class _FourGibibyteBuffer(bytearray):
    """A bytearray that reports 4 GiB, as the generator used for the 64-bit pointer fixture
    (1.x writes 't' pointer tables into destinations over 2 GiB; FORMAT.md §4.4)."""

    def __len__(self):
        return 1 << 32


def _stored_typecode(proxy, name):
    """The RTTI typecode byte an ``object`` slot of a (snapshot) proxy points at, or None."""
    schema = getattr(type(proxy), '_proxy_schema', None)
    if schema is None or schema.slot_types.get(name) is not ms.mapped_object:
        return None
    has, none = tuple.__getitem__(proxy, 2), tuple.__getitem__(proxy, 3)
    field = next((field for field in schema.shape(has, none).fields if field.name == name), None)
    if field is None:
        return None
    buffer, offset = proxy._proxy_buffer, proxy._proxy_offset
    pointer = struct.unpack_from('=q', buffer, offset + field.offset)[0]
    return chr(buffer[offset + pointer])


def _with_stored_marker(value, proxy, name):
    """A number the fixture stored with a marker's code (uint8(5) as 'B') gets that marker back."""
    code = _stored_typecode(proxy, name)
    if code is None:
        return value
    if type(value) is int and code in 'bBhHiIqQ' and code != smallest_int_code(value):
        return MARKERS_BY_CODE[code](value)
    if type(value) is float and code == 'f':
        return ms.float32(value)
    return value


def _declared_marker(fixture):
    """The marker class an RTTI fixture was written with (``mapped_object.pack_into(ushort)``)."""
    written_with = fixture['description'].rpartition('(')[2].rstrip(')')
    return getattr(ms, written_with) if written_with in MARKER_NAMES else None


def _fixture_bytes(fixture):
    with open(os.path.join(FIXTURES_DIR, fixture['file']), 'rb') as f:
        data = f.read()
    return data


# FORMAT.md §1.3: 1.x copies stale scratch bytes into dict-key padding, 8 bytes in all, in
# exactly these fixtures; a zero-padding writer differs there and only there.
STALE_KEY_PADDING = {'containers_variety', 'rtti_dict_docs', 'bare_dict_docs', 'bare_pdict_mixed'}


def _assert_same_bytes(ours, theirs, fixture):
    if fixture['name'] not in STALE_KEY_PADDING:
        assert ours == theirs
        return
    assert len(ours) == len(theirs)
    differences = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    assert len(differences) <= 8
    assert all(ours[i] == 0 for i in differences), 'differences outside padding'


def _interned(value, strings):
    """``value`` with equal strings replaced by one object (the fixture packed shared objects)."""
    if isinstance(value, str):
        return strings.setdefault(value, value)
    if isinstance(value, list):
        return [_interned(item, strings) for item in value]
    if isinstance(value, tuple):
        return tuple(_interned(item, strings) for item in value)
    if isinstance(value, dict):
        return {_interned(key, strings): _interned(item, strings) for key, item in value.items()}
    if hasattr(value, '__dict__') and not isinstance(value, type):
        for name, item in vars(value).items():
            setattr(value, name, _interned(item, strings))
    return value


def _share_lists(obj):
    """The dedup fixture's dict holds the very list of slot ``lst`` (its elements are shared)."""
    if hasattr(obj, 'zd') and hasattr(obj, 'lst') and isinstance(obj.zd, dict) and obj.zd.get('other') == obj.lst:
        obj.zd['other'] = obj.lst
    return obj


# 1.2.3 merged True with an earlier 1 among dynamically typed values (REFERENCE-API §5.4): these
# fixtures hold a pointer to the int where True was written.  This writer keeps them apart,
# so the bytes are those of the value 1.2.3 actually stored: True replaced by 1.
TRUE_MERGED_WITH_ONE = {'dyn_all_typecodes', 'containers_variety'}


def _as_1x_stored(value):
    """``value`` with True/False in dynamically typed places replaced by 1/0, as 1.2.3 stored them."""
    if value is True or value is False:
        return int(value)
    if isinstance(value, list):
        return [_as_1x_stored(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_as_1x_stored(item) for item in value)
    if hasattr(value, '__dict__') and not isinstance(value, type):
        for name, item in vars(value).items():
            if name.startswith(('o_', 'l_')):
                setattr(value, name, _as_1x_stored(item))
    return value


@pytest.mark.parametrize('name, read_true', [
    ('dyn_all_typecodes', lambda proxy: proxy.o_T),
    ('containers_variety', lambda proxy: proxy.l_obj[5]),
])
def test_true_is_no_longer_merged_with_one_when_repacking_those_fixtures(registry, name, read_true):
    fixture = next(fixture for fixture in MANIFEST['fixtures'] if fixture['name'] == name)
    data = _fixture_bytes(fixture)
    schema = registry.schema(fixture['class'])
    assert read_true(schema.unpack_from(data, fixture['offset'])) == 1      # what 1.2.3 stored
    value = _build(fixture['expected'], registry, schema.unpack_from(data, fixture['offset']))
    assert read_true(schema.unpack_from(schema.pack(value))) is True


@pytest.mark.parametrize('fixture', REPACKABLE, ids=lambda fixture: fixture['name'])
def test_fixture_value_repacks_to_the_same_bytes(fixture, registry):
    data = _fixture_bytes(fixture)
    offset, size = fixture['offset'], fixture['size']
    wide_pointers = data[offset:offset + 1] == b't' and fixture['kind'] == 'bare'
    buffer = (_FourGibibyteBuffer if wide_pointers else bytearray)(len(data))
    if fixture['kind'] == 'struct':
        schema = registry.schema(fixture['class'])
        value = _build(fixture['expected'], registry, schema.unpack_from(data, offset))
        if 'same objects' in fixture['description']:
            value = _share_lists(_interned(value, {}))
        if fixture['name'] in TRUE_MERGED_WITH_ONE:
            value = _as_1x_stored(value)
        end = schema.pack_into(value, buffer, offset)
    elif fixture['kind'] == 'rtti':
        value = _build(fixture['expected'], registry, ms.mapped_object.unpack_from(data, offset))
        marker = _declared_marker(fixture)
        end = ms.mapped_object.pack_into(marker(value) if marker else value, buffer, offset)
    else:
        packer = getattr(ms, fixture['packer'])
        value = _build(fixture['expected'], registry, packer.unpack_from(data, offset))
        end = packer.pack_into(value, buffer, offset)
    _assert_same_bytes(bytes(buffer[offset:offset + size]), data[offset:offset + size], fixture)
    assert end - offset in (size, (size + 7) // 8 * 8)
