"""The 1.x-compatible facade: ``from sharedbuffers.mapped_struct import Schema, ...``.

Names only, no logic: each name is implemented in the module that owns it.
"""
from .containers.arrays import MappedArrayProxyBase
from .containers.filemaps import GenericFileMapper
from .containers.mappings import MappedMappingProxyBase, MappedMultiMappingProxyBase
from .containers.idmappers import (
    ApproxStringId32MultiMapper, ApproxStringIdMultiMapper, NumericId32Mapper, NumericId32MultiMapper,
    NumericIdMapper, NumericIdMultiMapper, ObjectIdMapper, StringId32Mapper, StringId32MultiMapper,
    StringIdMapper, StringIdMultiMapper)
from .packing import StrongIdMap
from .rtti import TYPECODES, mapped_object
from .schema import Schema, mapped_object_with_schema
from .sorted_search import bsearch, hinted_bsearch, hinted_sorted_contains, index_merge, sorted_contains
from .stable_hash import stable_hash as _stable_hash
from .struct_proxy import ProxyBehaviour as BufferProxyObject, restore_object
from .types.numbers import (
    byte, double, float32, float64, int8, int16, int32, int64, short, ubyte, uint8, uint16, uint32, uint64,
    ushort)
from .types.sequences import mapped_list, mapped_tuple
from .types.dicts import mapped_dict
from .types.ndarrays import NDARRAY_STANDARD_CODES_TO_DTYPE, NDARRAY_STANDARD_DTYPES_TO_CODE, proxied_ndarray
from .types.proxied import proxied_dict, proxied_frozenset, proxied_list, proxied_tuple
from .types.raw_buffers import proxied_buffer
from .types.sets import mapped_frozenset
from .types.decimals import mapped_decimal
from .types.times import (
    mapped_date, mapped_datetime, mapped_datetime_local, mapped_datetime_tz, mapped_datetime_tz_local,
    mapped_datetime_utc)
from .types.strings import mapped_bytes, mapped_unicode

__all__ = [
    'MappedArrayProxyBase', 'MappedMappingProxyBase', 'MappedMultiMappingProxyBase', 'NumericIdMapper', 'NumericId32Mapper', 'NumericIdMultiMapper', 'NumericId32MultiMapper',
    'StringIdMapper', 'StringId32Mapper', 'StringIdMultiMapper', 'StringId32MultiMapper', 'ApproxStringIdMultiMapper',
    'ApproxStringId32MultiMapper', 'ObjectIdMapper',
    'Schema', 'mapped_object', 'mapped_object_with_schema', 'mapped_bytes', 'mapped_unicode', 'mapped_list',
    'mapped_tuple', 'mapped_frozenset', 'mapped_dict', 'mapped_datetime', 'mapped_date', 'mapped_decimal',
    'mapped_datetime_utc', 'mapped_datetime_local', 'mapped_datetime_tz', 'mapped_datetime_tz_local',
    'proxied_buffer', 'proxied_ndarray', 'proxied_list', 'proxied_tuple', 'proxied_frozenset', 'proxied_dict', 'NDARRAY_STANDARD_CODES_TO_DTYPE', 'NDARRAY_STANDARD_DTYPES_TO_CODE',
    'ubyte', 'byte', 'ushort', 'short', 'uint32', 'int32', 'uint64', 'int64', 'float32', 'float64',
    'uint8', 'int8', 'uint16', 'int16', 'double', 'BufferProxyObject', 'TYPECODES', 'restore_object',
    '_stable_hash', 'bsearch', 'hinted_bsearch', 'sorted_contains', 'hinted_sorted_contains', 'index_merge',
    'StrongIdMap', 'GenericFileMapper',
]


def __pyx_unpickle_mapped_object_with_schema(cls, checksum, state):
    """Legacy pickles of Cython-era 1.x name this function; rebuild the packer from its state."""
    packer = mapped_object_with_schema(None)
    packer.__setstate__(state if isinstance(state, (tuple, list, dict)) else (state,))
    return packer
