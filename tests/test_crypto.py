"""secretstore.crypto calls libsodium through PyNaCl's cffi handle: cross-check every call with nacl.bindings."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl import bindings

from secretstore import crypto
from secretstore.errors import TamperedError


def test_keypair_and_public_key_agree_with_pynacl() -> None:
    public, secret = crypto.new_keypair()
    assert len(public) == len(secret) == 32
    assert crypto.public_key_of(secret) == bytes(bindings.crypto_scalarmult_base(secret))


def test_sealed_box_interoperates_both_ways() -> None:
    public, secret = bindings.crypto_box_keypair()
    data_key = crypto.new_data_key()
    sealed = crypto.seal_data_key(data_key, public)
    assert len(sealed) == crypto.SEALED_KEY_BYTES
    assert bytes(bindings.crypto_box_seal_open(sealed, public, secret)) == data_key
    theirs = bytes(bindings.crypto_box_seal(data_key, public))
    assert crypto.open_data_key(theirs, public, secret, "w") == data_key
    other_public, other_secret = bindings.crypto_box_keypair()
    with pytest.raises(TamperedError):
        crypto.open_data_key(sealed, other_public, other_secret, "w")
    with pytest.raises(TamperedError):
        crypto.open_data_key(sealed[:10], public, secret, "w")


@pytest.mark.parametrize("size", [0, 1, 100, 65536])
def test_aead_interoperates_both_ways(size: int) -> None:
    keys = crypto.FileKeys(crypto.new_data_key())
    plaintext = bytes(range(256)) * (size // 256) + bytes(size % 256)
    aad = b"associated"
    nonce, ciphertext = crypto.encrypt_value(keys, plaintext, aad)
    assert len(ciphertext) == size + crypto.TAG_BYTES
    assert bytes(bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, keys.value_key)) == plaintext
    theirs = bytes(bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, keys.value_key))
    assert theirs == ciphertext
    assert crypto.decrypt_value(keys, nonce, theirs, aad, "w") == plaintext
    for bad in (ciphertext[:-1] + bytes([ciphertext[-1] ^ 1]), ciphertext[:5], b""):
        with pytest.raises(TamperedError):
            crypto.decrypt_value(keys, nonce, bad, aad, "w")
    with pytest.raises(TamperedError):
        crypto.decrypt_value(keys, nonce, ciphertext, b"other", "w")


def test_subkeys_and_mac_are_pynacl_blake2b() -> None:
    data_key = bytes(range(32))
    keys = crypto.FileKeys(data_key)
    assert keys.value_key == bytes(bindings.crypto_generichash_blake2b_salt_personal(
        b"", digest_size=32, key=data_key, person=b"sstore-value-v1\x00"))
    assert keys.mac_key == bytes(bindings.crypto_generichash_blake2b_salt_personal(
        b"", digest_size=32, key=data_key, person=b"sstore-mackey-v1"))
    mac = crypto.compute_mac(keys, b"data")
    assert mac == bytes(bindings.crypto_generichash_blake2b_salt_personal(b"data", digest_size=32, key=keys.mac_key))
    assert crypto.mac_matches(keys, b"data", mac)
    assert not crypto.mac_matches(keys, b"datb", mac)
    assert not crypto.mac_matches(keys, b"data", mac[:-1])
    assert crypto.checksum(b"x") == bytes(bindings.crypto_generichash_blake2b_salt_personal(b"x", digest_size=4))


def test_argon2id_matches_pynacl() -> None:
    ops, mem = crypto.ARGON2_LIMITS["interactive"]
    salt = bytes(16)
    ours = crypto.derive_passphrase_key(b"fake passphrase", salt, ops, mem)
    theirs = bytes(bindings.crypto_pwhash_alg(32, b"fake passphrase", salt, ops, mem,
                                              bindings.crypto_pwhash_ALG_ARGON2ID13))
    assert ours == theirs
    assert crypto.ARGON2_LIMITS["moderate"] == (bindings.crypto_pwhash_argon2id_OPSLIMIT_MODERATE,
                                                bindings.crypto_pwhash_argon2id_MEMLIMIT_MODERATE)


@pytest.mark.parametrize("call", [
    lambda: crypto.public_key_of(b"short"),
    lambda: crypto.seal_data_key(bytes(32), b"short"),
    lambda: crypto.open_data_key(bytes(80), b"short", bytes(32), "w"),
    lambda: crypto.decrypt_value(crypto.FileKeys(bytes(32)), b"short-nonce", bytes(40), b"", "w"),
    lambda: crypto.FileKeys(b"short"),
])
def test_wrong_lengths_never_reach_c(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        call()


def test_decrypt_values_matches_one_at_a_time_and_marks_failures() -> None:
    keys = crypto.FileKeys(crypto.new_data_key())
    plaintexts = [b"", b"fake-short", bytes(range(256)) * 40, b"fake-after-a-long-one"]
    items = []
    for index, plaintext in enumerate(plaintexts):
        aad = f"aad-{index}".encode()
        nonce, ciphertext = crypto.encrypt_value(keys, plaintext, aad)
        items.append((nonce, ciphertext, aad))
    assert crypto.decrypt_values(keys, items) == plaintexts
    assert crypto.decrypt_values(keys, []) == []
    nonce, ciphertext, aad = items[2]
    broken = [items[0], (nonce, ciphertext[:-1] + bytes([ciphertext[-1] ^ 1]), aad),
              (nonce, ciphertext, b"other aad"), (nonce, ciphertext[:5], aad), items[3]]
    assert crypto.decrypt_values(keys, broken) == [b"", None, None, None, b"fake-after-a-long-one"]
    with pytest.raises(ValueError):  # a wrong nonce length never reaches C
        crypto.decrypt_values(keys, [(b"short-nonce", ciphertext, aad)])


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=6))
def test_the_streamed_body_digest_is_the_one_shot_digest(data: bytes, cuts: list[int]) -> None:
    """Readers and writers hash a version-3 file's signed bytes in pieces (no joined copy):
    the digest must be the one FORMAT.md gives for the bytes joined."""
    edges = sorted({0, len(data), *(min(cut, len(data)) for cut in cuts)})
    view = memoryview(data)
    parts: list[bytes | memoryview] = [view[a:b] if i % 2 else data[a:b]
                                       for i, (a, b) in enumerate(itertools.pairwise(edges))]
    assert crypto.body_digest_of(parts) == crypto.body_digest(data)
    assert crypto.body_digest_of([]) == crypto.body_digest(b"")
