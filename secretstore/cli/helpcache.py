"""``--help``: typer's rendering of the declarations, cached so that it costs no typer import.

typer stays the help renderer: the first ``--help`` of a command (per
secretstore version, typer version, declarations and terminal width) builds
typer's objects from the declarations, renders the help and keeps the text in
the cache dir (``$SECRETSTORE_CACHE_DIR/help`` or the user cache dir); later
ones print the kept text (the renderer, ``framework.py``, is part of the key
by its size and time). The key is written inside the file and compared on
reading, so a changed declaration, an upgrade of either package or another
width renders afresh. A cached text with anything but printable characters
and newlines is not trusted (it is rendered again), so a tampered cache cannot
send escape sequences to the terminal. ``SECRETSTORE_CACHE=0`` turns the cache
off; deleting it is always safe.
"""

from __future__ import annotations

import os
import sys

from secretstore import env
from secretstore.console import write_stdout

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Sequence

_MAGIC = "secretstore-help/v1"


def _typer_version() -> str:
    """typer's version, read from its package without importing it."""
    for entry in sys.path:
        path = os.path.join(entry or ".", "typer", "__init__.py")
        try:
            with open(path, encoding="utf-8") as handle:
                head = handle.read(512)
        except OSError:
            continue
        for line in head.splitlines():
            if line.startswith("__version__"):
                return line.partition("=")[2].strip().strip("\"'")
        return "unknown"
    return "missing"


def help_width() -> int:
    """The width click wraps help at: the terminal's columns (as shutil finds them), at most 80, minus 2."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 80
        columns = columns or 80
    return max(min(columns, 80) - 2, 50)


def cache_key(path: Sequence[str]) -> str:
    import zlib

    from secretstore import __version__
    from secretstore.cli.declarations import ROOT

    declarations = zlib.crc32(repr(ROOT).encode("utf-8"))
    try:  # the renderer itself (framework.py), in case it changes within a version
        status = os.stat(os.path.join(os.path.dirname(os.path.abspath(__file__)), "framework.py"))
        renderer = f"{status.st_size}.{status.st_mtime_ns}"
    except OSError:
        renderer = "-"
    return (
        f"{_MAGIC} {__version__} typer-{_typer_version()} width-{help_width()} "
        f"decl-{declarations:08x} renderer-{renderer} {' '.join(path) or '-'}"
    )


def _cache_dir() -> str | None:
    if env.is_off(os.environ.get(env.CACHE)):
        return None
    from secretstore import paths

    base = os.environ.get(env.CACHE_DIR)
    root = os.path.abspath(os.path.expanduser(base)) if base else paths.user_dir("cache")
    return os.path.join(root, "help")


def _trusted(text: str) -> bool:
    return all(line.isprintable() for line in text.split("\n"))


def help_text(path: Sequence[str]) -> str:
    """The help of ``path`` as typer renders it, from the cache when it holds this exact key."""
    import zlib

    key = cache_key(path)
    directory = _cache_dir()
    file = None if directory is None else os.path.join(directory, f"{zlib.crc32(key.encode()):08x}.txt")
    if file is not None:
        try:
            with open(file, encoding="utf-8") as handle:
                stored = handle.read()
        except (OSError, UnicodeDecodeError):
            stored = ""
        first, _newline, body = stored.partition("\n")
        if first == key and body and _trusted(body):
            return body
    from secretstore.cli.framework import render_help

    text = render_help(path)
    if file is not None and text and _trusted(text):
        from secretstore import fsio
        from secretstore.errors import SecretStoreError

        try:
            fsio.atomic_write(file, f"{key}\n{text}".encode(), durable=False)
        except SecretStoreError:
            pass  # a cache that cannot be written costs only speed
    return text


def show(path: Sequence[str]) -> None:
    """Print the help of ``path`` on stdout (exit 0, also for a bare group)."""
    write_stdout(help_text(path).encode("utf-8"))
