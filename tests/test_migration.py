"""A store and an identity written by secretstore 0.1 keep working, and one command signs them.

The 0.1 files are the committed legacy vectors (format 1, written with the
test-only identity-a), placed in a store as 0.1 left it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from secretstore import scopefile
from secretstore.identity import ProtectedKey, parse_key_text

VECTORS = Path(__file__).resolve().parent / "vectors"


def body(name: str) -> bytes:
    data = (VECTORS / "scope" / name).read_bytes()
    return data[data.index(b"# ---\n") + len(b"# ---\n") :]


def a_0_1_store(isolated_env: dict[str, str]) -> Path:
    """team.toml from 0.1, and identity-a as the user's identity file."""
    store = Path(isolated_env["store"])
    store.mkdir(parents=True, exist_ok=True, mode=0o700)
    (store / "team.toml").write_bytes(body("legacy-success-team.toml"))
    identity = Path(isolated_env["identity"])
    identity.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(VECTORS / "identity-a", identity)
    os.chmod(identity, 0o600)
    return store


def test_a_0_1_store_is_read_with_a_note_then_signed_by_upgrade(cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    store = a_0_1_store(isolated_env)
    done = cli_run("get", "team", "--name=API_KEY")
    assert done.returncode == 0 and done.stdout == b"sk-test-4f9a1c2e"
    assert b"was written by secretstore 0.1 and is not signed" in done.stderr
    assert b"secretstore upgrade" in done.stderr
    doctor = cli_run("doctor")
    assert doctor.returncode == 1 and b"not signed (written by secretstore 0.1)" in doctor.stdout
    upgraded = cli_run("upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert b"Signed: team" in upgraded.stdout
    file = scopefile.parse((store / "team.toml").read_bytes(), "team.toml")
    assert file.version == scopefile.FORMAT and file.counter == 1
    done = cli_run("get", "team", "--name=API_KEY")
    assert done.returncode == 0 and done.stdout == b"sk-test-4f9a1c2e" and done.stderr == b""
    assert cli_run("doctor").returncode == 0
    # now that the store is signed, a 0.1 file put back in it is refused
    (store / "team.toml").write_bytes(body("legacy-success-team.toml"))
    refused = cli_run("get", "team", "--name=API_KEY")
    assert refused.returncode == 1 and refused.stdout == b""
    assert b"is not signed (a secretstore 0.1 file) in a store whose files are signed" in refused.stderr


def test_the_first_write_signs_a_0_1_file(cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    store = a_0_1_store(isolated_env)
    assert cli_run("set", "team", "--name=NEW", "--value=fake-new").returncode == 0
    file = scopefile.parse((store / "team.toml").read_bytes(), "team.toml")
    assert file.signed and set(file.live_names()) == {"API_KEY", "DB_PASSWORD", "TLS_KEY", "NEW"}
    assert cli_run("get", "team", "--name=TLS_KEY").stdout.startswith(b"-----BEGIN TEST KEY-----")


def test_a_0_1_identity_signs_and_prints_its_new_public_key(cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    a_0_1_store(isolated_env)
    key = cli_run("identity").stdout.decode().strip()
    assert key.startswith("ssk2")
    assert "SECRETSTORE-SECRET-KEY-1" in Path(isolated_env["identity"]).read_text()  # the file is unchanged


def test_a_0_1_protected_identity_is_upgraded_on_first_unlock(cli_run, isolated_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = (VECTORS / "identity" / "protected-version-1.txt").read_text()
    header = {line[2:].split(": ", 1)[0]: line[2:].split(": ", 1)[1] for line in text.splitlines()
              if line.startswith("# ") and ": " in line}
    key_text = text[text.index("# ---\n") + len("# ---\n") :]
    path = Path(isolated_env["identity"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key_text)
    os.chmod(path, 0o600)
    before = parse_key_text(key_text, "v1")
    assert isinstance(before, ProtectedKey) and before.is_legacy
    done = cli_run("identity", env={"SECRETSTORE_PASSPHRASE": json.loads(header["passphrase"])})
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith("ssk2")
    after = parse_key_text(path.read_text(), "upgraded")
    assert isinstance(after, ProtectedKey) and not after.is_legacy
    assert after.public.box_key == before.public.box_key and after.salt == before.salt
    # from now on the whole public key is readable without the passphrase
    again = cli_run("identity")
    assert again.returncode == 0 and again.stdout == done.stdout


def test_a_version_2_file_is_opened_once_by_every_reader(
    isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version-2 file holds its history inline, so the read that stops where a version-3
    file's history would start stops early in it: the rest is read through the descriptor
    already open, not by opening the file again."""
    from secretstore import fsio
    from secretstore.identity import Identity
    from secretstore.store import TEAM, Store

    me = Identity.generate("me")
    store = Store(isolated_env["store"])
    with monkeypatch.context() as writing_v2:
        writing_v2.setattr(scopefile, "WRITE_FORMAT", scopefile.FORMAT_V2)
        store.set(TEAM, "A", "fake-a1", me)
        store.set(TEAM, "A", "fake-a2", me)
    assert Path(store.path(TEAM)).read_bytes().startswith(b'format = "secretstore/v2"')
    opens: list[str] = []
    real = fsio.read_store_file

    def counting(root: str, relpath: str, *args: object, **kwargs: object) -> bytes | None:
        opens.append(relpath)
        return real(root, relpath, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fsio, "read_store_file", counting)
    assert store.read_current(TEAM) is not None and opens == ["team.toml"]
    opens.clear()
    assert store.get_version(TEAM, "A", 1, me) == "fake-a1"
    assert opens.count("team.toml") == 1
