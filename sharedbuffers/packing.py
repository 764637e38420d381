"""The state of one pack call: the output bytes, where they will land, and the dedup map.

Positions
---------
Codecs append to ``context.out`` (a ``bytearray``).  Three coordinate systems meet here:

* *index*: a position inside ``out``;
* *absolute*: the position in the destination buffer, ``base + index``.  Padding after
  variable-size values is computed on absolute positions (FORMAT.md §1.4);
* *logical*: ``implicit_offs + absolute``, the position in the final file when the
  destination is one piece of a larger whole (a typed-array item, a pool section).  The
  dedup map stores logical positions, so a pointer to something written by an earlier
  pack into the same file is still the right difference.

Deduplication (the "idmap", FORMAT.md §5.5)
-------------------------------------------
Equal short strings, equal ints and ``None`` share one copy (keys by value, tagged with
the type so that ``True`` never merges with ``1``); other objects share by identity.

Keys and entries, one map for everything written by one pack:

==========================  ===============================  ===========================
what                        key                              entry
==========================  ===============================  ===========================
short str / bytes (bare)    the value itself                 logical position (int)
other bare values, structs  ``id(obj)``                      ``(position, obj)``
RTTI-wrapped, by value      ``(WRAPPED, type, value)``       logical position (int)
RTTI-wrapped, by identity   ``(WRAPPED, id(obj))``           ``(position, obj)``
==========================  ===============================  ===========================  1.x
keyed identity by bare ``id(obj)`` and kept nothing alive, so a temporary object packed in a
loop could reuse the id of a dead one and silently point at the wrong data.  Here every
identity entry keeps its object alive for as long as the map lives, so an id can never be
reused while it is a key.  A map also remembers how far it has been written; packing again
*below* that point (the same map reused for a new buffer) raises instead of corrupting.
"""

__all__ = ['PackContext', 'WRAPPED', 'StrongIdMap', 'check_idmap_position', 'finish_idmap', 'forget_from',
           'idmap_options', 'pinned_entries', 'reset_idmap', 'DEFAULT_IDMAP_LIMIT']


class _Tag:
    """A unique, readable sentinel used inside idmap keys."""
    __slots__ = ('name',)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return '<%s>' % self.name

    def __reduce__(self):
        return (_tag_by_name, (self.name,))


WRAPPED = _Tag('wrapped')
_WRITTEN_UP_TO = _Tag('written-up-to')
_TAGS = {tag.name: tag for tag in (WRAPPED, _WRITTEN_UP_TO)}


def _tag_by_name(name):
    return _TAGS[name]


_ZEROS = bytes(64)

#: Entries an idmap with a limit (a pool section's, a StrongIdMap) may hold before it is reset.
#: 1.x's ``StrongIdMap`` default was written ``1 << 20 - 1``, which Python reads as ``1 << 19``;
#: that is the number it used.
DEFAULT_IDMAP_LIMIT = 1 << 19
_IDMAP_OPTIONS = frozenset(('strong_limit', 'stable_set', 'preallocate', 'strong_class'))


