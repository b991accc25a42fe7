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
    """Replace this process with ``argv`` (looked up in ``env``'s PATH) and ``env``.

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
    flush_std_streams()
    restore = _default_exec_signals()
    try:
        _execvpe(argv[0], argv, env)
    except OSError as exc:
        script = script_without_interpreter(exc, argv[0], env)
        if script is not None:
            try:
                os.execve(SHELL, [SHELL, script, *argv[1:]], env)
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
    raise AssertionError("unreachable: execvpe returned")  # pragma: no cover


def _execvpe(file: str, argv: "list[str]", env: "Mapping[str, str]") -> None:
    """``os.execvpe``, except that a PATH entry where ``file`` does not exist is
    skipped after a ``stat`` instead of being tried with ``execve``.

    Each ``execve`` call converts the whole environment again; with 10,000
    secrets that is about 2 ms a try, and ``true`` is often ten PATH entries
    deep. Errors are the ones ``os.execvpe`` raises: the first error other
    than "not found", else the last "not found".
    """
    if os.path.dirname(file):
        os.execve(file, argv, env)
    saved: OSError | None = None
    last: OSError | None = None
    name = os.fsencode(file)
    for directory in os.get_exec_path(env):
        fullname = os.path.join(os.fsencode(directory), name)
        try:
            os.stat(fullname)
        except (FileNotFoundError, NotADirectoryError) as exc:
            last = exc
            continue
        except OSError:
            pass  # execve reports it as os.execvpe would
        try:
            os.execve(fullname, argv, env)
        except (FileNotFoundError, NotADirectoryError) as exc:
            last = exc
        except OSError as exc:
            last = exc
            saved = saved or exc
    error = saved or last
    if error is None:  # pragma: no cover - get_exec_path never returns []
        import errno

        error = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), file)
    raise error


SHELL = "/bin/sh"


def script_without_interpreter(exc: OSError, command: str, env: "Mapping[str, str]") -> "str | None":
    """The program's path when exec refused it with ENOEXEC (a script without ``#!``).

    Shells and glibc's ``execvp`` run such a file with ``/bin/sh``; Python's
    ``os.execvpe`` and ``posix_spawn`` do not, so we do it ourselves.
    """
    import errno

    if exc.errno != errno.ENOEXEC:
        return None
    if "/" in command:
        return command
    import shutil

    return shutil.which(command, path=env.get("PATH", os.defpath))


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


