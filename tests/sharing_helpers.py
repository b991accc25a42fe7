"""Helpers shared by the identity, passphrase, recipients and rotation tests."""

from __future__ import annotations

import io
import sys

import pytest

from secretstore.cli import run


def call(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
         stdin: bytes = b"", env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process with piped (non-terminal) stdin: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    with monkeypatch.context() as scoped:
        for key, value in (env or {}).items():
            scoped.setenv(key, value)
        code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err
