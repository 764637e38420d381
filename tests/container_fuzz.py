"""Damaged containers, opened and queried in a child process: every reader must fail cleanly.

In-process property tests cannot catch a crash: a bad read in C takes pytest down with it.
So the batches run in a child interpreter, where a crash shows as a signal in the exit
status, and the parent names the seed that reproduces it.

``python tests/container_fuzz.py SEED COUNT`` damages COUNT containers (arrays, the eleven id
mapper kinds, single, multi and approximate mappings), opens each with ``map_buffer`` and
queries it every way a user can. Anything but the clean errors below exits non-zero with the
traceback. ``python tests/container_fuzz.py --minutes M [--first-seed S]`` runs batches
until M minutes have passed (a longer campaign than the test suite's; ``SHAREDBUFFERS_PURE=1``
and ``python -O`` apply to the children as to the parent).

Clean errors: ValueError and IndexError (corrupt or truncated input), KeyError (a key a
damaged file no longer holds), TypeError and OverflowError (probe keys of the wrong type or
range), and AttributeError when a damaged bitmap marks an attribute absent.
"""
import os
import random
import subprocess
import sys
import tempfile
import time

from sharedbuffers.mapped_struct import (
    ApproxStringId32MultiMapper, ApproxStringIdMultiMapper, MappedArrayProxyBase, MappedMappingProxyBase,
    MappedMultiMappingProxyBase, NumericId32Mapper, NumericId32MultiMapper, NumericIdMapper, NumericIdMultiMapper,
    ObjectIdMapper, Schema, StringId32Mapper, StringId32MultiMapper, StringIdMapper, StringIdMultiMapper,
    mapped_bytes, mapped_frozenset, mapped_list, mapped_unicode)

CLEAN_ERRORS = (ValueError, IndexError, KeyError, TypeError, OverflowError)
ATTRIBUTES = ('number', 'ratio', 'name', 'items', 'tags', 'blob')
BATCH_SIZE = 300


class Record:
    __slot_types__ = {'number': int, 'ratio': float, 'name': mapped_unicode, 'items': mapped_list,
                      'tags': mapped_frozenset, 'blob': mapped_bytes}

    def __init__(self, number):
        self.number = number
        self.ratio = number / 3
        self.name = 'name-%d' % number * (1 + number % 3)
        self.items = list(range(number % 7))
        self.tags = frozenset([number, 'x'])
        self.blob = bytes([number % 256]) * (number % 40)


Record.schema = Schema.from_typed_slots(Record)


class Records(MappedArrayProxyBase):
    schema = Record.schema


class RecordsByName(MappedMappingProxyBase):
    IdMapper = StringIdMapper
    ValueArray = Records


class RecordsById(MappedMappingProxyBase):
    IdMapper = NumericIdMapper
    ValueArray = Records


class RecordsByPrefix(MappedMultiMappingProxyBase):
    IdMapper = StringIdMultiMapper
    ValueArray = Records


class RecordsByApproxName(MappedMultiMappingProxyBase):
    IdMapper = ApproxStringIdMultiMapper
    ValueArray = Records


NUMERIC_MAPPERS = (NumericIdMapper, NumericId32Mapper, NumericIdMultiMapper, NumericId32MultiMapper)
STRING_MAPPERS = (StringIdMapper, StringId32Mapper, StringIdMultiMapper, StringId32MultiMapper,
                  ApproxStringIdMultiMapper, ApproxStringId32MultiMapper)