def idmap_options(options):
    """(entry limit, keys kept on reset) from 1.x ``StrongIdMap`` keywords.

    ``preallocate`` and ``strong_class`` tuned 1.x's cache of strong references; every map
    here keeps its objects alive, so they are accepted and have nothing to tune."""
    unknown = set(options) - _IDMAP_OPTIONS
    if unknown:
        raise TypeError('unknown idmap option(s) %s; accepted: %s'
                        % (', '.join(sorted(map(repr, unknown))), ', '.join(sorted(_IDMAP_OPTIONS))))
    limit = options.get('strong_limit', DEFAULT_IDMAP_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError('strong_limit must be a positive int, got %r' % (limit,))
    stable = options.get('stable_set') or ()
    # A 1.x stable set names shared ids; the same object RTTI-wrapped is keyed (WRAPPED, id).
    kept = tuple(stable) + tuple((WRAPPED, key) for key in stable if type(key) is int)
    return limit, kept


class StrongIdMap(dict):
    """1.x's idmap class, for code that passes one to ``pack`` or ``build``.

    Any dict works as an idmap here, and keeps what it maps alive (see above), so the id
    reuse that 1.x's ``StrongIdMap`` guarded against cannot happen with a plain dict either.
    What this class adds is 1.x's bound on its size: when a pack leaves more than
    ``strong_limit`` entries, the map is cleared (a long build's map stays bounded; later
    values are written again instead of shared), keeping the entries ``preload()`` pinned and
    those of ``stable_set`` keys.
    """

    def __init__(self, strong_limit=DEFAULT_IDMAP_LIMIT, preallocate=False, strong_class=None, stable_set=None):
        super().__init__()
        self.strong_limit, self._kept_keys = idmap_options(dict(strong_limit=strong_limit, stable_set=stable_set))
        self._preloaded = {}

    def preload(self):
        """Pin the current entries (objects packed first, that later ones refer to): they survive clear()."""
        self._preloaded = pinned_entries(self)

    def clear_preloaded(self):
        """Unpin the entries ``preload()`` pinned (they stay until the next clear())."""
        self._preloaded = {}

    def clear(self):
        """Forget every entry but the pinned ones and those of the stable keys."""
        reset_idmap(self, self._preloaded, self._kept_keys)


# Pool sections keep the same limit, pins and stable keys on a plain dict: the interpreter's
# fast paths for dict subscripts and get() take exact dicts only, and packing uses them per
# value (a StrongIdMap there made pool packs 7% slower).

def pinned_entries(idmap):
    """The entries of ``idmap`` to keep across resets (all of them now, not how far they go)."""
    return {key: entry for key, entry in idmap.items() if key is not _WRITTEN_UP_TO}


def reset_idmap(idmap, pinned, kept_keys):
    """Clear ``idmap`` but for the ``pinned`` entries and those of ``kept_keys``."""
    kept = {key: idmap[key] for key in kept_keys if key in idmap}
    written = idmap.get(_WRITTEN_UP_TO)
    dict.clear(idmap)
    idmap.update(pinned)
    idmap.update(kept)
    if written is not None and len(idmap):  # what the kept entries describe still ends there;
        idmap[_WRITTEN_UP_TO] = written     # an empty map may serve a new buffer


class PackContext:
    """Output buffer plus dedup map of one top-level pack call."""
    __slots__ = ('out', 'base', 'origin', 'idmap', 'capacity', 'isolated')

    def __init__(self, base, implicit_offs, idmap, capacity=None):
        self.out = bytearray()
        self.base = base                    # absolute position of out[0]
        self.origin = base + implicit_offs  # logical position of out[0]
        self.idmap = idmap
        # Size of the destination buffer, when known: 1.x picks 64-bit pointer tables for
        # sequences written into buffers over 2 GiB, and byte-exact output follows it.
        self.capacity = capacity
        # The top-level value of a pack called without an idmap: 1.x gives a dict in that
        # position separate fresh idmaps for its keys and its values (FORMAT.md §4.6).
        self.isolated = None

    def with_fresh_idmap(self):
        """A context writing into the same output, with a dedup map of its own.

        1.x packs some nested values (a numpy dtype descriptor) with a new idmap, so they
        share nothing with the rest of the pack; byte-exact output has to do the same.
        """
        nested = PackContext.__new__(PackContext)
        nested.out = self.out
        nested.base = self.base
        nested.origin = self.origin
        nested.idmap = {}
        nested.capacity = self.capacity
        nested.isolated = None
        return nested

    def pad(self, alignment):
        """Append zeros up to the next multiple of ``alignment``, counted on absolute positions."""
        remainder = (self.base + len(self.out)) % alignment
        if remainder:
            self.out += _ZEROS[:alignment - remainder] if alignment <= 64 else bytes(alignment - remainder)


def check_idmap_position(idmap, logical_start):
    """Refuse to pack with a map whose entries point into data at or after ``logical_start``.

    That happens when one map is reused for a second, independent buffer (1.x then wrote
    pointers into the first buffer's layout: silent corruption).
    """
    written = idmap.get(_WRITTEN_UP_TO)
    if written is not None and written > logical_start:
        raise ValueError(
            'this idmap already describes data up to logical offset %d, and the new pack starts '
            'at %d: its entries would point at stale data. Use a fresh idmap per buffer, or pass '
            'implicit_offs so that each pack lands after the previous one' % (written, logical_start))


def forget_from(idmap, logical_start):
    """Drop the entries of a pack that failed: everything recorded at or after ``logical_start``."""
    for key, entry in list(idmap.items()):
        position = entry[0] if type(entry) is tuple else entry
        if key is not _WRITTEN_UP_TO and position >= logical_start:
            del idmap[key]


def finish_idmap(idmap, logical_end):
    """Record how far the data described by ``idmap`` extends; a map with a ``strong_limit``
    (StrongIdMap) that passed it is cleared."""
    if logical_end > idmap.get(_WRITTEN_UP_TO, -1):
        idmap[_WRITTEN_UP_TO] = logical_end
    if type(idmap) is not dict:             # a plain dict (the usual map) has no limit to check
        limit = getattr(idmap, 'strong_limit', None)
        if limit is not None and len(idmap) > limit:
            idmap.clear()
