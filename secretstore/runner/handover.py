"""Carry a supervised run over into a fresh interpreter whose environment holds no credential.

The supervising parent of ``exec --mask`` lives as long as the program. The
program can read its parent's ``/proc/<pid>/environ``, and the kernel shows
there the environment the process was *started* with: removing
``SECRETSTORE_KEY`` from ``os.environ`` does not change it. So when a
credential variable is set, secretstore (having read the store) replaces
itself, with ``execve`` on the same pid, by a new Python interpreter started
with its own environment minus the credentials, and that interpreter
supervises the program. Same pid: the shell still waits on it, signals sent
to it still reach the supervisor, and the exit status or death by signal is
still the program's. The new interpreter never had the credentials in its
environment, nor the unlocked identity in its memory; it does hold the
credentials' values as masking patterns (exec masks them in the output, in
case the program finds them elsewhere), which only a debugger attached to it
could read (Yama's default ptrace scope forbids a child to attach to its parent).

What it needs (the program's path and arguments, its environment, the values
to mask, where to import secretstore from) goes through an inherited pipe:
never argv, which every user sees in ``ps``, nor the environment. A payload
that fits in the pipe is written before the ``execve``; a larger one (many
or long secrets) is written by a forked child, which exits once it has
written everything and which the new interpreter reaps before it starts the
program, so that no process holding the credentials is left for the
program to read. Without a credential in the environment nothing of this
happens: the run is supervised in place, as fast as before.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import NoReturn

# Run by the new interpreter (one line, so that ps shows it whole): argv[1] is
# the directory secretstore is imported from, argv[2] the payload's file
# descriptor, argv[3] the writer's pid (0 for none); what follows "--" only
# shows in ps what is running.
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from secretstore.runner.handover import resume; resume(int(sys.argv[2]), int(sys.argv[3]))"
)
_READ_SIZE = 1 << 20


def hand_over(
    path: str,
    argv: "Sequence[str]",
    env: "Mapping[str, str]",
    mask_values: "Iterable[str]",
    use_pty: "bool | None",
    credentials: "Iterable[str]",
) -> "NoReturn":
    """Replace this process by a fresh interpreter without ``credentials`` that
    supervises ``path`` (already found) with ``argv``, ``env`` and ``mask_values``.

    Never returns; raises :class:`SecretStoreError` if the interpreter cannot be started.
    """
    import marshal

    from secretstore.runner.execute import flush_std_streams

    executable = sys.executable
    if not executable:
        raise _error("cannot start the masking supervisor: Python's own executable is unknown")
    payload = marshal.dumps(
        (list(sys.path), path, list(argv), dict(env), list(mask_values), use_pty)
    )
    hidden = {os.fsencode(name) for name in credentials}
    own_env = {name: value for name, value in os.environb.items() if name not in hidden}
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    flush_std_streams()
    read_end, write_end = os.pipe()  # neither is inherited
    read_end = _above_stdio(read_end)
    writer = 0
    try:
        rest = _write_what_fits(write_end, payload)
        if rest:
            writer = _fork_writer(write_end, read_end, rest)
        os.set_inheritable(read_end, True)
        # -S: no site module; the supervisor gets sys.path whole from the payload.
        args = [
            executable, *_interpreter_flags(), "-S", "-c", _BOOTSTRAP,
            package_root, str(read_end), str(writer), "--", *sys.argv,
        ]
        os.close(write_end)
        write_end = -1
        os.execve(executable, args, own_env)
    except OSError as exc:
        if writer:
            _stop(writer)
        raise _error(f"cannot start the masking supervisor {executable}: {exc.strerror or exc}") from None
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
    raise AssertionError("unreachable: execve returned")  # pragma: no cover


def resume(fd: int, writer: int) -> "NoReturn":
    """In the new interpreter: read what to run from ``fd``, reap the writer, supervise, exit."""
    try:
        _resume(fd, writer)
    except KeyboardInterrupt:  # before the program started: as secretstore itself would say
        os.write(2, b"secretstore: error: interrupted\n")
        os._exit(130)


def _resume(fd: int, writer: int) -> "NoReturn":
    import marshal

    chunks = []
    while chunk := os.read(fd, _READ_SIZE):
        chunks.append(chunk)
    os.close(fd)
    if writer:
        try:
            os.waitpid(writer, 0)
        except ChildProcessError:
            pass
    from secretstore.console import error_line, run_reporting_errors

    try:
        # Written by the process this one replaced, through a pipe only it had: not untrusted input.
        sys_path, path, argv, env, mask_values, use_pty = marshal.loads(b"".join(chunks))  # noqa: S302
    except (EOFError, ValueError, TypeError):
        error_line("the masking supervisor did not receive what to run; nothing was started")
        os._exit(1)
    sys.path[:] = sys_path
    from secretstore.runner.supervisor import supervise_found

    code = run_reporting_errors(lambda: supervise_found(path, argv, env, mask_values, use_pty=use_pty))
    from secretstore.runner.execute import flush_std_streams

    flush_std_streams()
    os._exit(code)


def _write_what_fits(fd: int, data: bytes) -> bytes:
    """Write as much of ``data`` as the pipe takes now; return the rest."""
    os.set_blocking(fd, False)
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except BlockingIOError:
        pass
    os.set_blocking(fd, True)
    return bytes(view)


def _fork_writer(write_end: int, read_end: int, rest: bytes) -> int:
    """A child that writes ``rest`` and exits (the reader reaps it before the program starts)."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # pragma: no cover - runs in the forked child
        os.close(read_end)
        view = memoryview(rest)
        while view:
            view = view[os.write(write_end, view) :]
        code = 0
    finally:
        os._exit(code)  # pragma: no cover


def _stop(pid: int) -> None:
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass


def _above_stdio(fd: int) -> int:
    """``fd`` moved to 3 or above: 0-2 may be closed here, and must stay so."""
    if fd >= 3:
        return fd
    import fcntl

    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return high


def _interpreter_flags() -> "list[str]":
    """The options this interpreter was started with that change how it imports and runs."""
    flags = sys.flags
    found = []
    if flags.isolated:
        found.append("-I")
    else:
        if flags.ignore_environment:
            found.append("-E")
        if flags.no_user_site:
            found.append("-s")
        if flags.safe_path:
            found.append("-P")
    if flags.dont_write_bytecode:
        found.append("-B")
    for option in sys.warnoptions:
        found.append(f"-W{option}")
    for name, value in sys._xoptions.items():
        found.append(f"-X{name}" if value is True else f"-X{name}={value}")
    return found


def _error(message: str) -> Exception:
    from secretstore.errors import SecretStoreError

    return SecretStoreError(message)
