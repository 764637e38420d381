"""Attributes and call forms of 1.x's public API that code written for it uses (REFERENCE-API
§1.8-§1.10, §6.1): zip members opened the 1.x way, the id mappers' file attributes, copies and
preloading, and proxied_dict's views."""
import zipfile

import numpy
import pytest

from sharedbuffers.mapped_struct import (
    MappedArrayProxyBase, MappedMappingProxyBase, NumericId32Mapper, NumericIdMapper, ObjectIdMapper, Schema,
    StringIdMapper, proxied_dict)


class Item:
    __slot_types__ = {'n': int}

    def __init__(self, n):
        self.n = n


class Items(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Item)


class ItemsByName(MappedMappingProxyBase):
    IdMapper = StringIdMapper
    ValueArray = Items


@pytest.fixture
def archive(tmp_path):
    """A zip holding an array, a mapper and a mapping, stored uncompressed, and one deflated member."""
    paths = {'array': tmp_path / 'array.bin', 'mapper': tmp_path / 'mapper.bin', 'mapping': tmp_path / 'mapping.bin'}
    Items.build([Item(n) for n in range(10)], str(paths['array']), return_mapper=False)
    NumericIdMapper.build({n: n * n for n in range(100)}, str(paths['mapper']), return_mapper=False)
    ItemsByName.build({'k%d' % n: Item(n) for n in range(20)}, destfile=str(paths['mapping']))
    path = tmp_path / 'bundle.zip'
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as bundle:
        bundle.writestr('padding', b'x' * 37)
        for name, member in paths.items():
            bundle.write(member, name)
        bundle.write(paths['mapper'], 'deflated', compress_type=zipfile.ZIP_DEFLATED)
    return path


def test_zip_members_map_in_both_call_forms(archive):
    with zipfile.ZipFile(archive) as bundle:
        assert [p.n for p in Items.map_zipfile(bundle.open('array'))] == list(range(10))     # 1.x's form
        assert Items.map_zipfile(bundle, 'array')[-1].n == 9
        assert NumericIdMapper.map_zipfile(bundle.open('mapper'))[7] == 49
        assert NumericIdMapper.map_zipfile(str(archive), 'mapper')[9] == 81
        assert ItemsByName.map_zipfile(bundle.open('mapping'))['k5'].n == 5
        assert ItemsByName.map_zipfile(bundle, 'mapping')['k19'].n == 19


def test_a_region_of_a_zip_member_maps_like_a_region_of_a_file(archive, tmp_path):
    with zipfile.ZipFile(archive) as bundle:
        size = bundle.getinfo('mapper').file_size
        assert NumericIdMapper.map_zipfile(bundle.open('mapper'), 0, size)[3] == 9
        with pytest.raises(ValueError, match='outside zip member'):
            NumericIdMapper.map_zipfile(bundle.open('mapper'), 0, size + 1)
        with pytest.raises(ValueError, match='outside zip member'):
            NumericIdMapper.map_zipfile(bundle.open('mapper'), size + 1)


def test_compressed_zip_members_are_refused(archive):
    with zipfile.ZipFile(archive) as bundle:
        with pytest.raises(ValueError, match='compressed'):
            NumericIdMapper.map_zipfile(bundle.open('deflated'))
        with pytest.raises(ValueError, match='compressed'):
            NumericIdMapper.map_zipfile(bundle, 'deflated')


def test_mapper_file_attributes(tmp_path):
    path = tmp_path / 'names.bin'
    StringIdMapper.build([('a', 1), ('bb', 2)], str(path), return_mapper=False)
    with open(path, 'rb') as opened:
        mapper = StringIdMapper.map_file(opened)
        assert mapper.fileobj is opened and mapper.fileno == opened.fileno()
        assert mapper.name == str(path)
        assert mapper.dtype == numpy.uint64 and NumericId32Mapper.build({1: 2}).dtype == numpy.uint32
        assert mapper._index_data.shape == (2, 3) and not mapper._index_data.flags.writeable
    assert mapper.fileno is None                        # its file was closed; the mapping stays
    by_path = StringIdMapper.map_file(str(path))
    assert by_path.fileobj is None and by_path.fileno is None and by_path.name == str(path)
    in_memory = StringIdMapper.map_buffer(path.read_bytes())
    assert in_memory.name is None and in_memory.fileobj is None


def test_sliced_buf_holds_the_mapper_and_nothing_after_it(tmp_path):
    path = tmp_path / 'two.bin'
    with open(path, 'wb') as output:
        output.write(b'\0' * 40)
        ObjectIdMapper.build({('t', 1): 5, 'x': 6}, output, return_mapper=False)
        end = output.tell()
        output.write(b'trailing bytes')
    mapper = ObjectIdMapper.map_file(str(path), 40, end - 40)
    assert len(mapper.sliced_buf) <= end - 40 and bytes(mapper.sliced_buf[:8]) == (2).to_bytes(8, 'little')
    copied = mapper.copy()
    assert isinstance(copied.buf, bytearray) and copied[('t', 1)] == 5 and copied['x'] == 6
    assert copied._index_data.flags.writeable           # a copy is the caller's to change
    assert ObjectIdMapper.map_buffer(bytes(mapper.sliced_buf))['x'] == 6


