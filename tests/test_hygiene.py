"""Environment hygiene: no core dumps, no value in any message, repr or file, no loose key files.

A value is tracked by a marker string (``VALUE``) that appears nowhere else: it
must never reach stderr, an exception message, a repr, or the bytes of any
file the store writes.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from secretstore import crypto, scopefile
from secretstore.errors import SecretStoreError
from secretstore.identity import create_identity, load_identity, unprotected_text
from secretstore.store import Scope, Store

VALUE = "Hygiene-Marker-7d1f3b9e"
TEAM = Scope("team")


# In-process CLI tests call ``cli.run``, which sets this pytest process's own core
# limit to (0, 0) for good, and raising a hard limit needs privilege. So a keeper
# process is started at import (collection, before any test runs): it keeps the
# limits the suite started with, and starts the commands below with core dumps
# allowed, so that the CLI turning them off is visible.
_KEEPER_CODE = r"""
import json, resource, subprocess, sys
def allow():
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
for line in sys.stdin:
    job = json.loads(line)
    done = subprocess.run(job["argv"], env=job["env"], capture_output=True, text=True,
                          preexec_fn=allow, timeout=60)
    print(json.dumps({"rc": done.returncode, "out": done.stdout, "err": done.stderr}), flush=True)
"""
_HARD_AT_START = resource.getrlimit(resource.RLIMIT_CORE)[1]
_KEEPER = subprocess.Popen([sys.executable, "-c", _KEEPER_CODE], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
atexit.register(_KEEPER.kill)


def run_with_core_dumps_allowed(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``argv``, started with the core limit at its maximum."""
    if _HARD_AT_START == 0:
        pytest.skip("the hard core limit was 0 before the tests: nothing to observe")
    assert _KEEPER.stdin is not None and _KEEPER.stdout is not None
    _KEEPER.stdin.write(json.dumps({"argv": argv, "env": dict(os.environ)}) + "\n")
    _KEEPER.stdin.flush()
    result = json.loads(_KEEPER.stdout.readline())
    return result["rc"], result["out"], result["err"]


def _core_limit_line(limits: str) -> str:
    return next(line for line in limits.splitlines() if line.startswith("Max core file size"))


@pytest.fixture
def filled(isolated_env: dict[str, str]):  # type: ignore[no-untyped-def]
    identity = create_identity(isolated_env["identity"])
    store = Store(isolated_env["store"])
    store.set(TEAM, "TOKEN", VALUE, identity)
    store.set(Scope("project", "prj1"), "OTHER", VALUE + "-project", identity)
    return store, identity


# --- core dumps -------------------------------------------------------------------


def test_keeper_really_allows_core_dumps() -> None:
    """Guard for the tests below: without the CLI, the limit is not 0."""
    rc, out, err = run_with_core_dumps_allowed(["cat", "/proc/self/limits"])
    assert rc == 0, err
    assert _core_limit_line(out).split()[4] != "0"


@pytest.mark.parametrize("mask", [False, True], ids=["exec", "exec-mask"])
def test_exec_runs_the_command_with_core_dumps_disabled(filled, mask: bool) -> None:
    """exec replaces itself (or supervises a child): the limit it set is the command's."""
    from tests.conftest import console_script

    args = [console_script(), "exec", *(["--mask"] if mask else []), "--", "cat", "/proc/self/limits"]
    rc, out, err = run_with_core_dumps_allowed(args)
    assert rc == 0, err
    soft, hard = _core_limit_line(out).split()[4:6]
    assert (soft, hard) == ("0", "0")


def test_typer_commands_disable_core_dumps_too(filled) -> None:
    """The typer entry point (every command but the exec fast path) sets the limit first."""
    code = (
        "import resource, sys\n"
        "from secretstore.cli import run\n"
        "run(['list', 'team'])\n"
        "print(resource.getrlimit(resource.RLIMIT_CORE))\n"
    )
    rc, out, err = run_with_core_dumps_allowed([sys.executable, "-c", code])
    assert rc == 0, err
    assert out.strip().endswith("(0, 0)")


# --- values never in messages or reprs -----------------------------------------------


