"""Encrypted local snapshots: what ``exec`` verified, kept so an unchanged scope costs little.

Reading a scope the full way costs per secret: parse its entry, decrypt its
value (one AEAD call each) and check the signature and the file MAC over every
field, history included. For a scope of 10,000 secrets that is most of
``exec``'s time. After ``exec`` has verified a scope file, it keeps the
resulting name -> value map as one snapshot; the next ``exec`` that finds the
*same head* in the file (its first lines, ``format`` through ``mac``: a few
hundred bytes, read without the rest) opens the snapshot with one AEAD call
instead, whatever the file's size.

A snapshot is XChaCha20-Poly1305 under a key derived from the identity's
private key (``Identity.snapshot_key``), with associated data that binds it
to the BLAKE2b digest of the scope file's head, the store and the scope. The
head holds the writer's signature and the file MAC, which cover every other
field. So:

- any write of the scope file (a ``set``, a ``git pull``, a merge) gives it
  another signature and MAC, so the snapshot fails to open, and ``exec``
  verifies the file the full way and replaces the snapshot;
- a file whose head is that of a verified file either holds the same fields
  (the same values) or is a forgery behind a copied head; the snapshot gives
  the verified values either way, never the forgery's (a full read, as
  ``doctor --verify`` does, refuses it);
- a snapshot can only have been written by the holder of the identity, after
  a full verification: forging or editing one (or copying it to another scope
  or store) makes it fail to open, which costs only speed;
- it holds nothing the identity cannot already read from the store.

Whether the reader still trusts the head's signer, and has not read a newer
version since, is checked again every time (``Store.from_snapshot``).

The cache is best effort: a snapshot that is missing, unreadable, stale or
damaged is a miss, and a snapshot that cannot be written is skipped, both in
silence. One file per (identity, store, scope), replaced in place.
``export`` and ``inject`` read and write snapshots as exec does; ``get``
(``layers.read_value``) only reads them. ``SECRETSTORE_CACHE=0`` turns it off;
FORMAT.md describes the file.
"""

from __future__ import annotations

import os

from secretstore import crypto, fsio
from secretstore.errors import SecretStoreError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.identity import Identity
    from secretstore.store import Scope

MAGIC = b"secretstore-snapshot/v2\n"  # v1 (0.2.0) was bound to the whole file's bytes
_NAME_PERSON = b"sstore-snapname1"


class Snapshots:
    """The snapshots of one identity for one store, in ``directory``."""

    __slots__ = ("_key", "directory", "public_key", "store_root")

    def __init__(self, directory: str, identity: Identity, store_root: str) -> None:
        self.directory = directory
        self.store_root = store_root
        self.public_key = identity.box_key
        self._key = identity.snapshot_key

    def __repr__(self) -> str:
        return f"Snapshots({self.directory!r}, store={self.store_root!r})"

    def path(self, scope: Scope) -> str:
        """``<directory>/<hex>``: a name that reveals neither the store nor the scope."""
        label = b"\0".join([self.public_key, os.fsencode(self.store_root), scope.relpath.encode()])
        return os.path.join(self.directory, crypto.checksum(label, 16).hex())

    def _aad(self, scope: Scope, head: bytes) -> bytes:
        return b"".join([
            MAGIC,
            crypto.snapshot_digest(head),
            os.fsencode(self.store_root),
            b"\0",
            scope.relpath.encode(),
        ])

    def load(self, scope: Scope, head: bytes) -> dict[str, str] | None:
        """The values verified from a file with exactly this head (``scopefile.Head.key``), or None (a miss)."""
        try:
            blob = fsio.read_file(self.path(scope))
        except SecretStoreError:  # a directory, a symlink, unreadable: a miss, like any other
            return None
        if blob is None or not blob.startswith(MAGIC):
            return None
        start = len(MAGIC)
        nonce = blob[start : start + crypto.NONCE_BYTES]
        if len(nonce) != crypto.NONCE_BYTES:
            return None
        payload = crypto.unwrap_secret(
            self._key, nonce, blob[start + crypto.NONCE_BYTES :], self._aad(scope, head)
        )
        if payload is None:
            return None
        return decode(payload)

    def save(self, scope: Scope, head: bytes, values: dict[str, str]) -> None:
        """Keep ``values`` as verified from a file with this head; failures are ignored."""
        nonce, ciphertext = crypto.wrap_secret(self._key, encode(values), self._aad(scope, head))
        try:
            fsio.atomic_write(self.path(scope), MAGIC + nonce + ciphertext, durable=False)
        except SecretStoreError:  # a read-only home, a full disk: run without the cache
            pass

    def forget(self, scope: Scope) -> None:
        """Remove ``scope``'s snapshot (after a delete, so the value leaves the cache too)."""
        try:
            os.unlink(self.path(scope))
        except OSError:
            pass


