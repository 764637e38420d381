"""``Storage``: a memory-mapped file with one typed root object whose attributes persist.

::

    class Settings:
        __slot_types__ = {'count': int, 'name': str, 'data': memoryview}

    with Storage('settings.sbs', size=1 << 20, root=Settings) as storage:
        root = storage.root
        root.count = getattr(root, 'count', 0) + 1   # a number: written in place
        root.name = 'hello'                  # packed into the file's heap; the old space is reused
        root.data = numpy.zeros((3, 4))      # reads back as a zero-copy memoryview, format 'd'

    Storage('settings.sbs', mode='r').root.count      # in this process or any other

File layout
-----------
A 128-byte header (:mod:`sharedbuffers.storage_header`: magic, version, byte order,
where the parts are, the root's schema checksum), the root record
(:mod:`sharedbuffers.storage_root`), the root's schema (a pickle read only through the
allow-list unpickler), and the heap (:mod:`sharedbuffers.storage_allocator`): one block
per variable-size value, packed by its attribute's codec (buffer-typed attributes keep
their format and shape: :mod:`sharedbuffers.storage_buffers`).

Opening checks all of it before it touches a value: the header fields against each other
and the file size, the schema's checksum, every attribute state, and every block a root
attribute points at; anything wrong is a ``ValueError`` that names the offset.  Values are
checked by their codecs when read (``check()`` reads them all).

Assignment and crashes
----------------------
A number is one aligned store in the root record.  A variable-size value is packed in
memory, copied into a newly allocated block, and only then does the attribute's pointer
(one aligned 8-byte store) switch to it; the old block is freed after the switch.  A process
killed at any point leaves the old value or the new one readable.  What it can leave behind
is allocator bookkeeping (a block allocated or freed halfway); opening the file for writing
rebuilds the free list from the root's pointers, so that space is reclaimed.  (Surviving a
power cut also needs ``flush()``, which is ``msync``: the kernel may write pages in any
order.)

Processes and threads
---------------------
One ``Storage`` at a time may open a file for writing (``r+``/``w+`` take an ``flock``;
another one gets ``BlockingIOError``); any number may read it (``r``).  Numbers are shared
live: a write by one process is what the others read next.  Variable-size values are
not locked: a reader can see a block reused under it if a writer re-assigns the attribute
meanwhile, and a reader opened before the writer grew the file must reopen to read values
placed in the new space.  After ``fork`` parent and child share the mapping and the lock:
let only one of them assign variable-size values.  A ``Storage`` is not thread-safe: guard
assignments with a lock of your own.

Views and lifetimes
-------------------
Buffers, arrays, nested-struct proxies and lazy containers read from the root are views of
the mapping.  Each is counted (its memory is held through one numpy array per read,
which every view derived from it keeps alive): while any is alive, ``close()`` and growing
the file raise :class:`ViewsAliveError` saying how many, because unmapping under a view
would crash the interpreter at its next read; and re-assigning the attribute a view reads
keeps the old block out of reuse until the view is gone.  ``storage.root`` itself holds no
view: keep it as long as you like.
"""
import errno
import fcntl
import mmap
import os
import struct
import weakref

import numpy

from .mapped_files import MappedFile, ViewsAliveError, normalize_mode
from .packing import PackContext
from .schema import Schema
from .storage_allocator import MIN_FREE_BLOCK, USED_HEADER_SIZE, BlockHeap, block_size_for, store_word
from .storage_buffers import read_buffer_record, write_buffer_record
from .storage_header import (
    FREE_HEAD_FIELD, HEADER_SIZE, HEAP_END_FIELD, MAX_SIZE_FIELD, align, check_header, create_file,
    load_stored_schema, stored_root_name)
from .storage_root import ABSENT, NONE, PRESENT, RECORD_OFFSET, RootLayout
from .types.decimals import mapped_decimal
from .types.strings import mapped_bytes, mapped_unicode
from .types.times import (
    mapped_date, mapped_datetime, mapped_datetime_local, mapped_datetime_tz, mapped_datetime_tz_local,
    mapped_datetime_utc)

__all__ = ['Storage', 'StorageFullError', 'ViewsAliveError']

_read_word = struct.Struct('=Q').unpack_from

