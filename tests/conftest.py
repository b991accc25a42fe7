"""Every test gets its own store and identity under tmp_path, and a clean SECRETSTORE_* environment."""

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

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or os.environ.get("SECRETSTORE_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow or SECRETSTORE_SLOW_TESTS=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Point the store, the identity, the snapshot cache and the trust state at tmp_path; drop any SECRETSTORE_* the caller had."""
    for key in list(os.environ):
        if key.startswith("SECRETSTORE_"):
            monkeypatch.delenv(key)
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
