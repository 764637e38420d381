"""AlignedWriter: builds write the same bytes, in pieces that end on 2 MB boundaries of the file."""
import io
import os

from hypothesis import given, settings, strategies as st

from sharedbuffers.containers.aligned_writes import ALIGNMENT, AlignedWriter
from sharedbuffers.mapped_struct import MappedArrayProxyBase, Schema


class RecordingFile(io.BytesIO):
    """A BytesIO that remembers where each write started and how long it was."""

    def __init__(self, initial=b''):
        super().__init__(initial)
        self.writes = []

    def write(self, data):
        self.writes.append((self.tell(), len(data)))
        return super().write(data)


def test_writes_reach_the_file_in_pieces_that_end_on_the_boundaries():
    output = RecordingFile(b'x' * 100)
    output.seek(100)
    writer = AlignedWriter(output)
    for _ in range(50):
        writer.write(b'y' * 300_000)
    writer.flush()
    *aligned, last = output.writes
    assert aligned and all((start + length) % ALIGNMENT == 0 for start, length in aligned)
    assert output.getvalue() == b'x' * 100 + b'y' * 15_000_000
    assert last[0] + last[1] == 15_000_100


def test_less_than_one_piece_stays_in_memory_until_flushed():
    output = RecordingFile()
    writer = AlignedWriter(output)
    writer.write(b'a' * 1000)
    assert output.writes == [] and writer.tell() == 1000
    writer.flush()
    assert output.getvalue() == b'a' * 1000


def test_seeking_and_reading_see_what_was_written():
    output = RecordingFile()
    writer = AlignedWriter(output)
    writer.write(b'header--')
    writer.write(b'body')
    assert writer.seek(0) == 0
    assert writer.read(6) == b'header' and writer.tell() == 6
    writer.write(b'!!')
    assert writer.seek(0, os.SEEK_END) == 12
    writer.write(b'tail')
    writer.flush()
    assert output.getvalue() == b'header!!bodytail'


operations = st.lists(st.one_of(
    st.tuples(st.just('write'), st.integers(0, 3 * ALIGNMENT // 2)),
    st.tuples(st.just('seek'), st.integers(0, 6 * ALIGNMENT)),
    st.tuples(st.just('read'), st.integers(0, 5000)),
    st.tuples(st.just('tell'), st.just(0)),
), max_size=12)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, ALIGNMENT + 5), operations)
def test_any_sequence_of_calls_gives_what_the_file_alone_gives(start, calls):
    model, output = io.BytesIO(bytes(start)), RecordingFile(bytes(start))
    model.seek(start)
    output.seek(start)
    writer = AlignedWriter(output)
    for number, (name, argument) in enumerate(calls):
        if name == 'write':
            data = bytes([number % 251]) * argument
            assert writer.write(data) == model.write(data)
        elif name == 'seek':
            position = min(argument, len(model.getvalue()))
            assert writer.seek(position) == model.seek(position)
        elif name == 'read':
            assert writer.read(argument) == model.read(argument)
        assert writer.tell() == model.tell()
    writer.flush()
    assert output.getvalue() == model.getvalue()


class Point:
    __slot_types__ = {'x': int, 'label': str}

    def __init__(self, x):
        self.x, self.label = x, 'point %d' % x


class Points(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Point)


def test_a_build_bigger_than_a_piece_writes_aligned_pieces_and_reads_back(monkeypatch):
    handed = []
    real_init = AlignedWriter.__init__

    def recording_init(self, output):
        real_init(self, output)
        handed.append(self)
    monkeypatch.setattr(AlignedWriter, '__init__', recording_init)
    output = RecordingFile(b'prefix')
    output.seek(6)
    array = Points.build((Point(i) for i in range(150_000)), destfile=output, return_mapper=False)
    assert array is None and len(handed) == 1
    big = [(start, length) for start, length in output.writes if length >= ALIGNMENT]
    assert big and all((start + length) % ALIGNMENT == 0 for start, length in big)
    mapped = Points.map_buffer(output.getvalue(), 6)
    assert len(mapped) == 150_000 and mapped[149_999].label == 'point 149999'
