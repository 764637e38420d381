"""The ``sharedbuffers`` command: ``demo`` and ``inspect``.

    sharedbuffers demo [--size N] [--keep DIR]   build a sample mapping, query it, compare with pickle
    sharedbuffers inspect FILE [--offset N]      say what a file holds (kind, version, schema, counts, sizes)
"""
import argparse
import os
import pickle
import random
import struct
import sys
import tempfile
import time

__all__ = ['main']


# -- inspect ---------------------------------------------------------------------------------

def _describe_schema(schema):
    def name(slot_type):
        return getattr(slot_type, '__name__', None) or type(slot_type).__name__
    return ', '.join('%s: %s' % (key, name(schema.slot_types[key])) for key in schema.slot_keys)


def _try_array(view, offset):
    from .containers.arrays import MappedArrayProxyBase
    try:
        array = MappedArrayProxyBase(view, offset)
    except Exception:
        return None
    return [('kind', 'typed array'), ('version', array.version), ('items', len(array)),
            ('size', '%d bytes' % array.total_size), ('schema', _describe_schema(array.schema)),
            ('binary version of items', array.schema.version), ('alignment', array.schema.alignment)]


def _try_mapping(view):
    if len(view) < 8 + 56 + 16:
        return None
    values_position = struct.unpack_from('=Q', view, len(view) - 8)[0]
    if not 16 <= values_position <= len(view) - 64:
        return None
    described = _try_array(view, values_position)
    if described is None:
        return None
    count, index_position = struct.unpack_from('=QQ', view, 0)
    mapper_bytes = values_position
    return ([('kind', 'typed mapping'), ('keys (id mapper rows)', count),
             ('id mapper', '%d bytes, index at +%d' % (mapper_bytes, index_position)),
             ('values', '%s at +%d' % (dict(described)['items'], values_position))] + described[1:])


def _try_mapper(view):
    if len(view) < 16:
        return None
    count, index_position = struct.unpack_from('=QQ', view, 0)
    if index_position < 16 or index_position > len(view):
        return None
    row_space = len(view) - index_position
    guesses = []
    for columns, width, kinds in ((2, 8, 'numeric or approximate (64-bit)'), (3, 8, 'string or object (64-bit)'),
                                  (2, 4, 'numeric or approximate (32-bit)'), (3, 4, 'string (32-bit)')):
        needed = count * columns * width
        if (index_position == 16) == (columns == 2) and needed <= row_space < needed + 32:
            guesses.append(kinds)
    if not guesses:
        return None
    return [('kind', 'id mapper'), ('rows', count), ('index at', '+%d' % index_position),
            ('size', '%d bytes' % len(view)), ('layout', ' or '.join(guesses))]


def inspect(path, offset=0, out=sys.stdout):
    """Print what the file at ``path`` holds at ``offset``; returns 0, or 1 if unrecognised."""
    with open(path, 'rb') as f:
        data = f.read()
    view = memoryview(data)[offset:]
    described = _try_array(view, 0) or _try_mapping(view) or _try_mapper(view)
    print('%s (at offset %d, %d bytes from there)' % (path, offset, len(view)), file=out)
    if described is None:
        print('  not a sharedbuffers typed array, mapping or id mapper at this offset', file=out)
        return 1
    for label, value in described:
        print('  %-24s %s' % (label + ':', value), file=out)
    return 0


# -- demo ------------------------------------------------------------------------------------

class DemoRecord:
    """The demo's record: an id, a score, a name, tags and a flag."""
    __slot_types__ = {'id': int, 'score': float, 'name': str, 'tags': list, 'flag': bool}

    def __init__(self, id, score, name, tags, flag):
        self.id, self.score, self.name, self.tags, self.flag = id, score, name, tags, flag


def _records(count, seed=1):
    rng = random.Random(seed)
    for number in range(count):
        yield DemoRecord(rng.getrandbits(40), rng.random() * 1000, 'user-%07d' % number,
                         [rng.randrange(1000) for _ in range(rng.randint(0, 5))], rng.random() < 0.5)


