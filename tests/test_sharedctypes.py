"""sharedbuffers.sharedctypes: multiprocessing.sharedctypes' API, shared by name across processes."""
import array
import ctypes
import multiprocessing
import pickle
import threading

import numpy
import pytest

import shared_children as children
from sharedbuffers import sharedctypes
from sharedbuffers.sharedctypes import Array, RawArray, RawValue, Value, copy, synchronized

START_METHODS = [method for method in ('fork', 'spawn', 'forkserver')
                 if method in multiprocessing.get_all_start_methods()]


def run_child(method, target, *args):
    process = multiprocessing.get_context(method).Process(target=target, args=args)
    process.start()
    process.join(60)
    assert process.exitcode == 0


# -- the stdlib's behaviour ---------------------------------------------------------------

@pytest.mark.parametrize('method', START_METHODS)
def test_the_classic_sharedctypes_example_gives_the_documented_output(method):
    context = multiprocessing.get_context(method)
    lock = context.Lock()
    n = Value('i', 7, ctx=context)
    x = Value(ctypes.c_double, 1.0 / 3.0, lock=False)
    s = Array('c', b'hello world', lock=lock)
    points = Array(children.Point, [(1.875, -6.25), (-5.75, 2.0), (2.375, 9.5)], lock=lock)
    run_child(method, children.classic_modify, n, x, s, points)
    assert n.value == 49
    assert x.value == 0.1111111111111111
    assert s.value == b'HELLO WORLD'
    assert [(a.x, a.y) for a in points] == [(3.515625, 39.0625), (33.0625, 4.0), (5.640625, 90.25)]


@pytest.mark.parametrize('typecode, value', [
    ('b', -5), ('B', 250), ('h', -30000), ('H', 60000), ('i', -2 ** 31), ('I', 2 ** 32 - 1),
    ('l', -2 ** 40), ('L', 2 ** 40), ('q', -2 ** 63), ('Q', 2 ** 64 - 1), ('f', 1.5), ('d', 0.1),
    ('c', b'x'), ('u', 'é')])
def test_raw_value_of_every_typecode_holds_its_value(typecode, value):
    raw = RawValue(typecode, value)
    assert raw.value == value
    assert isinstance(raw, sharedctypes.typecode_to_type[typecode])


def test_raw_value_without_arguments_is_zero():
    assert RawValue('d').value == 0.0 and RawValue('i').value == 0


def test_raw_value_repr_looks_like_ctypes():
    assert repr(RawValue('i', 3)) == 'c_int(3)'


def test_raw_value_of_a_ctypes_structure():
    point = RawValue(children.Point, 1.0, 2.0)
    assert (point.x, point.y) == (1.0, 2.0)


def test_unknown_typecode_is_a_type_error():
    with pytest.raises(TypeError, match='unknown typecode'):
        RawValue('z')


def test_raw_array_of_a_size_is_zeroed():
    raw = RawArray('d', 1000)
    assert len(raw) == 1000 and not any(raw)


def test_raw_array_from_a_list_a_range_a_generator_and_an_array():
    assert list(RawArray('i', [1, 2, 3])) == [1, 2, 3]
    assert list(RawArray('q', range(5))) == [0, 1, 2, 3, 4]
    assert list(RawArray('h', (i * i for i in range(4)))) == [0, 1, 4, 9]
    assert list(RawArray('d', array.array('d', [0.5, 1.5]))) == [0.5, 1.5]


def test_raw_array_from_numpy_copies_the_values():
    source = numpy.arange(10, dtype=numpy.int32)
    raw = RawArray('q', source)                # int32 -> int64 is a safe cast
    assert list(raw) == list(range(10))
    source[0] = 99
    assert raw[0] == 0


def test_raw_array_refuses_numpy_values_that_would_change():
    with pytest.raises(TypeError, match='without changing them'):
        RawArray('i', numpy.array([1.5, 2.5]))


def test_raw_array_refuses_out_of_range_numbers():
    with pytest.raises(OverflowError):
        RawArray('B', [1, 256])


