"""Sorting fixed-width rows in bounded memory: how id mappers (and so mappings) are built.

An id mapper's rows are two or three unsigned ints of one width (FORMAT.md §8): ``(key,
value)`` for numeric mappers, ``(hash, key offset, value)`` for string mappers.  Both are
ordered by column 0 then column 1, which is exactly the order the format asks for:

* numeric rows sort by ``(key, value)``;
* string rows sort by hash, equal hashes in input order, because key offsets grow with the
  input (1.x used numpy's unstable argsort there, so its order of equal hashes is not
  reproducible; this one is, and it matches 1.x wherever 1.x's was well defined).

Rows that tie on both columns are identical (numeric) or cannot occur (string: offsets are
unique), so any correct sort gives the same bytes: one run or a hundred, the output is the same.

Design:

``RowSorter.extend`` appends blocks of rows to an in-memory buffer of at most ``run_rows``
rows.  ``run_rows`` follows from the memory budget (``DEFAULT_MEMORY_BUDGET``, 64 MiB, or
``memory_budget`` bytes per build): a buffered row costs its own bytes, the sorted copy, and
the argsort index, so ``run_rows = budget // (2 * row bytes + 16)`` (about a million
three-column rows by default).  When the buffer fills, it is sorted (numpy's argsort on
column 0, and column 1 too only when column 0 has ties; see ``sort_rows``) and written as a
*run*: an anonymous temporary file in ``tempdir``, which the OS removes even if the process
dies.  ``sorted_blocks`` then yields every row in order:

* nothing spilled (the usual case): the buffer is sorted in memory and yielded as one
  block: no temporary file at all;
* otherwise the runs are merged up to ``FAN_IN`` (64; fewer with tiny budgets) at a time,
  through intermediate runs when there are more.  A merge of k runs reads each in blocks
  of ``run_rows / 2(k + 1)`` rows and repeatedly emits every buffered row up to the
  smallest "last buffered row" among the runs, found by ``searchsorted``: no unread row can
  sort before those, so sorting their concatenation gives the next stretch of the output.
  The run whose block ended there reads its next block, so each step makes progress.

Memory: the run buffer while collecting; while merging, the k blocks plus one merged
stretch, about half the budget.  Closing the sorter (or leaving its ``with`` block, also by
an exception) closes, and so deletes, every run file.
"""
import tempfile

import numpy

__all__ = ['RowSorter', 'sort_rows', 'DEFAULT_MEMORY_BUDGET']

DEFAULT_MEMORY_BUDGET = 64 << 20
FAN_IN = 64
_MIN_BLOCK_ROWS = 1024
_ROW_OVERHEAD = 16


def sort_rows(rows):
    """``rows`` (a 2-D array) ordered by column 0, then column 1.

    Numpy's quicksort of column 0 settles it unless column 0 has ties; then column 1 is
    sorted first and column 0 stably after it (faster than ``lexsort``).  32-bit rows sort by
    one 64-bit key made of both columns.
    """
    if len(rows) < 2:
        return rows
    firsts, seconds = rows[:, 0], rows[:, 1]
    if rows.dtype.itemsize == 4:
        order = numpy.argsort((firsts.astype(numpy.uint64) << numpy.uint64(32)) | seconds)
    else:
        order = numpy.argsort(firsts)
        ordered = firsts[order]
        if (ordered[1:] == ordered[:-1]).any():
            order = numpy.argsort(seconds)
            order = order[numpy.argsort(firsts[order], kind='stable')]
    return rows.take(order, axis=0)


class _RunReader:
    """One sorted run, read back ``block_rows`` at a time; ``rows`` is the unconsumed part of a block."""

    def __init__(self, run_file, count, columns, dtype, block_rows):
        self.file = run_file
        self.remaining = count
        self.columns = columns
        self.dtype = dtype
        self.block_rows = block_rows
        self.rows = self.firsts = None
        run_file.seek(0)

    def next_block(self):
        """Read the next block; False once the run is exhausted."""
        count = min(self.block_rows, self.remaining)
        if not count:
            self.rows = self.firsts = None
            return False
        size = count * self.columns * self.dtype.itemsize
        data = self.file.read(size)
        if len(data) != size:
            raise OSError('short read of a sort run: %d of %d bytes' % (len(data), size))
        self.remaining -= count
        self.rows = numpy.frombuffer(data, self.dtype).reshape(count, self.columns)
        self.firsts = self.rows[:, 0].copy()
        return True

    def last(self):
        return int(self.rows[-1, 0]), int(self.rows[-1, 1])

    def take_up_to(self, bound):
        """The buffered rows that sort at or before ``bound`` (column 0, column 1), consumed."""
        first, second = bound
        low = int(self.firsts.searchsorted(first, 'left'))
        high = int(self.firsts.searchsorted(first, 'right'))
        end = low + int(self.rows[low:high, 1].searchsorted(second, 'right')) if high > low else low
        taken = self.rows[:end]
        self.rows = self.rows[end:]
        self.firsts = self.firsts[end:]
        return taken


