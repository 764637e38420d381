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
