"""Dynamically typed values and proxied containers here and in sharedbuffers 1.2.3, same data.

    python benchmarks/values_vs_reference.py [--reference PYTHON] [--rounds 5]

Each round runs one worker process per implementation (alternating which goes first).  A
worker builds the same records into a temporary file and times, best of 7 ``timeit`` passes:

* ``first_*``: one field of every record of a freshly mapped array, each record read once.
  1.2.3 returns the same object when one position is read again (``a[i].x is a[i].x``), so
  repeated reads of one record would time its cache, not its decoding;
* ``ObjectIdMapper.get`` with a tuple key, ``mapped_object.unpack_from`` of a mixed dict;
* proxied containers: ``proxied_dict.get``, membership in a ``proxied_frozenset`` of ints,
  iterating and indexing a ``proxied_list`` of ints.

Printed: the median of the rounds in ns per operation, and the ratio new/1.2.3 (lower is better).
"""
import json
import os

import reference_rounds

HERE = os.path.abspath(__file__)
RECORDS = 2000


def worker():
    import tempfile
    import time
    import timeit
    import sharedbuffers.mapped_struct as ms

    class Record(object):
        __slot_types__ = {'num': int, 'tup': tuple, 'dic': dict, 'obj': object, 'fs': frozenset}

        def __init__(self, number):
            self.num = number
            self.tup = ('a', number)
            self.dic = {'a': number, 'b': 2}
            self.obj = [1, 'two', 3.0, number]
            self.fs = frozenset(('tag%d' % j, j + number) for j in range(50))

    class Records(ms.MappedArrayProxyBase):
        schema = ms.Schema.from_typed_slots(Record)

    class Lazy(object):
        __slot_types__ = {'attrs': ms.proxied_dict, 'members': ms.proxied_frozenset, 'numbers': ms.proxied_list}

    def best(function, number):
        return min(timeit.repeat(function, number=number, repeat=7)) / number * 1e9

    results = {}
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, 'records')
        with open(path, 'w+b') as f:
            Records.build([Record(number) for number in range(RECORDS)], destfile=f)
        for name in ('tup', 'dic', 'obj', 'fs'):
            with open(path, 'rb') as f:
                array = Records.map_file(f)
                start = time.perf_counter()
                for number in range(RECORDS):
                    getattr(array[number], name)
                results['first_%s_ns' % name] = (time.perf_counter() - start) / RECORDS * 1e9
                assert getattr(array[7], name) == getattr(Record(7), name)
                del array

    mapper = ms.ObjectIdMapper.build([(('k', number), number) for number in range(20000)])
    get = mapper.get
    assert get(('k', 1234)) == 1234
    results['ObjectIdMapper.get_ns'] = best(lambda: get(('k', 1234)), 20000)

    mixed = {'a': 1, 'b': [1, 'x', 2.5], 'c': ('t', None)}
    buffer = bytearray(512)
    buffer = bytes(buffer[:ms.mapped_object.pack_into(mixed, buffer, 0)])
    assert ms.mapped_object.unpack_from(buffer, 0) == mixed
    results['unpack_mixed_dict_ns'] = best(lambda: ms.mapped_object.unpack_from(buffer, 0), 20000)

    schema = ms.Schema.from_typed_slots(Lazy)
    lazy = Lazy()
    lazy.attrs = {'key%d' % number: number for number in range(10000)}
    lazy.members = frozenset(range(0, 999999, 3))
    lazy.numbers = list(range(1000))
    proxy = schema.unpack_from(bytes(schema.pack(lazy)), 0)
    attrs, members, numbers = proxy.attrs, proxy.members, proxy.numbers
    assert attrs.get('key777') == 777 and 300003 in members and list(numbers) == lazy.numbers
    results['proxied_dict.get_ns'] = best(lambda: attrs.get('key777'), 20000)
    results['proxied_frozenset_in_ns'] = best(lambda: 300003 in members, 20000)
    results['proxied_list_iter_1000_ns'] = best(lambda: list(numbers), 500)
    results['proxied_list[i]_ns'] = best(lambda: numbers[500], 20000)
    print(json.dumps(results))


if __name__ == '__main__':
    reference_rounds.main(HERE, worker, 'operation (ns, median)')
