"""Every test gets its own store, identity, HOME and XDG dirs under tmp_path, and a clean environment.

The suite must never touch the real user's files: ``isolated_env`` points
HOME, every XDG base dir, git's config and every SECRETSTORE_* path at the
test's tmp dir (subprocesses inherit ``os.environ``), and the session guard
below fails the whole run when anything appears, or changes, under the real
user's secretstore dirs.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from secretstore.identity import Identity, create_identity
from secretstore.store import Store

REPO = Path(__file__).resolve().parent.parent

# Fixtures shared by several test modules, for the whole suite. pytest reads pytest_plugins only
# in a top-level conftest, one loaded before the run is configured: this one is (the suite is all
# under tests/, the testpaths). A module's own fixture of the same name overrides one of these.
pytest_plugins = ["tests.fixtures_git", "tests.fixtures_ui"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or os.environ.get("SECRETSTORE_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow or SECRETSTORE_SLOW_TESTS=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# --- the real user's dirs: recorded at session start, compared at the end ---------

# Read once, at import, before any fixture changes the environment.
REAL_HOME = os.path.expanduser("~")
_XDG_DEFAULTS = {
    "XDG_CONFIG_HOME": ".config",
    "XDG_DATA_HOME": ".local/share",
    "XDG_CACHE_HOME": ".cache",
    "XDG_STATE_HOME": ".local/state",
}


def guarded_dirs(environ: dict[str, str] | os._Environ[str], home: str) -> list[str]:
    """The secretstore dirs of the user whose environment is ``environ``: defaults and XDG overrides."""
    found = []
    for variable, default in _XDG_DEFAULTS.items():
        found.append(os.path.join(home, default, "secretstore"))
        chosen = environ.get(variable, "")
        if chosen.startswith("/"):
            found.append(os.path.join(chosen, "secretstore"))
    return sorted(set(found))


def _tree_state(directory: str) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of everything under ``directory`` (the directory itself included)."""
    state: dict[str, tuple[int, int]] = {}
    if not os.path.lexists(directory):
        return state
    for parent, dirs, files in os.walk(directory):
        for name in [".", *dirs, *files]:
            path = os.path.normpath(os.path.join(parent, name))
            try:
                status = os.lstat(path)
            except OSError:
                continue
            state[path] = (status.st_size, status.st_mtime_ns)
    return state


_GUARDED = guarded_dirs(os.environ, REAL_HOME)
_AT_START: dict[str, tuple[int, int]] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    for directory in _GUARDED:
        _AT_START.update(_tree_state(directory))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a test wrote into the real user's secretstore dirs."""
    now: dict[str, tuple[int, int]] = {}
    for directory in _GUARDED:
        now.update(_tree_state(directory))
    touched = sorted(path for path, state in now.items()
                     if path not in _AT_START or (state != _AT_START[path] and not os.path.isdir(path)))
    if not touched:
        return
    lines = ["the tests wrote into the real user's secretstore dirs (they must use tmp_path):",
             *(f"  {path}" for path in touched[:20])]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "isolation guard", red=True)
        reporter.write_line("\n".join(lines))
    else:
        sys.stderr.write("\n".join(lines) + "\n")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Give each test its own HOME, XDG dirs, git config, store, identity, snapshot cache and
    trust state.

    Every SECRETSTORE_* and GIT_* variable the caller had is dropped (a GIT_DIR
    from a git hook would send the git tests into the caller's repository);
    git reads no system config and a global config of the test's own, and
    commits as a test author.
    """
    for key in list(os.environ):
        if key.startswith(("SECRETSTORE_", "GIT_")):
            monkeypatch.delenv(key)
    home = tmp_path / "isolated-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for variable, default in _XDG_DEFAULTS.items():
        monkeypatch.setenv(variable, str(home / default))
    git_config = home / ".gitconfig"
    git_config.write_text("[user]\n\tname = secretstore tests\n\temail = tests@example.invalid\n"
                          "[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(git_config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "secretstore tests")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "tests@example.invalid")
    store = tmp_path / "store"
    identity = tmp_path / "config" / "identity"
    monkeypatch.setenv("SECRETSTORE_DIR", str(store))
    monkeypatch.setenv("SECRETSTORE_IDENTITY", str(identity))
    monkeypatch.setenv("SECRETSTORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SECRETSTORE_STATE_DIR", str(tmp_path / "state"))
    yield {
        "store": str(store),
        "identity": str(identity),
        "cache": str(tmp_path / "cache"),
        "state": str(tmp_path / "state"),
    }


@pytest.fixture
def store(isolated_env: dict[str, str]) -> Store:
    """The store at the test's SECRETSTORE_DIR (a module may define a ``store`` of its own)."""
    return Store(isolated_env["store"])


@pytest.fixture
def identity(isolated_env: dict[str, str]) -> Identity:
    """A new identity at the test's SECRETSTORE_IDENTITY, the one the CLI and the page use."""
    return create_identity(isolated_env["identity"])


def console_script() -> str:
    """The installed ``secretstore`` console script beside this interpreter."""
    candidate = Path(sys.executable).parent / "secretstore"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("secretstore")
    if found is None:
        pytest.fail("the secretstore console script is not installed (run scripts/test)")
    return found


@pytest.fixture
def cli_run() -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Run the real console script: cli_run("set", "team", ..., input=b"...")."""

    def run(*args: str, input: bytes | None = None, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        return subprocess.run(
            [console_script(), *args],
            input=input if input is not None else b"",
            capture_output=True,
            env=full_env,
            timeout=timeout,
            check=False,
        )

    return run


def run_on_pty(argv: list[str], answers: list[bytes] | None = None) -> tuple[int, bytes]:
    """(exit status, everything written to the terminal); answers each prompt ending in ':'."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    output = b""
    pending = list(answers or [])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if pending and output.rstrip().endswith(b":"):
                os.write(fd, pending.pop(0))
                output += b"<answered>"
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output
