"""A writer killed in the middle of a build leaves the previous file whole and readable."""
import multiprocessing
import os
import signal
import time

import pytest

import shared_children as children


def _rebuild_forever(path, started):
    """Build ever bigger arrays over ``path`` until killed."""
    generation = 0
    while True:
        generation += 1

        def records():
            for i in range(200000):
                if i == 1000:
                    started.set()
                yield children.Counter(generation, float(i), 'g%d-%d' % (generation, i))
        children.CounterArray.build(records(), destfile=path, return_mapper=False)


@pytest.mark.skipif(not hasattr(signal, 'SIGKILL'), reason='needs SIGKILL')
@pytest.mark.parametrize('delay', [0.0, 0.05, 0.3])
def test_killing_a_writer_mid_build_leaves_the_previous_file_readable(tmp_path, delay):
    path = str(tmp_path / 'records.sba')
    children.CounterArray.build([children.Counter(0, 0.0, 'first') for _ in range(10)], destfile=path,
                                return_mapper=False)
    context = multiprocessing.get_context('fork')
    started = context.Event()
    writer = context.Process(target=_rebuild_forever, args=(path, started))
    writer.start()
    assert started.wait(60)
    time.sleep(delay)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    with children.CounterArray.map_file(path) as array:
        count = len(array)
        labels = {array[0].label, array[count - 1].label}
        hits = array[0].hits
        del array
    # Either the first file or one complete later generation, never a mixture or a torso.
    if hits == 0:
        assert count == 10 and labels == {'first'}
    else:
        assert count == 200000 and labels == {'g%d-0' % hits, 'g%d-199999' % hits}