def test_reprs_never_show_a_value_or_a_key(filled) -> None:
    store, identity = filled
    unlocked = store.unlock(TEAM, identity)
    assert unlocked is not None
    secret_line = unprotected_text(identity).splitlines()[-1]
    for obj in (unlocked, unlocked.keys, identity, store, unlocked.file):
        text = repr(obj) + str(obj)
        assert VALUE not in text
        assert secret_line not in text
        assert secret_line.removeprefix("SECRETSTORE-SECRET-KEY-1") not in text
    assert "redacted" in repr(unlocked.keys) and "redacted" in repr(identity)
    assert crypto.FileKeys(b"\x01" * 32).__repr__() == "FileKeys(<redacted>)"


def _failing_commands(tmp: Path) -> list[tuple[list[str], bytes]]:
    """(command line, stdin): each fails, each has VALUE in its input."""
    big = tmp / "big"
    big.write_bytes(VALUE.encode() * 5000)
    bad_json = tmp / "bad.json"
    bad_json.write_text('{"GOOD": "x", "BAD-NAME": "%s", "N": 3}' % VALUE)
    bad_env = tmp / "bad.env"
    bad_env.write_text("GOOD=1\n%s\n1BAD='%s'\n" % (VALUE, VALUE))
    broken_json = tmp / "broken.json"
    broken_json.write_text('{"A": "%s\\q"}' % VALUE)
    return [
        (["set", "team", "--name=bad-name", f"--value={VALUE}"], b""),
        (["set", "team", "--name=NUL", "--value", "-"], VALUE.encode() + b"\x00tail"),
        (["set", "team", "--name=BIG", "--value-file", str(big)], b""),
        (["set", "team", "--name=BAD_UTF8", "--value", "-"], VALUE.encode() + b"\xff"),
        (["import", "team", str(bad_json)], b""),
        (["import", "team", str(bad_env)], b""),
        (["import", "team", str(broken_json)], b""),
        (["import", "team", "-", "--format", "json"], b'{"A": "%s", "A": "x"}' % VALUE.encode()),
        (["exec", "--", "/nonexistent/program", VALUE], b""),
        (["get", "team", "--name=MISSING"], b""),
    ]


def test_failing_commands_never_print_the_value(filled, cli_run, tmp_path) -> None:
    for args, stdin in _failing_commands(tmp_path):
        done = cli_run(*args, input=stdin)
        assert done.returncode != 0, args
        err = done.stderr.decode("utf-8", "replace")
        assert VALUE not in err, (args, err)
        assert VALUE.encode() not in done.stdout, args
        assert "Traceback" not in err, (args, err)
        assert err.startswith("secretstore: error: "), (args, err)


@pytest.mark.parametrize("argument", [VALUE, "=" + VALUE])
def test_malformed_env_option_is_not_echoed(filled, cli_run, argument: str) -> None:
    """Found by this suite: exec echoed a --env given a bare value (``--env "$TOKEN"``)."""
    done = cli_run("exec", "--env", argument, "--", "true")
    assert done.returncode == 2
    assert VALUE.encode() not in done.stderr


def test_tampered_file_errors_never_hold_the_value(filled, cli_run) -> None:
    store, identity = filled
    path = Path(store.path(TEAM))
    text = path.read_text()
    # an insider's forgery: a valid MAC over an entry whose value will not decrypt
    unlocked = store.unlock(TEAM, identity)
    assert unlocked is not None
    entry = unlocked.file.entries["TOKEN"]
    assert entry.current is not None
    forged = scopefile.Version(entry.current.updated, bytes(24), entry.current.ciphertext)
    unlocked.file.entries["TOKEN"] = scopefile.Entry(forged, forged.updated, ())
    store._write(unlocked, identity)
    for args in (["get", "team", "--name=TOKEN"], ["exec", "--", "true"],
                 ["export"]):
        done = cli_run(*args)
        assert done.returncode == 1
        assert VALUE.encode() not in done.stderr + done.stdout
        assert b"Traceback" not in done.stderr
    path.write_text(text)