def test_raw_char_array_from_bytes():
    raw = RawArray('c', b'hello')
    assert raw.value == b'hello' and raw.raw == b'hello'


def test_raw_array_of_structures_from_tuples():
    points = RawArray(children.Point, [(1, 2), (3, 4)])
    assert [(p.x, p.y) for p in points] == [(1, 2), (3, 4)]


def test_raw_array_shares_memory_with_numpy():
    raw = RawArray('d', 4)
    view = numpy.frombuffer(raw, dtype=numpy.float64)
    view[2] = 7.0
    assert raw[2] == 7.0


def test_value_is_synchronized_with_a_recursive_lock_by_default():
    value = Value('i', 3)
    assert isinstance(value, sharedctypes.Synchronized)
    with value.get_lock():
        with value.get_lock():              # recursive: the default lock is an RLock
            value.value += 1
    assert value.value == 4
    assert value.get_obj().value == 4


def test_value_without_lock_is_the_raw_ctypes_object():
    value = Value('d', 1.0, lock=False)
    assert isinstance(value, ctypes.c_double)


def test_value_uses_the_lock_it_is_given():
    lock = threading.Lock()
    assert Value('i', lock=lock).get_lock() is lock


def test_a_lock_without_acquire_is_refused():
    with pytest.raises(AttributeError, match='acquire'):
        Value('i', lock=object())


def test_synchronized_array_indexes_and_slices_under_the_lock():
    shared = Array('i', [1, 2, 3, 4])
    shared[1] = 20
    shared[2:4] = [30, 40]
    assert shared[:] == [1, 20, 30, 40] and len(shared) == 4
    assert isinstance(shared, sharedctypes.SynchronizedArray)


def test_synchronized_string_value_and_raw():
    shared = Array('c', 5)
    shared.value = b'abc'
    assert shared.value == b'abc' and shared.raw == b'abc\x00\x00'
    assert isinstance(shared, sharedctypes.SynchronizedString)


def test_synchronized_structure_has_a_locked_property_per_field():
    point = synchronized(RawValue(children.Point, 1.0, 2.0))
    point.x = 5.0
    assert (point.x, point.y) == (5.0, 2.0)


def test_synchronizing_twice_is_an_error():
    with pytest.raises(TypeError, match='already synchronized'):
        synchronized(Value('i'))


def test_copy_makes_an_independent_shared_copy():
    original = RawArray('d', [1.0, 2.0])
    duplicate = copy(original)
    duplicate[0] = 9.0
    assert list(original) == [1.0, 2.0] and list(duplicate) == [9.0, 2.0]
    assert copy(Value('i', 5)).value == 5


# -- beyond the stdlib: pickled by reference ------------------------------------------------

def test_raw_value_pickles_as_a_reference_to_the_same_memory():
    raw = RawValue('q', 11)
    again = pickle.loads(pickle.dumps(raw))
    again.value = 12
    assert raw.value == 12


def test_raw_array_pickles_as_a_reference_to_the_same_memory():
    raw = RawArray('d', [1.0, 2.0, 3.0])
    again = pickle.loads(pickle.dumps(raw))
    assert len(pickle.dumps(raw)) < 200
    again[1] = 5.0
    assert raw[1] == 5.0


@pytest.mark.parametrize('method', START_METHODS)
def test_raw_array_travels_through_a_queue_to_a_running_child(method):
    context = multiprocessing.get_context(method)
    queue_in, queue_out = context.Queue(), context.Queue()
    process = context.Process(target=children.put_back_doubled, args=(queue_in, queue_out))
    process.start()
    raw = RawArray('i', [1, 2, 3])
    queue_in.put(raw)
    assert queue_out.get(timeout=60) == 12
    process.join(60)
    assert list(raw) == [2, 4, 6]


@pytest.mark.parametrize('method', START_METHODS)
def test_child_writes_to_a_raw_value_are_seen(method):
    raw = RawValue('d', 1.0)
    run_child(method, children.set_raw_value, raw, 4.25)
    assert raw.value == 4.25