# Codecs whose values never refer to the buffer they were read from: read without a view.
_PLAIN_CODECS = frozenset((mapped_unicode, mapped_bytes, mapped_date, mapped_datetime, mapped_datetime_utc,
                           mapped_datetime_local, mapped_datetime_tz, mapped_datetime_tz_local, mapped_decimal))
# What codecs raise on corrupt data (ArithmeticError: decimal.InvalidOperation for a wild exponent).
_CORRUPT_VALUE_ERRORS = (IndexError, ValueError, struct.error, ArithmeticError)
_PACK_ERRORS = (TypeError, ValueError, OverflowError, AttributeError, struct.error)


class StorageFullError(ValueError):
    """A value does not fit: the file may not grow that far (``max_size``, or mode ``'c'``)."""


def _named_error(error, what):
    """``error`` again, its message prefixed with the attribute it was about."""
    for kind in (OverflowError, TypeError, ValueError):
        if isinstance(error, kind):
            return kind('%s: %s' % (what, error))
    return TypeError('%s: %s' % (what, error))


def _as_schema(root):
    if isinstance(root, Schema):
        return root
    if isinstance(root, dict) or isinstance(getattr(root, '__slot_types__', None), dict):
        return Schema.from_typed_slots(root)
    raise TypeError('root must be a Schema, a class with __slot_types__ or a dict of slot types, not %r' % (root,))


def _lock_for_writing(path):
    handle = open(path, 'rb')
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise BlockingIOError(errno.EAGAIN, 'storage %s is already open for writing (by another Storage or '
                                            'process); open it with mode "r" to read it' % (path,)) from None
    return handle