def test_copy_takes_the_buffer_maker_and_preload_reads_the_index():
    mapper = NumericIdMapper.build({n: n + 1 for n in range(1000)})
    assert mapper.preload() is None
    frozen = mapper.copy(bytes)
    assert isinstance(frozen.buf, bytes) and frozen[999] == 1000 and not frozen._index_data.flags.writeable
    assert NumericIdMapper.build({}).preload() is None


def test_proxied_dict_views_buffer_and_offset():
    buffer = bytearray(4096)
    proxied_dict.pack_into({'a': 1, 'b': 2}, buffer, 64)
    view = proxied_dict.unpack_from(buffer, 64)
    assert sorted(view.viewkeys()) == ['a', 'b'] and sorted(view.viewvalues()) == [1, 2]
    assert sorted(view.viewitems()) == [('a', 1), ('b', 2)]
    assert view.buffer is buffer and view.offset == 64


# -- StrongIdMap and GenericFileMapper -------------------------------------------------------------

class Tagged:
    __slot_types__ = {'tag': str, 'parts': list}

    def __init__(self, tag, parts):
        self.tag, self.parts = tag, parts


class TaggedItems(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Tagged)


def test_a_strong_idmap_builds_what_a_plain_dict_builds():
    from sharedbuffers.mapped_struct import StrongIdMap
    from sharedbuffers.pool import StrongIdMap as pool_strong_id_map
    assert pool_strong_id_map is StrongIdMap
    shared = ['long shared list element %d' % n for n in range(3)]
    items = [Tagged('t%d' % (n % 3), shared if n % 2 else [n]) for n in range(200)]
    with_plain = TaggedItems.build(items, idmap={})
    with_strong = TaggedItems.build(items, idmap=StrongIdMap())
    assert bytes(with_strong.buf) == bytes(with_plain.buf)
    assert [(p.tag, p.parts) for p in with_strong] == [(i.tag, i.parts) for i in items]


def test_a_strong_idmap_is_cleared_past_its_limit_keeping_pinned_and_stable_entries():
    from sharedbuffers.mapped_struct import StrongIdMap
    schema = TaggedItems.schema
    idmap = StrongIdMap(strong_limit=10)
    buffer = bytearray(1 << 16)
    end = schema.pack_into(Tagged('pinned', [1, 2, 3]), buffer, 0, idmap)
    idmap.preload()
    from sharedbuffers.packing import _WRITTEN_UP_TO
    pinned = {key: entry for key, entry in idmap.items() if key is not _WRITTEN_UP_TO}
    assert pinned
    for number in range(30):        # each pack adds entries; past 10 the map starts over
        end = schema.pack_into(Tagged('tag %d' % number, [number]), buffer, end, idmap)
        assert len(idmap) <= 10 + 4
        assert all(idmap.get(key) == value for key, value in pinned.items())
    idmap.clear_preloaded()
    idmap.clear()
    assert len(idmap) == 0                              # nothing kept: free for a new buffer
    schema.pack_into(Tagged('again', [1]), bytearray(4096), 0, idmap)
    with pytest.raises(ValueError, match='strong_limit'):
        StrongIdMap(strong_limit=0)
    assert StrongIdMap(preallocate=True, strong_class=dict).strong_limit == 1 << 19


def test_generic_file_mapper_maps_a_region(tmp_path):
    from sharedbuffers.mapped_struct import GenericFileMapper
    path = tmp_path / 'data.bin'
    path.write_bytes(bytes(range(256)) * 20)
    with open(path, 'rb') as opened:
        view, mapping = GenericFileMapper.map_file(opened, 4096, 16)
    assert bytes(view) == bytes(range(16)) and len(view) == 16
    view.release()
    mapping.close()


def test_string_mappers_encode_keys_as_1x_did():
    from sharedbuffers.mapped_struct import ApproxStringIdMultiMapper, StringId32Mapper
    assert StringIdMapper.encode('ü') == b'\xc3\xbc' == StringId32Mapper.encode(b'\xc3\xbc')
    assert ApproxStringIdMultiMapper.encode('a') == b'a'
    with pytest.raises(TypeError):
        StringIdMapper.encode(5)


# -- iteritems / iterkeys (make_sequential) ----------------------------------------------------

def test_make_sequential_walks_string_keys_in_stored_order():
    from sharedbuffers.mapped_struct import StringIdMultiMapper
    pairs = [('key %03d' % number, number) for number in range(300)]
    mapper = StringIdMapper.build(pairs)
    assert list(mapper.iteritems()) == pairs                          # 1.x's default for strings
    assert list(mapper.iteritems(make_sequential=True)) == pairs
    assert list(mapper.iteritems(make_sequential=False)) == list(mapper.items()) != pairs
    assert list(mapper.iterkeys()) == [key for key, _ in pairs]
    assert list(mapper.iterkeys(make_sequential=False)) == list(mapper.keys())
    multi = StringIdMultiMapper.build(pairs + [('key 007', 1000)])
    assert list(multi.iterkeys()) == [key for key, _ in pairs]        # each key once
    assert sorted(multi.iteritems()) == sorted(pairs + [('key 007', 1000)])