# -- concurrent updates: exact totals ----------------------------------------------------

@pytest.mark.parametrize('method', START_METHODS)
def test_several_processes_adding_under_the_lock_give_an_exact_total(method):
    context = multiprocessing.get_context(method)
    value = Value('q', 0, ctx=context)
    processes = [context.Process(target=children.add_with_lock, args=(value, 500)) for _ in range(4)]
    for process in processes:
        process.start()
    children.add_with_lock(value, 500)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert value.value == 2500


def test_several_processes_adding_to_an_array_under_the_lock_give_exact_totals():
    context = multiprocessing.get_context('fork')
    shared = Array('i', 8, ctx=context)
    processes = [context.Process(target=children.add_to_array_with_lock, args=(shared, 200)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert shared[:] == [600] * 8


# -- structured values: sharedbuffers schemas --------------------------------------------

def test_value_of_a_schema_is_a_live_proxy_in_shared_memory():
    proxy = RawValue(children.COUNTER_SCHEMA, children.Counter(3, 1.5, 'name'))
    assert (proxy.hits, proxy.total, proxy.label) == (3, 1.5, 'name')
    proxy.hits = 4
    assert pickle.loads(pickle.dumps(proxy)).hits == 4


def test_value_of_a_slot_typed_class_works_like_its_schema():
    proxy = RawValue(children.Counter, children.Counter(1, 0.0, 'x'))
    assert proxy.hits == 1


def test_a_schema_value_needs_the_object():
    with pytest.raises(TypeError, match='needs the object'):
        RawValue(children.COUNTER_SCHEMA)


@pytest.mark.native_only      # the pure fallback's atomics hold a lock of this process only
@pytest.mark.parametrize('method', START_METHODS)
def test_atomic_adds_from_several_processes_give_an_exact_total(method):
    context = multiprocessing.get_context(method)
    proxy = RawValue(children.COUNTER_SCHEMA, children.Counter(0, 0.0, 'c'))
    processes = [context.Process(target=children.add_atomically, args=(proxy, 2000)) for _ in range(3)]
    for process in processes:
        process.start()
    children.increment_with_cas(proxy, 1000)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert proxy.hits == 7000


@pytest.mark.parametrize('method', START_METHODS)
def test_a_proxy_sent_to_a_child_writes_into_the_same_struct(method):
    context = multiprocessing.get_context(method)
    proxy = RawValue(children.COUNTER_SCHEMA, children.Counter(0, 0.0, 'label'))
    queue = context.Queue()
    run_child(method, children.write_label_of_proxy, proxy, queue)
    assert queue.get(timeout=60) == 'label'
    assert proxy.total == 2.5


@pytest.mark.parametrize('method', START_METHODS)
def test_an_array_of_records_is_shared_with_children(method):
    records = Array(children.COUNTER_SCHEMA, [children.Counter(i, 0.0, 'r%d' % i) for i in range(5)], lock=False)
    queue = multiprocessing.get_context(method).Queue()
    run_child(method, children.bump_records, records, queue)
    assert queue.get(timeout=60) == 5
    assert [item.hits for item in records] == [100, 101, 102, 103, 104]


def test_an_array_of_records_needs_records_not_a_size():
    with pytest.raises(TypeError, match='built from the records'):
        RawArray(children.COUNTER_SCHEMA, 10)


def test_ctypes_objects_outside_shared_memory_still_pickle_as_copies():
    RawValue('i', 1)                            # registers the by-reference reducer for c_int
    plain = ctypes.c_int(5)
    again = pickle.loads(pickle.dumps(plain))
    again.value = 6
    assert plain.value == 5 and again.value == 6


def test_shared_values_are_plain_ctypes_instances_like_the_stdlib():
    assert type(RawValue('d')) is ctypes.c_double
    assert type(RawArray('i', 3)) is ctypes.c_int * 3
