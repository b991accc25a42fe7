"""A scope file git merged as text (no merge driver in that checkout) is named for what it is:
not "damaged or truncated", but git's conflict markers, with the way out. Fake values only."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from secretstore import scopefile
from secretstore.errors import StoreFormatError, UnmergedError

Run = Callable[..., subprocess.CompletedProcess[bytes]]

HINT = ("secretstore: hint: run 'secretstore git setup' in the checkout, then 'git checkout -m -- FILE' "
        "merges it again with the driver; check it, then git add FILE")


def git(*args: str, cwd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60, check=False,
                          env={**os.environ, **(env or {})})


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_text_merge_without_the_driver_says_so_and_checkout_m_merges_it_again(
        isolated_env: dict[str, str], cli_run: Run, tmp_path: Path) -> None:
    store = isolated_env["store"]
    os.makedirs(store, exist_ok=True)
    assert git("init", "-q", cwd=store).returncode == 0
    assert cli_run("set", "team", "--name", "A", "--value", "fake-a").returncode == 0
    assert git("add", "-A", cwd=store).returncode == 0 and git("commit", "-qm", "a", cwd=store).returncode == 0
    assert git("checkout", "-qb", "other", cwd=store).returncode == 0
    # another person's write: their own trust state, so this one's counter is not theirs
    assert cli_run("set", "team", "--name", "A", "--value", "fake-b",
                   env={"SECRETSTORE_STATE_DIR": str(tmp_path / "other-state")}).returncode == 0
    assert git("commit", "-qam", "b", cwd=store).returncode == 0
    assert git("checkout", "-q", "-", cwd=store).returncode == 0
    assert cli_run("set", "team", "--name", "A", "--value", "fake-c").returncode == 0
    assert git("commit", "-qam", "c", cwd=store).returncode == 0
    merged = git("merge", "other", cwd=store)
    assert merged.returncode != 0 and b"CONFLICT" in merged.stdout
    for argv in (["list", "team"], ["get", "team", "--name", "A"], ["exec", "--", "true"]):
        done = cli_run(*argv)
        assert (done.returncode, done.stdout) == (1, b"")
        assert done.stderr.decode().splitlines() == [
            "secretstore: error: team.toml holds git's conflict markers: git merged it as text, "
            "without secretstore's merge driver",
            HINT,
        ]
    # the way out the hint gives: the driver, then git merges the file again with it
    assert cli_run("git", "setup").returncode == 0
    assert git("checkout", "-m", "--", "team.toml", cwd=store).returncode == 0
    done = cli_run("list", "team")
    assert done.returncode == 1 and b"team.toml is unmerged: both sides of a git merge changed A" in done.stderr
    assert cli_run("git", "resolve", "team", "--name", "A", "--theirs").returncode == 0
    assert cli_run("get", "team", "--name", "A").stdout == b"fake-b"


@pytest.mark.parametrize("body", [
    b"format = \"secretstore/v1\"\n<<<<<<< HEAD\n[a]\n=======\n[b]\n>>>>>>> other\n",
    b"<<<<<<< ours\nx\n=======\ny\n>>>>>>> theirs\n",
])
def test_conflict_markers_are_named_in_scope_files_and_the_roster(body: bytes) -> None:
    with pytest.raises(UnmergedError, match="holds git's conflict markers"):
        scopefile.parse(body, "team.toml")
    with pytest.raises(UnmergedError, match="holds git's conflict markers"):
        scopefile.load_toml(body, "recipients.toml", arrays=True)


def test_damage_without_markers_is_still_damage() -> None:
    for body in (b"format = \"secretstore/v1\"\n[a\n", b"x = 1\n<<<<<<< only one marker\n"):
        with pytest.raises(StoreFormatError) as refused:
            scopefile.parse(body, "team.toml")
        assert not isinstance(refused.value, UnmergedError)
