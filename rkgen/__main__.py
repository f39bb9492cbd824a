"""``python -m rkgen``: the same command as ``rkgen`` (rkgen.cli), the chain's front door."""

import sys

from .cli import main

sys.exit(main())
