"""secretstore get: the fast parser's path, typer's path to the same handler, the snapshot.

The fast path runs through the real console script; the typer path runs in a
subprocess that hands the line to typer (``cli.framework.run_typer``), which
builds its command from the same declaration and calls the same handler. Both
must print the same bytes. Fake values only. Every subprocess has a timeout;
no test measures time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from secretstore.commands.secrets import read_secret
from secretstore.errors import NotFoundError
from secretstore.identity import Identity, resolve_identity, write_identity_file
from secretstore.scopefile import ScopeFile
from secretstore.store import TEAM, Scope, Store, UnlockedScope
from tests.conftest import console_script, run_on_pty

CLUSTER = Scope("cluster", "gpu-a")
PROJECT = Scope("project", "prj42")
THEIRS = Scope("cluster", "theirs")  # sealed to someone else only
PY = sys.executable
TYPER = "import sys; from secretstore.cli.framework import run_typer; sys.exit(run_typer(sys.argv[1:]))"
PW = "fake-passphrase"
TEAM_VALUES = {
    "TOKEN": "fake-token",
    "NL": "fake-with-newline\n",
    "ML": "fake-line-1\nfake-line-2",
    "MLNL": "fake-line-1\nfake-line-2\n",
}

Run = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def seeded(isolated_env: dict[str, str]) -> Store:
    store = Store(isolated_env["store"])
    me = resolve_identity(create=True)[0]
    store.set_many(TEAM, TEAM_VALUES, me)
    store.set(CLUSTER, "HF", "fake-cluster-hf", me)
    store.set(PROJECT, "DB", "fake-project-db", me)
    store.set(THEIRS, "THEIRS", "fake-theirs", Identity.generate("elsewhere"))
    return store


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(argv, input=b"", capture_output=True, env=full_env, timeout=60, check=False)


def fast_and_typer(args: list[str], env: dict[str, str] | None = None) -> tuple[
        subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    return run([console_script(), *args], env), run([PY, "-c", TYPER, *args], env)


def takes_fast_path(argv: list[str]) -> bool:
    from secretstore.cli.declarations import ROOT
    from secretstore.cli.parser import parse

    return parse(argv, ROOT).kind == "run"


def snapshot_files(isolated_env: dict[str, str]) -> list[Path]:
    directory = Path(isolated_env["cache"]) / "snapshots"
    return sorted(directory.iterdir()) if directory.is_dir() else []


def make_snapshots(cli_run: Run, env: dict[str, str] | None = None) -> None:
    done = cli_run("exec", "--project", "prj42", "--cluster", "gpu-a", "--", "true", env=env)
    assert done.returncode == 0, done.stderr


# --- the parser ------------------------------------------------------------------------------

COMMAND_LINES = [
    (["get", "team", "--name", "TOKEN"], {"entity": "team", "name": "TOKEN"}),
    (["get", "--name=TOKEN", "team"], {"entity": "team", "name": "TOKEN"}),
    (["get", "cluster", "--id", "gpu-a", "--name", "HF"], {"entity": "cluster", "scope_id": "gpu-a"}),
    (["get", "--id=prj42", "--name=DB", "project", "--store", "/tmp/get-s"], {"store": "/tmp/get-s"}),
    (["get", "team", "--name", "FIRST", "--name", "LAST"], {"name": "LAST"}),  # the last one wins
    (["get", "--name", "TOKEN", "--", "team"], {"entity": "team"}),
    (["get", "team", "--name", "-A"], {"name": "-A"}),  # as click: the next word is the value
    (["secrets", "get", "team", "--name=TOKEN"], {"name": "TOKEN"}),
    (["get", "team", "--apiKey", "k", "--name=T"], {"api_key": "k"}),
]


@pytest.mark.parametrize(("argv", "expected"), COMMAND_LINES)
def test_the_parser_reads_get_lines_from_the_declaration(argv: list[str], expected: dict[str, str]) -> None:
    from secretstore.cli.declarations import ROOT
    from secretstore.cli.parser import parse

    parsed = parse(argv, ROOT)
    assert parsed.kind == "run" and parsed.path[-1] == "get"
    for key, value in expected.items():
        assert parsed.values[key] == value


def test_the_global_store_reaches_the_command() -> None:
    from secretstore.cli.declarations import ROOT
    from secretstore.cli.parser import parse

    for argv, root in ((["--store", "/s", "get", "team", "--name=T"], "/s"),
                       (["--store=/s", "secrets", "get", "team", "--name=T"], "/s")):
        parsed = parse(argv, ROOT)
        assert parsed.kind == "run" and parsed.root_values["store"] == root


@pytest.mark.parametrize(
    ("args", "kind"),
    [([], "fallback"), (["--help"], "help"), (["-h"], "help"), (["team", "--name"], "fallback"),
     (["team", "--name=A", "--help"], "help"), (["team", "extra", "--name=A"], "fallback"),
     (["team", "--name=A", "--bogus"], "fallback"), (["team", "-n", "A"], "fallback")],
)
def test_unusual_get_lines_go_to_help_or_typer(args: list[str], kind: str) -> None:
    from secretstore.cli.declarations import ROOT
    from secretstore.cli.parser import parse

    assert parse(["get", *args], ROOT).kind == kind


# --- the same bytes, exit codes and errors on both paths -------------------------------------


def _drop_identity(store: Store, env: dict[str, str]) -> None:
    os.unlink(env["identity"])


def _tamper(store: Store, env: dict[str, str]) -> None:
    path = Path(store.path(TEAM))
    path.write_text(path.read_text().replace("[secrets.TOKEN]", "[secrets.TOKEM]"))


# (argv, exit code, stdout, first stderr line, a setup step, fast path expected)
CASES: dict[str, tuple[list[str], int, bytes, str, Callable[[Store, dict[str, str]], None] | None, bool]] = {
    "found": (["get", "team", "--name", "TOKEN"], 0, b"fake-token", "", None, True),
    "trailing newline": (["get", "team", "--name=NL"], 0, b"fake-with-newline\n", "", None, True),
    "multi-line": (["get", "team", "--name=ML"], 0, b"fake-line-1\nfake-line-2", "", None, True),
    "cluster": (["get", "cluster", "--id=gpu-a", "--name=HF"], 0, b"fake-cluster-hf", "", None, True),
    "secrets get": (["secrets", "get", "--name", "DB", "project", "--id", "prj42"], 0, b"fake-project-db", "",
                    None, True),
    "unknown name": (["get", "team", "--name=NOPE"], 1, b"", "no team secret 'NOPE'", None, True),
    "unknown name, no identity": (["get", "team", "--name=NOPE"], 1, b"", "no team secret 'NOPE'",
                                  _drop_identity, True),
    "known name, no identity": (["get", "team", "--name=TOKEN"], 1, b"", "no identity at", _drop_identity, True),
    "unknown entity": (["get", "bogus", "--name=TOKEN"], 2, b"", "unknown entity: ENTITY is team, project or cluster",
                       None, True),
    "team --id": (["get", "team", "--id", "x", "--name=TOKEN"], 0, b"fake-token", "", None, True),  # as Gradient
    "project without --id": (["get", "project", "--name=DB"], 2, b"", "project secrets need --id", None, True),
    "invalid id": (["get", "project", "--id=a..b", "--name=DB"], 2, b"", "invalid project id", None, True),
    "invalid name": (["get", "team", "--name=bad-name"], 2, b"", "invalid secret name 'bad-name'", None, True),
    "not a recipient": (["get", "cluster", "--id=theirs", "--name=THEIRS"], 1, b"",
                        "not a recipient of cluster theirs", None, True),
    "tampered": (["get", "team", "--name=TOKEM"], 1, b"", "team.toml: the signature does not match the file", _tamper, True),
    "no store": (["get", "team", "--name=TOKEN", "--store=/nonexistent/get"], 1, b"",
                 "no store at /nonexistent/get", None, True),
    "global --store": (["--store", "/nonexistent/get", "get", "team", "--name=TOKEN"], 1, b"",
                       "no store at /nonexistent/get", None, True),
    "missing --name": (["get", "team"], 2, b"", "missing --name", None, True),
    "help": (["get", "--help"], 0, b"", "", None, False),
}


@pytest.mark.parametrize("with_snapshot", [False, True], ids=["no-snapshot", "snapshot"])
@pytest.mark.parametrize("case", list(CASES))
def test_both_paths_print_the_same(case: str, with_snapshot: bool, seeded: Store, cli_run: Run,
                                            isolated_env: dict[str, str]) -> None:
    argv, code, stdout, first_error, setup, fast = CASES[case]
    if case == "tampered" and with_snapshot:
        # The head (signature, MAC) is untouched, so the snapshot of the verified file answers:
        # its values, never the forged entry's. A full read (no snapshot, doctor --verify) refuses.
        first_error = "no team secret 'TOKEM'"
    if with_snapshot:
        make_snapshots(cli_run)
        assert snapshot_files(isolated_env)
    if setup is not None:
        setup(seeded, isolated_env)
    assert takes_fast_path(argv) == fast
    by_fast, by_typer = fast_and_typer(argv)
    assert (by_fast.returncode, by_fast.stdout, by_fast.stderr) == (by_typer.returncode, by_typer.stdout,
                                                                    by_typer.stderr)
    assert by_fast.returncode == code, by_fast.stderr
    if case != "help":
        assert by_fast.stdout == stdout
    lines = by_fast.stderr.decode().splitlines()
    if first_error:
        assert lines[0].startswith(f"secretstore: error: {first_error}"), lines
        assert len(lines) <= 2 and all(line.startswith("secretstore: ") for line in lines)
    else:
        assert lines == []


def test_global_store_forms(seeded: Store, cli_run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETSTORE_DIR", str(tmp_path / "elsewhere"))
    for argv in (["--store", seeded.root, "get", "team", "--name=TOKEN"],
                 [f"--store={seeded.root}", "secrets", "get", "team", "--name=TOKEN"],
                 ["get", "team", "--name=TOKEN", "--store", seeded.root],
                 ["--store", str(tmp_path / "other"), "get", "team", "--name=TOKEN", "--store", seeded.root]):
        assert takes_fast_path(argv)
        by_fast, by_typer = fast_and_typer(argv)
        assert (by_fast.returncode, by_fast.stdout, by_fast.stderr) == (0, b"fake-token", b""), argv
        assert (by_typer.returncode, by_typer.stdout, by_typer.stderr) == (0, b"fake-token", b""), argv


def test_cache_off_reads_the_normal_way(seeded: Store, cli_run: Run) -> None:
    make_snapshots(cli_run)
    for name, code in (("TOKEN", 0), ("NOPE", 1)):
        by_fast, by_typer = fast_and_typer(["get", "team", f"--name={name}"], env={"SECRETSTORE_CACHE": "0"})
        assert by_fast.returncode == by_typer.returncode == code
        assert (by_fast.stdout, by_fast.stderr) == (by_typer.stdout, by_typer.stderr)


def test_a_reader_that_went_away_is_exit_1_and_silent(seeded: Store) -> None:
    """EPIPE: exit 1 and nothing on stderr, not Python's "Exception ignored" at exit."""
    big = "fake-" + "x" * (60 * 1024)
    seeded.set(TEAM, "BIG", big, resolve_identity()[0])
    for argv in ([console_script(), "get"], [PY, "-c", TYPER, "get"]):
        for name in ("TOKEN", "BIG"):  # one that fits in stdout's buffer, one that does not
            reader, writer = os.pipe()
            os.close(reader)
            try:
                done = subprocess.run([*argv, "team", f"--name={name}"], stdout=writer, stderr=subprocess.PIPE,
                                      timeout=60, check=False)
            finally:
                os.close(writer)
            assert (done.returncode, done.stderr) == (1, b""), (argv, name)


