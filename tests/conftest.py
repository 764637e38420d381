"""Shared test helpers: the golden fixtures and the 1.2.3 reference interpreter."""
import importlib.util
import json
import os
import time

import pytest

# The fixtures were written with TZ=UTC (naive datetimes are local time in the format).
os.environ['TZ'] = 'UTC'
if hasattr(time, 'tzset'):
    time.tzset()

FIXTURES_DIR = os.path.join(os.path.dirname(__file__), 'fixtures')


def load_fixture_checker():
    """The fixture checker shipped with the golden files (its matching rules are the spec)."""
    spec = importlib.util.spec_from_file_location('check_fixtures', os.path.join(FIXTURES_DIR, 'check_fixtures.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_manifest():
    with open(os.path.join(FIXTURES_DIR, 'manifest.json')) as f:
        manifest = json.load(f)
    by_name = {fixture['name']: fixture for fixture in manifest['fixtures']}
    for fixture in manifest['fixtures']:
        if 'expected_from' in fixture and 'expected' not in fixture:
            fixture['expected'] = by_name[fixture['expected_from']]['expected']
    return manifest


def reference_python():
    """The interpreter of the sharedbuffers 1.2.3 reference venv, or None."""
    candidates = [os.environ.get('SB_REFERENCE_PYTHON'),
                  os.path.join(os.environ.get('SB_BENCH_DIR') or os.path.join(os.environ.get('TMPDIR', '/tmp'), 'sb-bench'),
                               'ref', 'bin', 'python')]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def pytest_collection_modifyitems(config, items):
    """Tests marked ``native_only`` do not apply when the compiled kernels are not in use."""
    from sharedbuffers import NATIVE
    if NATIVE:
        return
    deselected = [item for item in items if item.get_closest_marker('native_only')]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker('native_only')]


@pytest.fixture(scope='session')
def manifest():
    return load_manifest()


@pytest.fixture(scope='session')
def fixture_checker():
    return load_fixture_checker()