def _progress(items, total, label, stream):
    width = 40
    shown = -1
    for done, item in enumerate(items, 1):
        filled = done * width // total
        if filled != shown:
            shown = filled
            stream.write('\r%s [%s%s] %d/%d' % (label, '#' * filled, '.' * (width - filled), done, total))
            stream.flush()
        yield item
    stream.write('\n')


def _per_operation(function, repeat):
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - start) / repeat * 1e9


def demo(size=100000, keep=None, out=sys.stdout, progress=sys.stderr):
    """Build a sample record mapping, query it, and print sizes and times beside pickle's."""
    from .mapped_struct import MappedArrayProxyBase, MappedMappingProxyBase, Schema, StringIdMapper

    class Records(MappedArrayProxyBase):
        schema = Schema.from_typed_slots(DemoRecord)

    class ByName(MappedMappingProxyBase):
        IdMapper = StringIdMapper
        ValueArray = Records

    directory = keep or tempfile.mkdtemp(prefix='sharedbuffers-demo-')
    path = os.path.join(directory, 'records.sbm')
    started = time.perf_counter()
    mapping = ByName.build(((record.name, record) for record in
                            _progress(_records(size), size, 'building', progress)), path)
    build_seconds = time.perf_counter() - started
    names = ['user-%07d' % number for number in random.Random(2).sample(range(size), min(size, 2000))]

    by_name = {record.name: record for record in _records(size)}
    pickled = pickle.dumps(by_name, pickle.HIGHEST_PROTOCOL)
    pickle_path = os.path.join(directory, 'records.pickle')
    with open(pickle_path, 'wb') as f:
        f.write(pickled)

    started = time.perf_counter()
    reopened = ByName.map_file(path)
    open_ms = (time.perf_counter() - started) * 1e3
    started = time.perf_counter()
    with open(pickle_path, 'rb') as f:
        loaded = pickle.load(f)
    pickle_open_ms = (time.perf_counter() - started) * 1e3

    lookups = iter(names * 50)
    lookup_ns = _per_operation(lambda: reopened[next(lookups)].score, len(names))
    lookups = iter(names * 50)
    pickle_lookup_ns = _per_operation(lambda: loaded[next(lookups)].score, len(names))
    differing = [name for name in names[:100] if reopened[name].score != loaded[name].score]
    if differing:       # the demo checks what it measured, also under python -O
        raise RuntimeError('the mapping and the pickle disagree on %d of 100 records, first %r'
                           % (len(differing), differing[0]))

    print('sharedbuffers demo: %d records in %s' % (size, directory), file=out)
    print('  %-34s %14s %14s' % ('', 'sharedbuffers', 'pickle'), file=out)
    print('  %-34s %14d %14d' % ('file size (bytes)', os.path.getsize(path), len(pickled)), file=out)
    print('  %-34s %14.1f %14s' % ('build (s)', build_seconds, '-'), file=out)
    print('  %-34s %14.2f %14.2f' % ('open (ms)', open_ms, pickle_open_ms), file=out)
    print('  %-34s %14.0f %14.0f' % ('lookup by name + one field (ns)', lookup_ns, pickle_lookup_ns), file=out)
    print('  sharedbuffers opens by mapping the file: readers share its pages instead of each'
          ' holding a copy.', file=out)
    return mapping


def main(argv=None):
    parser = argparse.ArgumentParser(prog='sharedbuffers', description=__doc__.split('\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    demo_parser = commands.add_parser('demo', help='build a sample mapping, query it, compare with pickle')
    demo_parser.add_argument('--size', type=int, default=100000, help='number of records (default 100000)')
    demo_parser.add_argument('--keep', metavar='DIR', help='build in DIR instead of a temporary directory')
    inspect_parser = commands.add_parser('inspect', help='say what a file holds')
    inspect_parser.add_argument('file')
    inspect_parser.add_argument('--offset', type=int, default=0)
    arguments = parser.parse_args(argv)
    if arguments.command == 'demo':
        if arguments.size < 1:
            parser.error('--size must be at least 1')
        demo(arguments.size, arguments.keep)
        return 0
    return inspect(arguments.file, arguments.offset)
