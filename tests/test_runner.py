"""secretstore.runner: exec, and supervision with masking, signals and a pty.

Everything that could replace, kill or hang the test process runs in a driver
(tests/helpers/runner_driver.py) in a subprocess with a bounded timeout. The
masker itself is tested in tests/test_mask.py, the limits in tests/test_limits.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from secretstore.errors import (
    CommandNotExecutableError,
    CommandNotFoundError,
)
from secretstore.runner import supervise

PY = sys.executable
DRIVER = Path(__file__).resolve().parent / "helpers" / "runner_driver.py"
SECRET = "s3cr3t-value-1"
SECRET_B = SECRET.encode()
TIMEOUT = 20


@pytest.fixture(params=["in-place", "handover"])
def supervisor_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a supervise test both ways: supervised in the driver itself, and handed
    over to a fresh interpreter because a credential is in the driver's environment."""
    if request.param == "handover":
        monkeypatch.setenv("RUNNER_TEST_CREDENTIAL", "fake-credential-value")
    else:
        monkeypatch.delenv("RUNNER_TEST_CREDENTIAL", raising=False)
    return str(request.param)


def py(code: str) -> list[str]:
    return [PY, "-c", code]


def driver(mode: str, argv: list[str], *, env: dict[str, str] | None = None,
           mask: list[str] | None = None, use_pty: bool | None = None,
           credentials: list[str] | None = None) -> list[str]:
    config: dict[str, object] = {"mode": mode, "argv": argv, "env": env or {}, "mask": mask or [],
                                 "use_pty": use_pty}
    if credentials is not None:
        config["credentials"] = credentials
    return [PY, str(DRIVER), json.dumps(config)]


