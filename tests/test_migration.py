"""A store written by secretstore 0.1 is refused until its owner signs it with ``upgrade``; an identity
written by 0.1 keeps working.

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
    (store / "team.toml").write_bytes(body("legacy-unsigned-team.toml"))
    identity = Path(isolated_env["identity"])
    identity.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(VECTORS / "identity-a", identity)
    os.chmod(identity, 0o600)
    return store


TEAM_VALUES = ("sk-test-4f9a1c2e", "p\u00e4ssw\u00f6rd", "BEGIN TEST KEY")  # what legacy-unsigned-team.toml holds


def no_value_in(*streams: bytes) -> None:
    for stream in streams:
        text = stream.decode("utf-8", "replace")
        assert not any(value in text for value in TEAM_VALUES), text


@pytest.mark.parametrize("args", [
    ["get", "team", "--name=API_KEY"], ["list", "team"], ["exec", "--", "sh", "-c", 'printf %s "$API_KEY"'],
    ["exec", "--strict", "--", "sh", "-c", 'printf %s "$API_KEY"'], ["export"], ["history", "team", "--name=API_KEY"],
])
def test_a_0_1_store_is_refused_by_every_reader_even_its_own_writer(cli_run, isolated_env, args) -> None:  # type: ignore[no-untyped-def]
    """No trust state, no signed file anywhere: a 0.1 file is still refused (anyone could have made it)."""
    a_0_1_store(isolated_env)
    done = cli_run(*args)
    assert done.returncode == 1 and done.stdout == b"", (done.stdout, done.stderr)
    no_value_in(done.stdout, done.stderr)
    lines = done.stderr.decode().splitlines()
    assert lines[0] == ("secretstore: error: team.toml is not signed (a secretstore 0.1 file): refusing to use it "
                        "(anyone who can write the store could have made it)"), done.stderr
    assert lines[1].startswith("secretstore: hint: only if you wrote this store yourself with secretstore 0.1, "
                               "run 'secretstore upgrade'") and len(lines) == 2


def test_a_0_1_store_is_signed_only_by_upgrade_yes_after_showing_it(cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    store = a_0_1_store(isolated_env)
    original = (store / "team.toml").read_bytes()
    doctor = cli_run("doctor")
    assert doctor.returncode == 1 and b"team: not signed (written by secretstore 0.1)" in doctor.stdout
    # without a terminal and without --yes: shown, refused, nothing written
    refused = cli_run("upgrade")
    assert refused.returncode == 2, refused.stderr
    assert b"team.toml (team): 3 secrets: API_KEY, DB_PASSWORD, TLS_KEY" in refused.stdout
    assert b"sign only a store you wrote yourself with secretstore 0.1" in refused.stdout
    no_value_in(refused.stdout, refused.stderr)
    assert b"refusing to sign without confirmation" in refused.stderr and b"secretstore upgrade --yes" in refused.stderr
    assert (store / "team.toml").read_bytes() == original and not (store / "recipients.toml").exists()
    assert cli_run("get", "team", "--name=API_KEY").returncode == 1
    upgraded = cli_run("upgrade", "--yes")
    assert upgraded.returncode == 0, upgraded.stderr
    assert b"team.toml (team): 3 secrets: API_KEY, DB_PASSWORD, TLS_KEY" in upgraded.stdout
    assert b"Signed: team" in upgraded.stdout
    no_value_in(upgraded.stdout, upgraded.stderr)
    file = scopefile.parse((store / "team.toml").read_bytes(), "team.toml")
    assert file.version == scopefile.FORMAT and file.counter == 1
    done = cli_run("get", "team", "--name=API_KEY")
    assert done.returncode == 0 and done.stdout == b"sk-test-4f9a1c2e" and done.stderr == b""
    assert cli_run("doctor").returncode == 0
    again = cli_run("upgrade")
    assert again.returncode == 0 and b"Nothing to sign" in again.stdout
    # a 0.1 file put back is refused, like any other
    (store / "team.toml").write_bytes(original)
    refused = cli_run("get", "team", "--name=API_KEY")
    assert refused.returncode == 1 and refused.stdout == b""
    assert b"is not signed (a secretstore 0.1 file): refusing to use it" in refused.stderr


@pytest.mark.parametrize(("answer", "signed"), [(b"y\n", True), (b"n\n", False), (b"\n", False)])
def test_upgrade_on_a_terminal_asks_first(isolated_env, answer, signed) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import console_script, run_on_pty

    store = a_0_1_store(isolated_env)
    original = (store / "team.toml").read_bytes()
    code, output = run_on_pty([console_script(), "upgrade"], [answer])
    assert b"team.toml (team): 3 secrets: API_KEY, DB_PASSWORD, TLS_KEY" in output
    assert b"Sign them as you? [y/N]:" in output
    no_value_in(output)
    if signed:
        assert code == 0 and b"Signed: team" in output, output
        assert scopefile.parse((store / "team.toml").read_bytes(), "team.toml").signed
    else:
        assert code == 1 and b"not confirmed: nothing was signed" in output, output
        assert (store / "team.toml").read_bytes() == original


def test_upgrade_signs_nothing_when_the_store_changed_after_it_was_shown(isolated_env) -> None:  # type: ignore[no-untyped-def]
    """What is signed is exactly what was shown: a file replaced in between (a pull, a push) aborts it."""
    from secretstore.errors import SecretStoreError
    from secretstore.identity import read_key_file
    from secretstore.store import Store
    from tests.legacy_files import forge_v1_scope

    store_dir = a_0_1_store(isolated_env)
    identity = read_key_file(isolated_env["identity"])
    store = Store(str(store_dir))
    shown = store.upgrade_plan(identity)  # type: ignore[arg-type]
    assert [f.scope.relpath for f in shown.files] == ["team.toml"]
    (store_dir / "team.toml").write_bytes(forge_v1_scope("team", None, {"API_KEY": "fake-swapped"}, [identity.public]))
    swapped = (store_dir / "team.toml").read_bytes()
    with pytest.raises(SecretStoreError, match="changed since upgrade showed"):
        store.upgrade(identity, shown)  # type: ignore[arg-type]
    assert (store_dir / "team.toml").read_bytes() == swapped


def test_upgrade_shows_the_0_1_roster_keys_it_would_vouch_for(cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    from secretstore.identity import read_key_file
    from secretstore.keys import Identity
    from tests.legacy_files import forge_v1_roster

    store = a_0_1_store(isolated_env)
    me = read_key_file(isolated_env["identity"]).public  # type: ignore[union-attr]
    stranger = Identity.generate("x").public.with_label("stranger")
    (store / "recipients.toml").write_bytes(forge_v1_roster([me, stranger]))
    refused = cli_run("recipients", "list")
    assert refused.returncode == 1 and b"recipients.toml is not signed (a secretstore 0.1 file)" in refused.stderr
    done = cli_run("set", "project", "--id=new", "--name=X", "--value=fake-x")  # would be sealed to the roster
    assert done.returncode == 1 and not (store / "projects" / "new.toml").exists()
    assert b"recipients.toml is not signed" in done.stderr
    doctor = cli_run("doctor")
    assert doctor.returncode == 1 and b"recipients.toml: not signed (written by secretstore 0.1)" in doctor.stdout
    shown = cli_run("upgrade")
    assert shown.returncode == 2
    assert b"recipients.toml: 2 key(s), each becoming a store-wide member you vouch for" in shown.stdout
    assert stranger.text.encode() + b" (stranger)" in shown.stdout


def test_a_write_to_a_0_1_file_is_refused(cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    """A write would sign the file's content as the writer's: only upgrade, shown and confirmed, does that."""
    store = a_0_1_store(isolated_env)
    original = (store / "team.toml").read_bytes()
    done = cli_run("set", "team", "--name=NEW", "--value=fake-new")
    assert done.returncode == 1 and b"team.toml is not signed (a secretstore 0.1 file)" in done.stderr
    assert (store / "team.toml").read_bytes() == original


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


def test_the_web_page_refuses_a_0_1_file_and_shows_none_of_it(signed_in, store, identity) -> None:  # type: ignore[no-untyped-def]
    """The page reads through the same library: a forged 0.1 team.toml sealed to the page's key is refused."""
    pytest.importorskip("werkzeug")
    from tests.legacy_files import forge_v1_scope

    path = Path(store.root) / "team.toml"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(forge_v1_scope("team", None, {"FORGED_NAME": "fake-forged-value"}, [identity.public]))
    path.chmod(0o600)
    for url in ("/team", "/"):  # no name of the file listed
        response = signed_in.get(url)
        assert "fake-forged-value" not in response.text and "FORGED_NAME" not in response.text, url
    assert "is not signed (a secretstore 0.1 file)" in signed_in.get("/team").text
    versions = signed_in.get("/team/secrets/FORGED_NAME/versions")  # the name is only the URL's here
    assert "fake-forged-value" not in versions.text and "is not signed (a secretstore 0.1 file)" in versions.text
