"""One hierarchy of errors, each carrying its exit code and an optional hint.

Messages never contain a secret value: they name scopes, secrets, files and
variables, never what a secret holds.
"""

from __future__ import annotations

# Every exit code secretstore itself chooses (the README's "Exit codes" table).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CANNOT_EXECUTE = 126  # exec: the program exists but cannot be executed (shell convention)
EXIT_NOT_FOUND = 127  # exec: the program was not found (shell convention)
EXIT_INTERRUPTED = 130  # Ctrl-C (or end of input at a prompt) while secretstore itself ran


class SecretStoreError(Exception):
    """Base class: anything the CLI reports as ``secretstore: error: ...``."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class StoreMissingError(SecretStoreError):
    """The store directory does not exist (a reading command never creates it)."""


class UsageError(SecretStoreError):
    """The command line or its input is invalid (bad name, id, entity, value)."""

    exit_code = EXIT_USAGE


class NotFoundError(SecretStoreError):
    """A named secret does not exist in the scope asked for."""


class StoreFormatError(SecretStoreError):
    """A scope or identity file cannot be parsed, or breaks the spec in FORMAT.md."""


class UnmergedError(StoreFormatError):
    """A scope file left in conflict by the git merge driver: readers refuse it until resolved."""


class UnsupportedVersionError(StoreFormatError):
    """A file declares a format version this program does not know."""


class TamperedError(SecretStoreError):
    """Authentication failed: a MAC or an AEAD tag did not verify."""


class TrustError(SecretStoreError):
    """A file that verifies, but whose writer this reader does not trust, or an older
    version than one already read (a rollback), or a file of another store."""


class UntrustedWriterError(TrustError):
    """The file is signed by a key this reader does not trust (for that scope)."""


class RollbackError(TrustError):
    """The file is older than a version of it this reader already accepted."""


class UnsignedFileError(TrustError):
    """A 0.1 (unsigned) file: refused by every command but ``upgrade`` (FORMAT.md, "Version 1")."""


class IdentityError(SecretStoreError):
    """The identity (private key) is missing, malformed or unsafe."""


class WrongKeyError(IdentityError):
    """The identity is not a recipient of a scope file, or a passphrase is wrong."""


class NotRecipientError(WrongKeyError):
    """The identity is not among a scope file's recipients (commands that merge may skip it)."""


class PermissionsError(IdentityError):
    """A key or store file is readable by group or others."""


class LockTimeoutError(SecretStoreError):
    """Another process held the store's write lock longer than the lock timeout."""


class VersionChangedError(SecretStoreError):
    """A rollback or undelete given the version it must restore (the web page's confirmation)
    found another one there under the store lock: the name changed since. Nothing was written."""


class LimitError(SecretStoreError):
    """An operating-system limit would be exceeded (argument size, environment size)."""


class CommandNotFoundError(SecretStoreError):
    """The program to run does not exist (shell convention: 127)."""

    exit_code = EXIT_NOT_FOUND


class CommandNotExecutableError(SecretStoreError):
    """The program to run exists but cannot be executed (shell convention: 126)."""

    exit_code = EXIT_CANNOT_EXECUTE
