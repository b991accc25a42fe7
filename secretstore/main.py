"""Console-script entry point (``secretstore`` and ``python -m secretstore``).

Kept tiny so that commands which must start fast can avoid importing typer.
"""

from __future__ import annotations

import sys


def main() -> None:
    from secretstore.cli import run

    sys.exit(run(sys.argv[1:]))
