"""doctor's git check: a store outside any checkout costs no git process. Fake values only."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from secretstore import doctor
from secretstore.identity import resolve_identity
from secretstore.store import TEAM, Store


@pytest.fixture
def store(isolated_env: dict[str, str]) -> Store:
    store = Store(isolated_env["store"])
    store.set(TEAM, "TEAM_ONLY", "fake-team", resolve_identity(create=True)[0])
    return store


def _git_lines(store: Store) -> list[str]:
    return [f"{finding.level}: {finding.message}" for finding in doctor.diagnose(store)
            if finding.message.startswith("git:")]


def test_outside_any_checkout_no_git_runs(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not any((parent / ".git").exists() for parent in [Path(store.root), *Path(store.root).parents])

    def no_git(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"ran {args}")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert _git_lines(store) == ["info: git: the store is not a git checkout"]


@pytest.mark.parametrize("where", ["store", "parent"])
def test_inside_a_checkout_git_is_asked(store: Store, where: str) -> None:
    top = Path(store.root) if where == "store" else Path(store.root).parent
    subprocess.run(["git", "init", "-q", str(top)], check=True, timeout=60)
    assert _git_lines(store) == ["warning: git: the merge driver is not set up here: run 'secretstore git setup'"]


def test_git_dir_in_the_environment_still_asks_git(store: Store, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere.git"
    subprocess.run(["git", "init", "-q", "--bare", str(elsewhere)], check=True, timeout=60)
    asked: list[object] = []
    real_run = subprocess.run

    def spy(*args: object, **kwargs: object) -> object:
        asked.append(args)
        return real_run(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", spy)
    monkeypatch.setenv("GIT_DIR", str(elsewhere))
    doctor.diagnose(store)
    assert asked


def test_damaged_history_is_an_error_though_current_values_read(store: Store, cli_run) -> None:  # type: ignore[no-untyped-def]
    """Version 3: readers of current values never look at history; doctor does, without a key."""
    me = resolve_identity(create=False)[0]
    store.set(TEAM, "TEAM_ONLY", "fake-team-2", me)  # the first value is now history
    path = Path(store.path(TEAM))
    data = path.read_bytes()
    at = data.index(b"[[secrets.TEAM_ONLY.history]]") + 60
    path.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:])
    assert store.read(TEAM, me) == {"TEAM_ONLY": "fake-team-2"}
    done = cli_run("doctor")
    assert done.returncode == 1
    assert "error: team.toml: the earlier versions of TEAM_ONLY do not match what its entry says" in done.stdout.decode()
    refused = cli_run("history", "team", "--name", "TEAM_ONLY")
    assert refused.returncode == 1 and "earlier versions of TEAM_ONLY do not match" in refused.stderr.decode()
    assert cli_run("get", "team", "--name", "TEAM_ONLY").stdout == b"fake-team-2"
