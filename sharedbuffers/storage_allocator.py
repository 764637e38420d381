"""The heap of a storage file: blocks with boundary tags, one free list, first fit.

Layout
------
The heap is the byte range ``[heap start, heap end)`` of the file, both multiples of 16.  It
is tiled by blocks, each a multiple of 16 bytes, with no gap between them::

    used block                                   free block
    +0   u64  size | 1 (bit 0: in use)           +0   u64  size (bit 0 clear)
    +8   u64  payload length                     +8   u64  next free block (0: last)
    +16  u64  value offset, in the payload       +16  u64  previous free block (0: first)
    +24  u32  slot: index of the root attribute   ...
    +28  u32  block magic 0x4b4c4253 ("SBLK")
    +32  payload (a packed value)
    ...
    end-8 u64 size (the boundary tag)            end-8 u64 size (the boundary tag)

Offsets are absolute file positions; integers are in the machine's byte order (the file
header records it).  The head of the free list and the heap end live in the file header,
at offsets the caller gives.

Allocation
----------
First fit over one doubly linked free list: freed blocks go to its front, so a value
re-assigned with the same size lands in the space its predecessor left.  A block that is
larger than needed is split when the rest can still hold a free block (32 bytes).  A freed
block is merged at once with a free neighbour on either side: the block after it is found
from its size, the block before it from the boundary tag just below it.  When nothing fits,
the caller grows the file and hands the new space to :meth:`BlockHeap.extend`, which merges
it with a free block at the end of the heap.

Why the free list may be rebuilt
--------------------------------
The root record's pointers are the truth: a block is in use exactly when a root attribute
points at it.  A crash can leave the free list half-updated, or a block allocated for a
value whose pointer was never switched, or an old value whose block was never freed;
:meth:`BlockHeap.rebuild` turns every range no pointer reaches into free blocks again.  So
the allocator's own metadata needs no crash protection: opening a file for writing rebuilds
it from the pointers (a few writes per attribute).
"""
import struct

__all__ = ['BlockHeap', 'BLOCK_ALIGNMENT', 'USED_HEADER_SIZE', 'FOOTER_SIZE', 'MIN_FREE_BLOCK',
           'MIN_USED_BLOCK', 'block_size_for', 'store_word']

BLOCK_ALIGNMENT = 16
USED_HEADER_SIZE = 32
FOOTER_SIZE = 8
MIN_FREE_BLOCK = 32
MIN_USED_BLOCK = 48
IN_USE = 1
BLOCK_MAGIC = 0x4B4C4253

_word = struct.Struct('=Q')
_used_header = struct.Struct('=QQQII')
_links = struct.Struct('=QQ')
_read_word = _word.unpack_from
_write_word = _word.pack_into


def store_word(memory, offset, value):
    """Write a u64 with one 8-byte copy.

    For words a crash or another process must never see half-written: ``struct.pack_into``
    first zeroes its target, then writes it.
    """
    memory[offset:offset + 8] = _word.pack(value)


def block_size_for(payload_length):
    """The size of the used block that holds ``payload_length`` bytes."""
    size = USED_HEADER_SIZE + payload_length + FOOTER_SIZE
    size = (size + BLOCK_ALIGNMENT - 1) // BLOCK_ALIGNMENT * BLOCK_ALIGNMENT
    return max(size, MIN_USED_BLOCK)


