"""paths: the hand-applied XDG rule gives exactly platformdirs' directories."""

from __future__ import annotations

import os
import sys

import platformdirs
import pytest

from secretstore import paths

PLATFORMDIRS = {
    "data": platformdirs.user_data_dir,
    "config": platformdirs.user_config_dir,
    "cache": platformdirs.user_cache_dir,
    "state": platformdirs.user_state_dir,
}
XDG = {"data": "XDG_DATA_HOME", "config": "XDG_CONFIG_HOME", "cache": "XDG_CACHE_HOME", "state": "XDG_STATE_HOME"}


@pytest.mark.skipif(sys.platform != "linux", reason="the hand-applied rule is Linux's")
@pytest.mark.parametrize("kind", sorted(XDG))
@pytest.mark.parametrize("xdg", [None, "", "   ", "relative/dir", "/abs/xdg", "/abs/xdg/", "/"])
@pytest.mark.parametrize("home", ["/home/someone", "/home/someone/", "/", None, "relative-home"])
def test_user_dir_matches_platformdirs(monkeypatch: pytest.MonkeyPatch, kind: str, xdg: str | None,
                                       home: str | None) -> None:
    for name, value in ((XDG[kind], xdg), ("HOME", home)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    expected = PLATFORMDIRS[kind]("secretstore", appauthor=False)
    assert paths.user_dir(kind) == expected
    if (xdg or "").startswith("/") or (home or "").startswith("/"):
        assert paths._xdg_user_dir(kind) is not None  # answered without platformdirs


def test_fast_path_does_not_import_platformdirs_on_linux(tmp_path: os.PathLike[str]) -> None:
    import subprocess

    code = (
        "import sys; from secretstore import paths; "
        "paths.store_dir(); paths.identity_path(); paths.snapshot_dir(); "
        "print('platformdirs' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRETSTORE_", "XDG_"))}
    env["HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ("False" if sys.platform == "linux" else "True")


def test_snapshot_dir_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    monkeypatch.setenv("SECRETSTORE_CACHE_DIR", str(tmp_path))
    assert paths.snapshot_dir() == os.path.join(str(tmp_path), "snapshots")
    for off in ("0", "off", "OFF", "no", "false"):
        monkeypatch.setenv("SECRETSTORE_CACHE", off)
        assert paths.snapshot_dir() is None
    monkeypatch.setenv("SECRETSTORE_CACHE", "1")
    assert paths.snapshot_dir() == os.path.join(str(tmp_path), "snapshots")
    monkeypatch.delenv("SECRETSTORE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg-cache")
    if sys.platform == "linux":
        assert paths.snapshot_dir() == "/xdg-cache/secretstore/snapshots"


def test_the_exec_fast_path_imports_no_heavy_module(isolated_env: dict[str, str]) -> None:
    """A repeated exec (its snapshot used, its audit line appended) imports none of these: each
    costs every run a millisecond or more (datetime did, through a top-level import in audit.py)."""
    import subprocess

    from secretstore.identity import resolve_identity
    from secretstore.store import TEAM, Store

    Store(isolated_env["store"]).set(TEAM, "A", "fake-a", resolve_identity(create=True)[0])
    code = (
        "import os, sys\n"
        "def stop(*args):\n"
        "    print(' '.join(sorted(sys.modules)))\n"
        "    raise SystemExit(0)\n"
        "os.execve = stop\n"
        "sys.argv = ['secretstore', 'exec', '--', 'true']\n"
        "from secretstore.main import main\n"
        "main()\n"
    )
    for _run in range(2):  # the first verifies the file and writes the snapshot; the second uses it
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "secretstore.snapshot" in loaded  # the fast path it is
    # what the interpreter loads before any of ours (an editable install's import hook loads pathlib)
    bare = subprocess.run([sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
                          capture_output=True, text=True, check=True).stdout.split()
    heavy = {"datetime", "typer", "click", "tomllib", "tomli_w", "json", "platformdirs", "pathlib", "subprocess",
             "dataclasses", "nacl.public"}
    assert (loaded - set(bare)) & heavy == set()