class Storage:
    """A file holding one typed root object; ``storage.root.x`` reads and assigns it.

    ``root``: a class with ``__slot_types__``, a dict of slot types or a :class:`Schema`.  It is
    stored in the file; reopening needs no ``root``, and a given one must match the stored one.

    ``mode``:

    =====  =================================================================================
    r+     (default) read and write; a missing file is created (``root`` needed)
    w+     create the file, replacing any file of that name
    r      read only: assigning raises TypeError; buffers and arrays are read-only
    c      copy-on-write: assignments change this process's memory, never the file
    =====  =================================================================================

    ``size``: the size of a new file (default 64 KiB, or what the root needs); an existing,
    smaller file opened for writing is grown to it.  ``max_size``: the file never grows past
    it (a value that would need more raises :class:`StorageFullError`); stored in the file.
    """

    def __init__(self, path, size=None, mode='r+', root=None, max_size=None):
        mode = normalize_mode(mode)
        self.path = os.path.abspath(os.fsdecode(os.fspath(path)))
        self.mode = mode
        self._mapped = None
        self._memory = None
        self._lock = None
        self._root = None
        self._record = None         # ctypes structure over the root record (writable modes)
        self._record_class = None
        self._heap = None
        self._views = {}            # id(anchor array) -> (weak reference, block offset)
        self._pending_free = set()  # blocks whose old values are still viewed
        if max_size is not None and (not isinstance(max_size, int) or max_size < 0):
            raise ValueError('max_size must be a non-negative int or None, not %r' % (max_size,))
        schema = _as_schema(root) if root is not None else None
        if mode == 'w+' or mode == 'r+' and not os.path.exists(self.path):
            if schema is None:
                raise TypeError('creating the storage %s needs root=<a class with __slot_types__, or a Schema>'
                                % (self.path,))
            create_file(self.path, schema, size, max_size)
            self.mode = 'r+'
        self._open(schema, max_size)
        try:
            if size is not None and size > self.size and self.writable and mode != 'c':
                if self.max_size is not None and size > self.max_size:
                    raise ValueError('size %d is larger than max_size=%d' % (size, self.max_size))
                self._remap(size)
        except BaseException:
            self.close()
            raise

    # -- opening ----------------------------------------------------------------------------

    @property
    def writable(self):
        return self.mode != 'r'

    def _open(self, schema, max_size):
        if self.mode == 'r+':
            self._lock = _lock_for_writing(self.path)
        try:
            file_size = os.path.getsize(self.path)
            if file_size < HEADER_SIZE:
                check_header(b'', file_size)
            self._mapped = MappedFile(self.path, self.mode)
            self._attach(self._mapped.buffer)
            try:
                self._validate(schema, max_size)
            except BaseException:
                self._detach()
                self._mapped.close()
                raise
        except BaseException:
            self._unlock()
            raise

    def _validate(self, schema, max_size):
        memory = self._memory
        header = check_header(memory, len(memory))
        stored = load_stored_schema(memory, header)
        stored_name = stored_root_name(stored)
        if schema is None:
            schema = stored
        elif not schema.compatible(stored):
            raise ValueError('the root of %s is %s %s, which does not match the given root %s %s'
                             % (self.path, stored_name, stored.slot_keys, schema.display_name, schema.slot_keys))
        self.schema = schema
        self.layout = RootLayout(schema, schema.declared_class and schema.display_name or stored_name)
        if self.layout.size != header['record_size']:
            raise ValueError('corrupt storage header at offset 32: root record size %d, but the schema needs %d'
                             % (header['record_size'], self.layout.size))
        heap_end = header['heap_end']
        if self.writable and len(memory) // 16 * 16 - heap_end >= MIN_FREE_BLOCK:
            heap_end = len(memory) // 16 * 16     # the file grew just before a crash
        self._heap = BlockHeap(memory, header['heap_start'], heap_end, HEAP_END_FIELD, FREE_HEAD_FIELD)
        used = self._used_blocks()
        self.max_size = header['max_size'] or None
        if max_size is not None:
            if max_size and max_size < len(memory):
                raise ValueError('max_size %d is smaller than the file (%d bytes)' % (max_size, len(memory)))
            self.max_size = max_size or None
        if self.writable:
            store_word(memory, HEAP_END_FIELD, heap_end)
            store_word(memory, MAX_SIZE_FIELD, self.max_size or 0)
            self._heap.rebuild(used)
        root_class, self._record_class = self.layout.classes()
        self._root = root_class(self)
        self._attach(memory)

    def _used_blocks(self):
        """The sorted offsets of the blocks root attributes point at, each checked."""
        memory = self._memory
        used = []
        for slot in self.layout.slots:
            state = memory[slot.state_offset]
            if state > PRESENT:
                raise self._invalid_state(slot, state)
            if state == PRESENT and slot.codec is not None:
                pointer = _read_word(memory, slot.offset)[0]
                try:
                    self._heap.used_block(pointer, slot.index)
                except ValueError as error:
                    raise ValueError('root attribute %r (pointer at offset %d): %s'
                                     % (slot.name, slot.offset, error)) from None
                used.append(pointer)
        used.sort()
        return used

    @property
    def root(self):
        """The root object: its attributes are read from and assigned to the file.

        The same object for the life of the storage; it holds no view, so keeping it blocks
        neither growing nor closing (once closed, using it raises ValueError).
        """
        return self._root

    # -- the mapping ------------------------------------------------------------------------

    def _attach(self, memory):
        """Read and write through ``memory`` (a byte view of the whole mapping) from now on."""
        self._memory = memory
        if self._heap is not None:
            self._heap.memory = memory
        if self._record_class is not None and self.writable:
            self._record = self._record_class.from_buffer(memory, RECORD_OFFSET)
        if self._root is not None:
            self._root._memory = memory
            self._root._record = self._record

    def _detach(self):
        """Let go of the mapping: the root reads nothing until the next ``_attach``."""
        memory = self._memory
        if self._root is not None:
            self._root._memory = self._root._record = None
        self._record = None
        self._memory = None
        if memory is not None:
            memory.release()

    @property
    def closed(self):
        return self._mapped is None or self._mapped.closed

    def __del__(self):
        if getattr(self, '_lock', None) is not None:
            self._unlock()

    @property
    def size(self):
        """The size of the mapped file in bytes."""
        return len(self._mapped) if not self.closed else 0

    @property
    def live_views(self):
        """How many views of the storage's values (buffers, arrays, proxies) are alive."""
        return sum(1 for reference, _ in list(self._views.values()) if reference() is not None)

    @property
    def free_bytes(self):
        """Free space in the heap, in bytes (block headers included)."""
        self._check_open()
        return self._heap.free_bytes()

    def _track(self, anchor, block):
        key = id(anchor)
        views = self._views
        views[key] = (weakref.ref(anchor, lambda _, key=key: views.pop(key, None)), block)

    def _block_viewed(self, block):
        return any(viewed == block and reference() is not None for reference, viewed in list(self._views.values()))

    def _release_block(self, block):
        if self._block_viewed(block):
            self._pending_free.add(block)
        else:
            self._heap.free(block)

    def _collect_pending(self):
        for block in list(self._pending_free):
            if not self._block_viewed(block):
                self._pending_free.discard(block)
                self._heap.free(block)

    def _views_alive_error(self, action, alive, detail=''):
        one = alive == 1
        return ViewsAliveError(
            'cannot %s the storage %s%s: %d view%s of its values (buffers, arrays, proxies) %s still alive; '
            'delete %s first' % (action, self.path, detail, alive, '' if one else 's', 'is' if one else 'are',
                                 'it' if one else 'them'))

    def _unmap(self, action, detail='', flush=True):
        """Unmap, or raise ViewsAliveError (saying how many) and leave all as it was.

        Growing does not flush: the new mapping shares the page cache with the old one.
        """
        if self.writable:
            self._collect_pending()
        alive = self.live_views
        if alive:
            raise self._views_alive_error(action, alive, detail)
        self._detach()
        try:
            self._mapped.close(flush=flush)
        except ViewsAliveError:
            self._attach(self._mapped.buffer)
            raise

    def _remap(self, new_size, what=None):
        """Map the file again at ``new_size`` bytes (growing it); refused while views are alive."""
        self._unmap('grow', ' to %d bytes%s' % (new_size, ' for ' + what if what else ''), flush=False)
        try:
            self._mapped = MappedFile(self.path, 'r+', size=new_size)
        except BaseException:
            self._mapped = MappedFile(self.path, 'r+')
            self._attach(self._mapped.buffer)
            raise
        self._attach(self._mapped.buffer)
        self._heap.extend(len(self._memory) // 16 * 16)

    def _grow(self, needed, what):
        heap = self._heap
        required = heap.end - heap.tail_free_size() + needed
        if self.mode == 'c':
            raise StorageFullError('%s: the value needs %d more bytes, and a copy-on-write storage (mode "c") cannot '
                                   'grow its file' % (what, required - heap.end))
        new_size = max(required, 2 * len(self._memory))
        new_size = align(new_size, mmap.PAGESIZE)
        if self.max_size is not None:
            if required > self.max_size:
                raise StorageFullError('%s: the value needs the file to grow to %d bytes, past max_size=%d'
                                       % (what, required, self.max_size))
            new_size = min(new_size, self.max_size)
        self._remap(new_size, what)

    # -- reading ----------------------------------------------------------------------------

    def _what(self, index):
        return '%s.%s' % (self.layout.display_name, self.layout.slots[index].name)

    def _read_value(self, index, pointer):
        """The value of variable-size attribute ``index``, whose block is at ``pointer``."""
        slot = self.layout.slots[index]
        try:
            start, length, value_offset = self._heap.used_block(pointer, index)
        except ValueError as error:
            raise ValueError('%s: %s' % (self._what(index), error)) from None
        region = self._memory[start:start + length]
        if slot.codec not in _PLAIN_CODECS:
            # The anchor exports the block itself, so every view made from it, by the codec
            # or later by the user, keeps it alive: counting live anchors counts views.
            anchor = numpy.frombuffer(region, numpy.uint8)
            self._track(anchor, pointer)
            region = memoryview(anchor)
            del anchor
        try:
            if slot.is_buffer:
                return read_buffer_record(region, value_offset)
            return slot.codec.read(region, value_offset)
        except _CORRUPT_VALUE_ERRORS as error:
            problem = str(error)
        # Raised out here, with no view left in this frame or in a chained traceback: an
        # error must not keep views alive (they would block close()).
        del region
        raise ValueError('%s: the value in the block at offset %d is corrupt: %s'
                         % (self._what(index), pointer, problem))

    def _not_present(self, index, state):
        if state == NONE:
            return None
        if state == ABSENT:
            raise AttributeError('%s has no value (never assigned, or deleted)' % (self._what(index),))
        raise self._invalid_state(self.layout.slots[index], state)

    @staticmethod
    def _invalid_state(slot, state):
        return ValueError('corrupt root record: attribute %r has the invalid state %d (the byte at offset %d)'
                          % (slot.name, state, slot.state_offset))

    def check(self):
        """Read every value (and drop it): ValueError names the first corrupt one."""
        self._check_open()
        for slot in self.layout.slots:
            try:
                getattr(self.root, slot.name)
            except AttributeError:
                continue

    # -- writing ----------------------------------------------------------------------------

    def _closed_error(self):
        return ValueError('the storage %s is closed' % (self.path,))

    def _check_open(self):
        if self.closed:
            raise self._closed_error()

    def _unwritable_error(self, index):
        if self.closed:
            return self._closed_error()
        return TypeError("cannot assign %s: the storage %s is open read-only (mode 'r')"
                         % (self._what(index), self.path))

    def _check_writable(self, index):
        if self.closed or self.mode == 'r':
            raise self._unwritable_error(index)

    def _state(self, slot):
        return self._memory[slot.state_offset]

    def _set_state(self, slot, state):
        setattr(self._record, slot.state_field, state)

    def _switch_pointer(self, slot, block):
        """Point attribute ``slot`` at ``block``: one 8-byte store, the commit of an assignment."""
        setattr(self._record, slot.value_field, block)

    def _assign_fixed(self, index, encoded):
        """Store a number ``struct`` accepted; an absent or None attribute gets its state after it."""
        self._check_writable(index)
        slot = self.layout.slots[index]
        setattr(self._record, slot.value_field, struct.unpack('=' + slot.code, encoded)[0])
        if self._state(slot) != PRESENT:
            self._set_state(slot, PRESENT)

    def _assign_value(self, index, value):
        """Pack ``value`` into a new block, switch the attribute's pointer to it, free the old block."""
        self._check_writable(index)
        if value is None:
            return self._assign_none(index)
        slot = self.layout.slots[index]
        nested = getattr(slot.codec, 'schema', None)
        if nested is not None and not any(hasattr(value, name) for name in nested.slot_keys):
            raise TypeError('%s: expected %s, got %s (it has none of its attributes)'
                            % (self._what(index), nested.display_name, type(value).__name__))
        context = PackContext(0, 0, {})
        try:
            if slot.is_buffer:
                value_offset = write_buffer_record(value, context)
            else:
                value_offset = slot.codec.write(value, context)
        except _PACK_ERRORS as error:
            raise _named_error(error, self._what(index)) from None
        payload = context.out
        self._collect_pending()
        block = self._heap.allocate(len(payload), value_offset, index)
        if block is None:
            self._grow(block_size_for(len(payload)), self._what(index))
            block = self._heap.allocate(len(payload), value_offset, index)
            if block is None:
                raise StorageFullError('%s: no room for %d bytes after growing' % (self._what(index), len(payload)))
        memory = self._memory
        start = block + USED_HEADER_SIZE
        memory[start:start + len(payload)] = payload
        state = self._state(slot)
        old_block = _read_word(memory, slot.offset)[0]
        self._switch_pointer(slot, block)
        if state == PRESENT:
            self._release_block(old_block)
        else:
            self._set_state(slot, PRESENT)

    def _assign_none(self, index):
        self._check_writable(index)
        self._clear(index, NONE)

    def _delete(self, index):
        self._check_writable(index)
        if self._state(self.layout.slots[index]) == ABSENT:
            raise AttributeError('%s has no value to delete' % (self._what(index),))
        self._clear(index, ABSENT)

    def _clear(self, index, state):
        slot = self.layout.slots[index]
        previous = self._state(slot)
        self._set_state(slot, state)
        if previous == PRESENT and slot.codec is not None:
            self._release_block(_read_word(self._memory, slot.offset)[0])

    # -- lifetime ---------------------------------------------------------------------------

    def flush(self):
        """Write changes to the file (``msync``); nothing to do in modes ``r`` and ``c``."""
        self._check_open()
        self._mapped.flush()

    def close(self):
        """Flush and unmap; :class:`ViewsAliveError` (a ValueError) while views are alive."""
        if self.closed:
            self._unlock()
            return
        self._unmap('close')
        self._unlock()

    def _unlock(self):
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, exception_type, exception, traceback):
        if exception_type is None:
            self.close()
            return
        try:
            self.close()
        except ViewsAliveError:
            # Views the failing block made may live on in the traceback: rather than hide
            # the real error, let the mapping go when they do (unmapping waits for them).
            self._abandon()

    def _abandon(self):
        """Stop using the mapping without unmapping it; it is unmapped when the last view goes."""
        self._mapped.flush()
        self._detach()
        self._mapped = None
        self._unlock()

    def __repr__(self):
        if self.closed:
            return '<Storage %r (closed)>' % (self.path,)
        return '<Storage %r mode %r, %d bytes, root %s>' % (self.path, self.mode, self.size,
                                                            self.layout.display_name)
