"""All cryptography, through libsodium's own constructions (PyNaCl bindings).

The only module that imports nacl. It turns ``CryptoError`` into our own
errors so no caller needs nacl to handle a failure.

- A scope file has a random 32-byte data key, sealed to each recipient's
  X25519 public key with ``crypto_box_seal`` (an anonymous sealed box).
- Two subkeys are derived from it with keyed BLAKE2b and distinct
  personalisation strings (libsodium's ``crypto_kdf`` construction): one for
  values, one for the file MAC.
- Each value is encrypted with XChaCha20-Poly1305-IETF (random 24-byte nonce)
  with associated data that binds it to its format, entity, id and name.
- The file MAC is keyed BLAKE2b-256 over a canonical encoding of the file.

The low-level bindings are used rather than ``nacl.secret.Aead`` and
``nacl.public.SealedBox`` only because those wrappers import more modules;
the constructions are the same libsodium calls.
"""

from __future__ import annotations

from nacl import bindings as _sodium
from nacl.exceptions import CryptoError

from secretstore.errors import TamperedError

KEY_BYTES = 32
NONCE_BYTES = _sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
TAG_BYTES = _sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16
SEALED_KEY_BYTES = KEY_BYTES + _sodium.crypto_box_SEALBYTES  # 80
MAC_BYTES = 32

_VALUE_KEY_PERSON = b"sstore-value-v1\x00"  # 16 bytes, BLAKE2b personalisation
_MAC_KEY_PERSON = b"sstore-mackey-v1"


def random_bytes(size: int) -> bytes:
    return bytes(_sodium.randombytes(size))


def new_keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 key pair: (public, secret)."""
    public, secret = _sodium.crypto_box_keypair()
    return bytes(public), bytes(secret)


def public_key_of(secret_key: bytes) -> bytes:
    return bytes(_sodium.crypto_scalarmult_base(secret_key))


def checksum(data: bytes, size: int = 4) -> bytes:
    """A short BLAKE2b digest, used to catch typos in key strings (not for security)."""
    return bytes(_sodium.crypto_generichash_blake2b_salt_personal(data, digest_size=size))


def new_data_key() -> bytes:
    return random_bytes(KEY_BYTES)


def seal_data_key(data_key: bytes, public_key: bytes) -> bytes:
    return bytes(_sodium.crypto_box_seal(data_key, public_key))


def open_data_key(sealed: bytes, public_key: bytes, secret_key: bytes, where: str) -> bytes:
    """Open a sealed data key, or raise TamperedError naming ``where``."""
    try:
        data_key = bytes(_sodium.crypto_box_seal_open(sealed, public_key, secret_key))
    except CryptoError:
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
    return bytes(
        _sodium.crypto_generichash_blake2b_salt_personal(
            b"", digest_size=KEY_BYTES, key=data_key, person=person
        )
    )


def encrypt_value(keys: FileKeys, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext-with-tag) under a fresh random nonce."""
    nonce = random_bytes(NONCE_BYTES)
    ciphertext = _sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, aad, nonce, keys.value_key
    )
    return nonce, bytes(ciphertext)


def decrypt_value(keys: FileKeys, nonce: bytes, ciphertext: bytes, aad: bytes, where: str) -> bytes:
    try:
        return bytes(
            _sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, keys.value_key)
        )
    except CryptoError:
        raise TamperedError(
            f"{where}: value does not decrypt (tampered, or moved from another name or scope)"
        ) from None


def compute_mac(keys: FileKeys, data: bytes) -> bytes:
    return bytes(
        _sodium.crypto_generichash_blake2b_salt_personal(data, digest_size=MAC_BYTES, key=keys.mac_key)
    )


def mac_matches(keys: FileKeys, data: bytes, expected: bytes) -> bool:
    actual = compute_mac(keys, data)
    return len(expected) == MAC_BYTES and bool(_sodium.sodium_memcmp(actual, expected))


# --- passphrase-wrapped identities ------------------------------------------
#
# The identity's secret key is encrypted with XChaCha20-Poly1305 under a key
# derived from the passphrase with Argon2id (libsodium's crypto_pwhash,
# ALG_ARGON2ID13). The cost parameters travel in the identity file; on read
# they are capped, so a forged file cannot make us allocate unbounded memory.

PWHASH_SALT_BYTES = _sodium.crypto_pwhash_SALTBYTES  # 16
ARGON2_LIMITS = {
    "interactive": (
        _sodium.crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
        _sodium.crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE,
    ),
    "moderate": (
        _sodium.crypto_pwhash_argon2id_OPSLIMIT_MODERATE,
        _sodium.crypto_pwhash_argon2id_MEMLIMIT_MODERATE,
    ),
    "sensitive": (
        _sodium.crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE,
        _sodium.crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE,
    ),
}
DEFAULT_ARGON2_LIMITS = "moderate"
# Read-side bounds: libsodium's minimums, and SENSITIVE as the ceiling.
OPSLIMIT_RANGE = (_sodium.crypto_pwhash_argon2id_OPSLIMIT_MIN, ARGON2_LIMITS["sensitive"][0])
MEMLIMIT_RANGE = (_sodium.crypto_pwhash_argon2id_MEMLIMIT_MIN, ARGON2_LIMITS["sensitive"][1])


def derive_passphrase_key(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    """Argon2id13 -> a 32-byte wrapping key. The caller checks the limits first."""
    return bytes(
        _sodium.crypto_pwhash_alg(
            KEY_BYTES, passphrase, salt, opslimit, memlimit, _sodium.crypto_pwhash_ALG_ARGON2ID13
        )
    )


def wrap_secret(wrapping_key: bytes, secret: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext-with-tag): XChaCha20-Poly1305 under a fresh random nonce."""
    nonce = random_bytes(NONCE_BYTES)
    return nonce, bytes(
        _sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(secret, aad, nonce, wrapping_key)
    )


def unwrap_secret(wrapping_key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes | None:
    """The wrapped secret, or None when the tag does not verify (wrong passphrase or tampering)."""
    try:
        return bytes(
            _sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, wrapping_key)
        )
    except CryptoError:
        return None
