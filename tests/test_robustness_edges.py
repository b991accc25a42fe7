"""Edges where secretstore used to crash or lose its exit code: a long audit line, a closed
stdin or stderr, a store path that is not UTF-8, a completion shell typer has no script for.

Each is checked through the real console script (the user's view: one ``secretstore: error:``
line, the documented exit code, no traceback) and, where cheap, in-process. Fake values only.
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from secretstore import audit, console, trust
from secretstore.cli import common, completion
from secretstore.errors import EXIT_FAILURE, EXIT_USAGE, NotFoundError, UsageError
from tests.conftest import console_script

Run = Callable[..., subprocess.CompletedProcess[bytes]]

FAKE = b"fake-value-not-a-secret"


def run_shell(line: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """``sh -c LINE`` with the console script as ``$S`` and ``args`` as ``$1``...: for redirections
    Python's subprocess cannot spell (``<&-``, ``2>&-``)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["S"] = console_script()
    return subprocess.run(["sh", "-c", line, "sh", *args], capture_output=True, env=full_env,
                          timeout=60, check=False)


def one_error_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines()
             if not line.startswith("secretstore: hint:")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("secretstore: error: "), stderr
    assert "Traceback" not in lines[0] and "internal error" not in lines[0], stderr
    return lines[0]


# --- 1. an audit line longer than one read ----------------------------------------------


def test_a_line_longer_than_64_kib_chains_and_verifies(isolated_env: dict[str, str]) -> None:
    store = isolated_env["store"]
    names = [f"NAME_{index:06d}_PADDING" for index in range(6000)]  # ~130 KiB of names
    assert audit.record(store, "import", scope="team", names=names, key="ssk2x")
    assert audit.record(store, "get", scope="team", names=["AFTER"], key="ssk2x")
    big, after = Path(audit.log_path(store)).read_bytes().splitlines()
    assert len(big) > 1 << 16
    assert json.loads(after)["prev"] == audit._digest(big)
    assert audit.verify(store) == []


