"""``python -m sharedbuffers``: the command line (see sharedbuffers.cli)."""
import sys

from .cli import main

sys.exit(main())
