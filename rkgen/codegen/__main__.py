"""Regenerate the golden modules: ``python -m rkgen.codegen [FOLDER]`` (default ``generated/``).

Writes ``<name>_net.py`` for every built-in tableau, and removes stale ``*_net.py`` files there.
"""

import sys
from pathlib import Path

from ..tableau import builtin_names, load
from . import generate_file, module_filename


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path("generated")
    folder.mkdir(parents=True, exist_ok=True)
    expected = set()
    for name in builtin_names():
        tableau = load(name)
        result = generate_file(tableau, folder / module_filename(tableau), force=True)
        expected.add(result.path.name)
        print(f"{result.status:>11}  {result.path}")
    for stale in sorted(folder.glob("*_net.py")):
        if stale.name not in expected:
            stale.unlink()
            print(f"    removed  {stale}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