# --- start-up --------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["get", "team", "--name", "TOKEN"], ["secrets", "get", "team", "--name=NOPE"],
                                  ["--store=/nonexistent/get", "get", "project", "--name=X"]])
def test_get_imports_no_typer(seeded: Store, argv: list[str]) -> None:
    done = subprocess.run([PY, "-X", "importtime", "-m", "secretstore", *argv],
                          capture_output=True, timeout=60, check=False)
    modules = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines() if "|" in line}
    assert "secretstore.commands.secrets" in modules
    for heavy in ("typer", "typer._click", "click", "pydantic", "rich", "secretstore.cli.framework",
                  "platformdirs", "json", "yaml"):
        assert heavy not in modules, heavy


# --- the snapshot -------------------------------------------------------------------------


def _refuse_full_read(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> None:
        raise AssertionError("read the scope file the full way")

    monkeypatch.setattr(Store, "parse", refuse)
    monkeypatch.setattr(Store, "unlock_file", refuse)


def _count_full_reads(monkeypatch: pytest.MonkeyPatch) -> list[Scope]:
    calls: list[Scope] = []
    real = Store.unlock_file

    def counting(self: Store, scope: Scope, file: ScopeFile, identity: Identity) -> UnlockedScope:
        calls.append(scope)
        return real(self, scope, file, identity)

    monkeypatch.setattr(Store, "unlock_file", counting)
    return calls


def test_a_snapshot_that_opens_answers_without_parsing(seeded: Store, cli_run: Run,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    make_snapshots(cli_run)
    _refuse_full_read(monkeypatch)
    for name, value in TEAM_VALUES.items():
        assert read_secret(seeded, TEAM, name) == value
    assert read_secret(seeded, PROJECT, "DB") == "fake-project-db"
    with pytest.raises(NotFoundError, match="^no team secret 'NOPE'$"):
        read_secret(seeded, TEAM, "NOPE")


def test_a_changed_file_is_read_the_full_way_once_then_from_a_new_snapshot(
        seeded: Store, cli_run: Run, isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    make_snapshots(cli_run)
    before = {path: path.read_bytes() for path in snapshot_files(isolated_env)}
    assert cli_run("set", "team", "--name=OTHER", "--value=fake-other").returncode == 0
    for name, value in (("TOKEN", b"fake-token"), ("OTHER", b"fake-other")):
        done = cli_run("get", "team", f"--name={name}")
        assert (done.returncode, done.stdout, done.stderr) == (0, value, b"")
    # the miss verified every value of the new file, so it left a snapshot of it for the next reader
    after = {path: path.read_bytes() for path in snapshot_files(isolated_env)}
    assert set(after) == set(before) and after != before
    full_reads = _count_full_reads(monkeypatch)
    assert read_secret(seeded, TEAM, "OTHER") == "fake-other"
    assert full_reads == []


def test_a_damaged_snapshot_is_ignored(seeded: Store, cli_run: Run, isolated_env: dict[str, str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    make_snapshots(cli_run)
    for path in snapshot_files(isolated_env):
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))
    done = cli_run("get", "team", "--name=ML")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"fake-line-1\nfake-line-2", b"")
    for path in snapshot_files(isolated_env):  # damaged again: the miss above rewrote the team one
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))
    full_reads = _count_full_reads(monkeypatch)
    assert read_secret(seeded, TEAM, "TOKEN") == "fake-token"
    assert full_reads == [TEAM]


