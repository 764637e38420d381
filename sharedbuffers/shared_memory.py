"""Named shared memory: segments other processes open by name, and a heap of small blocks.

Why named segments.  Memory mapped before ``fork`` is inherited by the child, but ``spawn``
and ``forkserver`` children start from nothing: they can only find the memory by name.  A
:class:`SharedSegment` is a POSIX shared-memory object (``/dev/shm/<name>`` on Linux) mapped
read-write; pickling a segment, or anything living in one, sends its name and an offset,
never the bytes, and the receiving process maps the same pages.

Lifetimes.  The process that creates a segment owns its name: the name is removed
(``unlink``) when that process calls :meth:`SharedSegment.unlink`, or when it exits, or, if
it dies without cleaning up, by multiprocessing's resource tracker.  Forked children never
unlink what their parent created.  Processes that attach keep their mapping for as long as
they use it; removing the name does not take the memory away from them.  Within a process,
attaching the same name twice gives the same segment object (:func:`attach` caches it), and
:func:`locate` tells which segment an address belongs to, so that a proxy can pickle itself
as ``(segment name, offset)``.

The heap.  A shared ``Value`` is a few bytes; one segment each would spend a file
descriptor and a page per value.  :class:`SharedHeap` carves blocks out of 1 MiB arenas
(each a segment), rounding sizes up to 16 bytes and keeping a free list per rounded size, so
a freed block is reused by the next block of the same size.  Blocks of 256 KiB and more get a
segment of their own, unlinked when freed.  Fresh blocks are zero-filled (new segments are
zero; reused blocks are cleared on allocation).
"""
import atexit
import bisect
import mmap
import os
import threading
import weakref

try:
    import _posixshmem
except ImportError:         # Windows: named mappings go through multiprocessing.shared_memory
    _posixshmem = None

__all__ = ['SharedSegment', 'SharedHeap', 'Block', 'attach', 'locate', 'heap']

_ARENA_SIZE = 1 << 20
_OWN_SEGMENT = 256 << 10
_ALIGNMENT = 16


def _buffer_address(buffer):
    """The address of the first byte of a (read-only or writable) buffer."""
    import numpy
    return numpy.frombuffer(buffer, numpy.uint8).__array_interface__['data'][0]


