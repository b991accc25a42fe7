"""Find the program and replace this process with it.

On the ``exec`` fast path, whose import time is measured: at import this
loads only ``os`` and ``sys`` (both already loaded by the interpreter).
Everything else (``errno``, the error classes, the limits...) is imported
inside the function that needs it, so that :func:`exec_program` costs
nothing more. For the same reason annotations that name
``collections.abc``/``typing`` types are written as strings.

Messages of the errors raised here name commands, variables and sizes, never
a secret value.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import ModuleType
    from typing import Any, NoReturn

    from secretstore.errors import SecretStoreError


def exec_program(argv: "Sequence[str]", env: "Mapping[str, str]") -> "NoReturn":
    """Replace this process with ``argv`` and ``env``.

    The program is looked up with :func:`find_program` in this process's own
    PATH, never in ``env``'s: a PATH that came from the store must not decide
    which program runs (it is passed on, if the caller put it in ``env``).

    Never returns. If the program cannot be started, raises
    :class:`CommandNotFoundError` (exit 127) or :class:`CommandNotExecutableError`
    (exit 126), as shells do, :class:`LimitError` for E2BIG, and
    :class:`SecretStoreError` for anything else.

    SIGPIPE and SIGXFSZ, which the Python interpreter ignores and which an
    ignored disposition would pass on through exec, are reset to their default
    first (as ``subprocess`` does), so that e.g. ``... | head`` stops the
    program the usual way.
    """
    argv = list(argv)
    if not argv:
        raise usage_error("no command given")
    path = find_program(argv[0])
    flush_std_streams()
    restore = _default_exec_signals()
    try:
        os.execve(path, argv, env)
    except OSError as exc:
        if is_script_without_interpreter(exc):
            try:
                os.execve(SHELL, [SHELL, path, *argv[1:]], env)
            except OSError:
                pass
        restore()
        import errno

        if exc.errno == errno.E2BIG:  # say which variable or argument is too long (no value)
            from secretstore.runner.limits import check_environment_limits

            check_environment_limits(env, argv)
        raise exec_error(argv[0], exc) from exc
    except ValueError as exc:  # NUL byte in a string, '=' in a name; says which, no value
        restore()
        raise usage_error(f"cannot execute {printable(argv[0])}: {exc}") from exc
    raise AssertionError("unreachable: execve returned")  # pragma: no cover


def find_program(command: str, search_path: "str | None" = None) -> str:
    """The file to run for ``command``: the one PATH lookup of plain and supervised runs.

    A ``command`` with a ``/`` is that file. Otherwise each directory of
    ``search_path`` (default: this process's own PATH, as inherited, or
    ``os.defpath`` when it has none) is tried in turn, as ``execvp`` does:
    the first regular file there that we may execute wins; one that exists
    but cannot be executed (mode, a directory, a ``noexec`` mount) is passed
    over, and reported only if nothing later is found.

    Only ``stat`` and ``access`` are called per directory: trying each with
    ``execve`` would convert the whole environment again every time (about
    2 ms a try with 10,000 secrets, and ``true`` is often ten entries deep).

    Raises :class:`CommandNotExecutableError` (126) or
    :class:`CommandNotFoundError` (127) with one line naming the command.
    """
    import stat  # already loaded by os; errno is imported only to report a refusal

    if not command:
        from secretstore.errors import CommandNotFoundError

        raise CommandNotFoundError(f"command not found: {command!r}")
    if "/" in command:
        candidates = [command]
    else:
        if search_path is None:  # os.get_exec_path(), without the warnings import it costs
            search_path = os.environ.get("PATH", os.defpath)
        directories = search_path.split(os.pathsep)
        candidates = [os.path.join(directory, command) for directory in directories]
    refused: str | None = None  # why the first candidate that exists was passed over
    for candidate in candidates:
        try:
            mode = os.stat(candidate).st_mode
        except PermissionError:
            refused = refused or "EACCES"
            continue
        except (OSError, ValueError):  # missing, not a directory, NUL in the name...
            continue
        if stat.S_ISDIR(mode):
            refused = refused or "EISDIR"
        elif not stat.S_ISREG(mode) or not os.access(candidate, os.X_OK):
            refused = refused or "EACCES"
        else:
            return candidate
    name = printable(command)
    if refused is not None:
        import errno

        from secretstore.errors import CommandNotExecutableError

        reason = os.strerror(getattr(errno, refused))
        raise CommandNotExecutableError(f"cannot execute {name}: {reason}")
    from secretstore.errors import CommandNotFoundError

    raise CommandNotFoundError(f"command not found: {name}")


SHELL = "/bin/sh"


def is_script_without_interpreter(exc: OSError) -> bool:
    """Whether exec refused the program with ENOEXEC (a script without ``#!``).

    Shells and glibc's ``execvp`` run such a file with ``/bin/sh``; Python's
    ``os.execve`` and ``posix_spawn`` do not, so we do it ourselves.
    """
    import errno

    return exc.errno == errno.ENOEXEC


def _default_exec_signals() -> "Callable[[], None]":
    """Set SIGPIPE and SIGXFSZ to SIG_DFL; return a callable that undoes it."""
    sig = _signal_module()
    saved: list[tuple[int, Any]] = []
    for name in ("SIGPIPE", "SIGXFSZ"):
        number = getattr(sig, name, None)
        if number is None:
            continue
        try:
            saved.append((number, sig.signal(number, sig.SIG_DFL)))
        except (OSError, ValueError):  # not the main thread
            pass

    def restore() -> None:
        for number, handler in saved:
            try:
                sig.signal(number, handler if handler is not None else sig.SIG_DFL)
            except (OSError, ValueError, TypeError):
                pass

    return restore


def _signal_module() -> "ModuleType":
    # The interpreter has loaded the built-in ``_signal`` at startup; the
    # ``signal`` wrapper would pull in ``enum``, which the fast path avoids.
    loaded = sys.modules.get("_signal")
    if loaded is not None:
        return loaded
    import signal  # pragma: no cover - not CPython

    return signal  # pragma: no cover


def exec_error(command: str, exc: OSError) -> "SecretStoreError":
    """Map a failure to start ``command`` to the error the CLI reports."""
    import errno

    from secretstore.errors import (
        CommandNotExecutableError,
        CommandNotFoundError,
        LimitError,
        SecretStoreError,
    )

    name = printable(command)
    code = exc.errno
    reason = exc.strerror or (os.strerror(code) if code else type(exc).__name__)
    if isinstance(exc, FileNotFoundError) or code in (errno.ENOENT, errno.ENOTDIR):
        return CommandNotFoundError(f"command not found: {name}")
    if isinstance(exc, PermissionError) or code in (errno.EACCES, errno.ENOEXEC, errno.EISDIR):
        return CommandNotExecutableError(f"cannot execute {name}: {reason}")
    if code == errno.E2BIG:
        return LimitError(
            f"cannot execute {name}: the command line and environment are too long (E2BIG)"
        )
    return SecretStoreError(f"cannot execute {name}: {reason}")


def usage_error(message: str) -> "SecretStoreError":
    from secretstore.errors import UsageError

    return UsageError(message)


def printable(text: str) -> str:
    """``text`` itself, or its repr if it would not fit on one line."""
    return text if text.isprintable() else repr(text)


def flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # closed, or EPIPE: nothing more to do
            pass


