"""The writer lock waits a bounded time: any local user who can read the store dir can flock it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretstore import fsio
from secretstore.errors import LockTimeoutError, UsageError

HOLDER = r"""
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold_lock(directory: str, seconds: float) -> subprocess.Popen[str]:
    """A second process that holds the store's flock for ``seconds``."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, directory, str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


@pytest.fixture
def store_dir(isolated_env: dict[str, str], cli_run) -> Iterator[str]:
    assert cli_run("set", "team", "--name=KEEP", "--value=fake-keep").returncode == 0
    yield isolated_env["store"]


def test_a_held_lock_fails_the_writer_after_the_timeout(store_dir: str, cli_run) -> None:
    before = Path(store_dir, "team.toml").read_bytes()
    holder = hold_lock(store_dir, 120)
    try:
        done = cli_run("set", "team", "--name=NEW", "--value=fake-new",
                       env={"SECRETSTORE_LOCK_TIMEOUT": "0.5"}, timeout=60)
    finally:
        holder.kill()
        holder.wait()
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert err.startswith(f"secretstore: error: the store {store_dir} is locked by another process")
    assert "waited 0.5 s" in err and "SECRETSTORE_LOCK_TIMEOUT" in err and "fuser -v" in err
    assert "Traceback" not in err and len(err.splitlines()) == 2
    assert Path(store_dir, "team.toml").read_bytes() == before  # nothing written
    # Once the holder is gone, the same command works.
    again = cli_run("set", "team", "--name=NEW", "--value=fake-new", env={"SECRETSTORE_LOCK_TIMEOUT": "0.5"})
    assert again.returncode == 0, again.stderr


def test_a_writer_waits_for_a_lock_released_within_the_timeout(store_dir: str, cli_run) -> None:
    holder = hold_lock(store_dir, 0.5)
    try:
        done = cli_run("set", "team", "--name=NEW", "--value=fake-new",
                       env={"SECRETSTORE_LOCK_TIMEOUT": "60"})
    finally:
        holder.wait()
    assert done.returncode == 0, done.stderr
    assert cli_run("get", "team", "--name=NEW").stdout == b"fake-new"


def test_in_process_timeout_names_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETSTORE_LOCK_TIMEOUT", "0")
    holder = hold_lock(str(tmp_path), 120)
    try:
        with pytest.raises(LockTimeoutError) as info, fsio.locked(str(tmp_path)):
            pass
    finally:
        holder.kill()
        holder.wait()
    assert str(tmp_path) in info.value.message
    with fsio.locked(str(tmp_path)):  # released: taken at once
        pass


def test_default_timeout_is_ten_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETSTORE_LOCK_TIMEOUT", raising=False)
    assert fsio.lock_timeout() == fsio.DEFAULT_LOCK_TIMEOUT == 10.0
    monkeypatch.setenv("SECRETSTORE_LOCK_TIMEOUT", " 2.5 ")
    assert fsio.lock_timeout() == 2.5


@pytest.mark.parametrize("bad", ["abc", "-1", "nan", "inf", "1e999"])
def test_a_bad_timeout_is_a_usage_error(bad: str, monkeypatch: pytest.MonkeyPatch, cli_run,
                                        isolated_env: dict[str, str]) -> None:
    monkeypatch.setenv("SECRETSTORE_LOCK_TIMEOUT", bad)
    with pytest.raises(UsageError):
        fsio.lock_timeout()
    done = cli_run("set", "team", "--name=A", "--value=fake")
    assert done.returncode == 2
    assert b"SECRETSTORE_LOCK_TIMEOUT must be a number of seconds" in done.stderr
    assert not os.path.exists(os.path.join(isolated_env["store"], "team.toml"))
