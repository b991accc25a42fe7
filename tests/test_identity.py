"""init, identity, identity --path, and SECRETSTORE_KEY (nothing read from or written to disk)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from secretstore.identity import Identity, resolve_identity, resolve_public_text
from secretstore.keys import PublicKey as Recipient
from tests.sharing_helpers import call


def test_init_prints_public_key_and_refuses_to_overwrite(capsys, monkeypatch, isolated_env) -> None:  # type: ignore[no-untyped-def]
    code, out, err = call(capsys, monkeypatch, "init")
    assert code == 0
    public = out.strip()
    assert out == public + "\n" and public.startswith("ssk2")
    Recipient.parse(public)  # a valid, checksummed key
    path = Path(isolated_env["identity"])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    before = path.read_bytes()
    code, out, err = call(capsys, monkeypatch, "init")
    assert code == 1 and out == "" and "refusing to overwrite" in err
    assert path.read_bytes() == before
    assert call(capsys, monkeypatch, "identity")[:2] == (0, public + "\n")
    assert call(capsys, monkeypatch, "identity", "--path")[:2] == (0, str(path) + "\n")


def test_identity_without_one_says_how_to_make_one(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, out, err = call(capsys, monkeypatch, "identity")
    assert code == 1 and out == "" and "no identity" in err and "secretstore init" in err


@pytest.mark.parametrize("form", ["whole file", "key line"])
def test_secretstore_key_reads_and_writes_without_touching_disk(
    capsys, monkeypatch, isolated_env, tmp_path, form  # type: ignore[no-untyped-def]
) -> None:
    assert call(capsys, monkeypatch, "init")[0] == 0
    text = Path(isolated_env["identity"]).read_text()
    key = text if form == "whole file" else next(line for line in text.splitlines() if "SECRET-KEY" in line)
    assert call(capsys, monkeypatch, "set", "team", "--name=A", "--value=one")[0] == 0
    # The identity file is elsewhere and must not be created or read.
    missing = tmp_path / "nowhere" / "identity"
    monkeypatch.setenv("SECRETSTORE_IDENTITY", str(missing))
    monkeypatch.setenv("SECRETSTORE_KEY", key)
    assert call(capsys, monkeypatch, "get", "team", "--name=A")[:2] == (0, "one")
    code, _out, err = call(capsys, monkeypatch, "set", "cluster", "--id=gpu-a", "--name=B", "--value=two")
    assert (code, err) == (0, "")
    assert call(capsys, monkeypatch, "get", "cluster", "--id=gpu-a", "--name=B")[:2] == (0, "two")
    assert not missing.exists() and not missing.parent.exists()
    identity, created = resolve_identity(create=True)
    assert not created and identity.source == "SECRETSTORE_KEY"
    assert resolve_public_text() == identity.public_text
    code, _out, err = call(capsys, monkeypatch, "init")
    assert code == 1 and "SECRETSTORE_KEY is set" in err and not missing.exists()


def test_secretstore_key_malformed_is_a_clear_error(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert call(capsys, monkeypatch, "set", "team", "--name=A", "--value=v")[0] == 0
    monkeypatch.setenv("SECRETSTORE_KEY", "SECRETSTORE-SECRET-KEY-1AAAA")
    code, _out, err = call(capsys, monkeypatch, "get", "team", "--name=A")
    assert code == 1 and "SECRETSTORE_KEY" in err


def test_identity_repr_and_errors_never_show_the_secret_key() -> None:
    identity = Identity.generate("test")
    assert identity.secret_line not in repr(identity)
    assert "redacted" in repr(identity)


def test_first_set_still_creates_an_unprotected_identity(capsys, monkeypatch, isolated_env) -> None:  # type: ignore[no-untyped-def]
    code, _out, err = call(capsys, monkeypatch, "set", "team", "--name=A", "--value=v")
    assert code == 0 and "created a new identity" in err
    assert os.path.exists(isolated_env["identity"])


def test_init_refuses_an_identity_inside_the_store(capsys, monkeypatch, isolated_env) -> None:  # type: ignore[no-untyped-def]
    inside = Path(isolated_env["store"]) / "identity"
    monkeypatch.setenv("SECRETSTORE_IDENTITY", str(inside))
    code, out, err = call(capsys, monkeypatch, "init")
    assert (code, out) == (1, "") and "inside the store" in err and not inside.exists()
    inside.parent.mkdir(parents=True)
    monkeypatch.setenv("SECRETSTORE_IDENTITY", str(Path(isolated_env["identity"])))
    assert call(capsys, monkeypatch, "init")[0] == 0
    inside.write_text(Path(isolated_env["identity"]).read_text())
    inside.chmod(0o600)
    monkeypatch.setenv("SECRETSTORE_IDENTITY", str(inside))
    code, out, _ = call(capsys, monkeypatch, "doctor")
    assert code == 1 and "error: identity: the identity" in out and "inside the store" in out


def test_an_identity_path_that_is_a_directory_is_a_clear_error(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import io
    import sys

    from secretstore.cli import run

    directory = tmp_path / "iddir"
    directory.mkdir(mode=0o700)
    monkeypatch.setenv("SECRETSTORE_IDENTITY", str(directory))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert run(["identity"]) == 1
    err = capsys.readouterr().err
    assert err == f"secretstore: error: identity {directory} is not a regular file\n"
