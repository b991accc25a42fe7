"""Identities (private keys) and recipients (public keys).

Two small interfaces carry the crypto, as in age: a ``Recipient`` seals a data
key; an ``Identity`` opens one. A public key is written ``ssk1`` followed by
base64url (no padding) of the 32-byte X25519 key and a 4-byte BLAKE2b
checksum, so a mistyped key is refused instead of silently sealing to nobody.

The identity file is text, outside the store::

    # secretstore identity: keep this file private, it decrypts your secrets
    # public key: ssk1...
    SECRETSTORE-SECRET-KEY-1...

or, protected by a passphrase (docs/format-identity.md)::

    SECRETSTORE-PROTECTED-KEY-1 ssk1... argon2id opslimit=3 memlimit=268435456 salt=... nonce=... ciphertext=...

A key file readable by group or others is refused, as ssh refuses one.
``SECRETSTORE_KEY`` may hold the key itself (CI, cluster nodes); then nothing
is read from or written to disk for the identity.

Imports stay lazy: ``resolve_identity`` is on the ``exec`` fast path.
"""

from __future__ import annotations

import binascii
import os
import stat

from secretstore import crypto, fsio
from secretstore.errors import IdentityError, PermissionsError, UsageError, WrongKeyError

TYPE_CHECKING = False  # importing typing costs exec's start-up path a few ms

PUBLIC_PREFIX = "ssk1"
SECRET_PREFIX = "SECRETSTORE-SECRET-KEY-1"
PROTECTED_PREFIX = "SECRETSTORE-PROTECTED-KEY-1"
KDF_NAME = "argon2id"
_WRAP_LABEL = "secretstore identity key v1\n"  # domain label, part of the AEAD's associated data

ENV_KEY = "SECRETSTORE_KEY"
ENV_PASSPHRASE = "SECRETSTORE_PASSPHRASE"
ENV_NEW_PASSPHRASE = "SECRETSTORE_NEW_PASSPHRASE"
ENV_ARGON2_LIMITS = "SECRETSTORE_ARGON2_LIMITS"

if TYPE_CHECKING:
    from collections.abc import Callable

    # A prompt callback: message -> passphrase, or None when it cannot ask.
    PassphrasePrompt = Callable[[str], str | None]
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


def _canonical_int(text: str) -> int:
    """ASCII digits with no sign, underscore or leading zero: one spelling per number."""
    if not (text.isascii() and text.isdigit()) or (len(text) > 1 and text[0] == "0"):
        raise ValueError("not a canonical integer")
    return int(text)


