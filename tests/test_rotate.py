"""rotate: new data keys, everything re-encrypted, and a SIGKILL at any point leaves a readable store."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from secretstore.identity import Identity, load_or_create_identity
from secretstore.store import TEAM, Scope, Store
from tests.sharing_helpers import call

SCOPES = [TEAM, Scope("project", "p1"), Scope("cluster", "gpu-a"), Scope("cluster", "gpu-b")]


@pytest.fixture
def filled(isolated_env: dict[str, str]) -> tuple[Store, Identity, dict[Scope, dict[str, str]]]:
    store = Store(isolated_env["store"])
    identity, _ = load_or_create_identity(isolated_env["identity"])
    expected: dict[Scope, dict[str, str]] = {}
    for number, scope in enumerate(SCOPES):
        values = {f"S{number}_{i}": f"value-{number}-{i}" for i in range(3)}
        for name, value in values.items():
            store.set(scope, name, value, identity)
        expected[scope] = values
    return store, identity, expected


def data_keys(store: Store, identity: Identity) -> dict[Scope, bytes]:
    keys = {}
    for scope in store.scopes():
        unlocked = store.unlock(scope, identity)
        assert unlocked is not None
        keys[scope] = unlocked.keys.data_key
    return keys


def test_rotate_all_changes_every_key_and_keeps_every_value(filled, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store, identity, expected = filled
    before = data_keys(store, identity)
    old_bytes = {scope: Path(store.path(scope)).read_text() for scope in SCOPES}
    code, out, _ = call(capsys, monkeypatch, "rotate", "--all")
    assert code == 0 and out.startswith("Rotated 4 scope(s)")
    after = data_keys(store, identity)
    assert all(before[scope] != after[scope] for scope in SCOPES)
    for scope in SCOPES:
        assert store.read(scope, identity) == expected[scope]
        text = Path(store.path(scope)).read_text()
        for line in old_bytes[scope].splitlines():
            if line.startswith(("nonce", "ciphertext", "sealed_key")):
                assert line not in text  # nothing left encrypted under the old key


def test_rotate_one_scope_and_usage(filled, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store, identity, _ = filled
    before = data_keys(store, identity)
    assert call(capsys, monkeypatch, "rotate", "cluster", "--id=gpu-a")[:2] == (
        0, "Rotated 1 scope(s): cluster gpu-a\n")
    after = data_keys(store, identity)
    assert [s for s in SCOPES if before[s] != after[s]] == [Scope("cluster", "gpu-a")]
    assert call(capsys, monkeypatch, "rotate")[0] == 2
    assert call(capsys, monkeypatch, "rotate", "team", "--all")[0] == 2
    assert call(capsys, monkeypatch, "rotate", "project", "--id=nope")[0] == 1


@pytest.mark.parametrize(
    "point", ["after-temp-write", "after-fsync", "after-replace", "between-scopes"]
)
def test_rotation_killed_midway_leaves_a_readable_store(filled, cli_run, point) -> None:  # type: ignore[no-untyped-def]
    store, identity, expected = filled
    before = data_keys(store, identity)
    result = cli_run("rotate", "--all", env={"SECRETSTORE_TEST_CRASH_AT": point})
    assert result.returncode == -signal.SIGKILL, result.stderr
    after = data_keys(store, identity)  # every file opens and verifies
    for scope in SCOPES:
        assert store.read(scope, identity) == expected[scope]
    rotated = [scope for scope in SCOPES if before[scope] != after[scope]]
    # the kill comes during the first file (temp/fsync) or right after it (replace, between)
    assert rotated == ([] if point in ("after-temp-write", "after-fsync") else [TEAM])
    # a rerun completes, and leftover temp files are cleaned up by the next writer
    assert cli_run("rotate", "--all").returncode == 0
    for scope in SCOPES:
        assert store.read(scope, identity) == expected[scope]
    leftovers = [n for _d, _s, files in os.walk(store.root) for n in files if ".tmp-" in n]
    assert leftovers == []


def test_progress_on_a_terminal_only(filled, cli_run) -> None:  # type: ignore[no-untyped-def]
    from tests.test_core_cli import _run_on_pty

    output = _run_on_pty(["rotate", "--all"], answers=[])
    assert b"4/4" in output and b"Rotated 4 scope(s)" in output
    piped = cli_run("rotate", "--all")
    assert piped.returncode == 0 and b"4/4" not in piped.stderr


@pytest.mark.parametrize("point", ["after-fsync", "after-replace"])
def test_recipient_removal_killed_midway_can_be_rerun(filled, cli_run, tmp_path, point) -> None:  # type: ignore[no-untyped-def]
    from secretstore.identity import create_identity

    store, identity, expected = filled
    bob = create_identity(str(tmp_path / "bob"))
    assert cli_run("recipients", "add", bob.public_text).returncode == 0
    result = cli_run("recipients", "remove", bob.public_text, env={"SECRETSTORE_TEST_CRASH_AT": point})
    assert result.returncode == -signal.SIGKILL
    for scope in SCOPES:  # the owner reads everything, old file or new
        assert store.read(scope, identity) == expected[scope]
    assert cli_run("recipients", "remove", bob.public_text).returncode == 0
    for scope in SCOPES:
        assert store.read(scope, identity) == expected[scope]
        file = store.load(scope)
        assert file is not None and [s.public_key for s in file.recipients] == [identity.public_text]
    roster = store.roster(identity.public)
    assert roster is None or bob.public not in roster.recipients()