class SharedSegment:
    """A named block of shared memory of ``size`` bytes.

    ``SharedSegment(size)`` creates a new segment with a fresh name; ``attach(name)`` maps an
    existing one (use the module function, which reuses this process's mapping).
    """

    def __init__(self, size, name=None):
        if not isinstance(size, int) or size <= 0:
            raise ValueError('a shared segment needs a positive size, not %r' % (size,))
        self.name = name or 'sb_%d_%s' % (os.getpid(), os.urandom(6).hex())
        self._owner_pid = os.getpid()
        self._mmap, self._unlinked = None, False
        if _posixshmem is not None:
            descriptor = _posixshmem.shm_open('/' + self.name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
            try:
                os.ftruncate(descriptor, size)
                self._mmap = mmap.mmap(descriptor, size)
            except BaseException:
                os.close(descriptor)
                _posixshmem.shm_unlink('/' + self.name)
                raise
            os.close(descriptor)
            _track(self.name)
        else:
            from multiprocessing import shared_memory
            self._native = shared_memory.SharedMemory(self.name, create=True, size=size)
            self._mmap = self._native._mmap
        self._start(size)
        _owned[self.name] = self

    @classmethod
    def _attached(cls, name):
        segment = cls.__new__(cls)
        segment.name = name
        segment._owner_pid = None
        segment._unlinked = True        # not ours to unlink
        if _posixshmem is not None:
            try:
                descriptor = _posixshmem.shm_open('/' + name, os.O_RDWR, mode=0o600)
            except FileNotFoundError:
                raise FileNotFoundError('no shared memory segment named %r (its creator has exited '
                                        'or unlinked it)' % (name,)) from None
            try:
                segment._mmap = mmap.mmap(descriptor, os.fstat(descriptor).st_size)
            finally:
                os.close(descriptor)
        else:
            from multiprocessing import shared_memory
            segment._native = shared_memory.SharedMemory(name)
            segment._mmap = segment._native._mmap
        segment._start(len(segment._mmap))
        return segment

    def _start(self, size):
        self.size = size
        self.buffer = memoryview(self._mmap)
        self.address = _buffer_address(self.buffer)
        _register_range(self)

    # -- lifetime ---------------------------------------------------------------------------

    def unlink(self):
        """Remove the name (processes that have it mapped keep their memory).  Creator only."""
        if self._unlinked or self._owner_pid != os.getpid():
            return
        self._unlinked = True
        _owned.pop(self.name, None)
        if _posixshmem is not None:
            try:
                _posixshmem.shm_unlink('/' + self.name)
            except FileNotFoundError:
                pass
            _untrack(self.name)
        else:
            self._native.unlink()

    def close(self):
        """Unmap this process's view (BufferError while values still live in it)."""
        if self._mmap is None:
            return
        self.buffer.release()
        try:
            self._mmap.close()
        except BufferError:
            self.buffer = memoryview(self._mmap)
            raise
        self._mmap = None
        _unregister_range(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        self.unlink()

    def __reduce__(self):
        return (attach, (self.name,))

    def __len__(self):
        return self.size

    def __repr__(self):
        return '<SharedSegment %r, %d bytes>' % (self.name, self.size)


# -- this process's segments --------------------------------------------------------------

_lock = threading.RLock()
_owned = {}                                 # name -> segment this process created
_attached = weakref.WeakValueDictionary()   # name -> segment mapped here (created or attached)
_starts = []                                # sorted start addresses of mapped segments
_by_start = {}                              # start address -> weakref to its segment


def attach(name):
    """The segment called ``name``, mapped in this process (the same object on every call)."""
    with _lock:
        segment = _attached.get(name)
        if segment is None:
            segment = SharedSegment._attached(name)
        return segment


def locate(address):
    """``(segment, offset)`` of the mapped segment holding ``address``, or None."""
    with _lock:
        index = bisect.bisect_right(_starts, address) - 1
        if index < 0:
            return None
        segment = _by_start[_starts[index]]()
    if segment is None or address >= segment.address + segment.size:
        return None
    return segment, address - segment.address


def locate_buffer(buffer, offset=0):
    """``(segment, offset)`` for byte ``offset`` of ``buffer`` when it lives in a segment, else None."""
    try:
        return locate(_buffer_address(buffer) + offset)
    except (TypeError, ValueError):
        return None


def _register_range(segment):
    start = segment.address
    with _lock:
        # Entries of collected segments are dropped here, not from a weakref callback:
        # a callback can run inside any allocation, even one made while _lock is held.
        for dead in [address for address, reference in _by_start.items() if reference() is None]:
            del _by_start[dead]
            _starts.remove(dead)
        if start not in _by_start:
            bisect.insort(_starts, start)
        _by_start[start] = weakref.ref(segment)
        _attached[segment.name] = segment


def _unregister_range(segment):
    with _lock:
        start = segment.address
        if start in _by_start:
            del _by_start[start]
            _starts.remove(start)


def _track(name):
    """Ask multiprocessing's resource tracker to remove the name if this process dies first."""
    from multiprocessing import resource_tracker
    resource_tracker.register('/' + name, 'shared_memory')


def _untrack(name):
    from multiprocessing import resource_tracker
    resource_tracker.unregister('/' + name, 'shared_memory')


@atexit.register
def _unlink_owned_segments():
    for segment in list(_owned.values()):
        segment.unlink()


# -- the heap -----------------------------------------------------------------------------

class Block:
    """``size`` bytes at ``offset`` of ``segment``; given back to the heap when collected."""
    __slots__ = ('segment', 'offset', 'size', '__weakref__')

    def __init__(self, segment, offset, size):
        self.segment, self.offset, self.size = segment, offset, size

    @property
    def buffer(self):
        return self.segment.buffer[self.offset:self.offset + self.size]

    def __reduce__(self):
        return (_attached_block, (self.segment.name, self.offset, self.size))

    def __repr__(self):
        return '<Block %d bytes at %s+%d>' % (self.size, self.segment.name, self.offset)


def _attached_block(name, offset, size):
    return Block(attach(name), offset, size)


class SharedHeap:
    """Allocates zero-filled blocks of shared memory (see the module docstring)."""

    def __init__(self, arena_size=_ARENA_SIZE):
        self.arena_size = arena_size
        self._lock = threading.Lock()
        self._arena = None
        self._position = 0
        self._free = {}             # rounded size -> [(segment, offset)]
        self._pid = os.getpid()

    def allocate(self, size):
        """A new :class:`Block` of at least ``size`` bytes, zero-filled."""
        if size < 0:
            raise ValueError('cannot allocate %d bytes' % size)
        if os.getpid() != self._pid:        # a forked child: its parent's free lists are not ours
            self.__init__(self.arena_size)
        rounded = max(_ALIGNMENT, -(-size // _ALIGNMENT) * _ALIGNMENT)
        if rounded >= _OWN_SEGMENT:
            segment = SharedSegment(rounded)
            block = Block(segment, 0, size)
            weakref.finalize(block, segment.unlink)
            return block
        with self._lock:
            free = self._free.get(rounded)
            if free:
                segment, offset = free.pop()
                segment.buffer[offset:offset + rounded] = bytes(rounded)
            else:
                if self._arena is None or self._position + rounded > self._arena.size:
                    self._arena = SharedSegment(self.arena_size)
                    self._position = 0
                segment, offset = self._arena, self._position
                self._position += rounded
        block = Block(segment, offset, size)
        weakref.finalize(block, self._give_back, segment, offset, rounded, os.getpid())
        return block

    def _give_back(self, segment, offset, rounded, pid):
        if os.getpid() == pid == self._pid:
            with self._lock:
                self._free.setdefault(rounded, []).append((segment, offset))


heap = SharedHeap()
