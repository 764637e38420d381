"""Functions run in child processes by the shared-memory tests.

They live in a module of their own so that ``spawn`` and ``forkserver`` children, which
import their target by name, find them.
"""
import ctypes

from sharedbuffers.mapped_struct import (
    MappedArrayProxyBase, MappedMappingProxyBase, NumericIdMapper, Schema, StringIdMapper)


class Point(ctypes.Structure):
    _fields_ = [('x', ctypes.c_double), ('y', ctypes.c_double)]


class Counter:
    __slot_types__ = {'hits': int, 'total': float, 'label': str}

    def __init__(self, hits=0, total=0.0, label=''):
        self.hits, self.total, self.label = hits, total, label


COUNTER_SCHEMA = Schema.from_typed_slots(Counter)


class CounterArray(MappedArrayProxyBase):
    schema = COUNTER_SCHEMA


def classic_modify(n, x, s, A):
    """multiprocessing's documentation example, unchanged."""
    n.value **= 2
    x.value **= 2
    s.value = s.value.upper()
    for a in A:
        a.x **= 2
        a.y **= 2


def add_with_lock(value, times):
    for _ in range(times):
        with value.get_lock():
            value.value += 1


def add_to_array_with_lock(array, times):
    for _ in range(times):
        with array.get_lock():
            for index in range(len(array)):
                array[index] += 1


def add_atomically(proxy, times):
    field = type(proxy).hits
    for _ in range(times):
        field.add(proxy, 1)


def increment_with_cas(proxy, times):
    field = type(proxy).hits
    done = 0
    while done < times:
        current = proxy.hits
        if field.cas(proxy, current, current + 1):
            done += 1


def set_raw_value(raw, value):
    raw.value = value


def put_back_doubled(queue_in, queue_out):
    """Receive a raw array through a queue (pickled by reference), double it in place."""
    array = queue_in.get()
    for index in range(len(array)):
        array[index] *= 2
    queue_out.put(sum(array))


def read_shared_array(name, queue):
    array = CounterArray.map_shared(name)
    queue.put([(item.hits, item.label) for item in array])


def read_shared_mapper(name, keys, queue):
    mapper = NumericIdMapper.map_shared(name)
    queue.put([mapper.get(key) for key in keys])


def bump_records(array, queue):
    """``array`` arrived pickled (a reference to shared memory): write through its live proxies."""
    for item in array:
        type(item).hits.add(item, 100)
    queue.put(len(array))


def write_label_of_proxy(proxy, queue):
    proxy.total = 2.5
    queue.put(proxy.label)


class CountersByName(MappedMappingProxyBase):
    IdMapper = StringIdMapper
    ValueArray = CounterArray


def read_shared_mapping(name, keys, queue):
    mapping = CountersByName.map_shared(name)
    queue.put([mapping[key].hits if key in mapping else None for key in keys])
