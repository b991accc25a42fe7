"""All cryptography, through libsodium's own constructions (PyNaCl bindings).

The only module that imports nacl. A failed tag or sealed box becomes our own
``TamperedError`` here, so no caller needs nacl to handle a failure.

- A scope file has a random 32-byte data key, sealed to each recipient's
  X25519 public key with ``crypto_box_seal`` (an anonymous sealed box).
- Two subkeys are derived from it with keyed BLAKE2b and distinct
  personalisation strings (libsodium's ``crypto_kdf`` construction): one for
  values, one for the file MAC.
- Each value is encrypted with XChaCha20-Poly1305-IETF (random 24-byte nonce)
  with associated data that binds it to its format, entity, id and name.
- The file MAC is keyed BLAKE2b-256 over a canonical encoding of the file.

The C functions are called through PyNaCl's own cffi handle rather than
``nacl.secret.Aead`` and ``nacl.public.SealedBox`` only because those wrappers
cost start-up time (see below); the constructions are the same libsodium calls.
"""

from __future__ import annotations

# PyNaCl's cffi handle on libsodium. ``nacl.bindings`` wraps the same C
# functions but imports every binding module and ``typing`` (about 6 ms, a
# third of ``exec``'s budget) and adds per-call checks that dominate when
# 10,000 values are decrypted; so this module calls the handful of functions
# it needs directly, checking every length itself before any C call.
# tests/test_crypto.py cross-checks each one against ``nacl.bindings``.
from nacl._sodium import ffi as _ffi  # type: ignore[import-not-found]
from nacl._sodium import lib as _lib

from secretstore.errors import TamperedError

if _lib.sodium_init() < 0:  # pragma: no cover - libsodium cannot start
    raise ImportError("libsodium failed to initialise")

KEY_BYTES = 32
NONCE_BYTES = int(_lib.crypto_aead_xchacha20poly1305_ietf_npubbytes())  # 24
TAG_BYTES = int(_lib.crypto_aead_xchacha20poly1305_ietf_abytes())  # 16
SEAL_OVERHEAD = int(_lib.crypto_box_sealbytes())  # 48
SEALED_KEY_BYTES = KEY_BYTES + SEAL_OVERHEAD  # 80
MAC_BYTES = 32
_PERSON_BYTES = 16

_VALUE_KEY_PERSON = b"sstore-value-v1\x00"  # 16 bytes, BLAKE2b personalisation
_MAC_KEY_PERSON = b"sstore-mackey-v1"
_SNAPSHOT_KEY_PERSON = b"sstore-snapkey-1"
_SNAPSHOT_DIGEST_PERSON = b"sstore-snapfile1"
_SIGNING_SEED_PERSON = b"sstore-signkey-1"
_FILE_BODY_PERSON = b"sstore-filebody3"  # version 3: the signed bytes of a scope file
_HISTORY_PERSON = b"sstore-history-3"  # versions 3 and 4: one name's earlier versions
_FILE_BODY4_PERSON = b"sstore-filebody4"  # version 4: the head and body of a scope file
_SECTION_PERSON = b"sstore-section-4"  # version 4: one appended section, chained to what precedes it
SIGNATURE_BYTES = int(_lib.crypto_sign_bytes())  # 64
SIGN_SECRET_BYTES = int(_lib.crypto_sign_secretkeybytes())  # 64: seed || public key


class _CryptoFailure(Exception):
    """A libsodium call refused its input (a tag or a sealed box did not verify)."""


def _require(condition: bool, what: str) -> None:
    """Guard every C call: a wrong length would make libsodium read out of bounds."""
    if not condition:
        raise ValueError(f"crypto: {what}")


def _buffer(size: int):  # type: ignore[no-untyped-def]
    return _ffi.new("unsigned char[]", max(size, 1))


def random_bytes(size: int) -> bytes:
    out = _buffer(size)
    _lib.randombytes(out, size)
    return bytes(_ffi.buffer(out, size))


