"""Time the struct-codec operations of one sharedbuffers implementation; print JSON.

Runs unchanged under sharedbuffers 1.2.3 and under this package, so that
``compare_reference.py`` can put both side by side.  Record: the types of the struct codec
(int, float, str, bytes, bool, a nested registered struct, a dynamically typed value).

    python struct_ops.py [--repeat 7] [--number 20000]
"""
import argparse
import json
import pickle
import random
import sys
import timeit


class Sub(object):
    __slot_types__ = {'x': int, 'y': float}

    def __init__(self, x, y):
        self.x = x
        self.y = y


class Record(object):
    __slot_types__ = {'id': int, 'score': float, 'name': str, 'blob': bytes, 'flag': bool,
                      'sub': Sub, 'extra': object}

    def __init__(self, id, score, name, blob, flag, sub, extra):
        self.id = id
        self.score = score
        self.name = name
        self.blob = blob
        self.flag = flag
        self.sub = sub
        self.extra = extra


def make_records(count, seed=7):
    rng = random.Random(seed)
    return [Record(rng.getrandbits(40), rng.random() * 1000, 'user-%07d' % i,
                   bytes(rng.getrandbits(8) for _ in range(rng.randint(4, 16))), rng.random() < 0.5,
                   Sub(rng.getrandbits(20), rng.random()), rng.choice([7, 'tag', 2.5]))
            for i in range(count)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--repeat', type=int, default=7)
    parser.add_argument('--number', type=int, default=20000)
    args = parser.parse_args()

    from sharedbuffers import mapped_struct as ms
    Sub.schema = ms.Schema.from_typed_slots(Sub)
    ms.mapped_object.register_schema(Sub, Sub.schema, b'P')
    schema = ms.Schema.from_typed_slots(Record)

    records = make_records(1000)
    packed = [schema.pack(r) for r in records]
    read_only = [bytes(b) for b in packed]
    writable = [bytearray(b) for b in packed]
    first = records[0]
    proxy_ro = schema.unpack_from(read_only[0], 0)
    proxy_rw = schema.unpack_from(writable[0], 0)
    for p, r in ((proxy_ro, first), (proxy_rw, first)):
        assert (p.id, p.name, p.blob, p.sub.x, bool(p.flag)) == (r.id, r.name, r.blob, r.sub.x, r.flag)

    unpack_from = schema.unpack_from
    pack = schema.pack
    number = args.number
    results = {}

    def best(statement, namespace, per=1):
        timer = timeit.Timer(statement, globals=namespace)
        return min(timer.repeat(args.repeat, number)) / number / per * 1e9

    ns = dict(pack=pack, first=first, unpack_from=unpack_from, buf_ro=read_only[0], buf_rw=writable[0],
              p_ro=proxy_ro, p_rw=proxy_rw, pickle=pickle, records=records)
    results['pack_ns'] = best('pack(first)', ns)
    results['unpack_one_field_ro_ns'] = best('unpack_from(buf_ro, 0).id', ns)
    results['unpack_one_field_rw_ns'] = best('unpack_from(buf_rw, 0).id', ns)
    results['read_all_fresh_ro_ns'] = best(
        'p = unpack_from(buf_ro, 0); s = p.sub; (p.id, p.score, p.name, p.blob, p.flag, s.x, s.y, p.extra)', ns)
    results['attr_read_ro_ns'] = best('p_ro.id; p_ro.id; p_ro.id; p_ro.id; p_ro.id', ns, per=5)
    results['attr_read_rw_ns'] = best('p_rw.id; p_rw.id; p_rw.id; p_rw.id; p_rw.id', ns, per=5)
    results['str_attr_read_ro_ns'] = best('p_ro.name; p_ro.name; p_ro.name; p_ro.name; p_ro.name', ns, per=5)
    results['pickle_dumps_ns'] = best('pickle.dumps(first, 5)', ns)
    pickled = pickle.dumps(first, 5)
    ns['pickled'] = pickled
    results['pickle_loads_one_field_ns'] = best('pickle.loads(pickled).id', ns)
    import sharedbuffers
    results['implementation'] = getattr(sharedbuffers, '__version__', '?')
    results['native'] = getattr(sharedbuffers, 'NATIVE', None)
    json.dump(results, sys.stdout)


if __name__ == '__main__':
    main()