def run_driver(mode: str, argv: list[str], *, env: dict[str, str] | None = None,
               mask: list[str] | None = None, use_pty: bool | None = None,
               input: bytes = b"", inherited_path: str | None = None,
               credentials: list[str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the driver; ``env`` is added to the program's environment, ``inherited_path``
    is the PATH the driver itself starts with (the one the program is looked up in)."""
    own_env = None if inherited_path is None else dict(os.environ, PATH=inherited_path)
    command = driver(mode, argv, env=env, mask=mask, use_pty=use_pty, credentials=credentials)
    return subprocess.run(command, input=input, env=own_env, capture_output=True,
                          timeout=TIMEOUT, check=False)


# ---------------------------------------------------------------------------
# exec_program (in a driver: it replaces the process)


def test_exec_command_not_found_is_127_with_one_line() -> None:
    result = run_driver("exec", ["no-such-command-for-runner-test"])
    assert result.returncode == 127
    assert result.stderr == b"secretstore: error: command not found: no-such-command-for-runner-test\n"


def test_exec_not_executable_is_126(tmp_path: Path) -> None:
    script = tmp_path / "tool.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = run_driver("exec", [str(script)])
    assert result.returncode == 126
    assert result.stderr.startswith(b"secretstore: error: cannot execute ")
    assert result.stderr.count(b"\n") == 1
    assert run_driver("exec", [str(tmp_path)]).returncode == 126


@pytest.mark.usefixtures("supervisor_mode")
@pytest.mark.parametrize("mode", ["exec", "supervise"])
def test_program_is_found_in_the_inherited_path_never_in_envs(tmp_path: Path, mode: str) -> None:
    """The environment is passed on, PATH included, but the program is looked up in
    the PATH this process inherited: a PATH from the store must not choose it."""
    tool = tmp_path / "runner-test-tool"
    tool.write_text(f"#!{PY}\nimport os, sys\nprint(os.environ['RUNNER_TEST_SECRET'], sys.argv[1:])\n")
    tool.chmod(0o755)
    path = f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}"
    result = run_driver(mode, ["runner-test-tool", "arg"], env={"RUNNER_TEST_SECRET": SECRET},
                        inherited_path=path, use_pty=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{SECRET} ['arg']\n".encode()  # the driver does not mask here
    result = run_driver(mode, ["runner-test-tool", "arg"],
                        env={"RUNNER_TEST_SECRET": SECRET, "PATH": path}, use_pty=False)
    assert result.returncode == 127, result.stderr
    assert result.stderr == b"secretstore: error: command not found: runner-test-tool\n"


@pytest.mark.usefixtures("supervisor_mode")
@pytest.mark.parametrize("mode", ["exec", "supervise"])
def test_path_search_skips_missing_entries_and_keeps_execvp_order(tmp_path: Path, mode: str) -> None:
    """A non-executable match earlier in PATH is passed over for a later executable one
    (as execvp does), a file or a missing directory in PATH is skipped: one lookup
    for exec and supervise."""
    blocked, good, plain_file = tmp_path / "blocked", tmp_path / "good", tmp_path / "a-file"
    blocked.mkdir()
    good.mkdir()
    plain_file.write_text("")
    for directory, mode_bits in ((blocked, 0o644), (good, 0o755)):
        tool = directory / "runner-path-tool"
        tool.write_text(f"#!/bin/sh\necho from {directory.name}\n")
        tool.chmod(mode_bits)
    path = os.pathsep.join([str(tmp_path / "missing"), str(plain_file), str(blocked), str(good)])
    result = run_driver(mode, ["runner-path-tool"], inherited_path=path, use_pty=False)
    assert (result.returncode, result.stdout) == (0, b"from good\n"), result.stderr
    only_blocked = os.pathsep.join([str(tmp_path / "missing"), str(blocked)])
    result = run_driver(mode, ["runner-path-tool"], inherited_path=only_blocked, use_pty=False)
    assert result.returncode == 126  # the saved EACCES wins over the later "not found"


def test_path_search_tries_execve_only_where_the_file_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secretstore.runner import exec_program, execute

    tool = tmp_path / "bin" / "runner-path-tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    tried: list[str] = []

    def fake_execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        tried.append(path)
        raise PermissionError(13, "stop here")

    monkeypatch.setattr(execute.os, "execve", fake_execve)
    dirs = [str(tmp_path / f"missing-{i}") for i in range(8)] + [str(tool.parent)]
    monkeypatch.setenv("PATH", os.pathsep.join(dirs))
    with pytest.raises(CommandNotExecutableError, match="stop here"):
        exec_program(["runner-path-tool"], {"PATH": "/usr/bin"})
    assert tried == [str(tool)]


def _ignored_signals(status: bytes) -> int:
    line = next(x for x in status.splitlines() if x.startswith(b"SigIgn:"))
    return int(line.split()[1], 16)


@pytest.mark.usefixtures("supervisor_mode")
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
@pytest.mark.parametrize("mode", ["exec", "supervise"])
def test_program_gets_default_sigpipe(mode: str) -> None:
    # Python ignores SIGPIPE; the program must not inherit that.
    result = run_driver(mode, ["cat", "/proc/self/status"], use_pty=False)
    assert result.returncode == 0
    assert not _ignored_signals(result.stdout) & (1 << (signal.SIGPIPE - 1))


# ---------------------------------------------------------------------------
# supervise, in process (children that exit on their own)


@pytest.mark.parametrize("code", [0, 7])
def test_supervise_returns_exit_code(code: int, capfd: pytest.CaptureFixture[str]) -> None:
    assert supervise(py(f"import sys; sys.exit({code})"), dict(os.environ), [], use_pty=False) == code


def test_supervise_masks_split_writes(capfd: pytest.CaptureFixture[str]) -> None:
    code = (
        "import sys, time\n"
        "v = sys.argv[1]\n"
        "sys.stdout.write('a ' + v[:6]); sys.stdout.flush(); time.sleep(0.2)\n"
        "sys.stdout.write(v[6:] + ' b\\n'); sys.stdout.flush()\n"
    )
    env = dict(os.environ, RUNNER_TEST_SECRET=SECRET)
    assert supervise([*py(code), SECRET], env, [SECRET], use_pty=False) == 0
    out, err = capfd.readouterr()
    assert out == "a [MASKED] b\n"
    assert SECRET not in out + err


def test_supervise_masks_stderr_separately(capfd: pytest.CaptureFixture[str]) -> None:
    code = ("import os, sys\n"
            "print('out', os.environ['RUNNER_TEST_SECRET'], flush=True)\n"
            "print('err', os.environ['RUNNER_TEST_SECRET'], file=sys.stderr)\n"
            "sys.exit(5)\n")
    env = dict(os.environ, RUNNER_TEST_SECRET=SECRET)
    assert supervise(py(code), env, [SECRET], use_pty=False) == 5
    out, err = capfd.readouterr()
    assert out == "out [MASKED]\n"
    assert err == "err [MASKED]\n"


def test_supervise_child_closing_stdout_early(capfd: pytest.CaptureFixture[str]) -> None:
    code = ("import os, sys, time\n"
            "os.write(1, b'first\\n'); os.close(1)\n"
            "time.sleep(0.3)\n"
            "os.write(2, sys.argv[1].encode() + b' later\\n')\n"
            "sys.exit(4)\n")
    assert supervise([*py(code), SECRET], dict(os.environ), [SECRET], use_pty=False) == 4
    out, err = capfd.readouterr()
    assert out == "first\n"
    assert err == "[MASKED] later\n"


def test_supervise_restores_signal_handlers(capfd: pytest.CaptureFixture[str]) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    supervise(py("pass"), dict(os.environ), [], use_pty=False)
    assert {s: signal.getsignal(s) for s in before} == before


def test_supervise_cannot_start(tmp_path: Path) -> None:
    with pytest.raises(CommandNotFoundError, match="^command not found: no-such-cmd-xyz$"):
        supervise(["no-such-cmd-xyz"], dict(os.environ), [])
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o600)
    with pytest.raises(CommandNotExecutableError) as info:
        supervise([str(script)], dict(os.environ), [])
    assert info.value.exit_code == 126
    with pytest.raises(CommandNotExecutableError, match="Is a directory"):
        supervise([str(tmp_path)], dict(os.environ), [])
    # PATH comes from os.environ, not from env
    with pytest.raises(CommandNotFoundError), pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", str(tmp_path))
        supervise(["sh", "-c", "true"], dict(os.environ, PATH=os.defpath), [])


# ---------------------------------------------------------------------------
# supervise, in a driver


@pytest.mark.usefixtures("supervisor_mode")
def test_supervise_stdin_passes_through() -> None:
    code = "import sys; data = sys.stdin.read(); print(len(data), data.upper())"
    result = run_driver("supervise", py(code), use_pty=False, input=b"hello\nworld\n")
    assert result.returncode == 0
    assert result.stdout == b"12 HELLO\nWORLD\n\n"


@pytest.mark.usefixtures("supervisor_mode")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
@pytest.mark.parametrize("use_pty", [False, True])
def test_child_killed_by_signal_kills_the_supervisor_the_same_way(signum: int, use_pty: bool) -> None:
    code = f"import os; os.kill(os.getpid(), {int(signum)})"
    result = run_driver("supervise", py(code), use_pty=use_pty)
    assert result.returncode == -signum, result.stderr


def _start(argv: list[str], *, new_session: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=new_session)


def _wait_ready(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
    assert ready, "the child did not get ready"
    assert proc.stdout.readline().strip() == b"ready"


TRAP = (
    "import signal, sys, time\n"
    "def handler(signum, frame):\n"
    "    print('got', signal.Signals(signum).name, flush=True)\n"
    "    sys.exit(3)\n"
    "signal.signal(signal.{sig}, handler)\n"
    "print('ready', flush=True)\n"
    "time.sleep(15)\n"
)


@pytest.mark.usefixtures("supervisor_mode")
@pytest.mark.parametrize(
    ("sig", "use_pty"),
    # SIGINT only on a pty: without one the child shares our process group (see below)
    [("SIGTERM", False), ("SIGTERM", True), ("SIGINT", True)],
)
def test_signal_is_forwarded_to_a_child_that_traps_it(sig: str, use_pty: bool) -> None:
    proc = _start(driver("supervise", py(TRAP.format(sig=sig)), use_pty=use_pty))
    try:
        _wait_ready(proc)
        proc.send_signal(getattr(signal, sig))
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert f"got {sig}".encode() in out, err
    assert proc.returncode == 3


@pytest.mark.usefixtures("supervisor_mode")
def test_terminal_sigint_is_not_delivered_twice() -> None:
    # Without a pty the child shares our process group; a Ctrl-C (here: a
    # SIGINT to the whole group) reaches it directly and must not be forwarded.
    code = (
        "import signal, sys, time\n"
        "count = 0\n"
        "def handler(signum, frame):\n"
        "    global count; count += 1\n"
        "signal.signal(signal.SIGINT, handler)\n"
        "print('ready', flush=True)\n"
        "for _ in range(1500):\n"
        "    if count: break\n"
        "    time.sleep(0.01)\n"
        "time.sleep(0.3)\n"
        "print('count', count, flush=True)\n"
    )
    proc = _start(driver("supervise", py(code), use_pty=False), new_session=True)
    try:
        _wait_ready(proc)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert out == b"count 1\n", err
    assert proc.returncode == 0


@pytest.mark.usefixtures("supervisor_mode")
def test_grandchild_holding_the_pipe_does_not_hang() -> None:
    code = ("import subprocess, sys\n"
            "p = subprocess.Popen(['sleep', '60'])\n"
            "print(p.pid, flush=True)\n"
            "sys.exit(6)\n")
    proc = _start(driver("supervise", py(code), use_pty=False))
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    grandchild = int(out.split()[0])
    os.kill(grandchild, signal.SIGKILL)
    assert proc.returncode == 6


@pytest.mark.usefixtures("supervisor_mode")
def test_a_grandchild_that_keeps_logging_does_not_hold_us() -> None:
    """A daemon started with & that logs every 0.1 s: we stop draining shortly after the exit."""
    loop = ["sh", "-c", "(while :; do echo log; sleep 0.1; done) & echo $! >&2; exit 3"]
    proc = _start(driver("supervise", loop, use_pty=False))
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    os.kill(int(err.split()[0]), signal.SIGKILL)
    assert proc.returncode == 3
    assert out.startswith(b"log\n")


def _close_stdout_after_one_line(argv: list[str]) -> tuple[bytes, bytes, int]:
    """Supervise ``argv`` masking SECRET; read one line of its stdout, then close our end
    (what ``| head -1`` does). Returns (that line, the driver's stderr, its return code)."""
    proc = _start(driver("supervise", argv, mask=[SECRET], use_pty=False))
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert b"Traceback" not in err
    return line, err, proc.returncode


@pytest.mark.usefixtures("supervisor_mode")
def test_broken_stdout_pipe_ends_the_child_as_without_masking() -> None:
    """`secretstore exec --mask -- yes | head`: the child dies of SIGPIPE, and so do we."""
    # sh, not Python: Python ignores SIGPIPE itself and would print a traceback either way
    loop = ["sh", "-c", 'while :; do echo "line $1"; done', "sh", SECRET]
    line, _err, returncode = _close_stdout_after_one_line(loop)
    assert line == b"line [MASKED]\n"
    assert returncode == -signal.SIGPIPE


@pytest.mark.usefixtures("supervisor_mode")
def test_broken_stdout_pipe_leaves_stderr_flowing() -> None:
    """A child that survives a closed stdout still gets its stderr through, masked."""
    code = (
        "import signal, sys\n"
        "signal.signal(signal.SIGPIPE, signal.SIG_IGN)\n"
        "try:\n"
        "    for i in range(50000): print('line', i)\n"
        "    sys.stdout.flush()\n"
        "except BrokenPipeError:\n"
        "    pass\n"
        "print('done', sys.argv[1], file=sys.stderr)\n"
    )
    line, err, returncode = _close_stdout_after_one_line([*py(code), SECRET])
    assert line == b"line 0\n"
    assert err == b"done [MASKED]\n"
    assert returncode == 0


@pytest.mark.usefixtures("supervisor_mode")
def test_pty_child_sees_a_terminal_and_output_is_masked() -> None:
    code = ("import os, sys\n"
            "print('tty', sys.stdout.isatty(), sys.stderr.isatty(), os.environ['RUNNER_TEST_SECRET'])\n"
            "print('stdin', sys.stdin.read(), os.environ['RUNNER_TEST_SECRET'], file=sys.stderr)\n")
    result = run_driver("supervise", py(code), env={"RUNNER_TEST_SECRET": SECRET},
                        mask=[SECRET], use_pty=True, input=b"piped")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.replace(b"\r\n", b"\n")
    # stdout is the pty; our stderr is a pipe here (like 2>err.log), so the child's
    # stderr stays separate and masked; our stdin (a pipe) was kept as is
    assert lines == b"tty True False [MASKED]\n"
    assert result.stderr == b"stdin piped [MASKED]\n"


@pytest.mark.usefixtures("supervisor_mode")
def test_pty_with_a_terminal_stdin_raw_mode_input_and_winsize() -> None:
    # The driver runs on a terminal of ours: its stdin is a tty, so it copies
    # input to the child's pty in raw mode, passes the window size on, and
    # restores the terminal afterwards.
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    before = termios.tcgetattr(slave)
    code = ("import os, sys\n"
            "size = os.get_terminal_size()\n"
            "print('ready', sys.stdin.isatty(), size.columns, size.lines, flush=True)\n"
            "line = input()\n"
            "print('got', line[::-1], os.environ['RUNNER_TEST_SECRET'])\n")
    proc = subprocess.Popen(
        driver("supervise", py(code), env={"RUNNER_TEST_SECRET": SECRET}, mask=[SECRET]),
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
    )
    output = b""
    try:
        sent = False
        while proc.poll() is None or select.select([master], [], [], 0.2)[0]:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    output += os.read(master, 65536)
                except OSError:
                    break
            if not sent and b"ready" in output and b"\n" in output[output.find(b"ready"):]:
                os.write(master, b"abc\r")
                sent = True
        proc.wait(timeout=TIMEOUT)
        after = termios.tcgetattr(slave)
    finally:
        proc.kill()
        os.close(master)
        os.close(slave)
    text = output.replace(b"\r\n", b"\n")
    assert b"ready True 101 33\n" in text
    assert b"got cba [MASKED]\n" in text
    assert SECRET_B not in output
    assert proc.returncode == 0
    assert after == before


# Reads /proc/<parent>/environ and cmdline (the parent is the supervisor) and prints
# what it found there, never the values. (The value is spelled in two pieces: this
# code is in the supervisor's own command line.)
READ_PARENT = (
    "import os, sys\n"
    "ppid = os.getppid()\n"
    "environ = open(f'/proc/{ppid}/environ', 'rb').read().split(b'\\0')\n"
    "cmdline = open(f'/proc/{ppid}/cmdline', 'rb').read()\n"
    "print(any(e.startswith(b'RUNNER_TEST_CREDENTIAL=') for e in environ),\n"
    "      b'fake-credential' + b'-value' in b''.join(environ) + cmdline,\n"
    "      'RUNNER_TEST_CREDENTIAL' in os.environ)\n"
)


@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="needs /proc")
@pytest.mark.parametrize("use_pty", [False, True])
def test_handover_keeps_the_credential_out_of_the_supervisor(use_pty: bool,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor's /proc environ shows what it was started with: without the
    handover (credentials=[], the negative control) the program reads the credential there."""
    monkeypatch.setenv("RUNNER_TEST_CREDENTIAL", "fake-credential-value")
    result = run_driver("supervise", py(READ_PARENT), use_pty=use_pty)
    assert result.returncode == 0, result.stderr
    assert result.stdout.replace(b"\r\n", b"\n") == b"False False False\n"
    result = run_driver("supervise", py(READ_PARENT), use_pty=use_pty, credentials=[])
    assert result.returncode == 0, result.stderr
    assert result.stdout.replace(b"\r\n", b"\n") == b"True True False\n"