class RowSorter:
    """Collects rows of ``columns`` unsigned ints of ``dtype`` and gives them back sorted (see the module docstring)."""

    def __init__(self, columns, dtype, tempdir=None, memory_budget=None):
        budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else int(memory_budget)
        if budget <= 0:
            raise ValueError('memory_budget must be a positive number of bytes, got %r' % (memory_budget,))
        self.columns = columns
        self.dtype = numpy.dtype(dtype)
        self.tempdir = tempdir
        row_bytes = columns * self.dtype.itemsize
        self.run_rows = max(2, budget // (2 * row_bytes + _ROW_OVERHEAD))
        self.fan_in = max(2, min(FAN_IN, self.run_rows // _MIN_BLOCK_ROWS))
        self._buffer = numpy.empty((0, columns), self.dtype)
        self._filled = 0
        self._runs = []
        self._open_files = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Close (and so delete) every run file."""
        files, self._open_files, self._runs = self._open_files, [], []
        self._buffer = None
        for run_file in files:
            run_file.close()

    def extend(self, rows):
        """Add a block of rows (a 2-D array of ``columns`` columns; the sorter may keep it as its buffer)."""
        rows = numpy.asarray(rows, self.dtype)
        if not len(self._buffer) and len(rows) < self.run_rows:
            self._buffer, self._filled = rows, len(rows)       # the first block: no copy
            return
        while len(rows):
            room = self.run_rows - self._filled
            taken, rows = rows[:room], rows[room:]
            end = self._filled + len(taken)
            if end > len(self._buffer):
                grown = numpy.empty((min(self.run_rows, max(end, 2 * len(self._buffer))), self.columns), self.dtype)
                grown[:self._filled] = self._buffer[:self._filled]
                self._buffer = grown
            self._buffer[self._filled:end] = taken
            self._filled = end
            if end == self.run_rows:
                self._spill()

    def _new_file(self):
        run_file = tempfile.TemporaryFile(dir=self.tempdir, prefix='sharedbuffers-run-')
        self._open_files.append(run_file)
        return run_file

    def _drop_file(self, run_file):
        self._open_files.remove(run_file)
        run_file.close()

    def _spill(self):
        run_file = self._new_file()
        run_file.write(sort_rows(self._buffer[:self._filled]).data)
        self._runs.append((run_file, self._filled))
        self._filled = 0

    def sorted_blocks(self):
        """Every row added, in order, as a sequence of 2-D blocks (one block when nothing spilled)."""
        if not self._runs:
            rows = sort_rows(self._buffer[:self._filled])
            self._buffer = None
            if len(rows):
                yield rows
            return
        if self._filled:
            self._spill()
        self._buffer = None
        runs, self._runs = self._runs, []
        while len(runs) > self.fan_in:
            runs = [self._merge_to_file(runs[start:start + self.fan_in]) for start in range(0, len(runs), self.fan_in)]
        yield from self._merge(runs)

    def _merge_to_file(self, runs):
        if len(runs) == 1:
            return runs[0]
        merged = self._new_file()
        count = 0
        for rows in self._merge(runs):
            merged.write(rows.data)
            count += len(rows)
        for run_file, _ in runs:
            self._drop_file(run_file)
        return merged, count

    def _merge(self, runs):
        block_rows = max(1, self.run_rows // (2 * (len(runs) + 1)))
        readers = [_RunReader(run_file, count, self.columns, self.dtype, block_rows) for run_file, count in runs]
        readers = [reader for reader in readers if reader.next_block()]
        while len(readers) > 1:
            bound = min(reader.last() for reader in readers)
            pieces = [piece for piece in (reader.take_up_to(bound) for reader in readers) if len(piece)]
            yield sort_rows(numpy.concatenate(pieces)) if len(pieces) > 1 else pieces[0]
            readers = [reader for reader in readers if len(reader.rows) or reader.next_block()]
        for reader in readers:
            yield reader.rows
            while reader.next_block():
                yield reader.rows
