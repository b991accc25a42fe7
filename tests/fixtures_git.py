"""Fixtures for the merge-driver tests (test_gitmerge.py, test_merge_replay.py), registered for
the whole suite by ``pytest_plugins`` in tests/conftest.py.

``alice`` and ``bob`` are two identities of their own under the test's tmp dir (not the
environment's identity, conftest's ``identity``); the store they write is conftest's ``store``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from secretstore.identity import Identity, create_identity


@pytest.fixture
def alice(tmp_path: Path) -> Identity:
    return create_identity(str(tmp_path / "keys" / "alice"))


@pytest.fixture
def bob(tmp_path: Path) -> Identity:
    return create_identity(str(tmp_path / "keys" / "bob"))