def test_library_errors_never_hold_the_value(filled) -> None:
    store, identity = filled
    attempts = [
        lambda: store.set(TEAM, "bad-name", VALUE, identity),
        lambda: store.set(TEAM, "N", VALUE + "\x00", identity),
        lambda: store.set(TEAM, "N", VALUE * 10000, identity),
        lambda: store.get(TEAM, "NOPE", identity),
    ]
    for attempt in attempts:
        with pytest.raises(SecretStoreError) as caught:
            attempt()
        error = caught.value
        assert VALUE not in str(error) and VALUE not in repr(error)
        assert VALUE not in (error.hint or "")


# --- permissions --------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o700 | 0o004])
def test_loose_identity_file_is_refused_with_the_chmod_fix(filled, cli_run, isolated_env,
                                                           mode: int) -> None:
    path = isolated_env["identity"]
    os.chmod(path, mode)
    try:
        done = cli_run("get", "team", "--name=TOKEN")
    finally:
        os.chmod(path, 0o600)
    err = done.stderr.decode()
    assert done.returncode == 1
    assert VALUE.encode() not in done.stdout
    assert f"chmod 600 {path}" in err, err
    assert len(err.splitlines()) <= 2 and "Traceback" not in err


def test_exec_refuses_a_loose_identity_file_too(filled, cli_run, isolated_env) -> None:
    path = isolated_env["identity"]
    os.chmod(path, 0o644)
    try:
        done = cli_run("exec", "--", "true")
    finally:
        os.chmod(path, 0o600)
    assert done.returncode == 1
    assert f"chmod 600 {path}" in done.stderr.decode()


def test_the_store_creates_private_files_and_directories(filled, isolated_env) -> None:
    for top in (isolated_env["store"], os.path.dirname(isolated_env["identity"])):
        for directory, _dirs, files in os.walk(top):
            assert os.stat(directory).st_mode & 0o077 == 0, directory
            for name in files:
                path = os.path.join(directory, name)
                assert os.stat(path).st_mode & 0o077 == 0, path


def test_identity_loaded_by_the_library_checks_permissions(filled, isolated_env) -> None:
    os.chmod(isolated_env["identity"], 0o644)
    try:
        with pytest.raises(SecretStoreError) as caught:
            load_identity(isolated_env["identity"])
    finally:
        os.chmod(isolated_env["identity"], 0o600)
    assert "chmod 600" in (caught.value.hint or "")


# --- no plaintext on disk -------------------------------------------------------------


def test_no_file_the_store_writes_holds_a_plaintext_value(filled, cli_run, isolated_env,
                                                          tmp_path) -> None:
    store, identity = filled
    # exercise every writing command once more
    assert cli_run("set", "team", "--name=PIPED", "--value", "-",
                   input=(VALUE + "-piped\n").encode()).returncode == 0
    env_file = tmp_path / "in.env"
    env_file.write_text(f"IMPORTED='{VALUE}-imported'\n")
    assert cli_run("import", "cluster", "--id=gpu-a", str(env_file)).returncode == 0
    assert cli_run("delete", "project", "--id=prj1", "--name=OTHER").returncode == 0
    assert cli_run("rotate", "--all").returncode == 0
    for top in (isolated_env["store"], os.path.dirname(isolated_env["identity"])):
        for directory, _dirs, files in os.walk(top):
            for name in files:
                data = Path(directory, name).read_bytes()
                assert VALUE.encode() not in data, name
                assert VALUE.encode("utf-16-le") not in data, name
    assert store.get(TEAM, "PIPED", identity) == VALUE + "-piped"


# --- exec --mask ----------------------------------------------------------------------


def test_exec_mask_conceals_a_value_printed_in_chunks(filled, cli_run) -> None:
    printer = (
        "import os, sys, time\n"
        "v = os.environ['TOKEN']\n"
        "for i in range(0, len(v), 3):\n"
        "    sys.stdout.write(v[i:i + 3]); sys.stdout.flush(); time.sleep(0.01)\n"
        "sys.stdout.write('\\nshort=abc\\n')\n"
    )
    done = cli_run("exec", "--mask", "--", sys.executable, "-c", printer)
    assert done.returncode == 0, done.stderr
    assert VALUE.encode() not in done.stdout
    assert b"short=abc" in done.stdout