def encode(values: dict[str, str]) -> bytes:
    """NAME NUL VALUE NUL ...: names and values never contain NUL (rules.py)."""
    return "\0".join(item for pair in values.items() for item in pair).encode("utf-8")


def decode(payload: bytes) -> dict[str, str] | None:
    if not payload:
        return {}
    try:
        items = payload.decode("utf-8").split("\0")
    except UnicodeDecodeError:
        return None
    if len(items) % 2:
        return None
    return dict(zip(items[0::2], items[1::2], strict=True))


# --- list's cache ----------------------------------------------------------------------------
#
# ``list`` needs no private key, so its cache is not encrypted: it holds what the
# scope file shows anyone who can read it (names, times, writers' public keys,
# "rotate needed"), in the same private cache directory (0700, files 0600). Like
# a snapshot, an entry is bound to the exact head of the file it was verified
# from (whose signature covers every name, time and flag), and trust in the
# head's writer is decided again on every use.

LISTING_MAGIC = b"secretstore-listing/v1\n"

Row = tuple[str, str, "str | None", bool]  # name, updated, writer, rotate needed (store.Listing)


class Listings:
    """``list``'s cached rows of one store's scopes, in ``directory``."""

    __slots__ = ("directory", "store_root")

    def __init__(self, directory: str, store_root: str) -> None:
        self.directory = directory
        self.store_root = store_root

    def __repr__(self) -> str:
        return f"Listings({self.directory!r}, store={self.store_root!r})"

    def path(self, scope: Scope) -> str:
        """``<directory>/l-<hex>``: a name that reveals neither the store nor the scope."""
        label = b"\0".join([b"listing", os.fsencode(self.store_root), scope.relpath.encode()])
        return os.path.join(self.directory, "l-" + crypto.checksum(label, 16).hex())

    def _binding(self, scope: Scope, head: bytes) -> bytes:
        label = b"\0".join([LISTING_MAGIC, head, os.fsencode(self.store_root), scope.relpath.encode()])
        return crypto.snapshot_digest(label).hex().encode("ascii")

    def load(self, scope: Scope, head: bytes) -> list[Row] | None:
        """The rows verified from a file with exactly this head, or None (a miss)."""
        try:
            blob = fsio.read_file(self.path(scope))
        except SecretStoreError:
            return None
        if blob is None or not blob.startswith(LISTING_MAGIC):
            return None
        return decode_listing(blob[len(LISTING_MAGIC) :], self._binding(scope, head))

    def save(self, scope: Scope, head: bytes, rows: list[Row]) -> None:
        """Keep ``rows`` as verified from a file with this head; failures are ignored."""
        try:
            fsio.atomic_write(self.path(scope), LISTING_MAGIC + encode_listing(rows, self._binding(scope, head)),
                              durable=False)
        except SecretStoreError:
            pass


def encode_listing(rows: list[Row], binding: bytes) -> bytes:
    """The binding, the writers, then one line per column (names, times, writer numbers, flags),
    TAB-separated: names, times and keys never hold a TAB or a newline (rules.py)."""
    names, times, who, flags = zip(*rows, strict=True) if rows else ((), (), (), ())
    writers = {writer: str(number) for number, writer in enumerate(dict.fromkeys(w for w in who if w is not None))}
    writers[None] = "-"
    columns = [
        "\t".join(key for key in writers if key is not None), "\t".join(names), "\t".join(times),
        "\t".join(map(writers.__getitem__, who)), "".join("1" if flag else "0" for flag in flags),
    ]
    return binding + b"\n" + "\n".join(columns).encode("utf-8")


def decode_listing(payload: bytes, binding: bytes) -> list[Row] | None:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    if len(lines) != 6 or lines[0] != binding.decode("ascii"):
        return None
    writers = lines[1].split("\t") if lines[1] else []
    if not lines[2]:
        return [] if not (lines[3] or lines[4] or lines[5]) else None
    names, times, numbers, flags = lines[2].split("\t"), lines[3].split("\t"), lines[4].split("\t"), lines[5]
    if not len(names) == len(times) == len(numbers) == len(flags) or flags.strip("01"):
        return None
    try:
        who = [None if number == "-" else writers[int(number)] for number in numbers]
    except (ValueError, IndexError):
        return None
    return [(name, updated, writer, flag == "1")
            for name, updated, writer, flag in zip(names, times, who, flags, strict=True)]
