"""Run the program as a child and copy its output through a masker.

The supervising parent: it spawns the program on a pseudo-terminal or on
pipes, forwards signals to it, copies its output (masked) and stdin (on a
pty), and ends as the program did: same exit status, or death by the same
signal. Modules beyond ``os`` and ``sys`` are imported where they are used.
"""

import os

from secretstore.runner.execute import (
    SHELL,
    exec_error,
    find_program,
    flush_std_streams,
    is_script_without_interpreter,
    printable,
    usage_error,
)
from secretstore.runner.limits import check_environment_limits
from secretstore.runner.mask import Masker

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from types import FrameType
    from typing import Any

#: After the child has exited, a grandchild may still hold its stdout/stderr
#: open (a daemon started with ``cmd &``). We drain what is there and stop at
#: EOF, or at the latest this long after the exit, so that such a grandchild,
#: even one that keeps logging, cannot make us hang. (Whatever it writes later
#: is lost.)
DRAIN_GRACE_SECONDS = 0.5

_READ_SIZE = 65536


def supervise(
    argv: "Sequence[str]",
    env: "Mapping[str, str]",
    mask_values: "Iterable[str]",
    *,
    use_pty: bool | None = None,
    credentials: "Iterable[str]" = (),
) -> int:
    """Run ``argv`` as a child with ``env``, masking ``mask_values`` in its output.

    The program is looked up in this process's own PATH, never in ``env``'s
    (see :func:`~secretstore.runner.execute.find_program`).

    Returns the child's exit status. If the child died of signal N, this
    process kills itself with N (default disposition restored first), so that
    its parent sees the same death; if that returns (N ignored or blocked),
    returns 128 + N.

    ``use_pty=None`` uses a pseudo-terminal when our stdout is a terminal, so
    that the child still sees a tty (colours, progress bars, line buffering).
    On a pty the child's stdout and stderr are merged onto it; its stdin is the
    pty too when our stdin is a terminal (which is then put in raw mode and
    copied to it; restored on the way out), otherwise our stdin unchanged.
    Without a pty the child inherits our stdin, and its stdout and stderr are
    pipes copied, each through its own masker, to ours.

    ``credentials`` names variables the program must not be able to read from
    this process (``/proc/<pid>/environ`` shows the environment a process was
    started with, whatever ``os.environ`` says now): when one of them is set,
    this process is replaced by a fresh interpreter without them that
    supervises the program (``secretstore.runner.handover``), and this call
    never returns.

    Raises, before starting anything, :class:`CommandNotFoundError` (127),
    :class:`CommandNotExecutableError` (126) or :class:`LimitError`.
    """
    args = list(argv)
    if not args:
        raise usage_error("no command given")
    check_environment_limits(env, args)
    path = find_program(args[0])
    credentials = tuple(credentials)
    if any(name in os.environ for name in credentials):
        from secretstore.runner.handover import hand_over

        hand_over(path, args, env, mask_values, use_pty, credentials)
    return supervise_found(path, args, env, mask_values, use_pty=use_pty)


def supervise_found(
    path: str,
    argv: "list[str]",
    env: "Mapping[str, str]",
    mask_values: "Iterable[str]",
    *,
    use_pty: bool | None,
) -> int:
    """:func:`supervise` in this process, for the program at ``path`` (already found)."""
    masker = Masker(mask_values)
    auto = use_pty is None
    if use_pty is None:
        use_pty = os.isatty(1)
    flush_std_streams()
    status = _Supervisor(path, argv, dict(env), masker, use_pty=use_pty, auto_pty=auto).run()
    if status < 0:
        return _die_like_child(-status)
    return status


def _die_like_child(signum: int) -> int:
    import signal

    flush_std_streams()
    try:
        signal.signal(signum, signal.SIG_DFL)
    except (OSError, ValueError):  # SIGKILL cannot be caught anyway; not main thread
        pass
    os.kill(os.getpid(), signum)
    return 128 + signum


def _in_foreground(fd: int) -> bool:
    """False if ``fd`` is our controlling terminal and another process group
    (the shell, when we run with ``&``) owns it."""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:  # not our controlling terminal: no job control applies
        return True


