"""scripts/bench still runs end to end (slow: it installs the project into .bench-venv)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_bench_runs_one_round() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRETSTORE_")}
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "bench"), "--rounds", "1"],
                          capture_output=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    out = done.stdout.decode()
    for row in ("python -c pass", "exec -- true (3 scopes x 50)", "exec --mask -- true",
                "list team", "get team", "set team (writes)", "import team (writes)", "delete team (writes)",
                "export", "identity", "recipients list", "doctor", "scopes", "--help", "completion"):
        assert row in out
    assert "exec -- true:" in out and "over 3x:" in out


def test_bench_io_times_both_layouts_and_leaves_nothing(tmp_path) -> None:
    """scripts/bench-io (no install: the standard library only) prints every timing it names
    and removes its files; a body as large as the file is refused in one line."""
    script = str(REPO / "scripts" / "bench-io")
    work = tmp_path / "io"
    work.mkdir()
    done = subprocess.run([sys.executable, script, "--mb", "0.5", "--body-mb", "0.1", "--rounds", "2",
                           "--dir", str(work)], capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    out = done.stdout.decode()
    for row in ("write ms", "write fsync ms", "copy_file_range ms", "copy_file_range fsync ms",
                "replace, history inside ms", "replace, history beside ms"):
        assert f"  {row} " in out
    assert list(work.iterdir()) == []
    refused = subprocess.run([sys.executable, script, "--mb", "1", "--body-mb", "1", "--dir", str(work)],
                             capture_output=True, timeout=60, check=False)
    assert refused.returncode == 2 and b"--body-mb" in refused.stderr
