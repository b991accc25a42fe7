"""secretstore get: reading one value, from exec's snapshot when it opens.

Fake values only. Every subprocess has a timeout; no test measures time.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from secretstore import fastget
from secretstore.errors import NotFoundError
from secretstore.identity import Identity, resolve_identity, write_identity_file
from secretstore.scopefile import ScopeFile
from secretstore.store import TEAM, Scope, Store, UnlockedScope

CLUSTER = Scope("cluster", "gpu-a")
PROJECT = Scope("project", "prj42")
THEIRS = Scope("cluster", "theirs")  # sealed to someone else only
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


def snapshot_files(isolated_env: dict[str, str]) -> list[Path]:
    directory = Path(isolated_env["cache"]) / "snapshots"
    return sorted(directory.iterdir()) if directory.is_dir() else []


def make_snapshots(cli_run: Run, env: dict[str, str] | None = None) -> None:
    done = cli_run("exec", "--project", "prj42", "--cluster", "gpu-a", "--", "true", env=env)
    assert done.returncode == 0, done.stderr


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
        assert fastget.read_secret(seeded, TEAM, name) == value
    assert fastget.read_secret(seeded, PROJECT, "DB") == "fake-project-db"
    with pytest.raises(NotFoundError, match="^no team secret 'NOPE'$"):
        fastget.read_secret(seeded, TEAM, "NOPE")


def test_a_changed_file_is_read_the_full_way_and_no_snapshot_is_written(
        seeded: Store, cli_run: Run, isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    make_snapshots(cli_run)
    before = {path: path.read_bytes() for path in snapshot_files(isolated_env)}
    assert cli_run("set", "team", "--name=OTHER", "--value=fake-other").returncode == 0
    for name, value in (("TOKEN", b"fake-token"), ("OTHER", b"fake-other")):
        done = cli_run("get", "team", f"--name={name}")
        assert (done.returncode, done.stdout, done.stderr) == (0, value, b"")
    assert {path: path.read_bytes() for path in snapshot_files(isolated_env)} == before
    full_reads = _count_full_reads(monkeypatch)
    assert fastget.read_secret(seeded, TEAM, "OTHER") == "fake-other"
    assert full_reads == [TEAM]


def test_a_damaged_snapshot_is_ignored(seeded: Store, cli_run: Run, isolated_env: dict[str, str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    make_snapshots(cli_run)
    for path in snapshot_files(isolated_env):
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))
    done = cli_run("get", "team", "--name=ML")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"fake-line-1\nfake-line-2", b"")
    full_reads = _count_full_reads(monkeypatch)
    assert fastget.read_secret(seeded, TEAM, "TOKEN") == "fake-token"
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
        fastget.read_secret(seeded, TEAM, "NOPE")


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
    done = cli_run("get", "team", "--name=NOPE")
    assert (done.returncode, done.stderr) == (1, b"secretstore: error: no team secret 'NOPE'\n")
    done = cli_run("get", "team", "--name=TOKEN")
    assert done.returncode == 1
    assert b"is protected by a passphrase and there is no terminal" in done.stderr
    done = cli_run("get", "team", "--name=TOKEN", env={"SECRETSTORE_PASSPHRASE": PW})
    assert (done.returncode, done.stdout) == (0, b"fake-token")
    # With the passphrase, the snapshot replaces the verification.
    monkeypatch.setenv("SECRETSTORE_PASSPHRASE", PW)
    full_reads = _count_full_reads(monkeypatch)
    assert fastget.read_secret(protected, TEAM, "TOKEN") == "fake-token"
    assert full_reads == []
