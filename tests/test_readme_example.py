"""The README's quickstart (examples/quickstart.py) runs and prints what it says."""
import os
import subprocess
import sys

EXAMPLE = os.path.join(os.path.dirname(__file__), '..', 'examples', 'quickstart.py')


def test_quickstart_runs_and_prints_the_documented_values():
    output = subprocess.run([sys.executable, EXAMPLE], check=True, capture_output=True, text=True).stdout
    assert output.splitlines() == [
        '3 1.5 hello -7',
        "SomeStruct(a=3, b=1.5, c='hello', d=-7)",
        '5 world False 48',
        '16',
        '1 2 square 4',
    ]


SHARING = os.path.join(os.path.dirname(__file__), '..', 'examples', 'sharing.py')


def test_sharing_example_runs_and_prints_the_documented_values():
    output = subprocess.run([sys.executable, SHARING], check=True, capture_output=True, text=True).stdout
    assert output.splitlines() == [
        '2 [20, 21, 22] True',
        '10.0',
        "[('header', 256), ('body', 4096)] b'payload'",
    ]