def _canonical_b64url(text: str) -> bytes:
    """base64url that re-encodes to the same text (no stray trailing bits)."""
    raw = _unb64url(text)
    if _b64url(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


def is_valid_public_text(text: str) -> bool:
    """Exactly an ``ssk1...`` public key with a good checksum (no surrounding space)."""
    try:
        _decode_key(PUBLIC_PREFIX, text, "public key")
    except ValueError:
        return False
    return text == text.strip()


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

    @property
    def snapshot_key(self) -> bytes:
        """The key of this identity's local exec snapshots (never written anywhere)."""
        return crypto.snapshot_key(self._secret_key)

    @property
    def secret_line(self) -> str:
        return _encode_key(SECRET_PREFIX, self._secret_key)

    def protect(self, passphrase: str, limits: str | None = None) -> ProtectedKey:
        """This key encrypted under ``passphrase`` (Argon2id, then XChaCha20-Poly1305)."""
        opslimit, memlimit = crypto.ARGON2_LIMITS[limits or argon2_limits_for_new_keys()]
        salt = crypto.random_bytes(crypto.PWHASH_SALT_BYTES)
        sealed = ProtectedKey(self.public_key, opslimit, memlimit, salt, b"", b"")
        wrapping_key = crypto.derive_passphrase_key(_passphrase_bytes(passphrase), salt, opslimit, memlimit)
        nonce, ciphertext = crypto.wrap_secret(wrapping_key, self._secret_key, sealed.aad())
        return ProtectedKey(self.public_key, opslimit, memlimit, salt, nonce, ciphertext)

    def to_file_text(self) -> str:
        return (
            "# secretstore identity: keep this file private, it decrypts your secrets\n"
            f"# public key: {self.public_text}\n"
            f"{self.secret_line}\n"
        )

    def file_text(self, passphrase: str | None) -> str:
        """The identity file's text: protected when a passphrase is given."""
        return self.to_file_text() if passphrase is None else self.protect(passphrase).to_file_text()

    def __repr__(self) -> str:
        return f"Identity(public={self.public_text!r}, secret=<redacted>)"


class ProtectedKey:
    """The passphrase form of an identity file. Its public key is readable without the passphrase."""

    __slots__ = ("ciphertext", "memlimit", "nonce", "opslimit", "public_key", "salt")

    def __init__(
        self, public_key: bytes, opslimit: int, memlimit: int, salt: bytes, nonce: bytes, ciphertext: bytes
    ) -> None:
        self.public_key = public_key
        self.opslimit = opslimit
        self.memlimit = memlimit
        self.salt = salt
        self.nonce = nonce
        self.ciphertext = ciphertext

    @property
    def public_text(self) -> str:
        return _encode_key(PUBLIC_PREFIX, self.public_key)

    def _header(self) -> str:
        return (
            f"{PROTECTED_PREFIX} {self.public_text} {KDF_NAME} "
            f"opslimit={self.opslimit} memlimit={self.memlimit} salt={_b64url(self.salt)}"
        )

    def aad(self) -> bytes:
        """Associated data: the domain label and every field before the nonce."""
        return (_WRAP_LABEL + self._header()).encode("ascii")

    def line(self) -> str:
        return f"{self._header()} nonce={_b64url(self.nonce)} ciphertext={_b64url(self.ciphertext)}"

    def to_file_text(self) -> str:
        return (
            "# secretstore identity (passphrase-protected): keep this file private\n"
            f"# public key: {self.public_text}\n"
            f"{self.line()}\n"
        )

    @classmethod
    def parse(cls, line: str, source: str) -> ProtectedKey:
        fields = line.split(" ")
        names = ("opslimit", "memlimit", "salt", "nonce", "ciphertext")
        if len(fields) != 8 or fields[0] != PROTECTED_PREFIX or fields[2] != KDF_NAME:
            raise IdentityError(f"{source}: malformed {PROTECTED_PREFIX} line")
        values: dict[str, str] = {}
        for name, item in zip(names, fields[3:], strict=True):
            key, sep, value = item.partition("=")
            if key != name or not sep:
                raise IdentityError(f"{source}: expected {name}=... in the {PROTECTED_PREFIX} line")
            values[name] = value
        try:
            public_key = _decode_key(PUBLIC_PREFIX, fields[1], "public key")
            opslimit, memlimit = _canonical_int(values["opslimit"]), _canonical_int(values["memlimit"])
            salt, nonce, ciphertext = (_canonical_b64url(values[n]) for n in ("salt", "nonce", "ciphertext"))
        except (ValueError, binascii.Error):
            raise IdentityError(f"{source}: malformed {PROTECTED_PREFIX} line") from None
        low_ops, high_ops = crypto.OPSLIMIT_RANGE
        low_mem, high_mem = crypto.MEMLIMIT_RANGE
        if not (low_ops <= opslimit <= high_ops and low_mem <= memlimit <= high_mem):
            raise IdentityError(
                f"{source}: Argon2id limits opslimit={opslimit} memlimit={memlimit} are outside "
                f"the accepted range (at most opslimit={high_ops} memlimit={high_mem})"
            )
        if (
            len(salt) != crypto.PWHASH_SALT_BYTES
            or len(nonce) != crypto.NONCE_BYTES
            or len(ciphertext) != crypto.KEY_BYTES + crypto.TAG_BYTES
        ):
            raise IdentityError(f"{source}: a field of the {PROTECTED_PREFIX} line has the wrong length")
        return cls(public_key, opslimit, memlimit, salt, nonce, ciphertext)

    def unlock(self, passphrase: str, source: str) -> Identity:
        """Derive the wrapping key once and open the secret key; WrongKeyError if it does not open."""
        wrapping_key = crypto.derive_passphrase_key(
            _passphrase_bytes(passphrase), self.salt, self.opslimit, self.memlimit
        )
        secret = crypto.unwrap_secret(wrapping_key, self.nonce, self.ciphertext, self.aad())
        if secret is None:
            raise WrongKeyError(
                f"wrong passphrase for identity {source} (or the file was altered)",
                hint=f"check the passphrase, or {ENV_PASSPHRASE} if you set it",
            )
        identity = Identity(secret, source)
        if identity.public_key != self.public_key:
            raise IdentityError(f"{source}: the key does not match its public key")
        return identity

    def __repr__(self) -> str:
        return f"ProtectedKey(public={self.public_text!r})"


def _passphrase_bytes(passphrase: str) -> bytes:
    return passphrase.encode("utf-8")


def argon2_limits_for_new_keys() -> str:
    """Argon2id cost for keys wrapped now: MODERATE, unless $SECRETSTORE_ARGON2_LIMITS names another."""
    chosen = os.environ.get(ENV_ARGON2_LIMITS) or crypto.DEFAULT_ARGON2_LIMITS
    if chosen not in crypto.ARGON2_LIMITS:
        raise UsageError(
            f"{ENV_ARGON2_LIMITS}={chosen!r}: choose one of {', '.join(crypto.ARGON2_LIMITS)}"
        )
    return chosen


def parse_key_text(text: str, source: str) -> Identity | ProtectedKey:
    """The key in an identity file's text (comments allowed) or a bare key line, still locked if protected."""
    keys = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if len(keys) != 1:
        raise IdentityError(f"{source}: expected exactly one {SECRET_PREFIX}... line")
    if keys[0].startswith(PROTECTED_PREFIX):
        return ProtectedKey.parse(keys[0], source)
    try:
        secret = _decode_key(SECRET_PREFIX, keys[0], "secret key")
    except ValueError as exc:
        raise IdentityError(f"{source}: {exc}") from None
    return Identity(secret, source)


def terminal_prompt(message: str) -> str | None:
    """Ask on the terminal with hidden input, only when stdin is a terminal; else None."""
    try:
        if not os.isatty(0):
            return None
    except OSError:
        return None
    import getpass

    try:
        return getpass.getpass(message)
    except EOFError:
        return None


def passphrase_for(source: str, prompt: PassphrasePrompt | None = None) -> str:
    """$SECRETSTORE_PASSPHRASE, else the prompt; a clear error when neither gives one."""
    passphrase = os.environ.get(ENV_PASSPHRASE)
    if passphrase is None:
        passphrase = (prompt or terminal_prompt)(f"Passphrase for {source}: ")
    if passphrase is None:
        raise IdentityError(
            f"identity {source} is protected by a passphrase and there is no terminal to ask on",
            hint=f"set {ENV_PASSPHRASE}, or run the command on a terminal",
        )
    if not passphrase:
        raise WrongKeyError(f"empty passphrase for identity {source}")
    return passphrase


def unlock(key: Identity | ProtectedKey, source: str, prompt: PassphrasePrompt | None = None) -> Identity:
    """The identity itself, asking for the passphrase (once) when it is protected."""
    if isinstance(key, Identity):
        return key
    return key.unlock(passphrase_for(source, prompt), source)


def parse_identity_text(text: str, source: str, prompt: PassphrasePrompt | None = None) -> Identity:
    """An identity from the text of an identity file or a bare key line, unlocked."""
    return unlock(parse_key_text(text, source), source, prompt)


def check_private_permissions(path: str, stat_result: os.stat_result) -> None:
    if stat_result.st_mode & 0o077:
        mode = oct(stat_result.st_mode & 0o777)[2:]
        raise PermissionsError(
            f"identity file {path} is readable by others (mode {mode}); refusing to use it",
            hint=f"run: chmod 600 {path}",
        )


def read_key_file(path: str) -> Identity | ProtectedKey:
    """The key in the identity file at ``path`` (not unlocked); refuse a missing, loose or malformed one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise IdentityError(
            f"no identity at {path}",
            hint="run 'secretstore init' (or any set creates one); or point SECRETSTORE_IDENTITY at yours",
        ) from None
    except OSError as exc:
        raise IdentityError(f"cannot read identity {path}: {exc.strerror}") from None
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise IdentityError(f"identity {path} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        check_private_permissions(path, status)
        try:
            raw = handle.read()
        except OSError as exc:
            raise IdentityError(f"cannot read identity {path}: {exc.strerror}") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise IdentityError(f"{path}: not an identity file") from None
    return parse_key_text(text, path)


def load_identity(path: str, prompt: PassphrasePrompt | None = None) -> Identity:
    """Read and, if protected, unlock the identity file at ``path``."""
    return unlock(read_key_file(path), path, prompt)


def create_identity(path: str, passphrase: str | None = None) -> Identity:
    """Generate a new identity at ``path``; refuse to overwrite an existing one."""
    identity = _try_create(path, passphrase)
    if identity is None:
        raise IdentityError(f"an identity already exists at {path}; refusing to overwrite it")
    return identity


def _try_create(path: str, passphrase: str | None = None) -> Identity | None:
    identity = Identity.generate(path)
    if fsio.create_exclusive(path, identity.file_text(passphrase).encode("ascii")):
        return identity
    return None


def load_or_create_identity(path: str, prompt: PassphrasePrompt | None = None) -> tuple[Identity, bool]:
    """The identity at ``path``, created if missing. Returns (identity, created).

    Two processes racing to create it end up sharing one: the loser loads the
    winner's file.
    """
    if not os.path.lexists(path):
        created = _try_create(path)
        if created is not None:
            return created, True
    return load_identity(path, prompt), False


def key_from_env() -> Identity | ProtectedKey | None:
    """The key held in $SECRETSTORE_KEY (whole identity file text or its key line), if set."""
    text = os.environ.get(ENV_KEY)
    if not text:
        return None
    return parse_key_text(text, ENV_KEY)


def resolve_identity(
    create: bool = False, prompt: PassphrasePrompt | None = None
) -> tuple[Identity, bool]:
    """The caller's identity, unlocked once. Returns (identity, created).

    ``$SECRETSTORE_KEY`` wins, and then the disk is never touched (no file is
    created either). ``create`` is for commands that write: the first write
    makes the identity file. A protected file asks ``prompt`` (default: a
    hidden prompt when stdin is a terminal) unless ``$SECRETSTORE_PASSPHRASE``
    is set.
    """
    from_env = key_from_env()
    if from_env is not None:
        return unlock(from_env, ENV_KEY, prompt), False
    from secretstore import paths

    path = paths.identity_path()
    if create:
        return load_or_create_identity(path, prompt)
    return load_identity(path, prompt), False


def read_key() -> Identity | ProtectedKey:
    """The caller's key as stored, never unlocked: ``$SECRETSTORE_KEY``, else the identity file."""
    key = key_from_env()
    if key is None:
        from secretstore import paths

        key = read_key_file(paths.identity_path())
    return key


def resolve_public_text() -> str:
    """The caller's public key, without asking for a passphrase."""
    return read_key().public_text


def check_outside_store(path: str, store_root: str) -> None:
    """Refuse an identity file inside the store: a shared (git) store would publish it."""
    real_path, real_root = os.path.realpath(path), os.path.realpath(store_root)
    if os.path.commonpath([real_path, real_root]) == real_root:
        raise IdentityError(
            f"the identity {path} is inside the store {store_root}, which others may read or clone",
            hint="point SECRETSTORE_IDENTITY somewhere outside the store",
        )


def write_identity_file(path: str, identity: Identity, passphrase: str | None) -> None:
    """Replace the identity file at ``path`` (protected when ``passphrase`` is given), atomically.

    A symlinked identity (a key kept on another volume) stays a symlink: the file it
    points to is replaced.
    """
    fsio.atomic_write(os.path.realpath(path), identity.file_text(passphrase).encode("ascii"))
