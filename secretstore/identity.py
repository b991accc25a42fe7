"""The identity file: where your private key lives, optionally under a passphrase.

The key itself and the public keys are ``secretstore.keys`` (``Identity``,
``PublicKey``). The identity file is text, outside the store::

    # secretstore identity: keep this file private, it decrypts your secrets
    # public key: ssk2...
    SECRETSTORE-SECRET-KEY-1...

or, protected by a passphrase (FORMAT.md, "Identity file")::

    SECRETSTORE-PROTECTED-KEY-1 ssk2... argon2id opslimit=3 memlimit=268435456 salt=... nonce=... ciphertext=...

A key file readable by group or others is refused, as ssh refuses one.
``SECRETSTORE_KEY`` may hold the key itself (CI, cluster nodes); then nothing
is read from or written to disk for the identity.

0.1 wrote the protected line with the ``ssk1`` public key (no signing key):
such a file still opens, and the first time its passphrase is given it is
rewritten with the ``ssk2`` key (same passphrase, salt and cost), so that
``secretstore identity`` can print the whole public key without asking.

Imports stay lazy: ``resolve_identity`` is on the ``exec`` fast path.
"""

from __future__ import annotations

import binascii
import os
import stat

from secretstore import crypto, fsio
from secretstore.errors import (
    IdentityError,
    PermissionsError,
    SecretStoreError,
    UsageError,
    WrongKeyError,
)
from secretstore.keys import (
    SECRET_PREFIX,
    Identity,
    PublicKey,
    b64url,
    canonical_b64url,
    decode_key,
)

TYPE_CHECKING = False  # importing typing costs exec's start-up path a few ms

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

__all__ = ["Identity", "ProtectedKey", "PublicKey"]


def _canonical_int(text: str) -> int:
    """ASCII digits with no sign, underscore or leading zero: one spelling per number."""
    if not (text.isascii() and text.isdigit()) or (len(text) > 1 and text[0] == "0"):
        raise ValueError("not a canonical integer")
    return int(text)


def unprotected_text(identity: Identity) -> str:
    """The text of an unprotected identity file."""
    return (
        "# secretstore identity: keep this file private, it decrypts your secrets\n"
        f"# public key: {identity.public_text}\n"
        f"{identity.secret_line}\n"
    )


def protect(identity: Identity, passphrase: str, limits: str | None = None) -> ProtectedKey:
    """``identity`` encrypted under ``passphrase`` (Argon2id, then XChaCha20-Poly1305)."""
    opslimit, memlimit = crypto.ARGON2_LIMITS[limits or argon2_limits_for_new_keys()]
    salt = crypto.random_bytes(crypto.PWHASH_SALT_BYTES)
    wrapping_key = crypto.derive_passphrase_key(_passphrase_bytes(passphrase), salt, opslimit, memlimit)
    return ProtectedKey.seal(identity, opslimit, memlimit, salt, wrapping_key)


def file_text(identity: Identity, passphrase: str | None) -> str:
    """The identity file's text: protected when a passphrase is given."""
    return unprotected_text(identity) if passphrase is None else protect(identity, passphrase).to_file_text()


