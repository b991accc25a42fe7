"""Every ``SECRETSTORE_*`` environment variable, named once.

The README's "Environment variables" table documents each of them
(tests/test_docs.py checks). Imports nothing: it is on every command's
start-up path.
"""

from __future__ import annotations

STORE = "SECRETSTORE_DIR"
IDENTITY = "SECRETSTORE_IDENTITY"
KEY = "SECRETSTORE_KEY"
PASSPHRASE = "SECRETSTORE_PASSPHRASE"
NEW_PASSPHRASE = "SECRETSTORE_NEW_PASSPHRASE"
ARGON2_LIMITS = "SECRETSTORE_ARGON2_LIMITS"
PROJECT = "SECRETSTORE_PROJECT"
CLUSTER = "SECRETSTORE_CLUSTER"
NO_TEAM = "SECRETSTORE_NO_TEAM"
MASK = "SECRETSTORE_MASK"
CACHE_DIR = "SECRETSTORE_CACHE_DIR"
CACHE = "SECRETSTORE_CACHE"
STATE_DIR = "SECRETSTORE_STATE_DIR"
TRUST = "SECRETSTORE_TRUST"
AUDIT = "SECRETSTORE_AUDIT"
LOCK_TIMEOUT = "SECRETSTORE_LOCK_TIMEOUT"
DEBUG = "SECRETSTORE_DEBUG"
# Test-only hooks (read by fsio.py): kill the writer at a named point; drop the lock.
TEST_CRASH_AT = "SECRETSTORE_TEST_CRASH_AT"
TEST_NO_LOCK = "SECRETSTORE_TEST_NO_LOCK"

# secretstore's own credentials: they open every scope their key can, so a
# program run by exec never inherits them (it gets what was merged, not the
# means to merge).
CREDENTIALS = (KEY, PASSPHRASE, NEW_PASSPHRASE)

# What typer's completion scripts set when the shell asks for completions
# (typer derives it from the program name: _SECRETSTORE_COMPLETE).
COMPLETE = "_SECRETSTORE_COMPLETE"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def is_on(value: str | None) -> bool:
    """``1``, ``true``, ``yes`` or ``on`` (any case, spaces around allowed)."""
    return (value or "").strip().lower() in _TRUE


def is_off(value: str | None) -> bool:
    """``0``, ``false``, ``no`` or ``off``."""
    return (value or "").strip().lower() in _FALSE
