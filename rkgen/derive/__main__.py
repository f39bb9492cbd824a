"""Refresh the example derivations: ``python -m rkgen.derive [FOLDER]`` (default ``examples/derivations``)."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
