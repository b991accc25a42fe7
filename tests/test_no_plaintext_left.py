"""A writer killed with SIGKILL leaves no plaintext: ``inject -o`` and ``passphrase --remove``.

Both wrote a 0600 temp file holding plaintext (the rendered config, the
unprotected key) that nothing removed after a SIGKILL. The bytes now go to an
unnamed file (O_TMPFILE) that is linked into place only once complete: a kill
before that leaves nothing. Replacing an existing file still links a temp
name just before the rename; a kill in that window leaves one, which the next
write of the same file removes once it is over a minute old (a younger one may
be a running writer's).
"""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import pytest

from secretstore import fsio
from tests.test_crash import left_by_early_kill

NO_CACHE = {"SECRETSTORE_CACHE": "0"}  # so the only file inject writes is its output


def leftovers(directory: Path, base: str) -> list[Path]:
    return sorted(directory.glob(f".{base}.tmp-*"))


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def template(tmp_path: Path, cli_run) -> Path:
    assert cli_run("set", "team", "--name=TOKEN", "--value=fake-plaintext-token").returncode == 0
    path = tmp_path / "config.tpl"
    path.write_text("token: {{ secret:TOKEN }}\n")
    return path


def inject(cli_run, template: Path, out: Path, crash: str | None = None):  # type: ignore[no-untyped-def]
    env = dict(NO_CACHE)
    if crash:
        env["SECRETSTORE_TEST_CRASH_AT"] = crash
    return cli_run("inject", "-i", str(template), "-o", str(out), env=env)


@pytest.mark.parametrize("point", ["after-temp-write", "after-fsync"])
@pytest.mark.parametrize("existing", [False, True], ids=["new-output", "replaced-output"])
def test_inject_killed_before_link_leaves_no_plaintext(template: Path, cli_run, tmp_path: Path,
                                                       point: str, existing: bool) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "config.yaml"
    if existing:
        out.write_text("old: fake\n")
    done = inject(cli_run, template, out, point)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert len(leftovers(out_dir, "config.yaml")) == left_by_early_kill(str(out_dir))
    assert sorted(p.name for p in out_dir.iterdir()) == (["config.yaml"] if existing else [])
    if existing:
        assert out.read_text() == "old: fake\n"
    if left_by_early_kill(str(out_dir)) == 0:
        for path in out_dir.rglob("*"):
            assert b"fake-plaintext-token" not in path.read_bytes()


def test_inject_killed_between_link_and_rename_is_cleaned_by_the_next_write(template: Path, cli_run,
                                                                           tmp_path: Path) -> None:
    out = tmp_path / "config.yaml"
    out.write_text("old: fake\n")
    done = inject(cli_run, template, out, "after-link")
    assert done.returncode == -signal.SIGKILL
    assert out.read_text() == "old: fake\n"
    [left] = leftovers(tmp_path, "config.yaml")
    assert stat.S_IMODE(left.stat().st_mode) == 0o600
    assert left.read_bytes() == b"token: fake-plaintext-token\n"
    # A young temp may be a running writer's: the next write leaves it alone...
    assert inject(cli_run, template, out).returncode == 0
    assert leftovers(tmp_path, "config.yaml") == [left]
    # ...and removes it once it is over a minute old.
    age(left, fsio.LEFTOVER_AGE + 60)
    assert inject(cli_run, template, out).returncode == 0
    assert leftovers(tmp_path, "config.yaml") == []
    assert out.read_text() == "token: fake-plaintext-token\n"


def test_a_leftover_of_an_older_version_is_removed_too(template: Path, cli_run, tmp_path: Path) -> None:
    """Older versions left named temp files after any kill; the next write removes them as well."""
    out = tmp_path / "config.yaml"
    stale = tmp_path / ".config.yaml.tmp-0123456789ab"
    stale.write_bytes(b"token: fake-plaintext-token\n")
    age(stale, fsio.LEFTOVER_AGE + 60)
    other = tmp_path / ".config.yaml.tmp-not-ours"  # not a name we make: left alone
    other.write_bytes(b"x")
    age(other, fsio.LEFTOVER_AGE + 60)
    assert inject(cli_run, template, out).returncode == 0
    assert not stale.exists()
    assert other.exists()