class BlockHeap:
    """The blocks of ``[start, end)`` in ``memory`` (a byte memoryview of the whole file).

    ``end_field`` and ``free_head_field`` are the file offsets of the two header words this
    heap keeps up to date.  A heap over a read-only mapping only checks used blocks.
    """

    def __init__(self, memory, start, end, end_field, free_head_field):
        self.memory = memory
        self.start = start
        self.end = end
        self.end_field = end_field
        self.free_head_field = free_head_field

    # -- reading ------------------------------------------------------------------------

    def used_block(self, offset, slot):
        """``(payload start, payload length, value offset)`` of the block of attribute ``slot``.

        ValueError names the offset when the block is not a used block of that attribute.
        """
        if offset % BLOCK_ALIGNMENT or not self.start <= offset <= self.end - MIN_USED_BLOCK:
            raise ValueError('root attribute %d points at offset %d, which is not a block of the heap '
                             '[%d, %d)' % (slot, offset, self.start, self.end))
        size, payload_length, value_offset, owner, magic = _used_header.unpack_from(self.memory, offset)
        if magic != BLOCK_MAGIC or not size & IN_USE:
            raise ValueError('corrupt heap: no used block at offset %d (header %#x, magic %#x)'
                             % (offset, size, magic))
        size -= IN_USE
        if size < MIN_USED_BLOCK or size % BLOCK_ALIGNMENT or offset + size > self.end:
            raise ValueError('corrupt heap: the block at offset %d claims %d bytes (the heap ends at %d)'
                             % (offset, size, self.end))
        if _read_word(self.memory, offset + size - FOOTER_SIZE)[0] != size:
            raise ValueError('corrupt heap: the boundary tag of the block at offset %d (at offset %d) '
                             'does not match its size %d' % (offset, offset + size - FOOTER_SIZE, size))
        if owner != slot:
            raise ValueError('corrupt heap: the block at offset %d belongs to attribute %d, not %d'
                             % (offset, owner, slot))
        if payload_length > size - USED_HEADER_SIZE - FOOTER_SIZE or value_offset >= max(payload_length, 1):
            raise ValueError('corrupt heap: the block at offset %d claims a %d-byte payload with the value '
                             'at +%d, in %d bytes' % (offset, payload_length, value_offset, size))
        return offset + USED_HEADER_SIZE, payload_length, value_offset

    def block_size(self, offset):
        return _read_word(self.memory, offset)[0] & ~IN_USE

    def blocks(self):
        """``(offset, size, in use)`` of every block, in address order (for checks and tools)."""
        offset = self.start
        while offset < self.end:
            word = _read_word(self.memory, offset)[0]
            size = word & ~IN_USE
            if size < MIN_FREE_BLOCK or size % BLOCK_ALIGNMENT or offset + size > self.end:
                raise ValueError('corrupt heap: the block at offset %d claims %d bytes' % (offset, size))
            yield offset, size, bool(word & IN_USE)
            offset += size

    def free_bytes(self):
        """The total size of the free blocks (headers included)."""
        return sum(size for offset, size, in_use in self.blocks() if not in_use)

    def tail_free_size(self):
        """The size of the free block that ends the heap, or 0: what growing merges with."""
        if self.end - self.start < MIN_FREE_BLOCK:
            return 0
        size = _read_word(self.memory, self.end - FOOTER_SIZE)[0]
        start = self.end - size
        if size < MIN_FREE_BLOCK or size % BLOCK_ALIGNMENT or start < self.start:
            return 0
        word = _read_word(self.memory, start)[0]
        return size if word == size else 0

    # -- the free list ------------------------------------------------------------------

    @property
    def free_head(self):
        return _read_word(self.memory, self.free_head_field)[0]

    def _set_free_head(self, offset):
        _write_word(self.memory, self.free_head_field, offset)

    def _write_free(self, offset, size, next_free, previous_free):
        memory = self.memory
        _write_word(memory, offset + size - FOOTER_SIZE, size)
        _links.pack_into(memory, offset + 8, next_free, previous_free)
        _write_word(memory, offset, size)

    def _push(self, offset, size):
        head = self.free_head
        self._write_free(offset, size, head, 0)
        if head:
            _write_word(self.memory, head + 16, offset)
        self._set_free_head(offset)

    def _unlink(self, offset):
        next_free, previous_free = _links.unpack_from(self.memory, offset + 8)
        if previous_free:
            _write_word(self.memory, previous_free + 8, next_free)
        else:
            self._set_free_head(next_free)
        if next_free:
            _write_word(self.memory, next_free + 16, previous_free)

    def _check_free(self, offset, steps):
        if offset % BLOCK_ALIGNMENT or not self.start <= offset <= self.end - MIN_FREE_BLOCK or steps < 0:
            raise ValueError('corrupt free list: it reaches offset %d (heap [%d, %d))'
                             % (offset, self.start, self.end))
        size = _read_word(self.memory, offset)[0]
        if size & IN_USE or size < MIN_FREE_BLOCK or size % BLOCK_ALIGNMENT or offset + size > self.end:
            raise ValueError('corrupt free list: the block at offset %d has header %#x' % (offset, size))
        return size

    # -- allocation ---------------------------------------------------------------------

    def allocate(self, payload_length, value_offset, slot):
        """Claim a block for ``payload_length`` bytes of attribute ``slot``; its offset, or None.

        The block's header is written (it is in use from now on); the caller copies the
        payload to ``offset + USED_HEADER_SIZE``.  None means no free block is large enough.
        """
        needed = block_size_for(payload_length)
        offset = self.free_head
        steps = (self.end - self.start) // MIN_FREE_BLOCK
        while offset:
            size = self._check_free(offset, steps)
            if size >= needed:
                break
            offset = _read_word(self.memory, offset + 8)[0]
            steps -= 1
        else:
            return None
        self._unlink(offset)
        if size - needed >= MIN_FREE_BLOCK:
            self._push(offset + needed, size - needed)
            size = needed
        memory = self.memory
        _write_word(memory, offset + size - FOOTER_SIZE, size)
        _used_header.pack_into(memory, offset, size | IN_USE, payload_length, value_offset, slot, BLOCK_MAGIC)
        return offset

    def free(self, offset):
        """Give the block at ``offset`` back, merged with its free neighbours."""
        memory = self.memory
        size = _read_word(memory, offset)[0] & ~IN_USE
        following = offset + size
        if following < self.end:
            word = _read_word(memory, following)[0]
            if not word & IN_USE:
                self._unlink(following)
                size += word
        if offset > self.start:
            previous_size = _read_word(memory, offset - FOOTER_SIZE)[0]
            previous = offset - previous_size
            if (self.start <= previous < offset and not previous_size % BLOCK_ALIGNMENT
                    and _read_word(memory, previous)[0] == previous_size):
                self._unlink(previous)
                offset = previous
                size += previous_size
        self._push(offset, size)

    def extend(self, new_end):
        """The file grew: ``[end, new_end)`` becomes free space (merged with a free tail)."""
        old_end = self.end
        size = new_end - old_end
        if size < MIN_FREE_BLOCK:
            return
        self.end = new_end
        store_word(self.memory, self.end_field, new_end)
        _write_word(self.memory, old_end, size | IN_USE)
        _write_word(self.memory, new_end - FOOTER_SIZE, size)
        self.free(old_end)

    def rebuild(self, used):
        """Make every range between the blocks ``used`` (sorted offsets) one free block.

        ValueError names the offset where two used blocks overlap or a gap is too small to
        be a block (neither happens in a file this module wrote).
        """
        self._set_free_head(0)
        position = self.start
        for offset in list(used) + [self.end]:
            gap = offset - position
            if gap < 0:
                raise ValueError('corrupt heap: the block at offset %d overlaps the block before it '
                                 '(which ends at %d)' % (offset, position))
            if 0 < gap < MIN_FREE_BLOCK:
                raise ValueError('corrupt heap: %d bytes at offset %d belong to no block' % (gap, position))
            if gap:
                self._push(position, gap)
            if offset < self.end:
                position = offset + self.block_size(offset)
