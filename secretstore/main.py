"""Console-script entry point (``secretstore`` and ``python -m secretstore``).

Kept tiny so that commands which must start fast can avoid importing typer:
``secretstore [--store DIR] exec ...`` goes to ``secretstore.fastexec``, which
imports only what running a program needs, and ``secretstore [--store DIR]
get ...`` (or ``secrets get ...``) to ``secretstore.fastget``. Both hand
anything they do not understand exactly (``--help``, usage errors, prompts)
back to the typer CLI.
"""

from __future__ import annotations

import sys


def _fast_command(argv: list[str]) -> str | None:
    """Cheap test before importing a fast path: the first word(s) after a global ``--store``."""
    if argv[:1] == ["--store"]:
        argv = argv[2:]
    elif argv[:1] and argv[0].startswith("--store="):
        argv = argv[1:]
    if argv[:1] == ["exec"]:
        return "exec"
    if argv[:1] == ["get"] or argv[:2] == ["secrets", "get"]:
        return "get"
    return None


def main() -> None:
    argv = sys.argv[1:]
    command = _fast_command(argv)
    if command is not None:
        if command == "exec":
            from secretstore.fastexec import main as fast_main
        else:
            from secretstore.fastget import main as fast_main
        code = fast_main(argv)
        if code is not None:
            sys.exit(code)
    from secretstore.cli import run

    sys.exit(run(argv))
