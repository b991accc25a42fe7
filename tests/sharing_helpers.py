"""Helpers shared by the identity, passphrase, recipients, rotation and git-flow tests."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from secretstore.cli import run
from tests.conftest import console_script


def call(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
         stdin: bytes = b"", env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process with piped (non-terminal) stdin: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    with monkeypatch.context() as scoped:
        for key, value in (env or {}).items():
            scoped.setenv(key, value)
        code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


class Person:
    """One user: an identity, a trust state and a cache of their own, and a clone."""

    def __init__(self, root: Path, name: str, base_env: dict[str, str]) -> None:
        self.name = name
        home = root / name
        self.store = home / "store"
        self.env = dict(base_env)
        self.env.update(
            SECRETSTORE_DIR=str(self.store),
            SECRETSTORE_IDENTITY=str(home / "identity"),
            SECRETSTORE_STATE_DIR=str(home / "state"),
            SECRETSTORE_CACHE_DIR=str(home / "cache"),
            GIT_AUTHOR_NAME=name, GIT_COMMITTER_NAME=name,
            GIT_AUTHOR_EMAIL=f"{name}@example.invalid", GIT_COMMITTER_EMAIL=f"{name}@example.invalid",
        )
        self.key = ""

    def ss(self, *args: str, ok: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([console_script(), *args], env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=60, check=False)
        if ok:
            assert done.returncode == 0, (self.name, args, done.stdout, done.stderr)
        return done

    def git(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["git", "-C", str(self.store), *args], env=self.env, capture_output=True,
                              text=True, timeout=60, check=False)
        if ok:
            assert done.returncode == 0, (self.name, args, done.stdout, done.stderr)
        return done

    def init(self) -> str:
        self.key = self.ss("init").stdout.strip()
        return self.key

    def clone(self, origin: Path) -> None:
        subprocess.run(["git", "clone", "-q", str(origin), str(self.store)], env=self.env, check=True)
        self.ss("git", "setup")

    def publish(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", "origin", "HEAD:main")

    def pull(self, *extra: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.git("pull", "-q", "--no-edit", *extra, "origin", "main", ok=ok)


def team_of(tmp_path: Path, names: tuple[str, ...]) -> dict[str, Person]:
    """People with a home each (identity initialised), and the first one's store as a git
    repository set up for secretstore with ``origin`` (a bare repository) as its remote.

    The result maps each name to its Person, and "origin" to the bare repository's path.
    """
    home = tmp_path / "home"
    home.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SECRETSTORE_", "GIT_", "XDG_"))}
    base.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=str(home / "gitconfig"))
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "--bare", "-q", "-b", "main", str(origin)], env=base, check=True)
    people: dict[str, Person] = {name: Person(tmp_path, name, base) for name in names}
    for person in people.values():
        person.init()
    first = people[names[0]]
    first.store.mkdir(parents=True)
    first.git("init", "-q", "-b", "main")
    first.ss("git", "setup")
    first.git("remote", "add", "origin", str(origin))
    return {**people, "origin": origin}  # type: ignore[dict-item]
