"""What the user sees: one door for every line secretstore prints about itself.

One place for the ``secretstore: error:`` / ``warning:`` / notice lines, the
internal-error report and the ASCII table. Every one of them passes its text
through ``escape``, so an untrusted string (a file name from a shared store,
git's path argument, a label or id read from disk) cannot send a terminal
escape sequence, move the cursor back over a warning (``\r``), or reorder
what is shown (bidi controls). Imports only ``os`` and ``sys`` (it is on every
command's start-up path).
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


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """``text`` with every character a terminal would act on made visible.

    Control characters (C0, DEL, C1, ESC among them), format characters
    (bidi overrides and isolates, zero-width ones), line and paragraph
    separators and every other non-printable character become ``\\xNN``,
    ``\\uNNNN`` or ``\\n``/``\\r``/``\\t``. Printable text, spaces and
    non-ASCII letters are kept as they are.
    """
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif char in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[char])
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def _line(text: str) -> str:
    return f"{PROG}: {escape(text)}\n"


def write_stderr(text: str) -> None:
    """Write ``text`` to stderr, best effort: what secretstore says about itself never changes
    what a command does or the exit code it documents.

    Started with fd 2 closed (``2>&-``), there is no ``sys.stderr`` and nothing is written.
    A stderr that fails (``2>/dev/full``, a closed pipe) is pointed at /dev/null, so the
    line left in its buffer cannot fail again when Python flushes it at exit.
    """
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        _silence_stderr(stream)


def _silence_stderr(stream: object) -> None:
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)
        stream.flush()  # type: ignore[attr-defined]  # the pending line, into /dev/null
    except (AttributeError, OSError, ValueError):
        pass


def error_line(message: str, hint: str | None = None) -> None:
    """``secretstore: error: ...`` (and a ``secretstore: hint: ...`` line) on stderr."""
    write_stderr(_line(f"error: {message}") + (_line(f"hint: {hint}") if hint else ""))


def warning_line(message: str) -> None:
    write_stderr(_line(f"warning: {message}"))


def notice(message: str) -> None:
    """A one-line note on stderr (stdout stays clean for data)."""
    write_stderr(_line(message))


def print_line(text: str = "") -> None:
    """One line of data on stdout, escaped (data that is not a secret value: names, ids, tables)."""
    write_stdout((escape(text) + "\n").encode("utf-8"))


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """``text_table`` on stdout."""
    write_stdout((text_table(header, rows) + "\n").encode("utf-8"))


def print_lines(lines: Sequence[str]) -> None:
    """Several lines of data on stdout, each escaped, in one write."""
    write_stdout("".join(escape(line) + "\n" for line in lines).encode("utf-8"))


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
    """Run ``action`` (a command) and map what it raises to one line and an exit code.

    A ``SecretStoreError`` is its message and exit code; Ctrl-C or EOF at a
    prompt is "interrupted" (130); a closed stdout is exit 1 without a word;
    any other OSError is "cannot write output"; anything else is a bug,
    reported in one line.
    """
    from secretstore.errors import EXIT_FAILURE, EXIT_INTERRUPTED, SecretStoreError

    try:
        code = action()
    except SecretStoreError as exc:
        error_line(exc.message, exc.hint)
        return exc.exit_code
    except (KeyboardInterrupt, EOFError):
        error_line("interrupted")
        return EXIT_INTERRUPTED
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
    from secretstore import env

    if os.environ.get(env.DEBUG):
        raise exc
    error_line(
        f"internal error: {type(exc).__name__} (set SECRETSTORE_DEBUG=1 for a traceback; "
        "please report it)"
    )
    from secretstore.errors import EXIT_FAILURE

    return EXIT_FAILURE


def disable_core_dumps() -> None:
    """A core dump of this process could hold decrypted secrets."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An ASCII table in the style Gradient's CLI prints (``list``, ``exec --dry-run``).

    Every cell is escaped first, so widths count what the terminal shows.
    """
    header = [escape(cell) for cell in header]
    rows = [[cell if cell.isprintable() else escape(cell) for cell in row] for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    rule = "+" + "+".join("-" * (width + 2) for width in widths) + "+"
    line = ("| " + " | ".join(f"{{:<{width}}}" for width in widths) + " |").format  # one format per table
    return "\n".join([rule, line(*header), rule, *(line(*row) for row in rows), rule])