def intact_containers(rng, count):
    """{name: (class, bytes, keys)} for every container kind, ``count`` entries each."""
    records = [Record(number) for number in range(count)]
    names = ['k%d' % number for number in range(count)]
    numbers = [rng.randrange(1 << 31) for _ in range(count)]
    built = {'array': (Records, Records.build(records), list(range(count)))}
    for mapper in NUMERIC_MAPPERS + STRING_MAPPERS + (ObjectIdMapper,):
        if mapper in NUMERIC_MAPPERS:
            keys = numbers
        elif mapper is ObjectIdMapper:
            keys = names[:count // 2] + numbers[:count // 2]
        else:
            keys = names
        built[mapper.__name__] = (mapper, mapper.build([(key, index) for index, key in enumerate(keys)]), keys)
    built['by name'] = (RecordsByName, RecordsByName.build(zip(names, records)), names)
    built['by id'] = (RecordsById, RecordsById.build(zip(numbers, records)), numbers)
    built['by prefix'] = (RecordsByPrefix, RecordsByPrefix.build((name[:3], record) for name, record in zip(names, records)),
                          names)
    built['by approximate name'] = (RecordsByApproxName, RecordsByApproxName.build(zip(names, records)), names)
    return {name: (cls, bytes(container.buf), keys) for name, (cls, container, keys) in built.items()}


def damage(rng, data):
    """``data`` with one kind of damage: stray bytes, an extreme word, a cut, two words swapped."""
    damaged = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:
        for _ in range(rng.randrange(1, 9)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
    elif kind == 1:     # header words, the footer and size fields are 8-byte words
        at = rng.choice([0, 8, 16, 24, 32, 40, 48, len(damaged) - 8, rng.randrange(len(damaged) - 8)])
        value = rng.choice([0, 1, 2**63 - 1, 2**64 - 1, 2**32, len(data), len(data) - 1, rng.randrange(2**64)])
        damaged[at:at + 8] = value.to_bytes(8, 'little')
    elif kind == 2:
        del damaged[rng.randrange(len(damaged)):]
    elif kind == 3:
        first, second = rng.randrange(len(damaged) - 8), rng.randrange(len(damaged) - 8)
        damaged[first:first + 8], damaged[second:second + 8] = damaged[second:second + 8], damaged[first:first + 8]
    else:
        at = rng.randrange(len(damaged))
        damaged[at:at + 4] = rng.randrange(2**32).to_bytes(4, 'little')
    return bytes(damaged)


def read_every_attribute(proxy):
    for attribute in ATTRIBUTES:
        try:
            value = getattr(proxy, attribute)
            if attribute in ('items', 'tags'):
                list(value)
        except CLEAN_ERRORS + (AttributeError,):
            pass


def attempt(operation):
    try:
        return operation()
    except CLEAN_ERRORS:
        return None


def query_array(array, rng):
    for number in list(range(min(len(array), 50))) + [-1, len(array), rng.randrange(-2**40, 2**40)]:
        proxy = attempt(lambda: array[number])
        if proxy is not None:
            read_every_attribute(proxy)
    try:
        for seen, proxy in enumerate(array):
            read_every_attribute(proxy)
            if seen == 200:
                break
    except CLEAN_ERRORS:
        pass
    for mask in (None, bytes(rng.randrange(2) for _ in range(max(len(array), 1)))):
        try:
            for seen, proxy in enumerate(array.iter_fast(mask)):
                read_every_attribute(proxy)
                if seen == 200:
                    break
        except CLEAN_ERRORS:
            pass
    get = array.getter()
    for number in (0, len(array) - 1, len(array), -1):
        proxy = attempt(lambda: get(number))
        if proxy is not None:
            read_every_attribute(proxy)
    for name in ('number', 'ratio'):
        attempt(lambda: array.column(name))
    attempt(lambda: array[2:9])


def query_keyed(container, keys):
    for key in keys[:40] + ['zz', -1, 2**70, 'k1x', 3.5, b'k1']:
        for operation in (lambda: container.get(key), lambda: key in container, lambda: container[key]):
            answer = attempt(operation)
            for value in answer if isinstance(answer, list) else [answer]:
                if isinstance(value, tuple):        # a record proxy
                    read_every_attribute(value)
    for listing in ('items', 'keys', 'values'):
        try:
            for seen, _ in enumerate(getattr(container, listing)()):
                if seen == 200:
                    break
        except CLEAN_ERRORS:
            pass
    if hasattr(container, 'get_many'):
        attempt(lambda: container.get_many(keys[:64]))


def run_batch(seed, count):
    """Damage, open and query ``count`` containers; exceptions other than clean errors propagate."""
    rng = random.Random(seed)
    intact = intact_containers(rng, rng.choice([5, 40, 300]))
    names = sorted(intact)
    with tempfile.TemporaryDirectory() as directory:
        for attempt_number in range(count):
            cls, data, keys = intact[names[attempt_number % len(names)]]
            damaged = damage(rng, data)
            path = None
            if attempt_number % 10 == 0:    # a memory-mapped file, at an offset inside it
                path = os.path.join(directory, 'damaged-%d' % attempt_number)
                with open(path, 'wb') as output:
                    output.write(bytes(24) + damaged)
            try:
                container = cls.map_buffer(damaged) if path is None else cls.map_file(path, 24, len(damaged))
            except CLEAN_ERRORS:
                continue
            if isinstance(container, MappedArrayProxyBase):
                query_array(container, rng)
            else:
                query_keyed(container, keys)
            if path is not None:
                container.close()


def run_child(seed, count=BATCH_SIZE, optimize=False):
    """(exit status, last lines of stderr) of one batch in a fresh interpreter."""
    command = [sys.executable] + (['-O'] if optimize else []) + [os.path.abspath(__file__), str(seed), str(count)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get('PYTHONPATH')])))
    finished = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    return finished.returncode, finished.stderr.strip().splitlines()[-15:]


def campaign(minutes, first_seed):
    deadline = time.time() + 60 * minutes
    seed, batches, failures = first_seed, 0, 0
    while time.time() < deadline:
        status, lines = run_child(seed)
        batches += 1
        if status != 0:
            failures += 1
            print('seed %d: exit status %d\n    %s' % (seed, status, '\n    '.join(lines)), flush=True)
        seed += 1
    print('%d batches of %d damaged containers, seeds %d-%d: %d failed'
          % (batches, BATCH_SIZE, first_seed, seed - 1, failures))
    return 1 if failures else 0


if __name__ == '__main__':
    if sys.argv[1:2] == ['--minutes']:
        first = int(sys.argv[4]) if sys.argv[3:4] == ['--first-seed'] else 1
        sys.exit(campaign(float(sys.argv[2]), first))
    run_batch(int(sys.argv[1]), int(sys.argv[2]))
