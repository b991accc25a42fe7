"""The suite touches only its own dirs: HOME, XDG dirs and git config are the test's, and a guard
fails the run when anything appears under the real user's secretstore dirs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REAL_HOME, REPO, guarded_dirs

XDG = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")


def test_home_and_xdg_dirs_are_under_the_test_tmp_dir(tmp_path: Path) -> None:
    for variable in ("HOME", *XDG):
        assert Path(os.environ[variable]).is_relative_to(tmp_path), variable
    assert os.path.expanduser("~") != REAL_HOME or REAL_HOME.startswith(str(tmp_path))
    for variable in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        assert variable not in os.environ


def test_the_console_script_and_git_inherit_the_isolated_environment(tmp_path: Path, cli_run) -> None:
    # Without SECRETSTORE_DIR and SECRETSTORE_IDENTITY, the default dirs are the XDG ones under tmp_path.
    env_without = {k: v for k, v in os.environ.items()
                   if k not in ("SECRETSTORE_DIR", "SECRETSTORE_IDENTITY", "SECRETSTORE_CACHE_DIR")}
    done = subprocess.run(
        [sys.executable, "-m", "secretstore", "set", "team", "--name=ISOLATED", "--value=fake"],
        env=env_without, capture_output=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    home = Path(os.environ["HOME"])
    assert (Path(os.environ["XDG_DATA_HOME"]) / "secretstore" / "team.toml").is_file()
    assert (Path(os.environ["XDG_CONFIG_HOME"]) / "secretstore" / "identity").is_file()
    assert home.is_relative_to(tmp_path)
    if shutil.which("git") is not None:
        email = subprocess.run(["git", "config", "--global", "user.email"], capture_output=True,
                               text=True, check=False)
        assert email.stdout.strip() == "tests@example.invalid"
        assert os.environ["GIT_CONFIG_GLOBAL"].startswith(str(tmp_path))
        assert os.environ["GIT_CONFIG_NOSYSTEM"] == "1"


def test_guarded_dirs_cover_defaults_and_xdg_overrides() -> None:
    dirs = guarded_dirs({"XDG_CACHE_HOME": "/elsewhere/cache", "XDG_DATA_HOME": "relative"}, "/h")
    assert "/h/.config/secretstore" in dirs
    assert "/h/.local/share/secretstore" in dirs
    assert "/h/.cache/secretstore" in dirs
    assert "/h/.local/state/secretstore" in dirs
    assert "/elsewhere/cache/secretstore" in dirs
    assert not any("relative" in d for d in dirs)  # a relative XDG value is ignored, as the spec says


INNER_TEST = '''
import os
from pathlib import Path

def test_writes_where_it_should_not() -> None:
    if os.environ.get("LEAK") == "1":
        target = Path(os.environ["OUTER_HOME"], ".cache", "secretstore", "snapshots")
        target.mkdir(parents=True, exist_ok=True)
        (target / "leaked").write_bytes(b"fake")
'''


@pytest.mark.parametrize("leak", [True, False], ids=["deliberate-write", "control"])
def test_the_guard_fails_a_run_that_writes_into_the_real_home(tmp_path: Path, leak: bool) -> None:
    """An inner pytest run whose 'real' HOME is this test's HOME: a write there fails the run."""
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(REPO / "tests" / "conftest.py", suite / "conftest.py")
    (suite / "test_inner.py").write_text(INNER_TEST)
    # the copied conftest names its fixture plugins as tests.fixtures_*: the repo's, on the path
    env = dict(os.environ, OUTER_HOME=os.environ["HOME"], LEAK="1" if leak else "0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(suite),
         "-c", os.devnull, str(suite)],
        cwd=suite, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    if leak:
        assert done.returncode == 1, done.stdout + done.stderr
        assert "isolation guard" in done.stdout
        assert os.path.join(os.environ["HOME"], ".cache", "secretstore", "snapshots", "leaked") in done.stdout
        assert "1 passed" in done.stdout  # the test itself passed: only the guard failed the run
    else:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "isolation guard" not in done.stdout
