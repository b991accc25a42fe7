"""Console-script entry point (``secretstore`` and ``python -m secretstore``).

Kept tiny so that commands which must start fast can avoid importing typer:
``secretstore [--store DIR] exec ...`` goes to ``secretstore.fastexec``, which
imports only what running a program needs, and hands anything it does not
understand exactly (``--help``, usage errors) back to the typer CLI.
"""

from __future__ import annotations

import sys


def _looks_like_exec(argv: list[str]) -> bool:
    """Cheap test before importing the fast path: exec is the first word after ``--store``."""
    if argv[:1] == ["exec"]:
        return True
    if argv[:1] == ["--store"]:
        return argv[2:3] == ["exec"]
    return bool(argv) and argv[0].startswith("--store=") and argv[1:2] == ["exec"]


def main() -> None:
    argv = sys.argv[1:]
    if _looks_like_exec(argv):
        from secretstore.fastexec import main as fast_main

        code = fast_main(argv)
        if code is not None:
            sys.exit(code)
    from secretstore.cli import run

    sys.exit(run(argv))
