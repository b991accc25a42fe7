"""What both entry points print: the typer CLI and exec's typer-free fast path.

One place for the ``secretstore: error:`` line, the internal-error report and
the ASCII table, so the two paths cannot drift apart. Imports only ``os`` and
``sys`` (it is on exec's start-up path).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

PROG = "secretstore"


def stdin_is_tty() -> bool:
    return _isatty(sys.stdin)


def stdout_is_tty() -> bool:
    return _isatty(sys.stdout)


def _isatty(stream: object) -> bool:
    try:
        return os.isatty(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False


def silence_stdout() -> None:
    """After EPIPE, stop Python from complaining again at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def printable(text: str) -> str:
    """An untrusted string (a file name, git's path, a label) made safe to print on a terminal.

    Control characters (ESC, CR, ...), format characters (bidi overrides) and
    line or paragraph separators become ``\\xNN`` / ``\\uNNNN`` escapes, so
    a crafted name cannot move the cursor, erase a line or reorder text.
    """
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out)


def error_line(message: str, hint: str | None = None) -> None:
    """``secretstore: error: ...`` (and a ``secretstore: hint: ...`` line) on stderr."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
    if hint:
        sys.stderr.write(f"{PROG}: hint: {hint}\n")
    sys.stderr.flush()


def warning_line(message: str) -> None:
    sys.stderr.write(f"{PROG}: warning: {message}\n")
    sys.stderr.flush()


def notice(message: str) -> None:
    """A one-line note on stderr (stdout stays clean for data)."""
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


def write_stdout(data: bytes) -> None:
    """Write ``data`` to stdout, or fail with a one-line error.

    A full disk or a closed stdout is a ``SecretStoreError``, never an internal
    error or a silent success. BrokenPipeError (the reader went away, as with
    ``| head``) propagates as is.
    """
    from secretstore.errors import SecretStoreError

    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:  # started with fd 1 closed
        raise SecretStoreError("cannot write output: stdout is closed")
    try:
        stream.write(data)
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise SecretStoreError(f"cannot write output: {exc.strerror or exc}") from None
    except ValueError:  # the stream was closed
        raise SecretStoreError("cannot write output: stdout is closed") from None


def run_reporting_errors(action: Callable[[], int | None]) -> int:
    """Run a fast path's ``action`` and map what it raises as ``cli.run`` does.

    A ``SecretStoreError`` is its message and exit code; Ctrl-C or EOF at a
    prompt is "interrupted" (130); a closed stdout is exit 1 without a word;
    any other OSError is "cannot write output"; anything else is a bug,
    reported in one line.
    """
    from secretstore.errors import EXIT_FAILURE, SecretStoreError

    try:
        code = action()
    except SecretStoreError as exc:
        error_line(exc.message, exc.hint)
        return exc.exit_code
    except (KeyboardInterrupt, EOFError):
        error_line("interrupted")
        return 130
    except BrokenPipeError:
        silence_stdout()
        return EXIT_FAILURE
    except OSError as exc:  # e.g. printing to a full disk: one line, not "internal error"
        error_line(f"cannot write output: {exc.strerror or exc}")
        return EXIT_FAILURE
    except Exception as exc:  # a bug: one line, no locals, no values
        return report_internal_error(exc)
    return 0 if code is None else code


def report_internal_error(exc: BaseException) -> int:
    """A bug: one line, without locals or values; the traceback only with SECRETSTORE_DEBUG=1."""
    if os.environ.get("SECRETSTORE_DEBUG"):
        raise exc
    error_line(
        f"internal error: {type(exc).__name__} (set SECRETSTORE_DEBUG=1 for a traceback; "
        "please report it)"
    )
    return 1


def disable_core_dumps() -> None:
    """A core dump of this process could hold decrypted secrets."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An ASCII table in the style Gradient's CLI prints (``list``, ``exec --dry-run``)."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    rule = "+" + "+".join("-" * (width + 2) for width in widths) + "+"

    def line(cells: Sequence[str]) -> str:
        return "|" + "|".join(f" {cell:<{w}} " for cell, w in zip(cells, widths, strict=True)) + "|"

    return "\n".join([rule, line(header), rule, *(line(row) for row in rows), rule])