def new_keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 key pair: (public, secret)."""
    public, secret = _buffer(KEY_BYTES), _buffer(KEY_BYTES)
    _require(_lib.crypto_box_keypair(public, secret) == 0, "keypair failed")
    return bytes(_ffi.buffer(public, KEY_BYTES)), bytes(_ffi.buffer(secret, KEY_BYTES))


def public_key_of(secret_key: bytes) -> bytes:
    _require(len(secret_key) == KEY_BYTES, "secret key must be 32 bytes")
    out = _buffer(KEY_BYTES)
    _require(_lib.crypto_scalarmult_base(out, secret_key) == 0, "scalarmult failed")
    return bytes(_ffi.buffer(out, KEY_BYTES))


def is_low_order(public_key: bytes) -> bool:
    """Whether an X25519 public key is a point of small order (all-zero among them).

    Sealing to such a key gives a shared secret anyone can compute, and
    libsodium refuses it; a clamped scalar is a multiple of 8, so multiplying
    any small-order point by it gives zero, which ``crypto_scalarmult`` reports.
    """
    _require(len(public_key) == KEY_BYTES, "public key must be 32 bytes")
    out = _buffer(KEY_BYTES)
    return bool(_lib.crypto_scalarmult(out, _LOW_ORDER_PROBE, public_key) != 0)


_LOW_ORDER_PROBE = bytes(range(1, KEY_BYTES + 1))


def _blake2b(data: bytes, size: int, key: bytes = b"", person: bytes = b"") -> bytes:
    _require(16 <= size <= 64 or size == 4, "bad digest size")
    _require(len(key) <= 64, "BLAKE2b key too long")
    _require(len(person) in (0, _PERSON_BYTES), "personalisation must be 16 bytes")
    out = _buffer(size)
    rc = _lib.crypto_generichash_blake2b_salt_personal(
        out, size, data, len(data), key or _ffi.NULL, len(key), _ffi.NULL, person or _ffi.NULL
    )
    _require(rc == 0, "BLAKE2b failed")
    return bytes(_ffi.buffer(out, size))


def checksum(data: bytes, size: int = 4) -> bytes:
    """A short BLAKE2b digest, used to catch typos in key strings (not for security)."""
    return _blake2b(data, size)


def new_data_key() -> bytes:
    return random_bytes(KEY_BYTES)


def seal_data_key(data_key: bytes, public_key: bytes) -> bytes:
    """``crypto_box_seal``: an anonymous sealed box only ``public_key``'s owner opens."""
    _require(len(public_key) == KEY_BYTES, "public key must be 32 bytes")
    out = _buffer(len(data_key) + SEAL_OVERHEAD)
    _require(_lib.crypto_box_seal(out, data_key, len(data_key), public_key) == 0, "seal failed")
    return bytes(_ffi.buffer(out, len(data_key) + SEAL_OVERHEAD))


def _seal_open(sealed: bytes, public_key: bytes, secret_key: bytes) -> bytes:
    _require(len(public_key) == KEY_BYTES and len(secret_key) == KEY_BYTES, "keys must be 32 bytes")
    if len(sealed) < SEAL_OVERHEAD:
        raise _CryptoFailure
    size = len(sealed) - SEAL_OVERHEAD
    out = _buffer(size)
    if _lib.crypto_box_seal_open(out, sealed, len(sealed), public_key, secret_key) != 0:
        raise _CryptoFailure
    return bytes(_ffi.buffer(out, size))


def open_data_key(sealed: bytes, public_key: bytes, secret_key: bytes, where: str) -> bytes:
    """Open a sealed data key, or raise TamperedError naming ``where``."""
    try:
        data_key = _seal_open(sealed, public_key, secret_key)
    except _CryptoFailure:
        raise TamperedError(
            f"{where}: the data key sealed to your identity does not open "
            "(the file was damaged or forged)"
        ) from None
    if len(data_key) != KEY_BYTES:
        raise TamperedError(f"{where}: the sealed data key has the wrong length")
    return data_key


class FileKeys:
    """The subkeys of one scope file's data key. Never printed."""

    __slots__ = ("data_key", "mac_key", "value_key")

    def __init__(self, data_key: bytes) -> None:
        self.data_key = data_key
        self.value_key = _subkey(data_key, _VALUE_KEY_PERSON)
        self.mac_key = _subkey(data_key, _MAC_KEY_PERSON)

    def __repr__(self) -> str:
        return "FileKeys(<redacted>)"