@pytest.fixture
def protected(isolated_env: dict[str, str], cli_run, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SECRETSTORE_ARGON2_LIMITS", "interactive")
    assert cli_run("set", "team", "--name=TOKEN", "--value=fake-token").returncode == 0
    done = cli_run("passphrase", env={"SECRETSTORE_NEW_PASSPHRASE": "fake-passphrase"})
    assert done.returncode == 0, done.stderr
    path = Path(isolated_env["identity"])
    assert "PROTECTED" in path.read_text()
    return path


def remove_passphrase(cli_run, crash: str | None = None):  # type: ignore[no-untyped-def]
    env = {"SECRETSTORE_PASSPHRASE": "fake-passphrase"}
    if crash:
        env["SECRETSTORE_TEST_CRASH_AT"] = crash
    return cli_run("passphrase", "--remove", env=env)


@pytest.mark.parametrize("point", ["after-temp-write", "after-fsync"])
def test_passphrase_remove_killed_before_link_leaves_no_unprotected_key(protected: Path, cli_run,
                                                                        point: str) -> None:
    before = protected.read_bytes()
    done = remove_passphrase(cli_run, point)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert protected.read_bytes() == before
    assert len(leftovers(protected.parent, protected.name)) == left_by_early_kill(str(protected.parent))
    got = cli_run("get", "team", "--name=TOKEN", env={"SECRETSTORE_PASSPHRASE": "fake-passphrase"})
    assert got.stdout == b"fake-token"


def test_passphrase_remove_killed_after_link_is_cleaned_by_the_next_write(protected: Path, cli_run) -> None:
    done = remove_passphrase(cli_run, "after-link")
    assert done.returncode == -signal.SIGKILL
    assert "PROTECTED" in protected.read_text()  # the identity is the old one
    [left] = leftovers(protected.parent, protected.name)
    assert "SECRETSTORE-SECRET-KEY-1" in left.read_text()  # the unprotected key: must not stay
    age(left, fsio.LEFTOVER_AGE + 60)
    assert remove_passphrase(cli_run).returncode == 0
    assert leftovers(protected.parent, protected.name) == []
    assert "PROTECTED" not in protected.read_text()


def test_a_new_identity_killed_before_link_leaves_nothing(isolated_env: dict[str, str], cli_run) -> None:
    """init writes the unprotected key with create_exclusive: unnamed until it is linked."""
    identity = Path(isolated_env["identity"])
    done = cli_run("init", env={"SECRETSTORE_TEST_CRASH_AT": "after-fsync"})
    assert done.returncode == -signal.SIGKILL
    assert not identity.exists()
    assert len(leftovers(identity.parent, identity.name)) == left_by_early_kill(str(identity.parent))
    assert cli_run("init").returncode == 0


# --- the writer itself, in process ------------------------------------------------------

def _refuse_link(fd: int, dir_fd: int, name: str) -> None:
    raise OSError(18, "Invalid cross-device link")  # as a sandbox with a restricted /proc may


@pytest.mark.parametrize("way", ["o_tmpfile", "no-o_tmpfile", "link-refused"])
def test_atomic_write_and_create_exclusive_every_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     way: str) -> None:
    if way == "no-o_tmpfile":
        monkeypatch.setattr(fsio, "_open_anonymous", lambda directory, mode: None)
    if way == "link-refused":
        monkeypatch.setattr(fsio, "_link_anonymous", _refuse_link)
    tmp_path = tmp_path / "w"
    target = tmp_path / "f"
    fsio.atomic_write(str(target), b"one")
    assert target.read_bytes() == b"one" and stat.S_IMODE(target.stat().st_mode) == 0o600
    fsio.atomic_write(str(target), b"two")
    assert target.read_bytes() == b"two"
    assert fsio.create_exclusive(str(tmp_path / "g"), b"three") is True
    assert fsio.create_exclusive(str(tmp_path / "g"), b"four") is False
    assert (tmp_path / "g").read_bytes() == b"three"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "g"]


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path = tmp_path / "w"
    tmp_path.mkdir()
    target = tmp_path / "f"
    target.write_bytes(b"old")
    real_replace = os.replace

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(fsio.SecretStoreError, match="cannot write"):
        fsio.atomic_write(str(target), b"new")
    monkeypatch.setattr(os, "replace", real_replace)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
