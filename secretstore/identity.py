"""Identities (private keys) and recipients (public keys).

Two small interfaces carry the crypto, as in age: a ``Recipient`` seals a data
key; an ``Identity`` opens one. A public key is written ``ssk1`` followed by
base64url (no padding) of the 32-byte X25519 key and a 4-byte BLAKE2b
checksum, so a mistyped key is refused instead of silently sealing to nobody.

The identity file is text, outside the store::

    # secretstore identity: keep this file private, it decrypts your secrets
    # public key: ssk1...
    SECRETSTORE-SECRET-KEY-1...

A key file readable by group or others is refused, as ssh refuses one.
"""

from __future__ import annotations

import binascii
import os

from secretstore import crypto, fsio
from secretstore.errors import IdentityError, PermissionsError, UsageError

PUBLIC_PREFIX = "ssk1"
SECRET_PREFIX = "SECRETSTORE-SECRET-KEY-1"
_CHECKSUM_BYTES = 4


def _b64url(data: bytes) -> str:
    text = binascii.b2a_base64(data, newline=False).decode("ascii")
    return text.replace("+", "-").replace("/", "_").rstrip("=")


def _unb64url(text: str) -> bytes:
    if not text.isascii() or any(c in "+/=" for c in text):
        raise ValueError("not base64url")
    padded = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)
    return binascii.a2b_base64(padded.encode("ascii"), strict_mode=True)


def _encode_key(prefix: str, key: bytes) -> str:
    return prefix + _b64url(key + crypto.checksum(key, _CHECKSUM_BYTES))


def _decode_key(prefix: str, text: str, what: str) -> bytes:
    text = text.strip()
    if not text.startswith(prefix):
        raise ValueError(f"{what} must start with {prefix}")
    try:
        raw = _unb64url(text[len(prefix) :])
    except (ValueError, binascii.Error):
        raise ValueError(f"{what} is not valid base64url") from None
    key, check = raw[: crypto.KEY_BYTES], raw[crypto.KEY_BYTES :]
    if len(key) != crypto.KEY_BYTES or len(check) != _CHECKSUM_BYTES:
        raise ValueError(f"{what} has the wrong length")
    if crypto.checksum(key, _CHECKSUM_BYTES) != check:
        raise ValueError(f"{what} has a bad checksum (a typo?)")
    return key


class Recipient:
    """A public key that data keys can be sealed to."""

    __slots__ = ("label", "public_key")

    def __init__(self, public_key: bytes, label: str = "") -> None:
        self.public_key = public_key
        self.label = label

    @property
    def text(self) -> str:
        return _encode_key(PUBLIC_PREFIX, self.public_key)

    @classmethod
    def parse(cls, text: str, label: str = "") -> Recipient:
        try:
            return cls(_decode_key(PUBLIC_PREFIX, text, "public key"), label)
        except ValueError as exc:
            raise UsageError(f"invalid public key: {exc}") from None

    def seal(self, data_key: bytes) -> bytes:
        return crypto.seal_data_key(data_key, self.public_key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Recipient) and other.public_key == self.public_key

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __repr__(self) -> str:
        return f"Recipient({self.text!r})"


class Identity:
    """A private key. Its repr never shows the key."""

    __slots__ = ("_secret_key", "public_key", "source")

    def __init__(self, secret_key: bytes, source: str = "") -> None:
        self._secret_key = secret_key
        self.public_key = crypto.public_key_of(secret_key)
        self.source = source

    @classmethod
    def generate(cls, source: str = "") -> Identity:
        _public, secret = crypto.new_keypair()
        return cls(secret, source)

    @property
    def recipient(self) -> Recipient:
        return Recipient(self.public_key)

    @property
    def public_text(self) -> str:
        return self.recipient.text

    def open_data_key(self, sealed: bytes, where: str) -> bytes:
        return crypto.open_data_key(sealed, self.public_key, self._secret_key, where)

    def to_file_text(self) -> str:
        return (
            "# secretstore identity: keep this file private, it decrypts your secrets\n"
            f"# public key: {self.public_text}\n"
            f"{_encode_key(SECRET_PREFIX, self._secret_key)}\n"
        )

    def __repr__(self) -> str:
        return f"Identity(public={self.public_text!r}, secret=<redacted>)"


def parse_identity_text(text: str, source: str) -> Identity:
    """An identity from the text of an identity file (comments allowed) or a bare key line."""
    keys = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if len(keys) != 1:
        raise IdentityError(f"{source}: expected exactly one {SECRET_PREFIX}... line")
    try:
        secret = _decode_key(SECRET_PREFIX, keys[0], "secret key")
    except ValueError as exc:
        raise IdentityError(f"{source}: {exc}") from None
    return Identity(secret, source)


def check_private_permissions(path: str, stat_result: os.stat_result) -> None:
    if stat_result.st_mode & 0o077:
        mode = oct(stat_result.st_mode & 0o777)[2:]
        raise PermissionsError(
            f"identity file {path} is readable by others (mode {mode}); refusing to use it",
            hint=f"run: chmod 600 {path}",
        )


def load_identity(path: str) -> Identity:
    """Read the identity file at ``path``; refuse a missing, loose or malformed one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise IdentityError(
            f"no identity at {path}",
            hint="secretstore creates one on the first set; or point SECRETSTORE_IDENTITY at yours",
        ) from None
    except OSError as exc:
        raise IdentityError(f"cannot read identity {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        check_private_permissions(path, os.fstat(handle.fileno()))
        raw = handle.read()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise IdentityError(f"{path}: not an identity file") from None
    return parse_identity_text(text, path)


def create_identity(path: str) -> Identity:
    """Generate a new identity at ``path``; refuse to overwrite an existing one."""
    identity = _try_create(path)
    if identity is None:
        raise IdentityError(f"an identity already exists at {path}; refusing to overwrite it")
    return identity


def _try_create(path: str) -> Identity | None:
    identity = Identity.generate(path)
    if fsio.create_exclusive(path, identity.to_file_text().encode("ascii")):
        return identity
    return None


def load_or_create_identity(path: str) -> tuple[Identity, bool]:
    """The identity at ``path``, created if missing. Returns (identity, created).

    Two processes racing to create it end up sharing one: the loser loads the
    winner's file.
    """
    if not os.path.lexists(path):
        created = _try_create(path)
        if created is not None:
            return created, True
    return load_identity(path), False


def resolve_identity(create: bool = False) -> tuple[Identity, bool]:
    """The caller's identity from its configured place. Returns (identity, created).

    ``create`` is for commands that write: the first write makes the identity.
    """
    from secretstore import paths

    path = paths.identity_path()
    if create:
        return load_or_create_identity(path)
    return load_identity(path), False
