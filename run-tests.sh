#!/bin/sh
# The whole test suite, from a plain clone on a fresh machine:
#   1. create .venv when missing and install the package with its test extra
#      (this builds the cffi kernels), and byte-compile it;
#   2. run every test once with the native kernels and once with SHAREDBUFFERS_PURE=1;
#   3. run the -O pass over the corrupt-input tests (bounds checks must not be asserts).
# Exits non-zero on any failure.
set -eu
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

# The differential tests compare with sharedbuffers 1.2.3 itself.  Build its venv (with the
# script shipped in ../shared) in the background while this package installs.
REFERENCE_DIR=${SB_BENCH_DIR:-${TMPDIR:-/tmp}/sb-bench}/ref
reference_pid=
if [ ! -x "$REFERENCE_DIR/bin/python" ] && [ -f ../shared/bench/reference-venv.sh ]; then
    mkdir -p "$(dirname "$REFERENCE_DIR")"
    bash ../shared/bench/reference-venv.sh "$REFERENCE_DIR" > "$(dirname "$REFERENCE_DIR")/reference-venv.log" 2>&1 &
    reference_pid=$!
fi
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e ".[test]"
# A regular install byte-compiles the package; an editable one does not, and where
# PYTHONDONTWRITEBYTECODE is set every process would compile it again (2 MB more memory each).
.venv/bin/python -m compileall -q sharedbuffers >/dev/null
.venv/bin/python -c 'import sharedbuffers, sys; sys.exit(0 if sharedbuffers.NATIVE else "native kernels did not build")'
.venv/bin/python -c 'import sys; from sharedbuffers import _native; sys.exit(0 if _native.objects is not None else "the C-API module _objects did not build")'

if [ -n "$reference_pid" ]; then
    wait "$reference_pid" || echo "reference venv could not be built: differential tests will be skipped"
fi
export SB_REFERENCE_PYTHON="$REFERENCE_DIR/bin/python"

status=0
echo "== native kernels =="
.venv/bin/python -m pytest -q -p no:cacheprovider tests "$@" || status=1
echo "== pure-Python fallback (SHAREDBUFFERS_PURE=1) =="
SHAREDBUFFERS_PURE=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests "$@" || status=1
echo "== python -O: corrupt input still raises cleanly =="
.venv/bin/python -O -m pytest -q -p no:cacheprovider tests/test_corrupt_input.py "$@" || status=1
exit $status
