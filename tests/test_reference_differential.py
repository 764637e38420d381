"""Differential tests against sharedbuffers 1.2.3 itself: what it writes we read, and back.

Needs the reference venv built by ``../shared/bench/reference-venv.sh`` (``run-tests.sh``
builds it when ``../shared`` is present); the interpreter is found as in conftest.
"""
import json
import os
import pickle
import subprocess

import pytest

from conftest import reference_python
from sharedbuffers.mapped_struct import Schema, float32, int8, mapped_object, uint16, uint64

REFERENCE = reference_python()
pytestmark = pytest.mark.skipif(REFERENCE is None, reason='the sharedbuffers 1.2.3 reference venv is not built')

# The same declarations on both sides (the reference runs this text too).
DECLARATIONS = '''
class Inner(object):
    __slot_types__ = {'x': int, 'name': str}
    def __init__(self, **kw): self.__dict__.update(kw)

class Outer(object):
    __slot_types__ = {'u': uint16, 'big': uint64, 'small': int8, 'ratio': float32, 'score': float,
                      'flag': bool, 'text': str, 'blob': bytes, 'anything': object, 'inner': Inner}
    def __init__(self, **kw): self.__dict__.update(kw)
'''

CASES = [
    dict(u=65535, big=2 ** 64 - 1, small=-128, ratio=0.5, score=-2.25, flag=True, text='héllo',
         blob=b'\x00\x01', anything='dyn', inner=dict(x=7, name='in')),
    dict(u=0, text='x' * 700, blob=bytes(range(256)) * 3, anything=2 ** 40, inner=None),
    dict(flag=False, anything=-5, small=None, text=''),
    dict(anything=1.5, inner=dict(x=-1)),
    dict(anything=dict(x=3, name='registered')),
    dict(anything=True, text='short', blob=b'short'),
    dict(),
]

REFERENCE_SCRIPT = '''
import json, sys, pickle
from sharedbuffers.mapped_struct import *
%s
Inner.schema = Schema.from_typed_slots(Inner)
mapped_object.register_schema(Inner, Inner.schema, b'\\xd7')
schema = Schema.from_typed_slots(Outer)

def build(case):
    kw = {}
    for k, v in case.items():
        if isinstance(v, dict):
            v = Inner(**v)
        elif isinstance(v, list):
            v = bytes.fromhex(v[0])
        kw[k] = v
    return Outer(**kw)

def plain(p):
    out = {}
    for k in Outer.__slot_types__:
        try:
            v = getattr(p, k)
        except AttributeError:
            continue
        if k in ('inner', 'anything') and hasattr(v, 'x'):
            v = {'x': v.x, **({'name': v.name} if hasattr(v, 'name') else {})}
        elif isinstance(v, bytes):
            v = [v.hex()]
        elif k == 'flag':
            v = bool(v)
        out[k] = v
    return out

request = json.load(sys.stdin)
answer = {'packed': [], 'read': []}
for case in request['cases']:
    buf = bytearray(8192)
    end = schema.pack_into(build(case), buf, 0)
    answer['packed'].append(bytes(buf[:end]).hex())
for blob in request['ours']:
    answer['read'].append(plain(schema.unpack_from(memoryview(bytearray.fromhex(blob)), 0)))
answer['schema_pickle'] = pickle.dumps(schema, 2).hex()
ours = pickle.loads(bytes.fromhex(request['our_schema_pickle']))
answer['our_schema_reads'] = plain(ours.unpack_from(memoryview(bytearray.fromhex(request['ours'][0])), 0))
json.dump(answer, sys.stdout)
''' % DECLARATIONS


namespace = {'uint16': uint16, 'uint64': uint64, 'int8': int8, 'float32': float32}
exec(DECLARATIONS, namespace)
Inner, Outer = namespace['Inner'], namespace['Outer']
Inner.schema = Schema.from_typed_slots(Inner)
mapped_object.register_schema(Inner, Inner.schema, b'\xd7')
SCHEMA = Schema.from_typed_slots(Outer)


def _json_case(case):
    return {k: ([v.hex()] if isinstance(v, bytes) else v) for k, v in case.items()}


def _build(case):
    return Outer(**{k: Inner(**v) if isinstance(v, dict) else v for k, v in case.items()})


def _plain(proxy):
    values = {}
    for name in Outer.__slot_types__:
        value = getattr(proxy, name, _plain)
        if value is _plain:
            continue
        if name in ('inner', 'anything') and hasattr(value, 'x'):
            value = {'x': value.x, **({'name': value.name} if hasattr(value, 'name') else {})}
        elif isinstance(value, bytes):
            value = [value.hex()]
        values[name] = value
    return values


@pytest.fixture(scope='module')
def reference_answer():
    request = {
        'cases': [_json_case(case) for case in CASES],
        'ours': [SCHEMA.pack(_build(case)).hex() for case in CASES],
        'our_schema_pickle': pickle.dumps(SCHEMA, 2).hex(),
    }
    result = subprocess.run([REFERENCE, '-c', REFERENCE_SCRIPT], input=json.dumps(request), text=True,
                            capture_output=True, cwd='/', env=dict(os.environ, TZ='UTC', PYTHONPATH=''))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize('index', range(len(CASES)))
def test_we_write_the_bytes_1_2_3_writes(reference_answer, index):
    assert SCHEMA.pack(_build(CASES[index])).hex() == reference_answer['packed'][index]


@pytest.mark.parametrize('index', range(len(CASES)))
def test_we_read_what_1_2_3_writes(reference_answer, index):
    proxy = SCHEMA.unpack_from(bytes.fromhex(reference_answer['packed'][index]))
    assert _plain(proxy) == json.loads(json.dumps(_json_case(CASES[index]), default=str))


@pytest.mark.parametrize('index', range(len(CASES)))
def test_1_2_3_reads_what_we_write(reference_answer, index):
    assert reference_answer['read'][index] == _json_case(CASES[index])


def test_we_load_the_schema_1_2_3_pickles(reference_answer):
    from sharedbuffers.safe_pickle import load_schema
    schema = load_schema(bytes.fromhex(reference_answer['schema_pickle']))
    assert schema.compatible(SCHEMA)


def test_1_2_3_loads_the_schema_we_pickle_and_reads_our_data(reference_answer):
    assert reference_answer['our_schema_reads'] == _json_case(CASES[0])
