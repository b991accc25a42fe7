"""A scope file's envelope: its data key, who it is sealed to, its MAC and its writer's signature.

The only place stanzas are built and opened, as age keeps wrapping and
unwrapping in one file behind two interfaces: a ``keys.PublicKey`` wraps a
data key, a ``keys.Identity`` unwraps it and picks its own stanza. ``store``
and the merge driver call these functions; nothing else seals or signs.

Reading a file, in order (FORMAT.md, "Reading"): the writer's signature is
checked over the whole file (``check_signature``), the caller decides whether
it trusts that writer (``trust.py``), then the identity opens its stanza and
the MAC is verified (``open_file``) before any value is decrypted.
"""

from __future__ import annotations

from secretstore import crypto, limits, scopefile
from secretstore.errors import TamperedError
from secretstore.scopefile import (
    BYTES_SIGNED,
    FORMAT_V2,
    FORMAT_V3,
    FORMAT_V4,
    Entry,
    ScopeFile,
    SealedKey,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Callable, Iterable

    from secretstore import fsio
    from secretstore.keys import Identity, PublicKey


def new_keys() -> crypto.FileKeys:
    """A fresh random data key and its subkeys (a new file, or a rotation)."""
    return crypto.FileKeys(crypto.new_data_key())


def stanza(recipient: PublicKey, keys: crypto.FileKeys) -> SealedKey:
    """``keys``' data key sealed to ``recipient``, as the file lists it."""
    return SealedKey(recipient.text, recipient.wrap(keys.data_key), recipient.label)


def stanzas(recipients: Iterable[PublicKey], keys: crypto.FileKeys) -> list[SealedKey]:
    return [stanza(recipient, keys) for recipient in recipients]


def unwrap(file: ScopeFile, identity: Identity, where: str) -> crypto.FileKeys | None:
    """The file's keys from ``identity``'s own stanza, or None when no stanza is addressed to it."""
    data_key = identity.unwrap(file.recipients, where)
    return None if data_key is None else crypto.FileKeys(data_key)


def mac_input(file: ScopeFile) -> bytes:
    """What the file MAC covers: every field framed (versions 1, 2), or the digest of the signed
    bytes (3; 4: the digest its last seal signs)."""
    if file.version in BYTES_SIGNED:
        return _MAC_LABELS[file.version] + len(file.digest).to_bytes(4, "big") + file.digest
    return scopefile.mac_input(file)


def signed_input(file: ScopeFile, body: bytes) -> bytes:
    """What the signer signs: a domain label, the MAC's input and the MAC itself."""
    if file.version in BYTES_SIGNED:
        return b"".join([
            _SIGNATURE_LABELS[file.version], len(file.digest).to_bytes(4, "big"), file.digest,
            len(file.mac).to_bytes(4, "big"), file.mac,
        ])
    return scopefile.signed_input(file, body)


def _label(*parts: bytes) -> bytes:
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


_MAC_LABELS = {version: _label(b"secretstore file", version.encode()) for version in (FORMAT_V3, FORMAT_V4)}
_SIGNATURE_LABELS = {version: _label(b"secretstore signature", version.encode()) for version in (FORMAT_V3, FORMAT_V4)}


def verify_mac(file: ScopeFile, keys: crypto.FileKeys, where: str, body: bytes | None = None) -> None:
    """TamperedError unless the MAC is the data key holder's over every field."""
    if not crypto.mac_matches(keys, mac_input(file) if body is None else body, file.mac):
        raise TamperedError(
            f"{where}: file MAC does not match "
            "(entries were added, removed, reordered or edited by hand, or a merge went wrong)"
        )


def check_signature(file: ScopeFile, where: str) -> bytes:
    """TamperedError unless ``file.signer`` signed exactly this file; returns ``mac_input`` for reuse.

    Only for signed files (versions 2 and 3): a version-1 file has no signature
    (trust.py decides about it). For version 3 "this file" is its entries, not
    their history, which each entry binds by digest (``HistoryChunk``).
    """
    from secretstore.keys import PublicKey

    body = mac_input(file)
    signer = PublicKey.decode(file.signer)  # parse checked it is a valid ssk2 key
    if not signer.verify(file.signature, signed_input(file, body)):
        raise TamperedError(
            f"{where}: the signature does not match the file "
            "(edited after it was signed, or forged)"
        )
    return body


def seal(
    file: ScopeFile,
    keys: crypto.FileKeys,
    writer: Identity,
    *,
    store_id: str,
    counter: int,
    warn: Callable[[str], None] | None = None,
    max_bytes: int | None = None,
) -> bytes:
    """``seal_parts`` joined."""
    from secretstore import fsio

    return fsio.join(seal_parts(file, keys, writer, store_id=store_id, counter=counter, warn=warn,
                                max_bytes=max_bytes))


def seal_parts(
    file: ScopeFile,
    keys: crypto.FileKeys,
    writer: Identity,
    *,
    store_id: str,
    counter: int,
    warn: Callable[[str], None] | None = None,
    max_bytes: int | None = None,
) -> list[fsio.Part]:
    """Sort the entries, MAC the file, sign it as ``writer`` and serialise it (version 3;
    version 2 for scripts/gen-vectors' cases of it, ``scopefile.WRITE_FORMAT``).

    Never a file a reader would refuse as too large (``limits``): over
    ``max_bytes`` (default: the reading cap), the oldest earlier versions are dropped, every name keeping
    the same number, until it fits (``warn`` says how many are kept); a file
    over the cap with no earlier version left but a deleted name's last one
    raises ``LimitError`` and nothing is written.
    """
    file.entries = dict(sorted(file.entries.items()))
    file.version = scopefile.WRITE_FORMAT
    file.store_id = store_id
    file.counter = counter
    file.signer = writer.public_text
    data = _signed_bytes(file, keys, writer)
    if max_bytes is None:
        max_bytes = limits.MAX_SCOPE_FILE_BYTES
    if _size(data) <= max_bytes:
        return data
    where = f"{scopefile.describe(file.entity, file.scope_id)}"
    deepest = max((len(entry.history) for entry in file.entries.values()), default=0)
    for keep in range(deepest - 1, -1, -1):
        file.entries = {name: _trimmed(entry, keep) for name, entry in file.entries.items()}
        data = _signed_bytes(file, keys, writer)
        if _size(data) <= max_bytes:
            if warn is not None:
                warn(f"{where} would be larger than {limits.size_text(max_bytes)}, the most a reader accepts: "
                     f"kept {keep} earlier version(s) per name (a deleted name keeps its last), "
                     "dropping the older ones")
            return data
    from secretstore.errors import LimitError

    raise LimitError(
        f"{where} would be {_size(data) / (1 << 20):.1f} MiB, over the {limits.size_text(max_bytes)} a reader "
        "accepts, even without earlier versions: nothing was written",
        hint="move some secrets to another project or cluster scope, or store large files elsewhere",
    )


def _size(parts: list[fsio.Part]) -> int:
    return sum(len(part) for part in parts)


def digest_signer(file: ScopeFile, keys: crypto.FileKeys, writer: Identity) -> Callable[[bytes], tuple[bytes, bytes]]:
    """``sign(digest)`` for a version-3 or -4 writer: the file MAC and ``writer``'s signature over
    the digest of the signed bytes (``serialize_v3_parts``, ``Splice.parts``; version 4: the digest
    a seal signs, ``serialize_v4_parts``, ``section_bytes``)."""

    def sign(digest: bytes) -> tuple[bytes, bytes]:
        file.digest = digest
        file.mac = crypto.compute_mac(keys, mac_input(file))
        return file.mac, writer.sign(signed_input(file, b""))

    return sign


def _signed_bytes(file: ScopeFile, keys: crypto.FileKeys, writer: Identity) -> list[fsio.Part]:
    if file.version == FORMAT_V4:
        return scopefile.serialize_v4_parts(file, digest_signer(file, keys, writer))
    if file.version == FORMAT_V3:
        return scopefile.serialize_v3_parts(file, digest_signer(file, keys, writer))
    assert file.version == FORMAT_V2
    body = scopefile.mac_input(file)
    file.mac = crypto.compute_mac(keys, body)
    file.signature = writer.sign(scopefile.signed_input(file, body))
    return [scopefile.serialize(file)]


def _trimmed(entry: Entry, keep: int) -> Entry:
    """``entry`` with its newest ``keep`` earlier versions (a deleted name keeps at least one)."""
    keep = max(keep, 1) if entry.current is None else keep
    if len(entry.history) <= keep:
        return entry
    history = entry.history[len(entry.history) - keep:] if keep else ()
    return Entry(entry.current, entry.updated, history, entry.writer, entry.rotate)


def reencrypt(file: ScopeFile, old: crypto.FileKeys, new: crypto.FileKeys, where: str) -> dict[str, Entry]:
    """Every entry (history too) decrypted under ``old`` and encrypted again under ``new``.

    For a rotation: whoever kept the old data key learns nothing from the new file.
    """

    def again(name: str, version: scopefile.Version) -> scopefile.Version:
        plaintext = scopefile.decrypt(file, old, name, version, where)
        return scopefile.encrypt(file, new, name, plaintext, version.updated, version.writer)

    entries = {}
    for name, entry in file.entries.items():
        current = None if entry.current is None else again(name, entry.current)
        history = tuple(again(name, version) for version in entry.history)
        entries[name] = Entry(current, entry.updated, history, entry.writer, entry.rotate)
    return entries