def _subkey(data_key: bytes, person: bytes) -> bytes:
    _require(len(data_key) == KEY_BYTES, "key must be 32 bytes")
    return _blake2b(b"", KEY_BYTES, key=data_key, person=person)


# --- signatures (Ed25519) ---------------------------------------------------------
#
# An identity's signing key is derived from its X25519 secret key, as the
# file subkeys are derived from a data key (keyed BLAKE2b with its own
# personalisation, libsodium's crypto_kdf construction), and expanded with
# crypto_sign_seed_keypair. So every identity, 0.1's included, has exactly one
# signing key and no identity file changes. PyNaCl's handle exposes only the
# combined crypto_sign / crypto_sign_open: a detached signature is the first
# 64 bytes of the combined form (as PyNaCl's SigningKey does).


def signing_keypair(secret_key: bytes) -> tuple[bytes, bytes]:
    """(Ed25519 public key, Ed25519 secret key) derived from an X25519 secret key."""
    seed = _subkey(secret_key, _SIGNING_SEED_PERSON)
    public, secret = _buffer(KEY_BYTES), _buffer(SIGN_SECRET_BYTES)
    _require(_lib.crypto_sign_seed_keypair(public, secret, seed) == 0, "sign keypair failed")
    return bytes(_ffi.buffer(public, KEY_BYTES)), bytes(_ffi.buffer(secret, SIGN_SECRET_BYTES))


def sign(message: bytes, sign_secret: bytes) -> bytes:
    """The detached Ed25519 signature of ``message`` (64 bytes)."""
    _require(len(sign_secret) == SIGN_SECRET_BYTES, "signing key must be 64 bytes")
    out = _buffer(len(message) + SIGNATURE_BYTES)
    out_len = _ffi.new("unsigned long long *")
    rc = _lib.crypto_sign(out, out_len, message, len(message), sign_secret)
    _require(rc == 0 and out_len[0] == len(message) + SIGNATURE_BYTES, "signing failed")
    return bytes(_ffi.buffer(out, SIGNATURE_BYTES))


def verify_signature(signature: bytes, message: bytes, sign_public: bytes) -> bool:
    """Whether ``signature`` is ``sign_public``'s Ed25519 signature of ``message``."""
    _require(len(sign_public) == KEY_BYTES, "verify key must be 32 bytes")
    if len(signature) != SIGNATURE_BYTES:
        return False
    signed = signature + message
    out = _buffer(len(signed))
    out_len = _ffi.new("unsigned long long *")
    return bool(_lib.crypto_sign_open(out, out_len, signed, len(signed), sign_public) == 0)


def is_valid_sign_public(sign_public: bytes) -> bool:
    """An Ed25519 public key on the main subgroup, not of small order (libsodium's check)."""
    return len(sign_public) == KEY_BYTES and bool(_lib.crypto_core_ed25519_is_valid_point(sign_public))


def body_digest(data: bytes) -> bytes:
    """BLAKE2b-256 of a version-3 scope file's signed bytes (FORMAT.md, "File MAC and signature")."""
    return _blake2b(data, MAC_BYTES, person=_FILE_BODY_PERSON)


def body_digest_of(parts: list[bytes | memoryview], person: bytes = _FILE_BODY_PERSON) -> bytes:
    """``body_digest`` of the parts joined, without joining them: a 3.8 MB copy less per read
    or write of a version-3 file at 10,000 secrets (libsodium's streaming BLAKE2b).
    ``person``: another personalisation (``body4_digest_of``, ``section_digest``)."""
    state = _ffi.new("unsigned char[]", _GENERICHASH_STATE_BYTES)
    rc = _lib.crypto_generichash_blake2b_init_salt_personal(
        state, _ffi.NULL, 0, MAC_BYTES, _ffi.new("unsigned char[]", 16), person
    )
    _require(rc == 0, "BLAKE2b failed")
    for part in parts:
        if len(part):
            rc = _lib.crypto_generichash_blake2b_update(state, _ffi.from_buffer(part), len(part))
            _require(rc == 0, "BLAKE2b failed")
    out = _buffer(MAC_BYTES)
    _require(_lib.crypto_generichash_blake2b_final(state, out, MAC_BYTES) == 0, "BLAKE2b failed")
    return bytes(_ffi.buffer(out, MAC_BYTES))