def _write_all(fd: int, data: bytes) -> None:
    """Write everything (raises OSError, e.g. BrokenPipeError)."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:  # our stdout was left non-blocking by someone
            import select

            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            poller.poll()
            continue
        view = view[written:]


class _Stream:
    """One output of the child: where it goes and through which masker."""

    __slots__ = ("alive", "dest", "masker")

    def __init__(self, masker: Masker, dest: int) -> None:
        self.masker = masker
        self.dest = dest
        self.alive = True

    def emit(self, data: bytes) -> None:
        if not data or not self.alive:
            return
        try:
            _write_all(self.dest, data)
        except OSError:
            # EPIPE (``| head``), EBADF, EIO...: stop writing this stream, no
            # traceback; the reader then closes the child's pipe (see read_stream).
            self.alive = False


class _Supervisor:
    """State of one supervised run (the signal handlers reach it too)."""

    # SIGUSR1/SIGUSR2 too: their default action kills secretstore, which left the program
    # running as an orphan with nobody masking its output (a reload signal sent to the
    # pid a process manager knows must reach the program, as with op run).
    _FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")

    def __init__(
        self,
        path: str,
        argv: "list[str]",
        env: "dict[str, str]",
        masker: Masker,
        *,
        use_pty: bool,
        auto_pty: bool,
    ) -> None:
        self.path = path
        self.argv = argv
        self.env = env
        self.masker = masker
        self.use_pty = use_pty
        self.auto_pty = auto_pty
        self.pid: int | None = None
        self.pidfd: int | None = None
        self.exited = False
        self.interrupted = False
        self.status = 0
        self.pending_signals: list[int] = []
        self.saved_handlers: list[tuple[int, Any]] = []
        self.fds: list[int] = []  # everything we opened and must close
        self.streams: dict[int, _Stream] = {}
        self.master: int | None = None
        self.stdin_tty = False
        self.copy_stdin = False
        self.winsize_fd: int | None = None
        self.saved_tty: list[Any] | None = None
        self.input = bytearray()  # our stdin, on its way to the pty

    # -- lifecycle ---------------------------------------------------------

    def run(self) -> int:
        try:
            self.install_handlers()
            if self.use_pty:
                self.start_pty()
            else:
                self.start_pipes()
            for signum in self.pending_signals:  # arrived before the spawn
                self.forward(signum)
            self.pending_signals.clear()
            self.pump()
            return self.status
        finally:
            self.restore_tty()
            self.restore_handlers()
            for fd in self.fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            if self.pid is not None and not self.exited:  # only after an error
                try:
                    os.waitpid(self.pid, os.WNOHANG)
                except OSError:
                    pass

    def own(self, fd: int) -> int:
        """Record ``fd`` for closing; keep it off 0-2 (which may be closed in
        this process) so the child's dup2 onto 0-2 never is a no-op."""
        if fd < 3:
            import fcntl

            high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
            os.close(fd)
            fd = high
        self.fds.append(fd)
        return fd

    def close(self, fd: int) -> None:
        if fd in self.fds:
            self.fds.remove(fd)
        try:
            os.close(fd)
        except OSError:
            pass

    # -- signals -----------------------------------------------------------

    def install_handlers(self) -> None:
        # Installed before the spawn so that no signal is lost in between;
        # what arrives before the child exists is forwarded right after.
        import signal

        wanted = [getattr(signal, name) for name in self._FORWARDED if hasattr(signal, name)]
        if self.use_pty and hasattr(signal, "SIGWINCH"):
            wanted.append(signal.SIGWINCH)
        for signum in wanted:
            try:
                if signal.getsignal(signum) == signal.SIG_IGN:
                    # Ignored by whoever started us (nohup, background job):
                    # we will not receive it, and leaving it ignored lets the
                    # child inherit that, as it would through exec.
                    continue
                previous = signal.signal(signum, self.on_signal)
            except (OSError, ValueError):
                # Not in the main thread: run without forwarding.
                continue
            self.saved_handlers.append((signum, previous))
        try:
            if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
                # Inherited "ignore SIGCHLD" would reap the child for us and
                # lose its exit status.
                self.saved_handlers.append((signal.SIGCHLD, signal.signal(signal.SIGCHLD, signal.SIG_DFL)))
        except (OSError, ValueError):
            pass

    def restore_handlers(self) -> None:
        import signal

        for signum, previous in reversed(self.saved_handlers):
            try:
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            except (OSError, ValueError, TypeError):
                pass
        self.saved_handlers.clear()

    def on_signal(self, signum: int, frame: "FrameType | None") -> None:
        import signal

        if signum == getattr(signal, "SIGWINCH", None):
            self.sync_winsize()
        elif self.pid is None:
            self.pending_signals.append(signum)
        else:
            self.forward(signum)

    def forward(self, signum: int) -> None:
        """Pass ``signum`` on to the child, unless it got it already.

        SIGTERM and SIGHUP normally come from ``kill`` aimed at us alone, so
        they are always forwarded. SIGINT and SIGQUIT normally come from the
        terminal (Ctrl-C, Ctrl-\\), which signals its whole foreground process
        group: without a pty the child shares our process group and has
        already received them, so they are forwarded only if the child is in
        another process group (always the case with a pty, where the child
        leads its own session; and if it moved itself). The price: a SIGINT
        sent with ``kill`` to our pid alone is not passed on in pipe mode;
        ``kill -INT -PGID`` reaches both.
        """
        import signal

        pid = self.pid
        if pid is None:
            return
        if self.exited:
            # We are only draining what a grandchild still writes: stop now.
            self.interrupted = True
            return
        if signum in (signal.SIGINT, signal.SIGQUIT) and not self.child_in_other_group():
            return
        try:
            if self.pidfd is not None and hasattr(signal, "pidfd_send_signal"):
                signal.pidfd_send_signal(self.pidfd, signum)
            else:
                os.kill(pid, signum)
        except OSError:  # already gone
            pass

    def child_in_other_group(self) -> bool:
        if self.pid is None:
            return False
        try:
            return os.getpgid(self.pid) != os.getpgrp()
        except OSError:
            return self.use_pty

    # -- starting ----------------------------------------------------------

    def spawn(self, file_actions: "list[tuple[Any, ...]]", *, setsid: bool) -> None:
        import signal

        # posix_spawn resets caught signals in the child; reset also the two
        # the interpreter ignores (SIGPIPE, SIGXFSZ), as subprocess does.
        defaults = [getattr(signal, n) for n in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, n)]
        path, argv = self.path, self.argv
        try:
            try:
                self.pid = os.posix_spawn(
                    path, argv, self.env, file_actions=file_actions, setsid=setsid, setsigdef=defaults
                )
            except OSError as exc:
                if not is_script_without_interpreter(exc):
                    raise
                path, argv = SHELL, [SHELL, self.path, *self.argv[1:]]
                self.pid = os.posix_spawn(
                    path, argv, self.env, file_actions=file_actions, setsid=setsid, setsigdef=defaults
                )
        except OSError as exc:
            raise exec_error(self.argv[0], exc) from exc
        except ValueError as exc:  # NUL byte, '=' in a variable name
            raise usage_error(f"cannot execute {printable(self.argv[0])}: {exc}") from exc
        try:
            self.pidfd = self.own(os.pidfd_open(self.pid))
        except (AttributeError, OSError):
            self.pidfd = None  # poll for the exit instead

    def start_pipes(self) -> None:
        out_r, out_w = (self.own(fd) for fd in os.pipe())
        err_r, err_w = (self.own(fd) for fd in os.pipe())
        self.spawn(
            [(os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)],
            setsid=False,
        )
        self.close(out_w)
        self.close(err_w)
        self.streams[out_r] = _Stream(self.masker, 1)
        self.streams[err_r] = _Stream(self.masker.copy(), 2)

    def start_pty(self) -> None:
        import termios

        try:
            master, slave = os.openpty()
        except OSError as exc:
            if self.auto_pty:  # no pty available: plain pipes will do
                self.use_pty = False
                self.start_pipes()
                return
            from secretstore.errors import SecretStoreError

            raise SecretStoreError(f"cannot allocate a pseudo-terminal: {exc.strerror}") from exc
        master = self.own(master)
        slave = self.own(slave)
        self.master = master
        self.stdin_tty = os.isatty(0)
        # Copy our terminal's input (in raw mode) unless we are a background
        # job, where touching the terminal would stop us with SIGTTOU/SIGTTIN.
        self.copy_stdin = self.stdin_tty and _in_foreground(0)
        self.winsize_fd = next((fd for fd in (0, 1, 2) if os.isatty(fd)), None)
        if self.stdin_tty:
            try:  # the child's terminal starts with our terminal's settings
                termios.tcsetattr(slave, termios.TCSANOW, termios.tcgetattr(0))
            except termios.error:
                pass
        self.sync_winsize()
        slave_name = os.ttyname(slave)
        # setsid makes the child a session leader; opening the slave (without
        # O_NOCTTY) then makes it the child's controlling terminal, so job
        # control and Ctrl-C (sent as a byte while we are raw) work inside.
        # Our stderr redirected away from the terminal (2>err.log) stays separate:
        # the child's stderr then goes through a pipe of its own, masked too.
        err_r = err_w = None
        if not os.isatty(2):
            err_r, err_w = (self.own(fd) for fd in os.pipe())
        if self.stdin_tty:
            actions: list[tuple[Any, ...]] = [
                (os.POSIX_SPAWN_OPEN, 0, slave_name, os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 0, 1),
                (os.POSIX_SPAWN_DUP2, 0 if err_w is None else err_w, 2),
            ]
        else:  # keep our stdin (a file, a pipe): copying it through a tty would mangle it
            actions = [
                (os.POSIX_SPAWN_OPEN, 1, slave_name, os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 1 if err_w is None else err_w, 2),
            ]
        self.spawn(actions, setsid=True)
        self.close(slave)  # so that reading the master ends (EIO) when the child is gone
        os.set_blocking(master, False)
        self.streams[master] = _Stream(self.masker, 1)
        if err_r is not None and err_w is not None:
            self.close(err_w)
            self.streams[err_r] = _Stream(self.masker.copy(), 2)
        if self.copy_stdin:
            import tty

            try:
                self.saved_tty = termios.tcgetattr(0)
                tty.setraw(0, termios.TCSADRAIN)
            except termios.error:
                self.saved_tty = None

    def restore_tty(self) -> None:
        if self.saved_tty is None:
            return
        import termios

        try:
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved_tty)
        except termios.error:
            pass
        self.saved_tty = None

    def sync_winsize(self) -> None:
        if self.master is None or self.winsize_fd is None:
            return
        import fcntl
        import termios

        try:
            size = fcntl.ioctl(self.winsize_fd, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
        except OSError:
            pass

    # -- the loop ----------------------------------------------------------

    def reap(self, *, block: bool) -> None:
        assert self.pid is not None
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped by someone else (SIGCHLD ignored?)
            pid, status = self.pid, 0
        if pid == 0:
            return
        self.exited = True
        self.status = os.waitstatus_to_exitcode(status)

    def pump(self) -> None:
        import select
        import time

        readable = select.POLLIN | select.POLLHUP | select.POLLERR
        poller = select.poll()
        for fd in self.streams:
            poller.register(fd, select.POLLIN)
        if self.pidfd is not None:
            poller.register(self.pidfd, select.POLLIN)
        master = self.master
        copying_input = self.use_pty and self.copy_stdin and master is not None
        if copying_input:
            poller.register(0, select.POLLIN)

        def stop_input() -> None:
            nonlocal copying_input
            if copying_input:
                copying_input = False
                self.input.clear()
                try:
                    poller.unregister(0)
                except KeyError:
                    pass
                if master is not None and master in self.streams:
                    poller.modify(master, select.POLLIN)

        def send_input() -> None:
            assert master is not None
            try:
                written = os.write(master, self.input)
            except BlockingIOError:
                written = 0
            except OSError:
                stop_input()
                return
            del self.input[:written]
            if self.input:  # pty full: wait until it can take more, read no more stdin
                poller.modify(master, select.POLLIN | select.POLLOUT)
                try:
                    poller.unregister(0)
                except KeyError:
                    pass
            else:
                poller.modify(master, select.POLLIN)
                poller.register(0, select.POLLIN)

        drain_until: float | None = None  # set when the child's exit is first seen
        while True:
            if not self.streams:
                if not self.exited:
                    self.reap(block=True)
                return
            if self.exited:
                now = time.monotonic()
                if drain_until is None:
                    drain_until = now + DRAIN_GRACE_SECONDS
                elif now >= drain_until:
                    break  # a grandchild keeps the pipe open (and maybe busy): stop draining
                timeout: int | None = max(0, int((drain_until - now) * 1000))
            elif self.pidfd is None:
                timeout = 50
            else:
                timeout = None
            events = poller.poll(timeout)
            if self.exited and (self.interrupted or not events):
                break  # after the exit, idle (a grandchild holds the pipe) or signalled
            for fd, event in events:
                if fd == self.pidfd:
                    poller.unregister(fd)
                    self.reap(block=True)
                    stop_input()
                elif fd == 0 and copying_input:
                    try:
                        data = os.read(0, _READ_SIZE)
                    except OSError:
                        data = b""
                    if data:
                        self.input += data
                        send_input()
                    else:
                        stop_input()
                elif fd in self.streams:
                    if event & select.POLLOUT and copying_input and self.input:
                        send_input()
                    if event & readable:
                        self.read_stream(fd, poller)
            if self.pidfd is None and not self.exited:
                self.reap(block=False)
                if self.exited:
                    stop_input()
            if copying_input and master not in self.streams:
                stop_input()
        # Stopped while streams were still open: emit what the maskers hold.
        for fd in list(self.streams):
            self.end_stream(fd, poller)

    def read_stream(self, fd: int, poller: "Any") -> None:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: the pty's slave side is closed everywhere
            data = b""
        if not data:
            self.end_stream(fd, poller)
            return
        stream = self.streams[fd]
        stream.emit(stream.masker.feed(data))
        if not stream.alive:
            # Our reader went away (``| head``): close our end so the child's next
            # write fails with SIGPIPE/EPIPE, as it would have without masking.
            self.end_stream(fd, poller)

    def end_stream(self, fd: int, poller: "Any") -> None:
        stream = self.streams.pop(fd)
        stream.emit(stream.masker.flush())
        try:
            poller.unregister(fd)
        except KeyError:
            pass
        self.close(fd)
