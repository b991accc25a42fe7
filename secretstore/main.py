"""Console-script entry point (``secretstore`` and ``python -m secretstore``).

Kept tiny: ``secretstore.cli.run`` parses every ordinary command line from
the declarations without importing typer (see ``secretstore/cli/__init__.py``).
"""

from __future__ import annotations

import sys


def main() -> None:
    from secretstore.cli import run

    sys.exit(run(sys.argv[1:]))