_GENERICHASH_STATE_BYTES = int(_lib.crypto_generichash_statebytes())


def body4_digest_of(parts: list[bytes | memoryview]) -> bytes:
    """BLAKE2b-256 of a version-4 scope file's head and body (FORMAT.md, "Scope file, version 4")."""
    return body_digest_of(parts, _FILE_BODY4_PERSON)


def section_digest(previous: bytes, signed: list[bytes | memoryview]) -> bytes:
    """The digest a version-4 section's seal signs: BLAKE2b-256 of the digest before it (the
    body's, or the previous section's), length-prefixed, then the section's signed bytes (the
    parts joined: its chunks are left out, bound by their updates' digests)."""
    return body_digest_of([len(previous).to_bytes(4, "big") + previous, *signed], _SECTION_PERSON)


def history_digest(data: bytes) -> bytes:
    """BLAKE2b-256 of one name's history in a version-3 scope file."""
    return _blake2b(data, MAC_BYTES, person=_HISTORY_PERSON)


def snapshot_key(secret_key: bytes) -> bytes:
    """The key of an identity's local snapshots (``secretstore/snapshot.py``), derived
    from its private key like the file subkeys: keyed BLAKE2b, its own personalisation."""
    return _subkey(secret_key, _SNAPSHOT_KEY_PERSON)


def snapshot_digest(data: bytes) -> bytes:
    """BLAKE2b-256 of a scope file's head, as a snapshot binds it."""
    return _blake2b(data, MAC_BYTES, person=_SNAPSHOT_DIGEST_PERSON)


def _aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """XChaCha20-Poly1305-IETF: ciphertext with the 16-byte tag appended."""
    _require(len(key) == KEY_BYTES and len(nonce) == NONCE_BYTES, "bad AEAD key or nonce length")
    size = len(plaintext) + TAG_BYTES
    out = _buffer(size)
    out_len = _ffi.new("unsigned long long *")
    rc = _lib.crypto_aead_xchacha20poly1305_ietf_encrypt(
        out, out_len, plaintext, len(plaintext), aad, len(aad), _ffi.NULL, nonce, key
    )
    _require(rc == 0 and out_len[0] == size, "AEAD encryption failed")
    return bytes(_ffi.buffer(out, size))


def _aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    _require(len(key) == KEY_BYTES and len(nonce) == NONCE_BYTES, "bad AEAD key or nonce length")
    if len(ciphertext) < TAG_BYTES:
        raise _CryptoFailure
    out = _buffer(len(ciphertext) - TAG_BYTES)
    out_len = _ffi.new("unsigned long long *")
    rc = _lib.crypto_aead_xchacha20poly1305_ietf_decrypt(
        out, out_len, _ffi.NULL, ciphertext, len(ciphertext), aad, len(aad), nonce, key
    )
    if rc != 0:
        raise _CryptoFailure
    return bytes(_ffi.buffer(out, out_len[0]))


