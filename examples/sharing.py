"""The README's "Storage and sharing" section, runnable: shared values, mapped files, regions."""
import multiprocessing
import os
import tempfile

import numpy

from sharedbuffers import sharedctypes
from sharedbuffers.files import MappedFile, RegionFile
from sharedbuffers.mapped_struct import MappedArrayProxyBase, Schema


class Counter:
    __slot_types__ = {'hits': int, 'name': str}

    def __init__(self, hits=0, name=''):
        self.hits, self.name = hits, name


class Counters(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Counter)


def work(total, counters, table):
    with total.get_lock():
        total.value += 1
    for counter in counters:
        type(counter).hits.add(counter, 10)
    table[0] = sum(table)


def main():
    context = multiprocessing.get_context('spawn')
    total = sharedctypes.Value('q', 0, ctx=context)   # the lock must come from the children's context
    table = sharedctypes.RawArray('d', numpy.arange(4.0))
    counters = Counters.build_shared([Counter(i, 'c%d' % i) for i in range(3)])
    children = [context.Process(target=work, args=(total, counters, table)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join()
    print(total.value, [c.hits for c in counters], table[0] >= 6.0)

    directory = tempfile.mkdtemp()
    with MappedFile(os.path.join(directory, 'data.bin'), 'w+', size=1 << 16) as mapped:
        values = mapped.asarray('f8')
        values[:10] = 1.0
        print(values[:10].sum())
        del values

    path = os.path.join(directory, 'regions.bin')
    with RegionFile(path, 'w+') as regions:
        header = regions.append(64, name='header')
        regions.append(4096, name='body')
        regions['body'].write(b'payload')
        regions.resize(header, 256)
    with RegionFile(path, 'r') as regions:
        print([(region.name, region.size) for region in regions], bytes(regions['body'].read()[:7]))


if __name__ == '__main__':
    main()
