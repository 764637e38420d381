"""The 1.x-compatible facade: ``from sharedbuffers.pool import TemporaryObjectPool, ...``.

Names only, no logic: the pools are implemented in ``sharedbuffers.containers.pools``.
"""
from .containers.pools import (
    DEFAULT_PACK_BUFFER, DEFAULT_SECTION_SIZE, BaseObjectPool, Section, TemporaryObjectPool)
from .packing import StrongIdMap

__all__ = ['Section', 'BaseObjectPool', 'TemporaryObjectPool', 'DEFAULT_SECTION_SIZE', 'DEFAULT_PACK_BUFFER',
           'StrongIdMap']