def encrypt_value(keys: FileKeys, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext-with-tag) under a fresh random nonce."""
    nonce = random_bytes(NONCE_BYTES)
    return nonce, _aead_encrypt(keys.value_key, nonce, plaintext, aad)


def decrypt_value(keys: FileKeys, nonce: bytes, ciphertext: bytes, aad: bytes, where: str) -> bytes:
    try:
        return _aead_decrypt(keys.value_key, nonce, ciphertext, aad)
    except _CryptoFailure:
        raise TamperedError(
            f"{where}: value does not decrypt (tampered, or moved from another name or scope)"
        ) from None


def decrypt_values(keys: FileKeys, items: list[tuple[bytes, bytes, bytes]]) -> list[bytes | None]:
    """``decrypt_value`` for each (nonce, ciphertext, aad), None for one that does not open.

    One output buffer serves every call: a scope's values are decrypted
    together, and for 10,000 of them the per-call allocations cost more than
    the cipher.
    """
    key = keys.value_key
    _require(len(key) == KEY_BYTES, "bad AEAD key length")
    out = _buffer(max((len(ciphertext) for _n, ciphertext, _a in items), default=0))
    out_len = _ffi.new("unsigned long long *")
    decrypt = _lib.crypto_aead_xchacha20poly1305_ietf_decrypt
    null = _ffi.NULL
    results: list[bytes | None] = []
    for nonce, ciphertext, aad in items:
        _require(len(nonce) == NONCE_BYTES, "bad AEAD nonce length")
        if len(ciphertext) < TAG_BYTES or decrypt(
            out, out_len, null, ciphertext, len(ciphertext), aad, len(aad), nonce, key
        ) != 0:
            results.append(None)
        else:
            results.append(_ffi.buffer(out, out_len[0])[:])
    return results


def compute_mac(keys: FileKeys, data: bytes) -> bytes:
    return _blake2b(data, MAC_BYTES, key=keys.mac_key)


def mac_matches(keys: FileKeys, data: bytes, expected: bytes) -> bool:
    """Constant-time comparison (``sodium_memcmp``) of the file's MAC with the computed one."""
    actual = compute_mac(keys, data)
    return len(expected) == MAC_BYTES and _lib.sodium_memcmp(actual, expected, MAC_BYTES) == 0


# --- passphrase-wrapped identities ------------------------------------------
#
# The identity's secret key is encrypted with XChaCha20-Poly1305 under a key
# derived from the passphrase with Argon2id (libsodium's crypto_pwhash,
# ALG_ARGON2ID13). The cost parameters travel in the identity file; on read
# they are capped, so a forged file cannot make us allocate unbounded memory.

PWHASH_SALT_BYTES = int(_lib.crypto_pwhash_saltbytes())  # 16
ARGON2_LIMITS = {
    "interactive": (
        int(_lib.crypto_pwhash_argon2id_opslimit_interactive()),
        int(_lib.crypto_pwhash_argon2id_memlimit_interactive()),
    ),
    "moderate": (
        int(_lib.crypto_pwhash_argon2id_opslimit_moderate()),
        int(_lib.crypto_pwhash_argon2id_memlimit_moderate()),
    ),
    "sensitive": (
        int(_lib.crypto_pwhash_argon2id_opslimit_sensitive()),
        int(_lib.crypto_pwhash_argon2id_memlimit_sensitive()),
    ),
}
DEFAULT_ARGON2_LIMITS = "moderate"
# Read-side bounds: libsodium's minimums, and SENSITIVE as the ceiling.
OPSLIMIT_RANGE = (int(_lib.crypto_pwhash_argon2id_opslimit_min()), ARGON2_LIMITS["sensitive"][0])
MEMLIMIT_RANGE = (int(_lib.crypto_pwhash_argon2id_memlimit_min()), ARGON2_LIMITS["sensitive"][1])


def derive_passphrase_key(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    """Argon2id13 -> a 32-byte wrapping key. The caller checks the limits first."""
    _require(len(salt) == PWHASH_SALT_BYTES, "salt must be 16 bytes")
    _require(OPSLIMIT_RANGE[0] <= opslimit <= OPSLIMIT_RANGE[1], "opslimit out of range")
    _require(MEMLIMIT_RANGE[0] <= memlimit <= MEMLIMIT_RANGE[1], "memlimit out of range")
    out = _buffer(KEY_BYTES)
    rc = _lib.crypto_pwhash(
        out, KEY_BYTES, passphrase, len(passphrase), salt, opslimit, memlimit,
        _lib.crypto_pwhash_alg_argon2id13(),
    )
    if rc != 0:
        raise MemoryError("Argon2id could not allocate its memory")
    return bytes(_ffi.buffer(out, KEY_BYTES))


def wrap_secret(wrapping_key: bytes, secret: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext-with-tag): XChaCha20-Poly1305 under a fresh random nonce."""
    nonce = random_bytes(NONCE_BYTES)
    return nonce, _aead_encrypt(wrapping_key, nonce, secret, aad)


def unwrap_secret(wrapping_key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes | None:
    """The wrapped secret, or None when the tag does not verify (wrong passphrase or tampering)."""
    try:
        return _aead_decrypt(wrapping_key, nonce, ciphertext, aad)
    except _CryptoFailure:
        return None
