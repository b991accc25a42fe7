"""Secretstore 0.1 (version-1, unsigned) files, written as 0.1 wrote them, for the tests.

A 0.1 file is sealed to public keys and carries no signature, so anyone can
write one for any reader from that reader's public key alone: no private key,
no data key of the store. ``forge_v1_scope`` does exactly that (it is what an
attacker with push access does), with the library's own value encryption and
MAC, serialised as ``scripts/gen-vectors``' ``serialize_v1`` (0.1's tomli-w
output).
"""

from __future__ import annotations

import base64

import tomli_w

from secretstore import crypto, envelope, scopefile
from secretstore.keys import PublicKey
from secretstore.scopefile import Entry, ScopeFile

UPDATED = "2025-01-01T00:00:00Z"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def legacy_key(key: PublicKey) -> PublicKey:
    """The key as 0.1 wrote it (ssk1: the reading key alone)."""
    return PublicKey(key.box_key, label=key.label)


def forge_v1_scope(entity: str, scope_id: str | None, values: dict[str, str], readers: list[PublicKey]) -> bytes:
    """A version-1 scope file holding ``values``, sealed to ``readers`` (public keys only)."""
    keys = crypto.FileKeys(crypto.random_bytes(32))
    file = ScopeFile(entity, scope_id, envelope.stanzas([legacy_key(r) for r in readers], keys),
                     version=scopefile.FORMAT_V1)
    entries = {}
    for name, value in sorted(values.items()):
        current = scopefile.encrypt(file, keys, name, value, UPDATED)
        entries[name] = Entry(current, UPDATED, ())
    file.entries = entries
    file.mac = crypto.compute_mac(keys, scopefile.mac_input(file))
    document: dict[str, object] = {"format": scopefile.FORMAT_V1, "entity": entity}
    if scope_id is not None:
        document["id"] = scope_id
    document["mac"] = _b64(file.mac)
    document["recipients"] = [
        {"public_key": s.public_key, **({"label": s.label} if s.label else {}), "sealed_key": _b64(s.sealed_key)}
        for s in file.recipients
    ]
    document["secrets"] = {
        name: {"updated": e.updated, "nonce": _b64(e.current.nonce), "ciphertext": _b64(e.current.ciphertext)}
        for name, e in file.entries.items() if e.current is not None
    }
    return tomli_w.dumps(document).encode("utf-8")


def forge_v1_roster(keys: list[PublicKey]) -> bytes:
    """0.1's recipients.toml listing ``keys``."""
    items = [{"public_key": k.text, **({"label": k.label} if k.label else {})} for k in sorted(keys, key=lambda k: k.text)]
    header = "# secretstore recipients: new scope files are sealed to these keys (and the writer)\n"
    return (header + tomli_w.dumps({"format": "secretstore-recipients/v1", "recipients": items})).encode()
