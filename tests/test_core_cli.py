"""The Gradient-compatible CLI, in-process (separate stdout/stderr) and through the real console script."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from secretstore.cli import run
from tests.conftest import console_script, run_on_pty

FAKE = "fake-token-42"


def call(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
         stdin: bytes = b"") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# --- in-process ----------------------------------------------------------------


def test_set_list_get_delete_gradient_messages(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, out, err = call(capsys, monkeypatch, "set", "team", "--name=WANDB_API_KEY", f"--value={FAKE}")
    assert (code, out) == (0, "Set team secret 'WANDB_API_KEY'\n")
    assert "created a new identity" in err and "ssk2" in err
    code, out, err = call(capsys, monkeypatch, "secrets", "set", "project", "--id=prj42", "--name=DB_PASSWORD",
                          stdin=b"fake-pw\n")
    assert (code, out, err) == (0, "Set project secret 'DB_PASSWORD'\n", "")
    code, out, _ = call(capsys, monkeypatch, "list", "team")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("+--") and lines[1].split("|")[1].strip() == "Name"
    assert "WANDB_API_KEY" in lines[3]
    code, out, _ = call(capsys, monkeypatch, "secrets", "list", "project", "--id", "prj42", "--json")
    payload = json.loads(out)
    assert [(p["name"], p["entity"], p["id"]) for p in payload] == [("DB_PASSWORD", "project", "prj42")]
    assert payload[0]["updated"].endswith("Z")
    code, out, _ = call(capsys, monkeypatch, "get", "project", "--id=prj42", "--name=DB_PASSWORD")
    assert (code, out) == (0, "fake-pw")
    code, out, _ = call(capsys, monkeypatch, "delete", "project", "--id=prj42", "--name=DB_PASSWORD")
    assert (code, out) == (0, "Deleted project secret 'DB_PASSWORD'\n")
    code, out, _ = call(capsys, monkeypatch, "list", "project", "--id=prj42")
    assert (code, out) == (0, "No data found\n")
    code, out, _ = call(capsys, monkeypatch, "list", "team", "--json")
    assert json.loads(out)[0]["id"] is None


def test_empty_scope_list_json(capsys, monkeypatch, isolated_env) -> None:  # type: ignore[no-untyped-def]
    os.makedirs(isolated_env["store"])
    assert call(capsys, monkeypatch, "list", "cluster", "--id=c1", "--json")[:2] == (0, "[]\n")


@pytest.mark.parametrize(
    ("stdin", "stored"),
    [(b"x\n", "x"), (b"x\n\n", "x\n"), (b"x", "x"), (b"x\r\n", "x"), (b"line1\nline2\n", "line1\nline2")],
)
def test_stdin_strips_exactly_one_newline(capsys, monkeypatch, stdin: bytes, stored: str) -> None:  # type: ignore[no-untyped-def]
    assert call(capsys, monkeypatch, "set", "team", "--name=V", "--value", "-", stdin=stdin)[0] == 0
    assert call(capsys, monkeypatch, "get", "team", "--name=V")[1] == stored


def test_value_file_and_literal_value_not_stripped(capsys, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pem = "-----BEGIN FAKE KEY-----\nAAAA\n-----END FAKE KEY-----\n"
    (tmp_path / "key.pem").write_text(pem)
    assert call(capsys, monkeypatch, "set", "team", "--name=TLS", "--value-file", str(tmp_path / "key.pem"))[0] == 0
    assert call(capsys, monkeypatch, "get", "team", "--name=TLS")[1] == pem  # byte for byte
    assert call(capsys, monkeypatch, "set", "team", "--name=LIT", "--value", "trail\n")[0] == 0
    assert call(capsys, monkeypatch, "get", "team", "--name=LIT")[1] == "trail\n"


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["set", "org", "--name=A", "--value=fake"], b"", 2, "unknown entity: ENTITY is team, project or cluster"),
        (["set", "project", "--name=A", "--value=fake"], b"", 2, "project secrets need --id"),
        (["set", "team", "--id=../x", "--name=A", "--value=fake"], b"", 2, "invalid team id"),
        (["set", "team", "--name=9A", "--value=fake"], b"", 2, "invalid secret name '9A'"),
        (["set", "cluster", "--id=../etc", "--name=A", "--value=fake"], b"", 2, "invalid cluster id"),
        (["set", "team", "--name=A"], b"", 2, "secret value from stdin is empty"),
        (["set", "team", "--name=A", "--value", "-"], b"\xff\xfe", 2, "not valid UTF-8"),
        (["set", "team", "--name=A", "--value", "-"], b"a\x00b", 2, "NUL byte"),
        (["set", "team", "--name=A", "--value", "-"], b"a" * 65537, 2, "the limit is 65536"),
        (["set", "team", "--name=A", "--value=x", "--value-file=f"], b"", 2, "not both"),
        (["set", "team", "--value=fake"], b"", 2, "missing --name"),
        (["set", "team", "--name=A", "--value-file=/nonexistent/f"], b"", 2, "cannot read value file"),
        (["delete", "team", "--name=NOPE"], b"", 1, "no team secret 'NOPE' to delete"),
        (["get", "team", "--name=NOPE"], b"", 1, "no team secret 'NOPE'"),
        (["set", "team", "--name=A", "--bogus"], b"", 2, "No such option"),
    ],
)
def test_bad_input_one_line_error_and_nothing_written(  # type: ignore[no-untyped-def]
    capsys, monkeypatch, isolated_env, args, stdin, code, message
) -> None:
    os.makedirs(isolated_env["store"])  # an empty store: a missing one is its own error (test_fail_closed.py)
    got_code, out, err = call(capsys, monkeypatch, *args, stdin=stdin)
    assert got_code == code
    assert out == ""
    error_lines = [line for line in err.splitlines() if line.startswith("secretstore: error:")]
    assert len(error_lines) == 1 and message in error_lines[0], err
    assert all(line.startswith("secretstore: ") for line in err.splitlines())
    assert "Traceback" not in err
    assert not os.path.exists(os.path.join(isolated_env["store"], "team.toml"))


def test_get_missing_name_after_identity_exists(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    call(capsys, monkeypatch, "set", "team", "--name=A", "--value=fake-a")
    code, out, err = call(capsys, monkeypatch, "get", "team", "--name=B")
    assert (code, out, err) == (1, "", "secretstore: error: no team secret 'B'\n")


def test_missing_identity_is_one_clear_error(capsys, monkeypatch, isolated_env) -> None:  # type: ignore[no-untyped-def]
    call(capsys, monkeypatch, "set", "team", "--name=A", "--value=fake-a")
    os.unlink(isolated_env["identity"])
    code, out, err = call(capsys, monkeypatch, "get", "team", "--name=A")
    assert (code, out) == (1, "")
    assert err.splitlines()[0] == f"secretstore: error: no identity at {isolated_env['identity']}"


def test_first_identity_is_never_created_inside_the_store(capsys, monkeypatch, isolated_env) -> None:  # type: ignore[no-untyped-def]
    inside = os.path.join(isolated_env["store"], "identity")
    monkeypatch.setenv("SECRETSTORE_IDENTITY", inside)
    code, out, err = call(capsys, monkeypatch, "set", "team", "--name=A", "--value=fake-a")
    assert (code, out) == (1, "")
    assert "is inside the store" in err.splitlines()[0]
    assert not os.path.exists(inside)
    assert not os.path.exists(os.path.join(isolated_env["store"], "team.toml"))


def test_store_flag_overrides_environment(capsys, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other"
    assert call(capsys, monkeypatch, "--store", str(other), "set", "team", "--name=A", "--value=fake")[0] == 0
    assert call(capsys, monkeypatch, "set", "team", "--name=B", "--value=fake", "--store", str(other))[0] == 0
    assert (other / "team.toml").exists()
    assert call(capsys, monkeypatch, "list", "team")[0] == 1  # the environment's store does not exist


def test_platformdirs_default_honours_xdg(capsys, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SECRETSTORE_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert call(capsys, monkeypatch, "set", "team", "--name=A", "--value=fake")[0] == 0
    assert (tmp_path / "xdg" / "secretstore" / "team.toml").exists()


def test_tampered_file_is_one_line_error(capsys, monkeypatch, isolated_env) -> None:  # type: ignore[no-untyped-def]
    call(capsys, monkeypatch, "set", "team", "--name=A", "--value=fake-a")
    path = Path(isolated_env["store"]) / "team.toml"
    path.write_text(path.read_text().replace("[secrets.A]", "[secrets.B]"))
    code, out, err = call(capsys, monkeypatch, "get", "team", "--name=B")
    assert code == 1 and out == ""
    assert err.startswith("secretstore: error: team.toml: the signature does not match the file")
    assert len(err.splitlines()) == 1


# --- the real console script -------------------------------------------------------


def test_console_script_round_trip(cli_run) -> None:  # type: ignore[no-untyped-def]
    result = cli_run("secrets", "set", "cluster", "--id=gpu-a", "--name=HF_TOKEN", "--value", "-", input=b"fake-hf\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Set cluster secret 'HF_TOKEN'\n"
    result = cli_run("get", "cluster", "--id=gpu-a", "--name=HF_TOKEN")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"fake-hf", b"")
    result = cli_run("list", "cluster", "--id", "gpu-a")
    assert b"HF_TOKEN" in result.stdout
    result = cli_run("delete", "cluster", "--id=gpu-a", "--name=HF_TOKEN")
    assert result.stdout == b"Deleted cluster secret 'HF_TOKEN'\n"


def test_console_script_errors_have_no_traceback(cli_run) -> None:  # type: ignore[no-untyped-def]
    result = cli_run("set", "team", "--name=bad-name", "--value=fake")
    assert result.returncode == 2
    assert result.stderr.startswith(b"secretstore: error: invalid secret name")
    assert b"Traceback" not in result.stderr
    result = cli_run("delete", "team", "--name=NOPE")
    assert result.returncode == 1


def test_python_dash_m_works(isolated_env) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run([sys.executable, "-m", "secretstore", "--version"], capture_output=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith(b"secretstore ")


def test_version_and_help(cli_run) -> None:  # type: ignore[no-untyped-def]
    assert cli_run("--version").stdout.startswith(b"secretstore ")
    for command in ("set", "list", "get", "delete"):
        top = cli_run(command, "--help")
        nested = cli_run("secrets", command, "--help")
        assert top.returncode == 0 and nested.returncode == 0
        assert b"ENTITY" in top.stdout and b"--id" in top.stdout


def test_get_adds_newline_only_on_a_terminal(cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    cli_run("set", "team", "--name=A", "--value=fake-tty")
    output = _run_on_pty(["get", "team", "--name=A"], answers=[])
    assert output.endswith(b"fake-tty\r\n")


def test_hidden_prompt_with_confirmation(cli_run) -> None:  # type: ignore[no-untyped-def]
    output = _run_on_pty(["set", "team", "--name=PROMPTED"], answers=[b"fake-typed\n", b"fake-typed\n"])
    assert b"fake-typed" not in output  # never echoed
    assert b"Set team secret 'PROMPTED'" in output
    assert cli_run("get", "team", "--name=PROMPTED").stdout == b"fake-typed"
    answers = [b"fake-one\n", b"fake-two\n"] * 3  # a mismatch asks again, three times at most
    output = _run_on_pty(["set", "team", "--name=OTHER"], answers=answers)
    assert output.count(b"the two values differ; try again") == 3
    assert b"the two values differed 3 times; nothing was stored" in output
    assert b"OTHER" not in cli_run("list", "team").stdout


def _run_on_pty(args: list[str], answers: list[bytes]) -> bytes:
    """Everything the console script with ``args`` wrote to its terminal."""
    return run_on_pty([console_script(), *args], answers)[1]


@pytest.mark.parametrize("args", [["get", "team", "--name=A"], ["list", "team"], ["export"],
                                  ["exec", "--dry-run", "--", "true"]])
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_a_one_line_error_not_a_silent_success(cli_run, args) -> None:  # type: ignore[no-untyped-def]
    cli_run("set", "team", "--name=A", "--value=fake-full")
    with open("/dev/full", "wb") as full:
        done = subprocess.run([console_script(), *args], stdout=full, stderr=subprocess.PIPE,
                              timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr == b"secretstore: error: cannot write output: No space left on device\n"


def test_a_closed_stdout_is_a_one_line_error(cli_run) -> None:  # type: ignore[no-untyped-def]
    cli_run("set", "team", "--name=A", "--value=fake-closed")
    for args in (["get", "team", "--name=A"], ["exec", "--dry-run", "--", "true"]):
        done = subprocess.run([console_script(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=60, check=False, preexec_fn=lambda: os.close(1))
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith(b"secretstore: error: cannot write output:"), done.stderr
