"""Benchmarks: run with ``.venv/bin/python -m pytest benchmarks --benchmark-only``.

Each file compares a sharedbuffers hot path with a baseline doing the same job in the same
run (pickle, msgpack), so the ratio is what a reader looks at: these machines are noisy.
"""