def test_rotation_anchors_to_a_line_longer_than_64_kib(isolated_env: dict[str, str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = isolated_env["store"]
    monkeypatch.setattr(audit, "MAX_BYTES", 1000)
    assert audit.record(store, "get", scope="team", names=["FIRST"], key="ssk2x")
    assert audit.record(store, "import", scope="team", names=[f"N{index:07d}" for index in range(9000)])
    big = Path(audit.log_path(store)).read_bytes().splitlines()[-1]
    assert len(big) > 1 << 16
    assert audit.record(store, "get", scope="team", names=["AFTER"], key="ssk2x")  # rotates first
    anchor = Path(audit.log_path(store)).read_bytes().splitlines()[0]
    assert json.loads(anchor)["command"] == "rotated"
    assert json.loads(anchor)["prev"] == audit._digest(big)
    assert audit.verify(store) == []


def test_last_line_of_short_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "log"
    for content, last in [(b"", b""), (b"one\n", b"one"), (b"one\ntwo\n", b"two"), (b"x" * 70000 + b"\n", b"x" * 70000),
                          (b"a\n" + b"y" * 200000 + b"\n", b"y" * 200000), (b"a\nb", b"b")]:
        path.write_bytes(content)
        fd = os.open(path, os.O_RDONLY)
        try:
            assert audit._last_line(fd) == last
        finally:
            os.close(fd)


def test_verify_passes_after_a_big_import_from_the_console_script(cli_run: Run, tmp_path: Path) -> None:
    dotenv = tmp_path / "big.env"
    dotenv.write_text("".join(f"NAME_{index:06d}_PADDING=fake{index}\n" for index in range(5000)))
    done = cli_run("import", "team", str(dotenv))
    assert done.returncode == 0, done.stderr
    done = cli_run("get", "team", "--name", "NAME_000001_PADDING")
    assert done.returncode == 0, done.stderr
    done = cli_run("audit", "--verify")
    assert done.returncode == 0, done.stderr + done.stdout
    assert b"intact" in done.stdout


# --- 2. stdin closed ------------------------------------------------------------------------


def test_read_bytes_with_no_stdin_is_empty_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    assert common.read_bytes(None, "secret value") == (b"", "stdin")
    assert common.read_bytes("-", "input") == (b"", "stdin")
    with pytest.raises(EOFError):
        common.prompt_line("Secret name")


@pytest.mark.parametrize("args", [
    ["set", "team", "--name", "FOO", "--value", "-"],
    ["set", "team", "--name", "FOO"],
    ["set", "team", "--name", "FOO", "--value-file", "-"],
])
def test_set_with_stdin_closed_is_a_usage_error(args: list[str], isolated_env: dict[str, str]) -> None:
    done = run_shell('"$S" "$@" <&-', *args)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "empty" in one_error_line(done.stderr)
    assert not os.path.exists(isolated_env["store"])  # nothing written


def test_import_and_inject_with_stdin_closed_read_empty_input(cli_run: Run) -> None:
    assert cli_run("set", "team", "--name", "FOO", input=FAKE).returncode == 0
    done = run_shell('"$S" import team - <&-')
    # as from an empty stdin: nothing to import is refused (a failed command upstream), nothing written
    assert (done.returncode, done.stdout) == (2, b""), done.stderr
    assert done.stderr.startswith(b"secretstore: error: nothing to import: stdin holds no secrets\n")
    assert b"| FOO  |" in cli_run("list", "team").stdout
    done = run_shell('"$S" inject -i - <&-')
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"" and done.stderr == b""


# --- 3. a store path that is not UTF-8 -------------------------------------------------------


def test_paths_of_a_store_whose_name_is_not_utf8(tmp_path: Path) -> None:
    root = os.path.join(str(tmp_path), "st\udcffore")  # the byte \xff, as os.fsdecode gives it
    os.mkdir(root)
    assert audit.log_path(root) != audit.log_path(str(tmp_path / "store"))
    assert trust.state_path(root)
    state = trust.State(trust.state_path(root), root)
    assert b"store\t" + os.fsencode(str(tmp_path)) + b"/st\\xffore\n" in state.to_bytes()
    # a UTF-8 path keeps the digest it always had (existing logs and trust states stay found)
    plain = str(tmp_path / "caf\u00e9")
    from secretstore import crypto

    assert trust.state_path(plain).endswith(crypto.checksum(os.path.realpath(plain).encode(), 16).hex())


def test_a_store_whose_name_is_not_utf8_just_works(cli_run: Run, tmp_path: Path) -> None:
    root = os.path.join(str(tmp_path), "st\udcffore")
    env = {"SECRETSTORE_DIR": root}
    done = cli_run("set", "team", "--name", "FOO", "--value", "-", input=FAKE, env=env)
    assert done.returncode == 0, done.stderr
    assert os.path.isfile(os.path.join(root, "team.toml"))
    done = cli_run("get", "team", "--name", "FOO", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == FAKE
    done = cli_run("list", "team", env=env)
    assert done.returncode == 0 and b"FOO" in done.stdout, done.stderr
    for _ in range(2):  # the second run reads the snapshot
        done = cli_run("exec", "--", sys.executable, "-c", "import os; print(os.environ['FOO'])", env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == FAKE
    done = cli_run("audit", "--verify", env=env)
    assert done.returncode == 0, done.stderr


# --- 4. a completion shell typer has no script for -------------------------------------------


@pytest.mark.parametrize(("option", "shell"), [("--install-completion", "nosh"), ("--show-completion", "tcsh"),
                                               ("--install-completion", ""), ("--show-completion", "\x1b[2J")])
def test_check_shell_refuses_what_typer_cannot_write(option: str, shell: str) -> None:
    with pytest.raises(UsageError) as caught:
        completion.check_shell(option, shell)
    assert caught.value.exit_code == EXIT_USAGE
    assert option in caught.value.message and "bash" in caught.value.message


@pytest.mark.parametrize("shell", completion.SCRIPT_SHELLS)
def test_check_shell_takes_typers_shells(shell: str) -> None:
    completion.check_shell("--show-completion", shell)


@pytest.mark.parametrize(("option", "shell"), [("--install-completion", "nosh"), ("--show-completion", "tcsh"),
                                               ("--install-completion", "")])
def test_an_unknown_completion_shell_is_a_usage_error(option: str, shell: str, cli_run: Run,
                                                      isolated_env: dict[str, str]) -> None:
    done = cli_run(option, shell)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert done.stdout == b""
    assert "not a supported shell" in one_error_line(done.stderr)


# --- 5. stderr closed or full ----------------------------------------------------------------


class _FullStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("stream", [None, _FullStream()])
def test_the_exit_code_survives_a_stderr_that_cannot_be_written(stream: object,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", stream)

    def usage() -> None:
        raise UsageError("bad input")

    def missing() -> None:
        raise NotFoundError("no such secret")

    assert console.run_reporting_errors(usage) == EXIT_USAGE
    assert console.run_reporting_errors(missing) == EXIT_FAILURE
    console.warning_line("still no exception")
    console.notice("nor here")


@pytest.mark.parametrize("redirect", ["2>&-", "2>/dev/full"])
@pytest.mark.parametrize(("args", "code"), [
    (["get", "team", "--name", "1bad"], EXIT_USAGE),
    (["get", "team", "--name", "NOPE"], EXIT_FAILURE),
    (["bogus-command"], EXIT_USAGE),
])
def test_the_console_script_keeps_its_exit_code_without_stderr(redirect: str, args: list[str], code: int,
                                                               cli_run: Run) -> None:
    assert cli_run("set", "team", "--name", "FOO", input=FAKE).returncode == 0
    done = run_shell(f'"$S" "$@" {redirect}', *args)
    assert done.returncode == code
    assert done.stdout == b""
