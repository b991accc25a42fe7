"""Public keys and the private identity: the two interfaces a scope file's envelope uses.

As in age, a recipient *wraps* a file's data key and an identity *unwraps*
it, choosing by itself which stanza of the file is its own. Here a public key
is also a writer: files are signed, and a reader checks the signature against
the writer's public key.

One public string identifies a person::

    ssk2<base64url(X25519 public || Ed25519 public || checksum)>

The X25519 key reads (data keys are sealed to it), the Ed25519 key signs. The
4-byte checksum (unkeyed BLAKE2b) catches a mistyped key. Secretstore 0.1
wrote ``ssk1<base64url(X25519 public || checksum)>``, which has no signing key:
such a key can still be a recipient (it reads), but nothing it signs can be
verified, so it is never a trusted writer. Both forms name the same reader
when their X25519 keys are equal.

The identity's signing key is derived from its X25519 secret key
(``crypto.signing_keypair``), so an identity is still one 32-byte secret:
0.1's identity files and ``SECRETSTORE_KEY`` values sign without any change.

Imports stay small: this module is on the ``exec`` start-up path.
"""

from __future__ import annotations

import binascii

from secretstore import crypto
from secretstore.errors import UsageError

PUBLIC_PREFIX = "ssk2"
LEGACY_PUBLIC_PREFIX = "ssk1"
SECRET_PREFIX = "SECRETSTORE-SECRET-KEY-1"
_CHECKSUM_BYTES = 4

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Iterable

    from secretstore.scopefile import SealedKey


def b64url(data: bytes) -> str:
    text = binascii.b2a_base64(data, newline=False).decode("ascii")
    return text.replace("+", "-").replace("/", "_").rstrip("=")


def unb64url(text: str) -> bytes:
    if not text.isascii() or any(c in "+/=" for c in text):
        raise ValueError("not base64url")
    padded = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)
    return binascii.a2b_base64(padded.encode("ascii"), strict_mode=True)


