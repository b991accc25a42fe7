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
