"""The golden files written by sharedbuffers 1.2.3 (tests/fixtures): read them, write them.

Every fixture whose values belong to the families this version implements must decode to
its manifest value (with the checker's own matching rules) and re-pack, from that value,
into exactly the recorded bytes.  Fixtures of families still to come must fail cleanly.
"""
import os

import numpy
import pytest

from conftest import FIXTURES_DIR, load_fixture_checker, load_manifest
from sharedbuffers import mapped_struct as ms

CHECKER = load_fixture_checker()
MANIFEST = load_manifest()

# Value families implemented by this version, as tagged-JSON tags of the manifest.
SUPPORTED_TAGS = {'$float', '$bytes', '$bytes_digest', '$struct', '$list', '$tuple', '$frozenset', '$datetime',
                  '$date', '$decimal', '$buffer', '$ndarray', '$dict'}
SUPPORTED_SLOT_TYPES = {
    'int', 'float', 'bool', 'str', 'bytes', 'object', 'mapped_unicode', 'mapped_bytes',
    'uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'uint64', 'int64', 'float32', 'float64',
    'list', 'tuple', 'mapped_list', 'mapped_tuple', 'frozenset', 'set', 'mapped_frozenset',
    'datetime', 'date', 'Decimal', 'mapped_datetime', 'mapped_date', 'mapped_decimal',
    'memoryview', 'proxied_buffer', 'ndarray', 'proxied_ndarray', 'dict', 'mapped_dict',
}
SUPPORTED_PACKERS = {'mapped_bytes', 'mapped_unicode', 'mapped_list', 'mapped_tuple', 'mapped_frozenset',
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
    return False        # arrays, id mappers and mappings come with the container issue


IN_SCOPE = [fixture for fixture in MANIFEST['fixtures'] if _in_scope(fixture)]
OUT_OF_SCOPE_VALUES = [fixture for fixture in MANIFEST['fixtures']
                       if fixture['kind'] in ('rtti', 'struct') and not _in_scope(fixture)
                       and _class_supported(fixture.get('class') or 'Inner')]
REPACKABLE = [fixture for fixture in IN_SCOPE if fixture['kind'] in ('struct', 'rtti', 'bare')]


@pytest.fixture(scope='module')
def registry():
    return CHECKER.Registry(ms, MANIFEST)


def test_the_scope_covers_every_family_of_this_version():
    kinds = {fixture['kind'] for fixture in IN_SCOPE}
    assert kinds == {'struct', 'rtti', 'bare', 'schema_state', 'hash'}
    assert len(IN_SCOPE) >= 70


@pytest.mark.parametrize('fixture', IN_SCOPE, ids=lambda fixture: fixture['name'])
def test_fixture_decodes_to_its_manifest_value(fixture, registry):
    CHECKER.CHECKERS[fixture['kind']](ms, registry, FIXTURES_DIR, fixture)


MARKER_NAMES = ('ubyte', 'byte', 'ushort', 'short', 'uint32', 'int32', 'uint64', 'int64', 'float32', 'float64')


def _build(value, registry, decoded):
    """A Python value (objects of the fixture classes for structs) from tagged JSON.

    ``decoded`` is what the library read from the fixture at the same place: blobs that the
    manifest records only by digest are taken from it (their digest is checked elsewhere).
    """
    tag = CHECKER._tag(value) if isinstance(value, dict) else None
    if tag == '$struct':
        cls = registry.classes[value['$struct']]
        return cls(**{name: _build(item, registry, getattr(decoded, name, None))
                      for name, item in value.get('attrs', {}).items()})
    if tag == '$bytes_digest':
        return decoded
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


@pytest.mark.parametrize('fixture', OUT_OF_SCOPE_VALUES, ids=lambda fixture: fixture['name'])
def test_families_still_to_come_fail_with_a_clear_error(fixture, registry):
    data = memoryview(_fixture_bytes(fixture))
    with pytest.raises(ValueError, match='not supported by this version yet'):
        if fixture['kind'] == 'rtti':
            _read_deeply(ms.mapped_object.unpack_from(data, fixture['offset']))
        else:
            _read_deeply(registry.schema(fixture['class']).unpack_from(data, fixture['offset']))


def _read_deeply(value, depth=0):
    """Read every attribute of a proxy and of the proxies it holds."""
    schema = getattr(type(value), '_proxy_schema', None)
    if schema is None or depth > 8:
        return
    for name in schema.slot_keys:
        _read_deeply(getattr(value, name, None), depth + 1)