def canonical_b64url(text: str) -> bytes:
    """base64url that re-encodes to the same text (no stray trailing bits)."""
    raw = unb64url(text)
    if b64url(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


def encode_key(prefix: str, key: bytes) -> str:
    return prefix + b64url(key + crypto.checksum(key, _CHECKSUM_BYTES))


def decode_key(prefix: str, text: str, size: int, what: str) -> bytes:
    """The ``size`` key bytes of ``prefix`` + base64url(key || checksum); ValueError saying why not."""
    if not text.startswith(prefix):
        raise ValueError(f"{what} must start with {prefix}")
    try:
        raw = canonical_b64url(text[len(prefix) :])
    except (ValueError, binascii.Error):
        raise ValueError(f"{what} is not valid base64url") from None
    key, check = raw[:size], raw[size:]
    if len(key) != size or len(check) != _CHECKSUM_BYTES:
        raise ValueError(f"{what} has the wrong length")
    if crypto.checksum(key, _CHECKSUM_BYTES) != check:
        raise ValueError(f"{what} has a bad checksum (a typo?)")
    return key


class PublicKey:
    """Someone's public key: a recipient (``wrap``) and, with a signing key, a writer (``verify``).

    Equal when the X25519 keys are equal: ``ssk1`` and ``ssk2`` spellings of one
    person's key are the same reader.
    """

    __slots__ = ("box_key", "label", "sign_key")

    def __init__(self, box_key: bytes, sign_key: bytes | None = None, label: str = "") -> None:
        self.box_key = box_key
        self.sign_key = sign_key
        self.label = label

    @property
    def text(self) -> str:
        """``ssk2...``, or ``ssk1...`` for a 0.1 key without a signing key."""
        if self.sign_key is None:
            return encode_key(LEGACY_PUBLIC_PREFIX, self.box_key)
        return encode_key(PUBLIC_PREFIX, self.box_key + self.sign_key)

    @property
    def can_sign(self) -> bool:
        return self.sign_key is not None

    @classmethod
    def decode(cls, text: str, label: str = "") -> PublicKey:
        """Parse ``ssk2...`` or ``ssk1...`` exactly (no surrounding space); ValueError saying why not."""
        if text.startswith(PUBLIC_PREFIX):
            raw = decode_key(PUBLIC_PREFIX, text, 2 * crypto.KEY_BYTES, "public key")
            box_key, sign_key = raw[: crypto.KEY_BYTES], raw[crypto.KEY_BYTES :]
            if not crypto.is_valid_sign_public(sign_key):
                raise ValueError("public key holds an invalid signing key")
        elif text.startswith(LEGACY_PUBLIC_PREFIX):
            box_key = decode_key(LEGACY_PUBLIC_PREFIX, text, crypto.KEY_BYTES, "public key")
            sign_key = None
        else:
            raise ValueError(f"public key must start with {PUBLIC_PREFIX}")
        if crypto.is_low_order(box_key):
            raise ValueError("public key is a weak (low-order) key: anyone could read what is sealed to it")
        return cls(box_key, sign_key, label)

    @classmethod
    def parse(cls, text: str, label: str = "") -> PublicKey:
        """A key typed by a user: surrounding space is dropped; UsageError saying what is wrong."""
        try:
            return cls.decode(text.strip(), label)
        except ValueError as exc:
            raise UsageError(f"invalid public key: {exc}") from None

    def with_label(self, label: str) -> PublicKey:
        return PublicKey(self.box_key, self.sign_key, label)

    def wrap(self, data_key: bytes) -> bytes:
        """The data key sealed to this key (``crypto_box_seal``)."""
        return crypto.seal_data_key(data_key, self.box_key)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` over ``message`` is this key's; False when it has no signing key."""
        if self.sign_key is None:
            return False
        return crypto.verify_signature(signature, message, self.sign_key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.box_key == self.box_key

    def __hash__(self) -> int:
        return hash(self.box_key)

    def __repr__(self) -> str:
        return f"PublicKey({self.text!r})"


def is_valid_public_text(text: str) -> bool:
    """Exactly an ``ssk2...`` or ``ssk1...`` public key that a file may name."""
    try:
        PublicKey.decode(text)
    except ValueError:
        return False
    return True


def box_key_of(text: str) -> bytes | None:
    """The X25519 key of a public key text, or None when it is not one."""
    try:
        return PublicKey.decode(text).box_key
    except ValueError:
        return None


class Identity:
    """A private key: it unwraps its own stanza of a file and signs what it writes.

    Its repr never shows the key. The signing key is derived on first use.
    """

    __slots__ = ("_secret_key", "_signing", "box_key", "source")

    def __init__(self, secret_key: bytes, source: str = "") -> None:
        self._secret_key = secret_key
        self.box_key = crypto.public_key_of(secret_key)
        self.source = source
        self._signing: tuple[bytes, bytes] | None = None

    @classmethod
    def generate(cls, source: str = "") -> Identity:
        _public, secret = crypto.new_keypair()
        return cls(secret, source)

    def _signing_keys(self) -> tuple[bytes, bytes]:
        if self._signing is None:
            self._signing = crypto.signing_keypair(self._secret_key)
        return self._signing

    @property
    def public(self) -> PublicKey:
        """This identity's public key, with its signing key (``ssk2...``)."""
        return PublicKey(self.box_key, self._signing_keys()[0])

    @property
    def public_text(self) -> str:
        return self.public.text

    def is_me(self, text: str) -> bool:
        """Whether a public key text (``ssk1`` or ``ssk2``) names this identity's reading key."""
        return box_key_of(text) == self.box_key

    def unwrap(self, stanzas: Iterable[SealedKey], where: str) -> bytes | None:
        """The data key from this identity's own stanza, or None when none is addressed to it.

        A stanza that names this key but does not open is a damaged or forged
        file (TamperedError), never a reason to try another stanza.
        """
        for stanza in stanzas:
            if self.is_me(stanza.public_key):
                return crypto.open_data_key(stanza.sealed_key, self.box_key, self._secret_key, where)
        return None

    def sign(self, message: bytes) -> bytes:
        return crypto.sign(message, self._signing_keys()[1])

    @property
    def snapshot_key(self) -> bytes:
        """The key of this identity's local exec snapshots (never written anywhere)."""
        return crypto.snapshot_key(self._secret_key)

    @property
    def secret_line(self) -> str:
        """The identity file's key line. Only the identity file code writes it."""
        return encode_key(SECRET_PREFIX, self._secret_key)

    def wrap_secret_under(self, wrapping_key: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """This secret key encrypted under a passphrase-derived key (the protected identity file)."""
        return crypto.wrap_secret(wrapping_key, self._secret_key, aad)

    def __repr__(self) -> str:
        return f"Identity(public={encode_key(LEGACY_PUBLIC_PREFIX, self.box_key)!r}, secret=<redacted>)"