def test_a_missing_name_never_needs_the_identity(seeded: Store, cli_run: Run, isolated_env: dict[str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    make_snapshots(cli_run)
    os.unlink(isolated_env["identity"])
    done = cli_run("get", "team", "--name=NOPE")
    assert (done.returncode, done.stdout, done.stderr) == (1, b"", b"secretstore: error: no team secret 'NOPE'\n")

    def no_identity(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("asked for the identity")

    monkeypatch.setattr("secretstore.identity.resolve_identity", no_identity)
    with pytest.raises(NotFoundError, match="^no team secret 'NOPE'$"):
        read_secret(seeded, TEAM, "NOPE")


@pytest.fixture
def protected(seeded: Store, isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Store:
    """The seeded store, its identity now passphrase-protected (cheap Argon2id limits)."""
    monkeypatch.setenv("SECRETSTORE_ARGON2_LIMITS", "interactive")
    write_identity_file(isolated_env["identity"], resolve_identity()[0], PW)
    return seeded


def test_a_protected_identity_is_unlocked_only_for_a_name_that_exists(
        protected: Store, cli_run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    make_snapshots(cli_run, env={"SECRETSTORE_PASSPHRASE": PW})
    # No passphrase and no terminal: a missing name is still just a missing name.
    by_fast, by_typer = fast_and_typer(["get", "team", "--name=NOPE"])
    assert (by_fast.returncode, by_fast.stderr) == (1, b"secretstore: error: no team secret 'NOPE'\n")
    assert (by_typer.returncode, by_typer.stderr) == (1, by_fast.stderr)
    by_fast, by_typer = fast_and_typer(["get", "team", "--name=TOKEN"])
    assert by_fast.returncode == by_typer.returncode == 1
    assert by_fast.stderr == by_typer.stderr
    assert b"is protected by a passphrase and there is no terminal" in by_fast.stderr
    by_fast, by_typer = fast_and_typer(["get", "team", "--name=TOKEN"], env={"SECRETSTORE_PASSPHRASE": PW})
    assert (by_fast.returncode, by_fast.stdout) == (by_typer.returncode, by_typer.stdout) == (0, b"fake-token")
    # With the passphrase, the snapshot replaces the verification.
    monkeypatch.setenv("SECRETSTORE_PASSPHRASE", PW)
    full_reads = _count_full_reads(monkeypatch)
    assert read_secret(protected, TEAM, "TOKEN") == "fake-token"
    assert full_reads == []


# --- on a terminal ----------------------------------------------------------------------------




@pytest.mark.parametrize(("name", "shown"), [
    ("TOKEN", b"fake-token\r\n"),  # a newline is added on a terminal
    ("NL", b"fake-with-newline\r\n"),  # but not a second one
    ("ML", b"fake-line-1\r\nfake-line-2\r\n"),
    ("MLNL", b"fake-line-1\r\nfake-line-2\r\n"),
])
def test_newline_only_on_a_terminal(seeded: Store, name: str, shown: bytes) -> None:
    fast = run_on_pty([console_script(), "get", "team", f"--name={name}"])
    typer_way = run_on_pty([PY, "-c", TYPER, "get", "team", f"--name={name}"])
    assert fast == typer_way == (0, shown)


def test_on_a_terminal_a_missing_name_asks_for_no_passphrase(protected: Store, cli_run: Run) -> None:
    make_snapshots(cli_run, env={"SECRETSTORE_PASSPHRASE": PW})
    for argv in ([console_script()], [PY, "-c", TYPER]):
        code, output = run_on_pty([*argv, "get", "team", "--name=NOPE"])
        assert (code, output) == (1, b"secretstore: error: no team secret 'NOPE'\r\n"), argv
        code, output = run_on_pty([*argv, "get", "team", "--name=TOKEN"], answers=[PW.encode() + b"\n"])
        assert code == 0, output
        assert output.count(b"Passphrase for") == 1 and output.endswith(b"fake-token\r\n")
        assert PW.encode() not in output