def test_make_sequential_for_object_and_numeric_mappers():
    objects = ObjectIdMapper.build([(('t', n), n) for n in range(50)])
    assert list(objects.iteritems()) == list(objects.items())         # 1.x's default: False
    assert list(objects.iteritems(make_sequential=True)) == [(('t', n), n) for n in range(50)]
    numbers = NumericIdMapper.build({5: 1, 3: 2})
    assert list(numbers.iteritems(make_sequential=True)) == list(numbers.items()) == [(3, 2), (5, 1)]
    assert list(StringIdMapper.build([]).iteritems()) == []


def test_mapping_iteritems_passes_1x_arguments_to_mapper_and_getter():
    mapping = ItemsByName.build([('k%d' % n, Item(n)) for n in range(30)])
    assert [(key, value.n) for key, value in mapping.iteritems()] == [('k%d' % n, n) for n in range(30)]
    unordered = [(key, value.n) for key, value in mapping.iteritems(idm_kw={'make_sequential': False})]
    assert sorted(unordered) == sorted(('k%d' % n, n) for n in range(30))
    assert len(list(mapping.iteritems(g_kw={'no_idmap': True}))) == 30
    with pytest.raises(TypeError):
        list(mapping.iteritems(idm_kw={'no_such_option': 1}))


# -- the names code written for 1.x imports and calls (REFERENCE-API §6.1) -------------------------

MAPPED_STRUCT_NAMES = '''
    ubyte uint8 byte int8 ushort uint16 short int16 uint32 int32 uint64 int64 float32 float64 double
    Schema mapped_object mapped_object_with_schema BufferProxyObject
    mapped_bytes mapped_unicode mapped_list mapped_tuple mapped_frozenset mapped_dict mapped_datetime mapped_date
    mapped_decimal proxied_list proxied_tuple proxied_frozenset proxied_dict proxied_buffer proxied_ndarray
    MappedArrayProxyBase MappedMappingProxyBase MappedMultiMappingProxyBase
    NumericIdMapper NumericId32Mapper NumericIdMultiMapper NumericId32MultiMapper StringIdMapper StringId32Mapper
    StringIdMultiMapper StringId32MultiMapper ApproxStringIdMultiMapper ApproxStringId32MultiMapper ObjectIdMapper
    bsearch hinted_bsearch sorted_contains hinted_sorted_contains index_merge _stable_hash StrongIdMap
    GenericFileMapper
'''.split()
MAPPER_METHODS = ('build map_file map_buffer map_zipfile merge get __getitem__ __contains__ has_key keys values '
                  'items iteritems iterkeys itervalues copy preload get_many').split()


def test_the_1x_names_are_importable_and_callable():
    from sharedbuffers import mapped_struct, pool
    missing = [name for name in MAPPED_STRUCT_NAMES if not hasattr(mapped_struct, name)]
    assert not missing
    assert all(hasattr(pool, name) for name in ('TemporaryObjectPool', 'BaseObjectPool', 'Section', 'StrongIdMap'))
    for name in MAPPED_STRUCT_NAMES:
        if name.endswith('Mapper') and name != 'GenericFileMapper':
            kind = getattr(mapped_struct, name)
            assert [method for method in MAPPER_METHODS if not callable(getattr(kind, method, None))] == [], name
            if 'Multi' in name:
                assert callable(kind.get_iter)
    for method in 'build map_file map_buffer map_zipfile getter iter_fast column'.split():
        assert callable(getattr(MappedArrayProxyBase, method))
    for method in 'build map_file map_buffer map_zipfile get keys values items iteritems iterkeys'.split():
        assert callable(getattr(MappedMappingProxyBase, method))


def test_mapping_build_takes_1x_arguments_in_1x_order():
    pairs = [('k%d' % n, Item(n % 4)) for n in range(12)]
    mapping = ItemsByName.build(pairs, None, None, {}, {'idmap': {}}, {}, 16)   # idmap, then the kwargs dicts
    assert [mapping['k%d' % n].n for n in range(12)] == [n % 4 for n in range(12)]
    assert len(mapping.value_array) == 4                # equal values stored once
    with pytest.raises(TypeError, match='idmap must be None or a dict'):
        ItemsByName.build(pairs, idmap=[1])
    with pytest.raises(TypeError, match="no option 'compress'"):
        ItemsByName.build(pairs, value_array_kwargs={'compress': True})
    with pytest.raises(TypeError):
        ItemsByName.build(pairs, id_mapper_kwargs={'no_such_option': True})
    assert ItemsByName.build(pairs, id_mapper_kwargs={'discard_duplicates': True})['k3'].n == 3
