"""Passphrase-protected identities: Argon2id + XChaCha20-Poly1305, derived once per command.

Tests use libsodium's INTERACTIVE limits through $SECRETSTORE_ARGON2_LIMITS,
which only the code that wraps a key reads; the default stays MODERATE.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from secretstore import crypto
from secretstore import identity as identities
from secretstore.errors import IdentityError, WrongKeyError
from tests.sharing_helpers import call

PW = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETSTORE_ARGON2_LIMITS", "interactive")


def init_protected(capsys, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    code, out, _err = call(capsys, monkeypatch, "init", "--passphrase", env={"SECRETSTORE_NEW_PASSPHRASE": PW})
    assert code == 0
    return out.strip()


def test_default_limits_are_moderate(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SECRETSTORE_ARGON2_LIMITS")
    assert identities.argon2_limits_for_new_keys() == "moderate"
    assert crypto.ARGON2_LIMITS["moderate"] == (3, 256 * 1024 * 1024)


def test_round_trip_and_public_key_without_passphrase(capsys, monkeypatch, isolated_env) -> None:  # type: ignore[no-untyped-def]
    public = init_protected(capsys, monkeypatch)
    text = Path(isolated_env["identity"]).read_text()
    assert "SECRETSTORE-PROTECTED-KEY-1" in text and "SECRET-KEY-1" not in text
    assert "opslimit=2 memlimit=67108864" in text
    # identity and list never ask for the passphrase
    assert call(capsys, monkeypatch, "identity")[:2] == (0, public + "\n")
    env = {"SECRETSTORE_PASSPHRASE": PW}
    r = call(capsys, monkeypatch, "set", "team", "--name=A", "--value=v1", env=env)
    assert r[0] == 0, r
    code, out, _ = call(capsys, monkeypatch, "list", "team")
    assert code == 0 and "A" in out
    assert call(capsys, monkeypatch, "get", "team", "--name=A", env=env)[:2] == (0, "v1")


def test_wrong_passphrase_is_a_clear_error_exit_1(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    init_protected(capsys, monkeypatch)
    assert call(capsys, monkeypatch, "set", "team", "--name=A", "--value=v1",
                env={"SECRETSTORE_PASSPHRASE": PW})[0] == 0
    code, out, err = call(capsys, monkeypatch, "get", "team", "--name=A",
                          env={"SECRETSTORE_PASSPHRASE": "wrong"})
    assert (code, out) == (1, "") and "wrong passphrase" in err and PW not in err


def test_no_terminal_no_env_fails_and_writes_nothing(capsys, monkeypatch, isolated_env) -> None:  # type: ignore[no-untyped-def]
    init_protected(capsys, monkeypatch)
    code, _out, err = call(capsys, monkeypatch, "set", "team", "--name=A", "--value=v1")
    assert code == 1 and "SECRETSTORE_PASSPHRASE" in err
    assert not Path(isolated_env["store"], "team.toml").exists()


def test_passphrase_derived_once_per_command(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    init_protected(capsys, monkeypatch)
    env = {"SECRETSTORE_PASSPHRASE": PW}
    for name in ("A", "B", "C"):
        assert call(capsys, monkeypatch, "set", "team", f"--name={name}", "--value=v", env=env)[0] == 0
    calls = []
    real = crypto.derive_passphrase_key
    monkeypatch.setattr(crypto, "derive_passphrase_key", lambda *a: calls.append(1) or real(*a))
    assert call(capsys, monkeypatch, "set", "team", "--name=D", "--value=v", env=env)[0] == 0
    assert len(calls) == 1
    calls.clear()
    assert call(capsys, monkeypatch, "get", "team", "--name=B", env=env)[:2] == (0, "v")
    assert len(calls) == 1


def test_change_and_remove_passphrase(capsys, monkeypatch, isolated_env) -> None:  # type: ignore[no-untyped-def]
    public = init_protected(capsys, monkeypatch)
    env = {"SECRETSTORE_PASSPHRASE": PW}
    r = call(capsys, monkeypatch, "set", "team", "--name=A", "--value=v1", env=env)
    assert r[0] == 0, r
    code, _, err = call(capsys, monkeypatch, "passphrase",
                        env={"SECRETSTORE_PASSPHRASE": "bad", "SECRETSTORE_NEW_PASSPHRASE": "new"})
    assert code == 1 and "wrong passphrase" in err
    assert call(capsys, monkeypatch, "passphrase",
                env={"SECRETSTORE_PASSPHRASE": PW, "SECRETSTORE_NEW_PASSPHRASE": "new one"})[0] == 0
    assert call(capsys, monkeypatch, "get", "team", "--name=A", env=env)[0] == 1
    assert call(capsys, monkeypatch, "get", "team", "--name=A",
                env={"SECRETSTORE_PASSPHRASE": "new one"})[:2] == (0, "v1")
    assert call(capsys, monkeypatch, "passphrase", "--remove",
                env={"SECRETSTORE_PASSPHRASE": "new one"})[0] == 0
    text = Path(isolated_env["identity"]).read_text()
    assert "SECRETSTORE-SECRET-KEY-1" in text and public in text
    assert oct(Path(isolated_env["identity"]).stat().st_mode & 0o777) == "0o600"
    assert call(capsys, monkeypatch, "get", "team", "--name=A")[:2] == (0, "v1")
    # no terminal, no new passphrase: nothing changes
    before = Path(isolated_env["identity"]).read_bytes()
    code, _, err = call(capsys, monkeypatch, "passphrase")
    assert code == 2 and "SECRETSTORE_NEW_PASSPHRASE" in err
    assert Path(isolated_env["identity"]).read_bytes() == before


def protected_line(identity: identities.Identity) -> str:
    return identities.protect(identity, PW, "interactive").line()


def test_limits_are_capped_on_read() -> None:
    identity = identities.Identity.generate()
    line = protected_line(identity)
    huge = line.replace("memlimit=67108864", f"memlimit={crypto.MEMLIMIT_RANGE[1] * 2}")
    with pytest.raises(IdentityError, match="outside the accepted range"):
        identities.parse_key_text(huge, "f")
    slow = line.replace("opslimit=2", "opslimit=1000")
    with pytest.raises(IdentityError, match="outside the accepted range"):
        identities.parse_key_text(slow, "f")


def test_every_field_is_authenticated() -> None:
    identity = identities.Identity.generate()
    other = identities.Identity.generate()
    line = protected_line(identity)
    key = identities.parse_key_text(line, "f")
    assert isinstance(key, identities.ProtectedKey)
    assert key.unlock(PW, "f").public_text == identity.public_text
    # swapping the public key (e.g. to make 'identity' print someone else's) breaks the tag
    swapped = line.replace(identity.public_text, other.public_text)
    with pytest.raises(WrongKeyError):
        parsed = identities.parse_key_text(swapped, "f")
        assert isinstance(parsed, identities.ProtectedKey)
        parsed.unlock(PW, "f")
    # a lower cost in the file changes the associated data too
    cheaper = identities.parse_key_text(line.replace("opslimit=2", "opslimit=1"), "f")
    assert isinstance(cheaper, identities.ProtectedKey)
    with pytest.raises(WrongKeyError):
        cheaper.unlock(PW, "f")


def test_protected_secretstore_key_needs_the_passphrase(capsys, monkeypatch, isolated_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    init_protected(capsys, monkeypatch)
    env = {"SECRETSTORE_PASSPHRASE": PW}
    r = call(capsys, monkeypatch, "set", "team", "--name=A", "--value=v1", env=env)
    assert r[0] == 0, r
    monkeypatch.setenv("SECRETSTORE_KEY", Path(isolated_env["identity"]).read_text())
    monkeypatch.setenv("SECRETSTORE_IDENTITY", str(tmp_path / "none"))
    assert call(capsys, monkeypatch, "get", "team", "--name=A", env=env)[:2] == (0, "v1")
    assert call(capsys, monkeypatch, "get", "team", "--name=A")[0] == 1


def test_bad_limits_setting_is_refused(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SECRETSTORE_ARGON2_LIMITS", "none")
    with pytest.raises(Exception, match="choose one of"):
        identities.protect(identities.Identity.generate(), PW)


def test_hidden_prompts_on_a_terminal(cli_run) -> None:  # type: ignore[no-untyped-def]
    from tests.test_core_cli import _run_on_pty

    output = _run_on_pty(["init", "--passphrase"], answers=[b"typed-pw\n", b"typed-pw\n"])
    assert b"typed-pw" not in output and b"ssk2" in output
    assert cli_run("set", "team", "--name=A", "--value=v1",
                   env={"SECRETSTORE_PASSPHRASE": "typed-pw"}).returncode == 0
    output = _run_on_pty(["get", "team", "--name=A"], answers=[b"typed-pw\n"])
    assert output.count(b"Passphrase for") == 1 and output.endswith(b"v1\r\n")
    assert b"typed-pw" not in output
    output = _run_on_pty(["get", "team", "--name=A"], answers=[b"not-it\n"])
    assert b"wrong passphrase" in output and b"v1" not in output
    # list and identity never ask
    assert b"Passphrase" not in _run_on_pty(["list", "team"], answers=[])
    assert b"Passphrase" not in _run_on_pty(["identity"], answers=[])


def test_set_asks_the_passphrase_before_the_value(cli_run) -> None:  # type: ignore[no-untyped-def]
    """A wrong passphrase must not throw away a value the user has just typed."""
    from tests.test_core_cli import _run_on_pty

    _run_on_pty(["init", "--passphrase"], answers=[b"typed-pw\n", b"typed-pw\n"])
    output = _run_on_pty(["set", "team", "--name=B"], answers=[b"typed-pw\n", b"fake-v\n", b"fake-v\n"])
    assert output.index(b"Passphrase for") < output.index(b"Value for B")
    assert b"Set team secret 'B'" in output
    output = _run_on_pty(["set", "team", "--name=C"], answers=[b"not-it\n"])
    assert b"wrong passphrase" in output and b"Value for C" not in output


def test_passphrase_change_keeps_a_symlinked_identity_a_symlink(tmp_path, monkeypatch, cli_run) -> None:  # type: ignore[no-untyped-def]
    real = tmp_path / "vault" / "identity"
    real.parent.mkdir(mode=0o700)
    link = tmp_path / "link-identity"
    assert cli_run("init", env={"SECRETSTORE_IDENTITY": str(real)}).returncode == 0
    link.symlink_to(real)
    done = cli_run("passphrase", env={"SECRETSTORE_IDENTITY": str(link), "SECRETSTORE_NEW_PASSPHRASE": "fake-pw"})
    assert done.returncode == 0, done.stderr
    assert link.is_symlink()
    assert "PROTECTED" in real.read_text()


@pytest.mark.parametrize(("field", "spelling"), [("opslimit", "+2"), ("opslimit", "02"), ("opslimit", "\u0662"),
                                                 ("memlimit", "67_108_864")])
def test_protected_line_numbers_must_be_canonical(field: str, spelling: str) -> None:
    from secretstore.errors import IdentityError
    from secretstore.identity import Identity, ProtectedKey

    line = identities.protect(Identity.generate(), "fake-pw").line()
    value = next(item for item in line.split(" ") if item.startswith(f"{field}="))
    number = int(value.partition("=")[2])
    replaced = spelling if field == "opslimit" else spelling.replace("67_108_864", f"{number:_}")
    bad = line.replace(value, f"{field}={replaced}")
    assert bad != line
    with pytest.raises(IdentityError, match="malformed"):
        ProtectedKey.parse(bad, "test")


def test_protected_line_base64_must_be_canonical() -> None:
    from secretstore.errors import IdentityError
    from secretstore.identity import Identity, ProtectedKey

    line = identities.protect(Identity.generate(), "fake-pw").line()
    salt = next(item for item in line.split(" ") if item.startswith("salt="))
    text = salt.partition("=")[2]  # 16 bytes -> 22 characters, the last carries 4 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert alphabet.index(text[-1]) & 0b1111 == 0  # canonical: the unused bits are zero
    stray = alphabet[alphabet.index(text[-1]) | 1]  # same bytes, a stray bit set
    with pytest.raises(IdentityError, match="malformed"):
        ProtectedKey.parse(line.replace(salt, f"salt={text[:-1]}{stray}"), "test")