class ProtectedKey:
    """The passphrase form of an identity file. Its public key is readable without the passphrase.

    ``public`` is the ``ssk2`` key (with the signing key) in files written
    since 0.2, the ``ssk1`` key in 0.1's (``is_legacy``).
    """

    __slots__ = ("ciphertext", "memlimit", "nonce", "opslimit", "public", "salt")

    def __init__(
        self, public: PublicKey, opslimit: int, memlimit: int, salt: bytes, nonce: bytes, ciphertext: bytes
    ) -> None:
        self.public = public
        self.opslimit = opslimit
        self.memlimit = memlimit
        self.salt = salt
        self.nonce = nonce
        self.ciphertext = ciphertext

    @classmethod
    def seal(
        cls, identity: Identity, opslimit: int, memlimit: int, salt: bytes, wrapping_key: bytes
    ) -> ProtectedKey:
        """``identity`` wrapped under ``wrapping_key`` (derived from the passphrase, ``salt`` and limits)."""
        header = cls(identity.public, opslimit, memlimit, salt, b"", b"")
        nonce, ciphertext = identity.wrap_secret_under(wrapping_key, header.aad())
        return cls(identity.public, opslimit, memlimit, salt, nonce, ciphertext)

    @property
    def public_text(self) -> str:
        return self.public.text

    @property
    def is_legacy(self) -> bool:
        """Written by 0.1: the line names the ``ssk1`` key, without the signing key."""
        return not self.public.can_sign

    def _header(self) -> str:
        return (
            f"{PROTECTED_PREFIX} {self.public_text} {KDF_NAME} "
            f"opslimit={self.opslimit} memlimit={self.memlimit} salt={b64url(self.salt)}"
        )

    def aad(self) -> bytes:
        """Associated data: the domain label and every field before the nonce."""
        return (_WRAP_LABEL + self._header()).encode("ascii")

    def line(self) -> str:
        return f"{self._header()} nonce={b64url(self.nonce)} ciphertext={b64url(self.ciphertext)}"

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
            public = PublicKey.decode(fields[1])
            opslimit, memlimit = _canonical_int(values["opslimit"]), _canonical_int(values["memlimit"])
            salt, nonce, ciphertext = (canonical_b64url(values[n]) for n in ("salt", "nonce", "ciphertext"))
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
        return cls(public, opslimit, memlimit, salt, nonce, ciphertext)

    def unlock_with_key(self, passphrase: str, source: str) -> tuple[Identity, bytes]:
        """(the identity, the wrapping key): derive the key once; WrongKeyError if it does not open."""
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
        if identity.box_key != self.public.box_key or (
            self.public.sign_key is not None and identity.public.sign_key != self.public.sign_key
        ):
            raise IdentityError(f"{source}: the key does not match its public key")
        return identity, wrapping_key

    def unlock(self, passphrase: str, source: str) -> Identity:
        return self.unlock_with_key(passphrase, source)[0]

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
        secret = decode_key(SECRET_PREFIX, keys[0], crypto.KEY_BYTES, "secret key")
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
    """The identity itself, asking for the passphrase (once) when it is protected.

    A 0.1 protected file (``ssk1`` in its line) is rewritten with the ``ssk2``
    key once it is open, under the same passphrase, salt and cost, so the
    whole public key is readable without the passphrase from then on. It is
    best effort: a file that cannot be rewritten still opens.
    """
    if isinstance(key, Identity):
        return key
    identity, wrapping_key = key.unlock_with_key(passphrase_for(source, prompt), source)
    if key.is_legacy and source != ENV_KEY:
        upgraded = ProtectedKey.seal(identity, key.opslimit, key.memlimit, key.salt, wrapping_key)
        try:
            fsio.atomic_write(os.path.realpath(source), upgraded.to_file_text().encode("ascii"))
        except SecretStoreError:
            pass
    return identity


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
    if fsio.create_exclusive(path, file_text(identity, passphrase).encode("ascii")):
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


def resolve_public_text(prompt: PassphrasePrompt | None = None) -> str:
    """The caller's public key (``ssk2...``), without asking for a passphrase.

    Except once for a 0.1 passphrase-protected identity, whose line holds only
    the ``ssk1`` key: the signing key needs the secret, so it is unlocked (and
    its file upgraded, see ``unlock``).
    """
    key = read_key()
    if isinstance(key, ProtectedKey) and key.is_legacy:
        return unlock(key, ENV_KEY if os.environ.get(ENV_KEY) else key_source(), prompt).public_text
    return key.public_text


def key_source() -> str:
    """Where the caller's key comes from: ``SECRETSTORE_KEY`` or the identity file's path."""
    if os.environ.get(ENV_KEY):
        return ENV_KEY
    from secretstore import paths

    return paths.identity_path()


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
    fsio.atomic_write(os.path.realpath(path), file_text(identity, passphrase).encode("ascii"))
