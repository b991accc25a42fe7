"""One scope file <-> TOML, exactly as FORMAT.md specifies (versions 1, 2 and 3).

Parsing checks structure only (no key needed). Authentication lives in
``secretstore.envelope``, and each value's AEAD binds it to its entity, id
and name (``value_aad``).

Version 3 (``secretstore/v3``) is what this code writes: the current entries
come first and every earlier version after them, so a reader of current
values never reads history. The writer's Ed25519 signature and the file MAC
cover a BLAKE2b digest of the exact bytes of everything before the history
(``Body.digest``); each name's history is bound by the length and digest its
entry records, and is parsed (and checked) only when it is used
(``Entry.history``). Version 2 signed every field, history included, framed
in document order (``mac_input``, ``signed_input``), and is still read;
version 1 (0.1) is unsigned, parsed here, and refused by every reader but
``upgrade`` (``Trust.check_unsigned``).
"""

from __future__ import annotations

import binascii
import functools
import re

from secretstore import crypto, fsio, limits
from secretstore.errors import (
    StoreFormatError,
    TamperedError,
    UnmergedError,
    UnsupportedVersionError,
)
from secretstore.keys import PUBLIC_PREFIX, is_valid_public_text
from secretstore.records import Record
from secretstore.rules import ENTITIES, MAX_NAME_LENGTH, is_valid_id, is_valid_label, is_valid_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Callable

FORMAT_V1 = "secretstore/v1"
FORMAT_V2 = "secretstore/v2"
FORMAT_V3 = "secretstore/v3"
FORMAT_V4 = "secretstore/v4"
FORMAT = FORMAT_V4  # what this code writes
SIGNED_FORMATS = (FORMAT_V2, FORMAT_V3, FORMAT_V4)
FORMATS = (FORMAT_V1, FORMAT_V2, FORMAT_V3, FORMAT_V4)
BYTES_SIGNED = (FORMAT_V3, FORMAT_V4)  # the versions whose signature covers bytes, not framed fields
# What ``envelope.seal`` writes: version 4, but scripts/gen-vectors keeps its version-2 and -3 cases.
WRITE_FORMAT = FORMAT_V4
FORMAT_FAMILY = "secretstore/"
# Values are encrypted the same way in both versions: their associated data keeps v1's label.
VALUE_FORMAT = FORMAT_V1
STORE_ID_BYTES = 16
MAX_COUNTER = 2**53 - 1  # exact in every JSON and TOML reader

_TOP_KEYS = {
    FORMAT_V1: {"format", "entity", "id", "mac", "recipients", "secrets"},
    FORMAT_V2: {"format", "entity", "id", "store", "counter", "signer", "signature", "mac", "recipients", "secrets"},
    FORMAT_V3: {"format", "entity", "id", "store", "counter", "signer", "signature", "mac", "recipients", "secrets"},
    FORMAT_V4: {"format", "entity", "id", "store", "recipients", "secrets", "seals"},
}
_RECIPIENT_KEYS = {"public_key", "label", "sealed_key"}
_ENTRY_KEYS = {
    FORMAT_V1: {"updated", "nonce", "ciphertext", "deleted", "history"},
    FORMAT_V2: {"updated", "writer", "nonce", "ciphertext", "deleted", "rotate", "history"},
    FORMAT_V3: {"updated", "writer", "nonce", "ciphertext", "deleted", "rotate", "history_bytes", "history_digest",
                "history"},
    FORMAT_V4: {"updated", "writer", "nonce", "ciphertext", "deleted", "rotate", "history_bytes", "history_digest",
                "history", "update"},
}
_VERSION_KEYS = {
    FORMAT_V1: {"updated", "nonce", "ciphertext"},
    FORMAT_V2: {"updated", "writer", "nonce", "ciphertext"},
    FORMAT_V3: {"updated", "writer", "nonce", "ciphertext"},
    FORMAT_V4: {"updated", "writer", "nonce", "ciphertext"},
}


class SealedKey(Record):
    """A recipient's copy of the file's data key (a stanza)."""

    __slots__ = ("public_key", "sealed_key", "label")
    public_key: str  # "ssk2..." (or 0.1's "ssk1...") text
    sealed_key: bytes
    label: str

    def __init__(self, public_key: str, sealed_key: bytes, label: str = "") -> None:
        self.public_key = public_key
        self.sealed_key = sealed_key
        self.label = label


class Version(Record):
    """One encrypted value: the current one, or a previous one kept in history.

    ``writer`` is the ``ssk2`` key of whoever set it; None when unknown (0.1 files).
    """

    __slots__ = ("updated", "nonce", "ciphertext", "writer")
    updated: str
    nonce: bytes
    ciphertext: bytes
    writer: str | None

    def __init__(self, updated: str, nonce: bytes, ciphertext: bytes, writer: str | None = None) -> None:
        self.updated = updated
        self.nonce = nonce
        self.ciphertext = ciphertext
        self.writer = writer


class Entry(Record):
    """A named secret. ``current`` is None for a deleted name kept for undelete.

    ``updated`` and ``writer`` say when and by whom the name last changed (set
    or deleted); for a live entry they are its current value's (``current.updated``,
    ``current.writer`` are what the file holds). ``rotate`` marks a value that a
    removed recipient could read.

    ``history`` (earlier versions, oldest first) is parsed on first use from
    ``chunk`` when the entry was read from a version-3 file: a reader of
    current values never parses, nor checks, any history.
    """

    __slots__ = ("current", "updated", "_history", "writer", "rotate", "chunk", "block")
    current: Version | None
    updated: str
    _history: tuple[Version, ...] | None
    writer: str | None
    rotate: bool
    chunk: HistoryChunk | None
    block: str | None

    def __init__(
        self,
        current: Version | None,
        updated: str,
        history: tuple[Version, ...] = (),
        writer: str | None = None,
        rotate: bool = False,
        chunk: HistoryChunk | None = None,
        block: str | None = None,
    ) -> None:
        self.current = current
        self.updated = updated
        self._history = None if chunk is not None else history
        self.writer = writer
        self.rotate = rotate
        self.chunk = chunk
        self.block = block  # version 3: the entry's text as read, written again as it is while unchanged

    @property
    def history(self) -> tuple[Version, ...]:
        if self._history is None:
            assert self.chunk is not None
            self._history = self.chunk.versions()
        return self._history

    def _key(self) -> tuple[object, ...]:
        return (self.current, self.updated, self.history, self.writer, self.rotate)

    def replace(self, **changes: object) -> Entry:
        values: dict[str, object] = {
            "current": self.current, "updated": self.updated, "history": self.history,
            "writer": self.writer, "rotate": self.rotate,
        }
        values.update(changes)
        return Entry(**values)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        history = f"<{self.chunk.length} bytes, not read>" if self._history is None and self.chunk else self._history
        return (f"Entry(current={self.current!r}, updated={self.updated!r}, history={history!r}, "
                f"writer={self.writer!r}, rotate={self.rotate!r})")


class ScopeFile:
    """One parsed scope file; mutable while a command edits it.

    ``version`` is the format it was read in (``FORMAT`` for files made here);
    a version-1 file has no store id, counter, signer or signature.
    """

    __slots__ = (
        "entity", "scope_id", "recipients", "entries", "mac",
        "version", "store_id", "counter", "signer", "signature", "digest", "unsealed",
    )

    def __init__(
        self,
        entity: str,
        scope_id: str | None,
        recipients: list[SealedKey],
        entries: dict[str, Entry] | None = None,
        mac: bytes = b"",
        *,
        version: str = FORMAT,
        store_id: str = "",
        counter: int = 0,
        signer: str = "",
        signature: bytes = b"",
        digest: bytes = b"",
    ) -> None:
        self.entity = entity
        self.scope_id = scope_id
        self.recipients = recipients
        self.entries: dict[str, Entry] = {} if entries is None else entries
        self.mac = mac
        self.version = version
        self.store_id = store_id
        self.counter = counter
        self.signer = signer
        self.signature = signature
        self.digest = digest  # version 3: BLAKE2b of the signed bytes, as read or as last written
        self.unsealed = 0  # version 4: bytes after the last seal, skipped (an append cut short)

    def __repr__(self) -> str:
        return f"ScopeFile({describe(self.entity, self.scope_id)}, {self.version}, {len(self.entries)} entries)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScopeFile):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__
                   if name not in ("digest", "unsealed"))

    __hash__ = None  # type: ignore[assignment]  # mutable

    @property
    def signed(self) -> bool:
        return self.version != FORMAT_V1

    def live_names(self) -> list[str]:
        return [name for name, entry in self.entries.items() if entry.current is not None]


def describe(entity: str, scope_id: str | None) -> str:
    return entity if scope_id is None else f"{entity} {scope_id}"


# --- canonical encodings -------------------------------------------------


def _frame(*parts: bytes) -> bytes:
    framed: list[bytes] = []
    for part in parts:  # a plain loop: this runs over every field of a 10,000-secret file
        framed += (len(part).to_bytes(4, "big"), part)
    return b"".join(framed)


@functools.lru_cache(maxsize=16)
def _aad_prefix(entity: str, scope_id: str | None) -> bytes:
    return _frame(b"secretstore value", VALUE_FORMAT.encode(), entity.encode(), (scope_id or "").encode())


def value_aad(entity: str, scope_id: str | None, name: str) -> bytes:
    """Associated data of a value: a ciphertext moved to another name or scope fails.

    ``frame("secretstore value", "secretstore/v1", entity, id or "", name)`` in
    both format versions; the first four parts are the same for every value of
    a file, so they are framed once.
    """
    encoded = name.encode()
    return _aad_prefix(entity, scope_id) + len(encoded).to_bytes(4, "big") + encoded


def mac_input(scope: ScopeFile) -> bytes:
    """Every field of a version-1 or -2 file but ``mac`` and ``signature``, in document order, framed."""
    assert scope.version != FORMAT_V3, "version 3 authenticates bytes (Body)"
    v2 = scope.version == FORMAT_V2
    parts = [b"secretstore file", scope.version.encode(), scope.entity.encode(), (scope.scope_id or "").encode()]
    if v2:
        parts += [scope.store_id.encode(), str(scope.counter).encode(), scope.signer.encode()]
    parts.append(str(len(scope.recipients)).encode())
    for stanza in scope.recipients:
        parts += [stanza.public_key.encode(), stanza.label.encode(), stanza.sealed_key]
    parts.append(str(len(scope.entries)).encode())
    framed = [_frame(*parts)]
    # The same framing, field by field, written out: this runs for every entry of the file.
    add = framed.extend
    for name, entry in scope.entries.items():
        encoded, updated = name.encode(), entry.updated.encode()
        add((len(encoded).to_bytes(4, "big"), encoded, len(updated).to_bytes(4, "big"), updated))
        current = entry.current
        if v2:
            writer = ((entry.writer if current is None else current.writer) or "").encode()
            add((len(writer).to_bytes(4, "big"), writer, _FRAMED_ROTATE if entry.rotate else _FRAMED_KEEP))
        if current is None:
            framed.append(_FRAMED_DELETED)
        else:
            add((_FRAMED_LIVE, len(current.nonce).to_bytes(4, "big"), current.nonce,
                 len(current.ciphertext).to_bytes(4, "big"), current.ciphertext))
        if not entry.history:
            framed.append(_FRAMED_NO_HISTORY)
            continue
        history = [str(len(entry.history)).encode()]
        for version in entry.history:
            history.append(version.updated.encode())
            if v2:
                history.append((version.writer or "").encode())
            history += [version.nonce, version.ciphertext]
        framed.append(_frame(*history))
    return b"".join(framed)


_FRAMED_LIVE = _frame(b"live")
_FRAMED_DELETED = _frame(b"deleted")
_FRAMED_NO_HISTORY = _frame(b"0")
_FRAMED_ROTATE = _frame(b"rotate")
_FRAMED_KEEP = _frame(b"-")
_SIGNATURE_LABEL = _frame(b"secretstore signature", FORMAT_V2.encode())


def signed_input(scope: ScopeFile, file_mac_input: bytes | None = None) -> bytes:
    """What the writer signs: a domain label, ``mac_input`` and the MAC itself."""
    body = mac_input(scope) if file_mac_input is None else file_mac_input
    return b"".join([_SIGNATURE_LABEL, body, _frame(scope.mac)])


# --- parsing ---------------------------------------------------------------


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _a2b_canonical(text: str) -> bytes:
    """Decode base64 that is exactly what ``_b64`` writes: strict_mode alone still
    accepts stray bits in the last character, which would let two different files
    carry the same valid MAC."""
    raw = binascii.a2b_base64(text, strict_mode=True)
    if binascii.b2a_base64(raw, newline=False) != text.encode("ascii"):
        raise binascii.Error("not canonical base64")
    return raw


def _unb64(text: object, what: str, where: str) -> bytes:
    if not isinstance(text, str):
        raise StoreFormatError(f"{where}: {what} must be a base64 string")
    try:
        return _a2b_canonical(text)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise StoreFormatError(f"{where}: {what} is not valid base64") from None


def _timestamp(value: object, what: str, where: str) -> str:
    text = _string(value, what, where)
    if _timestamp_re().fullmatch(text) is None:
        raise StoreFormatError(f"{where}: {what} must be a UTC time like 2026-01-31T12:00:00Z")
    return text


def _string(value: object, what: str, where: str) -> str:
    if not isinstance(value, str):
        raise StoreFormatError(f"{where}: {what} must be a string")
    return value


def _table(value: object, what: str, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise StoreFormatError(f"{where}: {what} must be a table")
    return value


def _only_keys(table: dict[str, object], allowed: set[str], what: str, where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise StoreFormatError(f"{where}: unknown field {unknown[0]!r} in {what}")


def check_format_field(document: dict[str, object], where: str) -> str:
    """The file's format version; UnsupportedVersionError for a newer one, StoreFormatError for none."""
    found = document.get("format")
    if found in FORMATS:
        assert isinstance(found, str)
        return found
    if isinstance(found, str) and found.startswith(FORMAT_FAMILY):
        raise UnsupportedVersionError(
            f"{where}: format {found!r} is not supported by this secretstore (it reads {FORMAT_V1} to {FORMAT})",
            hint="a newer version of secretstore may have written it; upgrade secretstore",
        )
    raise StoreFormatError(f"{where}: not a secretstore file (no format = \"{FORMAT}\" line)")


def load_toml(
    data: bytes, where: str, max_bytes: int = limits.MAX_SCOPE_FILE_BYTES, *, arrays: bool = False
) -> dict[str, object]:
    import tomllib

    limits.check_store_file_shape(data, where, max_bytes, arrays=arrays)  # tomllib is slow on crafted input
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise git_conflict_error(data, where) or StoreFormatError(
            f"{where}: not valid TOML (damaged or truncated?)") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise StoreFormatError(f"{where}: not a secretstore file (nested too deeply)") from None
    except ValueError:  # an integer over sys.get_int_max_str_digits() (4,300) digits
        raise StoreFormatError(f"{where}: not a secretstore file (a number too long to read)") from None


def parse(data: bytes, where: str, *, body_only: bool = False, tail: fsio.OpenFile | None = None) -> ScopeFile:
    """Bytes of a scope file -> ScopeFile, checking structure (not authenticity).

    A file exactly as ``serialize`` writes it takes the fast path
    (``parse_canonical``); anything else, and any file the fast path has a doubt
    about, goes through ``parse_reference``, which accepts it or gives the error.
    ``tail``: ``data`` is a version-3 file's body and the file is still open, its
    history read from it only when used (``HistoryRegion.tail``).
    """
    try:
        if data.startswith(_V3_START) or data.startswith(V4_START):
            return parse_v3(data, where, body_only=body_only, tail=tail)
        fast = parse_canonical(data)
        if fast is not None:
            return fast
        if data.startswith(UNMERGED_MARKER):
            raise unmerged_error(data, where)
        return parse_reference(data, where)
    except UnmergedError:
        raise
    except StoreFormatError as exc:  # looked for only once the file is refused: no cost to a good read
        raise git_conflict_error(data, where) or exc from None


_GIT_CONFLICT = re.compile(rb"^<{7} [^\n]*\n(?:.*\n)*?={7}\n(?:.*\n)*?>{7} ", re.MULTILINE)


def git_conflict_error(data: bytes, where: str) -> UnmergedError | None:
    """The error for a file git merged as text, with conflict markers (``<<<<<<<``, ``=======``,
    ``>>>>>>>``) in it: secretstore's merge driver was not installed in that checkout. None when
    ``data`` has no such markers."""
    if _GIT_CONFLICT.search(data) is None:
        return None
    return UnmergedError(
        f"{where} holds git's conflict markers: git merged it as text, without secretstore's merge driver",
        hint="run 'secretstore git setup' in the checkout, then 'git checkout -m -- FILE' merges it again "
        "with the driver; check it, then git add FILE",
    )


# The merge driver's first line for a file it could not merge whole (``gitmerge.py``):
# "# secretstore: unmerged: NAME NAME ..." (names in conflict) or "... unmerged: * REASON".
UNMERGED_MARKER = b"# secretstore: unmerged: "


def unmerged_names(data: bytes) -> list[str] | None:
    """The names left in conflict by the merge driver; [] for a whole-file conflict; None if not unmerged."""
    if not data.startswith(UNMERGED_MARKER):
        return None
    end = data.find(b"\n")  # a marker without a newline (never written by the driver) is all line
    line = data[len(UNMERGED_MARKER) : end if end >= 0 else len(data)].decode("utf-8", "replace")
    if line.startswith("*"):
        return []
    return [name for name in line.split() if is_valid_name(name)]


def unmerged_error(data: bytes, where: str) -> UnmergedError:
    names = unmerged_names(data) or []
    if not names:
        return UnmergedError(
            f"{where} is unmerged: a git merge could not combine the two sides",
            hint="keep one side (git checkout --ours -- FILE, or --theirs), check it, then git add FILE",
        )
    return UnmergedError(
        f"{where} is unmerged: both sides of a git merge changed {', '.join(names)}",
        hint="for each name run: secretstore git resolve ENTITY [--id ID] --name NAME --ours (or --theirs); "
        "then git add FILE",
    )


def parse_store_id(value: object, where: str) -> str:
    """A store id: base64url of 16 bytes, canonical."""
    from secretstore.keys import canonical_b64url

    text = _string(value, "store", where)
    try:
        raw = canonical_b64url(text)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != STORE_ID_BYTES:
        raise StoreFormatError(f"{where}: store must be a store id (base64url of {STORE_ID_BYTES} bytes)")
    return text


def parse_counter(value: object, where: str) -> int:
    if type(value) is not int or not 1 <= value <= MAX_COUNTER:
        raise StoreFormatError(f"{where}: counter must be a whole number from 1 to {MAX_COUNTER}")
    return value


def parse_signer(value: object, where: str) -> str:
    """The writer's public key: an ``ssk2`` key (a 0.1 ``ssk1`` key cannot sign)."""
    text = _string(value, "signer", where)
    if not text.startswith(PUBLIC_PREFIX) or not is_valid_public_text(text):
        raise StoreFormatError(f"{where}: signer must be an {PUBLIC_PREFIX}... public key")
    return text


def parse_signature(value: object, where: str) -> bytes:
    signature = _unb64(value, "signature", where)
    if len(signature) != crypto.SIGNATURE_BYTES:
        raise StoreFormatError(f"{where}: signature has the wrong length")
    return signature


def parse_reference(data: bytes, where: str) -> ScopeFile:
    """The reference reader: tomllib, then every check of FORMAT.md's reading rules."""
    document = load_toml(data, where)
    version = check_format_field(document, where)
    _only_keys(document, _TOP_KEYS[version], "the file", where)
    entity = document.get("entity")
    if entity not in ENTITIES:
        raise StoreFormatError(f"{where}: entity must be one of team, project, cluster")
    assert isinstance(entity, str)
    scope_id = document.get("id")
    if entity == "team":
        if scope_id is not None:
            raise StoreFormatError(f"{where}: a team file has no id")
    elif not isinstance(scope_id, str) or not is_valid_id(scope_id):
        raise StoreFormatError(f"{where}: missing or invalid id")
    signed: dict[str, object] = {}
    if version == FORMAT_V4:  # its signature is in its seals (checked in parse_v3's exact layout only)
        parse_store_id(document.get("store"), where)
    elif version in SIGNED_FORMATS:
        signed = {
            "store_id": parse_store_id(document.get("store"), where),
            "counter": parse_counter(document.get("counter"), where),
            "signer": parse_signer(document.get("signer"), where),
            "signature": parse_signature(document.get("signature"), where),
        }
    mac = b"" if version == FORMAT_V4 else _unb64(document.get("mac"), "mac", where)
    if len(mac) != crypto.MAC_BYTES and version != FORMAT_V4:
        raise StoreFormatError(f"{where}: mac has the wrong length")

    raw_recipients = document.get("recipients")
    if not isinstance(raw_recipients, list) or not raw_recipients:
        raise StoreFormatError(f"{where}: recipients must be a non-empty array")
    recipients: list[SealedKey] = []
    seen_keys: set[bytes] = set()
    for raw in raw_recipients:
        stanza = _table(raw, "a recipient", where)
        _only_keys(stanza, _RECIPIENT_KEYS, "a recipient", where)
        public_key = _string(stanza.get("public_key"), "public_key", where)
        box_key = _box_key(public_key)
        if box_key is None or box_key in seen_keys:
            raise StoreFormatError(f"{where}: invalid or repeated recipient public_key")
        seen_keys.add(box_key)
        sealed = _unb64(stanza.get("sealed_key"), "sealed_key", where)
        if len(sealed) != crypto.SEALED_KEY_BYTES:
            raise StoreFormatError(f"{where}: sealed_key has the wrong length")
        label = _string(stanza.get("label", ""), "label", where)
        if not is_valid_label(label):
            raise StoreFormatError(f"{where}: a recipient label must be at most 100 printable characters")
        recipients.append(SealedKey(public_key, sealed, label))

    if "secrets" not in document:
        raise StoreFormatError(f"{where}: missing secrets table (truncated?)")
    secrets = _table(document["secrets"], "secrets", where)
    entries: dict[str, Entry] = {}
    for name, raw_entry in secrets.items():
        if not is_valid_name(name):
            raise StoreFormatError(f"{where}: invalid secret name {name!r}")
        table = _table(raw_entry, f"secret {name}", where)
        if version == FORMAT_V4:  # what rule 5 says of its updates; which entry counts: the exact layout's
            _only_keys(table, _ENTRY_KEYS[version], f"secret {name}", where)
            for update in _array(table.pop("update", []), f"secret {name} update", where):
                _check_update(update, name, where)
            if "updated" not in table:  # a name only its updates hold: its chunks' versions
                for item in _array(table.get("history", []), f"secret {name} history", where):
                    _parse_version(_table(item, f"secret {name} history", where), f"secret {name} history",
                                   version, where)
                continue
        entries[name] = _parse_entry(table, name, version, where)
    if version == FORMAT_V4:
        seals = _array(document.get("seals", []), "seals", where)
        if not seals:
            raise StoreFormatError(f"{where}: no seal: the signed end of the file is missing (truncated?)")
        for raw in seals:
            _check_seal(_table(raw, "a seal", where), where)
    if version in BYTES_SIGNED:  # valid, but not the bytes a writer signs (parse_v3 reads those): never its writer's
        raise _not_as_signed(where)
    return ScopeFile(entity, scope_id, recipients, entries, mac, version=version, **signed)  # type: ignore[arg-type]


def _array(value: object, what: str, where: str) -> list[object]:
    if not isinstance(value, list):
        raise StoreFormatError(f"{where}: {what} must be an array of tables")
    return value


_UPDATE_KEYS = {"updated", "writer", "nonce", "ciphertext", "deleted", "rotate", "history_bytes", "history_digest"}
_SEAL_KEYS = {"base", "counter", "signer", "signature", "mac"}


def _check_update(raw: object, name: str, where: str) -> None:
    """Rule 5 for a version-4 update (its entry's fields, and its chunk's length and digest)."""
    what = f"secret {name} update"
    update = _table(raw, what, where)
    _only_keys(update, _UPDATE_KEYS, what, where)
    if "rotate" in update and update["rotate"] is not True:
        raise StoreFormatError(f"{where}: {what} rotate must be true when present")
    if ("history_bytes" in update) != ("history_digest" in update):
        raise StoreFormatError(f"{where}: {what} needs both history_bytes and history_digest, or neither")
    if "history_bytes" in update:
        length = update["history_bytes"]
        if type(length) is not int or not 1 <= length <= MAX_HISTORY_BYTES:
            raise StoreFormatError(f"{where}: {what} history_bytes must be a whole number from 1")
        if len(_unb64(update["history_digest"], f"{what} history_digest", where)) != crypto.MAC_BYTES:
            raise StoreFormatError(f"{where}: {what} history_digest has the wrong length")
    if "deleted" not in update:
        _parse_version({key: update[key] for key in _VERSION_KEYS[FORMAT_V4] if key in update}, what, FORMAT_V4,
                       where)
        return
    if update["deleted"] is not True:
        raise StoreFormatError(f"{where}: {what} deleted must be true when present")
    if "nonce" in update or "ciphertext" in update or "history_bytes" not in update:
        raise StoreFormatError(f"{where}: deleted {what} must have history and no value")
    _timestamp(update.get("updated"), f"{what} updated", where)
    if "writer" in update:
        _writer(update["writer"], what, where)


def _check_seal(seal: dict[str, object], where: str) -> None:
    """Rule 5 for a version-4 seal."""
    _only_keys(seal, _SEAL_KEYS, "a seal", where)
    base = seal.get("base")
    if type(base) is not int or not 1 <= base <= MAX_HISTORY_BYTES:
        raise StoreFormatError(f"{where}: a seal's base must be a whole number from 1")
    parse_counter(seal.get("counter"), where)
    parse_signer(seal.get("signer"), where)
    parse_signature(seal.get("signature"), where)
    if len(_unb64(seal.get("mac"), "mac", where)) != crypto.MAC_BYTES:
        raise StoreFormatError(f"{where}: mac has the wrong length")


def _not_as_signed(where: str) -> TamperedError:
    return TamperedError(
        f"{where}: the signature does not cover the file as it is (edited by hand, or forged)",
        hint="restore it from git (git log -- FILE) or ask its writer to write it again",
    )


def _box_key(text: str) -> bytes | None:
    from secretstore.keys import box_key_of

    return box_key_of(text)


def _writer(value: object, what: str, where: str) -> str:
    text = _string(value, f"{what} writer", where)
    if not text.startswith(PUBLIC_PREFIX) or not is_valid_public_text(text):
        raise StoreFormatError(f"{where}: {what} writer must be an {PUBLIC_PREFIX}... public key")
    return text


def _parse_version(table: dict[str, object], what: str, version: str, where: str) -> Version:
    _only_keys(table, _VERSION_KEYS[version], what, where)
    updated = _timestamp(table.get("updated"), f"{what} updated", where)
    writer = _writer(table["writer"], what, where) if "writer" in table else None
    nonce = _unb64(table.get("nonce"), f"{what} nonce", where)
    ciphertext = _unb64(table.get("ciphertext"), f"{what} ciphertext", where)
    if len(nonce) != crypto.NONCE_BYTES:
        raise StoreFormatError(f"{where}: {what} nonce has the wrong length")
    if len(ciphertext) <= crypto.TAG_BYTES:
        raise StoreFormatError(f"{where}: {what} ciphertext is too short")
    return Version(updated, nonce, ciphertext, writer)


def _parse_entry(table: dict[str, object], name: str, version: str, where: str) -> Entry:
    what = f"secret {name}"
    _only_keys(table, _ENTRY_KEYS[version], what, where)
    raw_history = table.get("history", [])
    if not isinstance(raw_history, list):
        raise StoreFormatError(f"{where}: {what} history must be an array")
    history = tuple(
        _parse_version(_table(item, f"{what} history", where), f"{what} history", version, where)
        for item in raw_history
    )
    rotate = False
    if "rotate" in table:  # present means true, as for deleted
        if table["rotate"] is not True:
            raise StoreFormatError(f"{where}: {what} rotate must be true when present")
        rotate = True
    if "deleted" in table:  # present means true: 'deleted = false' is not a spelling of absent
        if table["deleted"] is not True:
            raise StoreFormatError(f"{where}: {what} deleted must be true when present")
        if "nonce" in table or "ciphertext" in table or not history:
            raise StoreFormatError(f"{where}: deleted {what} must have history and no value")
        updated = _timestamp(table.get("updated"), f"{what} updated", where)
        writer = _writer(table["writer"], what, where) if "writer" in table else None
        return Entry(None, updated, history, writer, rotate)
    current = _parse_version(
        {key: table[key] for key in _VERSION_KEYS[version] if key in table}, what, version, where
    )
    return Entry(current, current.updated, history, current.writer, rotate)


# --- writing ----------------------------------------------------------------


def _version_table(version: Version) -> dict[str, str]:
    table = {"updated": version.updated}
    if version.writer is not None:
        table["writer"] = version.writer
    table["nonce"] = _b64(version.nonce)
    table["ciphertext"] = _b64(version.ciphertext)
    return table


def serialize(scope: ScopeFile) -> bytes:
    """Deterministic TOML (format 2): entries sorted by name, one block each.

    The caller must have sorted ``scope.entries``, and computed ``scope.mac``
    and ``scope.signature`` over that order (``envelope.seal``).
    ``serialize_canonical`` writes the same bytes without importing tomli_w; it
    declines the shapes it does not handle.
    """
    assert scope.version == FORMAT_V2, "version 3 is written by serialize_v3"
    fast = serialize_canonical(scope)
    if fast is not None:
        return fast
    return serialize_with_tomli_w(scope)


def serialize_with_tomli_w(scope: ScopeFile) -> bytes:
    """The reference writer: FORMAT.md defines the output as what tomli-w emits."""
    import tomli_w

    assert scope.version == FORMAT_V2, "tomli-w writes version 2 (scripts/gen-vectors)"
    document: dict[str, object] = {"format": FORMAT_V2, "entity": scope.entity}
    if scope.scope_id is not None:
        document["id"] = scope.scope_id
    document["store"] = scope.store_id
    document["counter"] = scope.counter
    document["signer"] = scope.signer
    document["signature"] = _b64(scope.signature)
    document["mac"] = _b64(scope.mac)
    recipients = []
    for stanza in scope.recipients:
        item = {"public_key": stanza.public_key}
        if stanza.label:
            item["label"] = stanza.label
        item["sealed_key"] = _b64(stanza.sealed_key)
        recipients.append(item)
    document["recipients"] = recipients
    secrets: dict[str, object] = {}
    for name, entry in scope.entries.items():
        table: dict[str, object]
        if entry.current is None:
            table = {"updated": entry.updated}
            if entry.writer is not None:
                table["writer"] = entry.writer
            table["deleted"] = True
        else:
            table = dict(_version_table(entry.current))
        if entry.rotate:
            table["rotate"] = True
        if entry.history:
            table["history"] = [_version_table(version) for version in entry.history]
        secrets[name] = table
    document["secrets"] = secrets
    return tomli_w.dumps(document).encode("utf-8")


def encrypt(
    scope: ScopeFile, keys: crypto.FileKeys, name: str, value: str, updated: str, writer: str | None = None
) -> Version:
    nonce, ciphertext = crypto.encrypt_value(
        keys, value.encode("utf-8"), value_aad(scope.entity, scope.scope_id, name)
    )
    return Version(updated, nonce, ciphertext, writer)


def decrypt_live(scope: ScopeFile, keys: crypto.FileKeys, where: str) -> dict[str, str]:
    """name -> value of every live entry (one batch of AEAD calls), or TamperedError
    naming the first secret that does not open, exactly as ``decrypt`` would."""
    live = [(name, entry.current) for name, entry in scope.entries.items() if entry.current is not None]
    items = []
    for name, version in live:
        items.append((version.nonce, version.ciphertext, value_aad(scope.entity, scope.scope_id, name)))
    return _open_all(scope, keys, [name for name, _version in live], items, lambda index: live[index][1], where)


def _open_all(
    scope: ScopeFile, keys: crypto.FileKeys, names: list[str], items: list[tuple[bytes, bytes, bytes]],
    version_of: Callable[[int], Version], where: str,
) -> dict[str, str]:
    """name -> value for (nonce, ciphertext, aad) ``items``, one batch of AEAD calls; a value that does
    not open goes through ``decrypt`` (``version_of(index)``) for get's exact error."""
    values: dict[str, str] = {}
    for index, (name, plaintext) in enumerate(zip(names, crypto.decrypt_values(keys, items), strict=True)):
        values[name] = decrypt(scope, keys, name, version_of(index), where) if plaintext is None else (
            _text(plaintext, name, where))
    return values


def decrypt_rows(scope: ScopeFile, keys: crypto.FileKeys, rows: Rows, where: str) -> dict[str, str]:
    """``decrypt_live`` for the rows of ``parse_quick`` (after the file's signature and MAC
    verified): each value's base64 is decoded only now, in one pass."""
    a2b, prefix = binascii.a2b_base64, _aad_prefix(scope.entity, scope.scope_id)
    nonce_bytes, tag_bytes = crypto.NONCE_BYTES, crypto.TAG_BYTES
    items = []
    try:
        for name, _updated, _writer, nonce_text, ciphertext_text, _rotate in rows:
            encoded = name.encode()
            nonce, ciphertext = a2b(nonce_text, strict_mode=True), a2b(ciphertext_text, strict_mode=True)
            if len(nonce) != nonce_bytes or len(ciphertext) <= tag_bytes:
                break
            items.append((nonce, ciphertext, prefix + len(encoded).to_bytes(4, "big") + encoded))
    except binascii.Error:
        items = []
    if len(items) != len(rows):
        raise StoreFormatError(f"{where}: a value is not a nonce and a ciphertext (edited by its signer?)")
    return _open_all(
        scope, keys, [row[0] for row in rows], items,
        lambda index: Version(rows[index][1], items[index][0], items[index][1], rows[index][2]), where,
    )


def decrypt(scope: ScopeFile, keys: crypto.FileKeys, name: str, version: Version, where: str) -> str:
    plaintext = crypto.decrypt_value(
        keys,
        version.nonce,
        version.ciphertext,
        value_aad(scope.entity, scope.scope_id, name),
        f"{where}: secret {name}",
    )
    return _text(plaintext, name, where)


def _text(plaintext: bytes, name: str, where: str) -> str:
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise TamperedError(f"{where}: secret {name} is not UTF-8") from None


# --- the canonical fast path -------------------------------------------------
#
# A 10,000-secret file is about 1.7 MB; tomllib plus the generic checks above
# take about 0.4 s on it, tomli_w another 0.15 s to write it. Files written by
# ``serialize`` have one fixed shape, so these functions read and write exactly
# that shape with a few anchored regular expressions (``re`` is imported by
# dataclasses anyway). Strings on the fast path hold no character
# that TOML would escape, so their text is their value. Anything else (a
# comment, CRLF, an escape, a duplicated name, bad base64 or a wrong length)
# makes ``parse_canonical`` return None and the reference path decide: it
# either accepts the file or raises the precise error. tests/test_fuzz.py
# checks that both paths agree and that ``serialize_canonical`` matches tomli_w.

_SAFE = r'[^"\\\x00-\x1f\x7f]*'  # a basic string that needs no escape
_TIMESTAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"
_B64 = r"[A-Za-z0-9+/=]*"
_KEY = r"ssk2[A-Za-z0-9_-]+"
_HEAD_TEXT = (
    r'format = "secretstore/(v1|v2|v3)"\n'
    r'entity = "(team|project|cluster)"\n'
    r'(?:id = "([A-Za-z0-9._-]+)"\n)?'
    r'(?:store = "([A-Za-z0-9_-]+)"\n'
    r"counter = ([1-9][0-9]{0,15})\n"
    rf'signer = "({_KEY})"\n'
    rf'signature = "({_B64})"\n)?'
    rf'mac = "({_B64})"\n'
)  # the head alone is all a snapshot check (``read_head``) needs (version 4: and its last seal)
_V4_HEAD_TEXT = (
    r'format = "secretstore/v4"\n'
    r'entity = "(team|project|cluster)"\n'
    r'(?:id = "([A-Za-z0-9._-]+)"\n)?'
    r'store = "([A-Za-z0-9_-]+)"\n'
)


# Each compiled on first use: a command reads files of one version, and compiling costs start-up.
@functools.cache
def _head_re() -> re.Pattern[str]:
    return re.compile(_HEAD_TEXT)


@functools.cache
def _v4_head_re() -> re.Pattern[str]:
    return re.compile(_V4_HEAD_TEXT)


V4_START = b'format = "secretstore/v4"\n'


# The rest are compiled on first use: exec from a snapshot never parses a whole file.
@functools.cache
def _recipient_re(label: str = _SAFE) -> re.Pattern[str]:
    """A stanza; ``label``: the label's pattern (version 3's may hold escapes)."""
    return re.compile(
        r"\n\[\[recipients\]\]\n"
        rf'public_key = "({_SAFE})"\n'
        rf'(?:label = "({label})"\n)?'
        rf'sealed_key = "({_B64})"\n'
    )


@functools.cache
def _entry_re() -> re.Pattern[str]:
    return re.compile(
        r"\n\[secrets\.([A-Za-z][A-Za-z0-9_]*)\]\n"
        rf'updated = "({_TIMESTAMP})"\n'
        rf'(?:writer = "({_KEY})"\n)?'
        rf'(?:nonce = "({_B64})"\nciphertext = "({_B64})"\n|deleted = true\n)'
        r"(rotate = true\n)?"
        r"((?:\n\[\[secrets\.\1\.history\]\]\n"
        rf'updated = "{_TIMESTAMP}"\n(?:writer = "{_KEY}"\n)?nonce = "{_B64}"\nciphertext = "{_B64}"\n)*)'
    )


@functools.cache
def _history_re() -> re.Pattern[str]:
    return re.compile(
        r"\n\[\[secrets\.[A-Za-z0-9_]+\.history\]\]\n"
        rf'updated = "({_TIMESTAMP})"\n(?:writer = "({_KEY})"\n)?nonce = "({_B64})"\nciphertext = "({_B64})"\n'
    )


@functools.cache
def _timestamp_re() -> re.Pattern[str]:
    return re.compile(_TIMESTAMP)


def parse_canonical(data: bytes) -> ScopeFile | None:
    """A file in exactly the shape ``serialize`` (or 0.1) writes -> ScopeFile; otherwise None.

    Returns a ScopeFile only when the reference path would return an equal one.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    a2b = _a2b_canonical
    try:
        head = _head_re().match(text)
        if head is None:
            return None
        number, entity, scope_id, store_id, counter_text, signer, signature_text, mac_text = head.groups()
        version = f"{FORMAT_FAMILY}{number}"
        if version == FORMAT_V3:
            return None  # parse_v3 reads it
        v2 = version == FORMAT_V2
        if v2 != (store_id is not None):
            return None
        if (entity == "team") != (scope_id is None):
            return None
        if scope_id is not None and not is_valid_id(scope_id):
            return None
        signed: dict[str, object] = {}
        if v2:
            counter = int(counter_text)
            signature = a2b(signature_text)
            if (
                counter > MAX_COUNTER
                or len(signature) != crypto.SIGNATURE_BYTES
                or not _is_store_id(store_id)
                or not is_valid_public_text(signer)
            ):
                return None
            signed = {"store_id": store_id, "counter": counter, "signer": signer, "signature": signature}
        mac = a2b(mac_text)
        if len(mac) != crypto.MAC_BYTES:
            return None
        pos = head.end()
        recipients: list[SealedKey] = []
        seen_keys: set[bytes] = set()
        while (stanza := _recipient_re().match(text, pos)) is not None:
            public_key, label, sealed_text = stanza.groups()
            sealed = a2b(sealed_text)
            box_key = _box_key(public_key)
            if (
                box_key is None
                or box_key in seen_keys
                or len(sealed) != crypto.SEALED_KEY_BYTES
                or (label is not None and not is_valid_label(label))
            ):
                return None  # the reference parser names what is wrong
            seen_keys.add(box_key)
            recipients.append(SealedKey(public_key, sealed, label or ""))
            pos = stanza.end()
        if not recipients:
            return None
        entries: dict[str, Entry] = {}
        if text.startswith("\n[secrets]\n", pos):
            pos += len("\n[secrets]\n")
        else:
            nonce_bytes, tag_bytes = crypto.NONCE_BYTES, crypto.TAG_BYTES
            match_entry = _entry_re().match
            writers: set[str] = set()  # each distinct writer key is checked once
            while (found := match_entry(text, pos)) is not None:
                name, updated, writer, nonce_text, ciphertext_text, rotate, history_text = found.groups()
                if name in entries or len(name) > MAX_NAME_LENGTH:
                    return None
                if (writer is not None or rotate is not None) and not v2:
                    return None
                history: tuple[Version, ...] = ()
                if history_text:
                    versions = []
                    for old in _history_re().finditer(history_text):
                        old_writer = old[2]
                        if old_writer is not None:
                            if not v2:
                                return None
                            writers.add(old_writer)
                        old_nonce = a2b(old[3])
                        old_ciphertext = a2b(old[4])
                        if len(old_nonce) != nonce_bytes or len(old_ciphertext) <= tag_bytes:
                            return None
                        versions.append(Version(old[1], old_nonce, old_ciphertext, old_writer))
                    history = tuple(versions)
                if writer is not None:
                    writers.add(writer)
                if nonce_text is None:  # deleted = true
                    if not history:
                        return None
                    entries[name] = Entry(None, updated, history, writer, rotate is not None)
                else:
                    nonce = a2b(nonce_text)
                    ciphertext = a2b(ciphertext_text)
                    if len(nonce) != nonce_bytes or len(ciphertext) <= tag_bytes:
                        return None
                    current = Version(updated, nonce, ciphertext, writer)
                    entries[name] = Entry(current, updated, history, writer, rotate is not None)
                pos = found.end()
            if not entries or not all(is_valid_public_text(key) for key in writers):
                return None
        if pos != len(text):
            return None
    except binascii.Error:
        return None
    return ScopeFile(entity, scope_id, recipients, entries, mac, version=version, **signed)  # type: ignore[arg-type]


class Head(Record):
    """The first fields of a scope file, read without parsing the rest.

    ``key`` is the head's exact bytes, ``format`` through the ``mac`` line: the
    signature and the MAC in it cover every other field, so it names one verified
    content (exec's snapshots are bound to it).
    """

    __slots__ = ("signed", "store_id", "counter", "signer", "key")
    signed: bool
    store_id: str
    counter: int
    signer: str
    key: bytes

    def __init__(self, signed: bool, store_id: str, counter: int, signer: str, key: bytes = b"") -> None:
        self.signed = signed
        self.store_id = store_id
        self.counter = counter
        self.signer = signer
        self.key = key


HEAD_BYTES = 4096  # more than any head: the lines format through mac, an id of 128 characters included


def head_of(data: bytes) -> Head | None:
    """The head of a file in the canonical shape (its first lines, then a blank line), or None.

    Nothing here is checked but the shape: a snapshot bound to the head stands
    for a full verification of a file with that head, and trust and the counter
    are checked again by the caller.
    """
    if data.startswith(V4_START):
        return _v4_head_of(data)
    head = _head_re().match(data[:HEAD_BYTES].decode("utf-8", "replace"))
    if head is None or data[head.end() : head.end() + 1] != b"\n":
        return None
    key = data[: head.end()]  # the match is ASCII: its characters are its bytes
    number, _entity, _id, store_id, counter, signer, _signature, _mac = head.groups()
    if number == "v1":
        return Head(False, "", 0, "", key)
    if store_id is None:
        return None
    return Head(True, store_id, int(counter), signer, key)


def _v4_head_of(data: bytes) -> Head | None:
    """A version-4 head: its lines and the last seal, the bytes ``data`` ends with (the whole file,
    the file without its history, or its start and its end: ``Store.read_head``). None when it
    does not end with a seal (a section still being written, or cut short): read it in full."""
    head = _v4_head_re().match(data[:HEAD_BYTES].decode("utf-8", "replace"))
    if head is None or data[head.end() : head.end() + 1] != b"\n":
        return None
    seal = last_seal(data)
    if seal is None:
        return None
    _base, counter, signer, seal_bytes = seal
    return Head(True, head[3], counter, signer, data[: head.end()] + seal_bytes)


def signer_of(data: bytes) -> tuple[str, str] | None:
    """(signer key, the label its stanza in the same file gives) of a signed file, else None. Unchecked."""
    head = head_of(data)
    if head is None or not head.signed:
        return None
    text = data[: limits.SIGNER_BYTES].decode("utf-8", "ignore")
    found = re.search(rf'\npublic_key = "{re.escape(head.signer)}"\nlabel = "({_SAFE})"\n', text)
    return head.signer, found[1] if found else ""


def _is_store_id(text: str) -> bool:
    from secretstore.keys import canonical_b64url

    try:
        return len(canonical_b64url(text)) == STORE_ID_BYTES
    except (ValueError, binascii.Error):
        return False


_NEEDS_ESCAPE = frozenset('"\\\x7f') | frozenset(chr(code) for code in range(32))


def _plain(text: str) -> bool:
    return _NEEDS_ESCAPE.isdisjoint(text)


def serialize_canonical(scope: ScopeFile) -> bytes | None:
    """The bytes tomli_w writes for ``scope``, for the shapes a scope file takes; else None.

    tomli_w writes an array of tables inline when every item fits on a line of
    100 characters; a sealed key (108 base64 characters) or a version (a
    32-character nonce and a ciphertext of 24 or more) never fits, so both are
    always ``[[...]]`` tables. Shapes outside that, and strings that need
    escapes, are left to tomli_w.
    """
    b64 = _b64
    if scope.version != FORMAT_V2 or scope.entity not in ENTITIES or not scope.recipients:
        return None
    out = [f'format = "{FORMAT_V2}"\nentity = "{scope.entity}"\n']
    if scope.scope_id is not None:
        if not _plain(scope.scope_id):
            return None
        out.append(f'id = "{scope.scope_id}"\n')
    if not (_plain(scope.store_id) and _plain(scope.signer)) or type(scope.counter) is not int:
        return None
    out.append(
        f'store = "{scope.store_id}"\ncounter = {scope.counter}\nsigner = "{scope.signer}"\n'
        f'signature = "{b64(scope.signature)}"\nmac = "{b64(scope.mac)}"\n'
    )
    for stanza in scope.recipients:
        if len(stanza.sealed_key) != crypto.SEALED_KEY_BYTES:
            return None
        if not _plain(stanza.public_key) or not _plain(stanza.label):
            return None
        out.append(_stanza_text(stanza, stanza.label))
    if not scope.entries:
        out.append("\n[secrets]\n")
    for name, entry in scope.entries.items():
        if not is_valid_name(name) or not _plain(entry.updated) or not _plain(entry.writer or ""):
            return None
        current = entry.current
        if current is not None and (
            not _fits_table_form(current) or current.updated != entry.updated or not _plain(current.writer or "")
        ):
            return None
        out.append(_entry_text(name, entry))
        for version in entry.history:
            if not _fits_table_form(version) or not _plain(version.updated) or not _plain(version.writer or ""):
                return None
            out.append(_version_text(name, version))
    return "".join(out).encode("utf-8")


# The text of a stanza, an entry and an earlier version, as both writers lay them out.


def _stanza_text(stanza: SealedKey, label: str) -> str:
    """``label``: the label as written (version 3 escapes ``\\`` and ``"``, version 2 has none to)."""
    label_line = f'label = "{label}"\n' if label else ""
    return f'\n[[recipients]]\npublic_key = "{stanza.public_key}"\n{label_line}sealed_key = "{_b64(stanza.sealed_key)}"\n'


def _entry_text(name: str, entry: Entry, tail: str = "") -> str:
    """``[secrets.NAME]`` and its lines, ``rotate`` then ``tail`` (version 3's history pointer) last."""
    rotate = "rotate = true\n" if entry.rotate else ""
    current = entry.current
    if current is None:
        writer = "" if entry.writer is None else f'writer = "{entry.writer}"\n'
        return f'\n[secrets.{name}]\nupdated = "{entry.updated}"\n{writer}deleted = true\n{rotate}{tail}'
    writer = "" if current.writer is None else f'writer = "{current.writer}"\n'
    return (
        f'\n[secrets.{name}]\nupdated = "{entry.updated}"\n{writer}'
        f'nonce = "{_b64(current.nonce)}"\nciphertext = "{_b64(current.ciphertext)}"\n{rotate}{tail}'
    )


def _version_text(name: str, version: Version) -> str:
    writer = "" if version.writer is None else f'writer = "{version.writer}"\n'
    return (
        f'\n[[secrets.{name}.history]]\nupdated = "{version.updated}"\n{writer}'
        f'nonce = "{_b64(version.nonce)}"\nciphertext = "{_b64(version.ciphertext)}"\n'
    )


def _fits_table_form(version: Version) -> bool:
    return len(version.nonce) == crypto.NONCE_BYTES and len(version.ciphertext) > crypto.TAG_BYTES


# --- version 3: current entries first, history after them, bytes signed ----------------------
#
# FORMAT.md, "Scope file". The body (everything before the first
# ``[[secrets.NAME.history]]`` header) is parsed here and nothing after it: its
# bytes, less the ``signature`` and ``mac`` lines, are what the writer signs
# (``ScopeFile.digest``). Each entry with earlier versions records the length
# and digest of its chunk of the history region (chunks in entry order), which
# ``HistoryChunk.versions`` checks and parses when the history is used. Only the
# exact layout the writer produces is read: the signature covers bytes.

V3_START = f'format = "{FORMAT_V3}"\n'.encode()
_V3_START = V3_START
# Where the body ends: the first ``[[secrets.NAME.history]]`` (version 3), or that or the first
# ``[[secrets.NAME.update]]`` or ``[[seals]]`` (version 4). No body holds "\n[[s" (its stanzas
# are ``[[recipients]]``, its entries ``[secrets.NAME]``), so one marker serves both.
_HISTORY_START = b"\n[[s"
_LABEL = r'(?:[^"\\\x00-\x1f\x7f]|\\["\\])*'  # a basic string whose only escapes are \" and \\
MAX_HISTORY_BYTES = 10**12  # history_bytes is at most 13 digits (the file cap is far below)


class HistoryRegion:
    """The bytes after a version-3 file's body, shared by its entries' chunks."""

    __slots__ = ("data", "consistent", "where", "read", "tail")

    def __init__(
        self, data: bytes, consistent: bool, where: str, read: bool = True, tail: fsio.OpenFile | None = None
    ) -> None:
        self.data = data  # the whole file: chunks are read by offset, never copied until used
        self.consistent = consistent  # the region is exactly the chunks the entries describe
        self.where = where
        self.read = read  # False: only the body was read (``BODY_END``), for current values
        # Or ``data`` is the body only and the file is still open: a chunk is read from it when
        # used, and carried chunks are copied file to file when written (``fsio.FileRange``).
        self.tail = tail

    @property
    def end(self) -> int:
        """Where the file ends (the chunks must end there)."""
        return len(self.data) if self.tail is None else self.tail.size


class HistoryChunk:
    """One name's earlier versions as the file holds them: ``length`` bytes at ``offset``."""

    __slots__ = ("region", "offset", "length", "digest", "name")

    def __init__(self, region: HistoryRegion, offset: int, length: int, digest: bytes, name: str) -> None:
        self.region = region
        self.offset = offset
        self.length = length
        self.digest = digest
        self.name = name

    def raw(self) -> bytes:
        """The chunk's bytes, checked against the length and digest its (signed) entry gives."""
        region = self.region
        assert region.read, "the history of a file read for its current values only"
        if region.tail is not None and region.consistent:
            raw = region.tail.pread(self.offset, self.length)
        else:
            raw = region.data[self.offset : self.offset + self.length]
        if not region.consistent or len(raw) != self.length or crypto.history_digest(raw) != self.digest:
            raise TamperedError(
                f"{region.where}: the earlier versions of {self.name} do not match what its entry says "
                "(the history after the entries was edited, truncated or damaged)",
                hint="restore the file from git (git log -- FILE); its current values are intact",
            )
        return raw

    def versions(self) -> tuple[Version, ...]:
        raw = self.raw()
        where = self.region.where
        versions = _parse_history_chunk(raw, self.name)
        if versions is None:
            raise StoreFormatError(f"{where}: the earlier versions of {self.name} are not in the layout writers produce")
        return versions


# Canonical base64 (FORMAT.md "Conventions"), with the strict decoder every value goes through
# before use: that refuses a length that is not a multiple of 4, this a last character with
# padding bits set (low 4 bits before "==", low 2 before "="). Four times faster than spelling
# out the quanta, which matters at 10,000 entries.
_B64_CANONICAL = r"[A-Za-z0-9+/]*(?:[AQgw]==|[AEIMQUYcgkosw048]=)?"
_ENTRY_FIELDS = (  # an entry's lines; also a version-4 update's
    rf'updated = "({_TIMESTAMP})"\n'
    rf'(?:writer = "({_KEY})"\n)?'
    rf'(?:nonce = "({_B64_CANONICAL})"\nciphertext = "({_B64_CANONICAL})"\n|deleted = true\n)'
    r"(rotate = true\n)?"
    rf'(?:history_bytes = ([1-9][0-9]{{0,12}})\nhistory_digest = "({_B64_CANONICAL})"\n)?'
)
_V3_ENTRY = r"\n\[secrets\.([A-Za-z][A-Za-z0-9_]{0,254})\]\n" + _ENTRY_FIELDS


@functools.cache
def _v3_entry_re() -> re.Pattern[str]:
    return re.compile(_V3_ENTRY)


def _unescape(text: str) -> str:
    return text.replace('\\"', '"').replace("\\\\", "\\") if "\\" in text else text


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


BODY_END = _HISTORY_START  # where a reader of current values stops reading a version-3 file


def parse_v3(data: bytes, where: str, *, body_only: bool = False, tail: fsio.OpenFile | None = None) -> ScopeFile:
    """A version-3 file -> ScopeFile, its history left unread; StoreFormatError unless in the exact layout.

    ``body_only``: ``data`` stops where the history begins (``BODY_END``), and no history is used.
    ``tail``: ``data`` stops there too, and the history is in the open file (``parse``).
    """
    found = _parse_v3(data, where, body_only, tail=tail)
    if found is None:
        if tail is not None:  # the error is the whole file's
            data += tail.pread(len(data), max(tail.size - len(data), 0))
        if data.startswith(V4_START) and _too_many_sections(data.decode("latin-1")):
            # refused before the reference parser spends seconds on it
            raise StoreFormatError(f"{where}: more sections than a reader takes ({MAX_SECTIONS} seals, "
                                   f"{MAX_UPDATES} updates; a writer writes the file whole after "
                                   f"{COMPACT_SECTIONS}): not a file a writer makes")
        return parse_reference(data, where)  # the precise error: not TOML, too deep, or not the layout
    return found


Row = tuple[str, str, "str | None", str, str, bool]  # name, updated, writer, nonce, ciphertext (base64), rotate
Rows = list[Row]


def parse_quick(data: bytes, where: str) -> tuple[ScopeFile, list[Row]] | None:
    """For readers of current values (``list``, and exec's full read): a version-3 file's head
    and recipients (entries left empty) and, per live entry in order, (name, updated, writer,
    nonce, ciphertext, rotate), the value fields still base64; None for another version or
    any doubt (then ``parse`` reads it, or gives the error). One regular-expression scan in C,
    no object per entry: the rows are only as trustworthy as the signature the caller then
    checks over ``file.digest``, and must not be used before it has.
    """
    if not (data.startswith(_V3_START) or data.startswith(V4_START)):
        return None
    rows: list[Row] = []
    found = _parse_v3(data, where, True, rows)
    return None if found is None else (found, rows)


def _parse_v3(
    data: bytes, where: str, body_only: bool = False, listing: list[Row] | None = None,
    tail: fsio.OpenFile | None = None, head_only: list[tuple[int, int]] | None = None,
) -> ScopeFile | None:
    end = -1 if tail is not None else data.find(_HISTORY_START)  # with ``tail``, data stops there
    body_end = len(data) if end < 0 else end
    # A splice (``head_only``) reads the head and recipients: the entries' text is not needed.
    first_entry = data.find(b"\n[secrets", 0, body_end) if head_only is not None else -1
    try:
        text = data[: body_end if first_entry < 0 else first_entry].decode("utf-8")
    except UnicodeDecodeError:
        return None
    v4 = text.startswith('format = "secretstore/v4"\n')
    if v4:  # the head names the scope and the store; who signed what, and when, is in the seals
        head = _v4_head_re().match(text)
        if head is None:
            return None
        entity, scope_id, store_id = head.groups()
        counter_text, signer, signature_text, mac_text = "0", "", "", ""
    else:
        head = _head_re().match(text)
        if head is None or head[1] != "v3" or head[4] is None:
            return None
        _number, entity, scope_id, store_id, counter_text, signer, signature_text, mac_text = head.groups()
    if (entity == "team") != (scope_id is None) or (scope_id is not None and not is_valid_id(scope_id)):
        return None
    a2b = _a2b_canonical  # the head and the recipients; entries are canonical by their pattern
    try:
        counter = int(counter_text)
        signature = a2b(signature_text)
        mac = a2b(mac_text)
        if not _is_store_id(store_id) or (not v4 and (
            counter > MAX_COUNTER
            or len(signature) != crypto.SIGNATURE_BYTES
            or len(mac) != crypto.MAC_BYTES
            or not is_valid_public_text(signer)
        )):
            return None
        pos = head.end()
        recipients: list[SealedKey] = []
        seen_keys: set[bytes] = set()
        while (stanza := _recipient_re(_LABEL).match(text, pos)) is not None:
            public_key, label_text, sealed_text = stanza.groups()
            label = "" if label_text is None else _unescape(label_text)
            sealed = a2b(sealed_text)
            box_key = _box_key(public_key)
            if (
                box_key is None
                or box_key in seen_keys
                or len(sealed) != crypto.SEALED_KEY_BYTES
                or (label_text is not None and (not label or not is_valid_label(label)))
            ):
                return None
            seen_keys.add(box_key)
            recipients.append(SealedKey(public_key, sealed, label))
            pos = stanza.end()
        if not recipients:
            return None
        entries: dict[str, Entry] = {}
        consistent_region = HistoryRegion(data, True, where, not body_only, tail)
        offset = body_end
        if head_only is not None:  # the entries are left to the caller (``Splice``)
            head_only.append((len(text[:pos].encode("utf-8")), len(text[: head.end()].encode("utf-8"))))
            pos = len(text)
        elif text.startswith("\n[secrets]\n", pos):
            pos += len("\n[secrets]\n")
        elif listing is not None:
            rows = _scan_entries(text, pos)
            if rows is None:
                return None
            listing += [(name, updated, writer or None, nonce, ciphertext, rotate != "")
                        for name, updated, writer, nonce, ciphertext, rotate, _length, _digest in rows
                        if nonce]
            offset += sum(int(row[6]) for row in rows if row[6])
            pos = len(text)
        else:
            # The same one scan as the quick read, which has checked the layout, the order and
            # every length; each entry's text (kept to be written again while unchanged) starts
            # at its header, which no field can contain (none holds a newline).
            rows = _scan_entries(text, pos)
            if rows is None:
                return None
            blocks = text[pos:].split(_ENTRY_START)[1:]
            decode = _a2b_strict  # canonical and of the right length already (_scan_entries)
            for row, block in zip(rows, blocks, strict=True):
                name, updated, writer_text, nonce_text, ciphertext_text, rotate, length_text, digest_text = row
                writer = writer_text or None
                chunk = None
                if length_text:
                    chunk = HistoryChunk(consistent_region, offset, int(length_text), decode(digest_text), name)
                    offset += chunk.length
                current = Version(updated, decode(nonce_text), decode(ciphertext_text), writer) if nonce_text else None
                entries[name] = Entry(current, updated, (), writer, rotate != "", chunk, _ENTRY_START + block)
            pos = len(text)
        if pos != len(text):
            return None
    except binascii.Error:
        return None
    view = memoryview(data)
    if v4:
        return _with_sections(
            ScopeFile(entity, scope_id, recipients, entries, version=FORMAT_V4, store_id=store_id,
                      digest=crypto.body4_digest_of([view[:body_end]])),
            data, body_end, offset, consistent_region, listing, body_only, head_only is not None, where,
        )
    consistent_region.consistent = offset == consistent_region.end
    signature_line = text.rindex("\nsignature = ", 0, head.end()) + 1
    digest = crypto.body_digest_of([view[:signature_line], view[head.end() : body_end]])
    return ScopeFile(
        entity, scope_id, recipients, entries, mac, version=FORMAT_V3, store_id=store_id, counter=counter,
        signer=signer, signature=signature, digest=digest,
    )


# The fixed text around each field of an entry, as _V3_ENTRY spells it out: the lengths
# ``_scan_entries`` adds up to know that the matches tile the entries, with no gap.
_NAME_TEXT = len("\n[secrets.]\n")
_UPDATED_TEXT = len('updated = ""\n')
_WRITER_TEXT = len('writer = ""\n')
_VALUE_TEXT = len('nonce = ""\nciphertext = ""\n')
_DELETED_TEXT = len("deleted = true\n")
_HISTORY_TEXT = len('history_bytes = \nhistory_digest = ""\n')
_NONCE_TEXT = (crypto.NONCE_BYTES + 2) // 3 * 4  # the base64 of a nonce: 32 characters
_DIGEST_TEXT = (crypto.MAC_BYTES + 2) // 3 * 4  # of a history digest: 44
_SHORTEST_CIPHERTEXT = (crypto.TAG_BYTES + 1 + 2) // 3 * 4  # 24: 17 or 18 bytes, or 16 with "=="

Scanned = list[tuple[str, str, str, str, str, str, str, str]]
_ENTRY_START = "\n[secrets."


def _scan_entries(text: str, pos: int) -> Scanned | None:
    """Every entry from ``pos`` to the end of ``text`` as the groups of ``_V3_ENTRY`` ("" for an
    absent one), or None unless the matches tile that text exactly, names strictly ascending
    and every writer a valid key.

    One ``findall`` in C, no match object per entry. ``findall`` skips what does not match, so
    the tiling is checked by length: each entry's length is computed from its groups, which
    never counts more than the match (a group that matched empty, a nonce of "", counts as
    absent, i.e. shorter), so the total equals the text's length only when every match is
    counted exactly and the matches leave no gap.
    """
    rows: Scanned = _v3_entry_re().findall(text, pos)
    if not rows:
        return None
    names, updated, writers, nonces, ciphertexts, rotates, lengths, digests = zip(*rows, strict=True)
    count = len(rows)
    live = count - nonces.count("")
    total = (
        (_NAME_TEXT + _UPDATED_TEXT) * count + sum(map(len, names)) + sum(map(len, updated))
        + _WRITER_TEXT * (count - writers.count("")) + sum(map(len, writers))
        + _VALUE_TEXT * live + sum(map(len, nonces)) + sum(map(len, ciphertexts))
        + _DELETED_TEXT * (count - live) + sum(map(len, rotates))
        + _HISTORY_TEXT * (count - lengths.count("")) + sum(map(len, lengths)) + sum(map(len, digests))
    )
    if total != len(text) - pos or list(names) != sorted(set(names)):
        return None
    if not all(is_valid_public_text(key) for key in set(writers) - {""}):
        return None
    # What the full parse learns by decoding (canonical base64 of the right length), from the
    # handful of distinct lengths: a nonce is 24 bytes, a digest 32, a ciphertext more than its
    # tag; a live entry has both, a deleted one has history.
    cipher_lengths = set(map(len, ciphertexts)) - {0}
    if (
        set(map(len, nonces)) - {0, _NONCE_TEXT}
        or "=" in "".join(nonces)  # 32 characters with padding are fewer than 24 bytes
        or set(map(len, digests)) - {0, _DIGEST_TEXT}
        or "".join(digests).count("=") != count - digests.count("")  # 44 characters: 32 bytes and one "="
        or ciphertexts.count("") != count - live
        or digests.count("") != lengths.count("")
        or any(length % 4 or length < _SHORTEST_CIPHERTEXT for length in cipher_lengths)
        or (_SHORTEST_CIPHERTEXT in cipher_lengths
            and any(len(text) == _SHORTEST_CIPHERTEXT and text.endswith("==") for text in ciphertexts))
        or any(not nonce and not length for nonce, length in zip(nonces, lengths, strict=True))
    ):
        return None
    return rows


def _a2b_strict(text: str) -> bytes:
    return binascii.a2b_base64(text, strict_mode=True)


def _parse_history_chunk(raw: bytes, name: str) -> tuple[Version, ...] | None:
    """The versions of one chunk, or None when it is not exactly ``name``'s blocks."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    header = f"\n[[secrets.{name}.history]]\n"
    blocks = text.split(header)
    if len(blocks) < 2 or blocks[0] != "":
        return None
    versions = []
    pattern = _v3_version_re()
    try:
        for block in blocks[1:]:
            found = pattern.fullmatch(block)
            if found is None:
                return None
            updated, writer, nonce_text, ciphertext_text = found.groups()
            if writer is not None and not is_valid_public_text(writer):
                return None
            nonce, ciphertext = _a2b_strict(nonce_text), _a2b_strict(ciphertext_text)
            if len(nonce) != crypto.NONCE_BYTES or len(ciphertext) <= crypto.TAG_BYTES:
                return None
            versions.append(Version(updated, nonce, ciphertext, writer))
    except binascii.Error:
        return None
    return tuple(versions)


@functools.cache
def _v3_version_re() -> re.Pattern[str]:
    return re.compile(
        rf'updated = "({_TIMESTAMP})"\n(?:writer = "({_KEY})"\n)?nonce = "({_B64_CANONICAL})"\n'
        rf'ciphertext = "({_B64_CANONICAL})"\n'
    )


def _history_text(name: str, history: tuple[Version, ...]) -> bytes:
    return "".join(_version_text(name, version) for version in history).encode("utf-8")


def serialize_v3(scope: ScopeFile, sign: Callable[[bytes], tuple[bytes, bytes]]) -> bytes:
    """``serialize_v3_parts`` joined."""
    return fsio.join(serialize_v3_parts(scope, sign))


def serialize_v3_parts(
    scope: ScopeFile, sign: Callable[[bytes], tuple[bytes, bytes]]
) -> list[fsio.Part]:
    """The version-3 bytes of ``scope`` (entries sorted by the caller), signed through ``sign``.

    ``sign(digest)`` returns (mac, signature) for the digest of the signed
    bytes; ``scope.digest``, ``scope.mac`` and ``scope.signature`` are set.
    An entry whose history was never read keeps its chunk's bytes and digest
    as they were (bound by the entry this writer verified); one whose history
    changed gets a new chunk. A file whose history region does not match its
    entries is refused rather than rewritten around the damage.
    """
    head_bytes = _v3_head_text(scope).encode("utf-8")
    body_bytes, chunks = _body_and_chunks(scope)
    digest = crypto.body_digest_of([head_bytes, body_bytes])
    mac, signature = sign(digest)
    scope.digest, scope.mac, scope.signature = digest, mac, signature
    return [head_bytes, _signature_lines(signature, mac), body_bytes, *chunks]  # carried history is not copied


def _body_and_chunks(scope: ScopeFile) -> tuple[bytes, list[fsio.Part]]:
    """The body (recipients and entries) of a version-3 or -4 file, and its history as parts."""
    body = []
    for stanza in scope.recipients:
        body.append(_stanza_text(stanza, _escape(stanza.label)))
    if not scope.entries:
        body.append("\n[secrets]\n")
    chunks: list[fsio.Part] = []
    carry: list[HistoryChunk] = []  # unread chunks, copied as runs of contiguous bytes
    for name, read in scope.entries.items():
        # An entry read under another name (a test moves one) is written anew, history read.
        entry = read.replace() if read.chunk is not None and read.chunk.name != name else read
        unread = entry._history is None and entry.chunk is not None
        reusable = entry.block is not None and entry.block.startswith(f"\n[secrets.{name}]\n")
        if reusable and (unread or not entry._history):
            body.append(entry.block)  # type: ignore[arg-type]  # unchanged since read, history unread (or none)
            if unread:
                carry.append(entry.chunk)  # type: ignore[arg-type]
            continue
        text, raw = _entry_and_chunk(name, entry)
        if unread:  # read back into an entry that changed otherwise: carried over as it is
            assert entry.chunk is not None
            carry.append(entry.chunk)
        elif raw:
            chunks.extend(_flush(carry))
            chunks.append(raw)
        body.append(text)
    chunks.extend(_flush(carry))
    return "".join(body).encode("utf-8"), chunks


def _pointer(length: int, digest: bytes) -> str:
    """An entry's last lines in version 3: where its chunk of history is bound."""
    return f'history_bytes = {length}\nhistory_digest = "{_b64(digest)}"\n'


def _entry_and_chunk(name: str, entry: Entry) -> tuple[str, bytes]:
    """A version-3 entry's text and its new chunk of history: b"" when it has none, or when its
    chunk was never read (then carried over as it is, under the length and digest it had)."""
    if entry._history is None and entry.chunk is not None:
        return _entry_text(name, entry, _pointer(entry.chunk.length, entry.chunk.digest)), b""
    if not entry.history:
        return _entry_text(name, entry), b""
    raw = _history_text(name, entry.history)
    return _entry_text(name, entry, _pointer(len(raw), crypto.history_digest(raw))), raw


def _v3_head_text(scope: ScopeFile) -> str:
    """The head's lines before ``signature`` and ``mac``: what the signed bytes start with."""
    scope_id = "" if scope.scope_id is None else f'id = "{scope.scope_id}"\n'
    return (f'format = "{FORMAT_V3}"\nentity = "{scope.entity}"\n{scope_id}'
            f'store = "{scope.store_id}"\ncounter = {scope.counter}\nsigner = "{scope.signer}"\n')


def parse_v3_head(data: bytes, where: str, tail: fsio.OpenFile | None = None) -> tuple[ScopeFile, int, int] | None:
    """A version-3 file's head and recipients with its entries left unread, for ``Splice``:
    (the file, with no entries and the digest of its signed bytes; where its entries start;
    where its head ends, after the ``mac`` line), as byte offsets in ``data``; None for any doubt."""
    if not (data.startswith(_V3_START) or data.startswith(V4_START)):
        return None
    found: list[tuple[int, int]] = []
    file = _parse_v3(data, where, tail=tail, head_only=found)
    return None if file is None or not found else (file, *found[0])


# 'signature = "..."' and 'mac = "..."': 64 and 32 bytes in base64
_SIGNATURE_LINES = len('signature = ""\nmac = ""\n') + 88 + 44


@functools.cache
def _history_bytes_re() -> re.Pattern[bytes]:
    """Compiled on first use: exec, which never splices, does not pay for it."""
    return re.compile(rb"\nhistory_bytes = ([0-9]{1,13})\n")


class Splice:
    """A version-3 file read for a write that changes one entry and nothing else (``set``):
    every other entry, and every other chunk of history, is carried over as the bytes it is,
    without being parsed (FORMAT.md, version 3, "Writing").

    What ``serialize_v3_parts`` would write for the same change, byte for byte (the tests
    hold it to that): the entries are in name order and a changed entry is written whole,
    with a new chunk when its history changed. ``locate`` gives None for anything it cannot
    place with certainty (the caller then reads the file in full, which says what is wrong).
    The bytes carried over are the ones the signature just checked covers; only their
    layout is not re-checked here, as every reader checks it.
    """

    __slots__ = ("file", "data", "head_end", "entries_at", "start", "end", "body_end", "region", "entry", "name",
                 "_before", "_old_length", "_after")
    file: ScopeFile  # head and recipients; its head fields are the writer's to set
    data: bytes  # the file up to its history (or whole)
    head_end: int  # byte offsets in ``data``: after the ``mac`` line,
    entries_at: int  # the first entry,
    start: int  # the entry (or where a new one goes),
    end: int  # its end,
    body_end: int  # where the history region starts
    region: HistoryRegion
    entry: Entry | None  # the entry as it is (its history unread), None for a new name
    name: str
    _before: int  # bytes of history of the entries before it,
    _old_length: int  # of its own,
    _after: int  # and of those after it

    def __init__(self) -> None:
        raise TypeError("use Splice.locate")

    @classmethod
    def locate(cls, file: ScopeFile, data: bytes, entries_at: int, head_end: int, name: str,
               tail: fsio.OpenFile | None, where: str) -> Splice | None:
        self = object.__new__(cls)
        found = -1 if tail is not None else data.find(_HISTORY_START, entries_at)  # with ``tail``: none in data
        body_end = len(data) if found < 0 else found
        if not data.startswith(_ENTRY_START.encode(), entries_at):
            return None  # no entries ("[secrets]"): the full path writes the first
        header = f"\n[secrets.{name}]\n".encode()
        insertion = self._insertion(data, entries_at, body_end, name.encode())
        if insertion is None:
            return None
        start = insertion if data.startswith(header, insertion) else -1
        entry: Entry | None = None
        lengths = _history_bytes_re().findall
        if start >= 0:
            end = data.find(_ENTRY_START.encode(), start + 1, body_end)
            end = body_end if end < 0 else end
            try:
                block = data[start:end].decode("ascii")
            except UnicodeDecodeError:
                return None
            match = _v3_entry_re().fullmatch(block)
            if match is None or match[1] != name:
                return None
            _name, updated, writer_text, nonce, ciphertext, rotate, length_text, digest_text = match.groups()
            old_length = int(length_text) if length_text else 0
        else:
            start = end = insertion
            old_length = 0
        before = sum(map(int, lengths(data, entries_at, start)))
        after = sum(map(int, lengths(data, end, body_end)))
        region = HistoryRegion(data, True, where, True, tail)
        region.consistent = body_end + before + old_length + after == region.end
        if start != end:
            writer = writer_text or None
            try:
                current = (Version(updated, _a2b_strict(nonce), _a2b_strict(ciphertext), writer)
                           if nonce else None)
                chunk = (HistoryChunk(region, body_end + before, old_length, _a2b_strict(digest_text), name)
                         if old_length else None)
            except binascii.Error:
                return None
            entry = Entry(current, updated, (), writer, bool(rotate), chunk, block)
        self.file, self.data, self.head_end, self.entries_at, self.name = file, data, head_end, entries_at, name
        self.start, self.end, self.body_end, self.region, self.entry = start, end, body_end, region, entry
        self._before, self._old_length, self._after = before, old_length, after
        return self

    @staticmethod
    def _insertion(data: bytes, entries_at: int, body_end: int, name: bytes) -> int | None:
        """Where ``name``'s entry is, or where it goes if there is none: the first entry whose
        name does not sort before it (byte order), found by bisecting the body on entry headers."""
        marker = _ENTRY_START.encode()
        skip = len(marker)
        low, high = entries_at, body_end
        try:
            while low < high:
                middle = (low + high) // 2
                header = data.find(marker, middle, body_end)
                if header < 0 or data[header + skip : data.index(b"]\n", header + skip)] >= name:
                    high = middle
                else:
                    low = middle + 1
        except ValueError:
            return None
        found = data.find(marker, low, body_end)
        return body_end if found < 0 else found

    def leaves_none(self, new: Entry | None) -> bool:
        """Whether the file would have no entry left (written ``[secrets]``: the full writer's)."""
        return new is None and self.start == self.entries_at and self.end == self.body_end

    def size(self, new: Entry | None) -> int:
        """The file's size once ``new`` is written (its history as it would be written)."""
        text, raw = self._entry(new)
        return (len(_v3_head_text(self.file).encode("utf-8")) + _SIGNATURE_LINES + self.body_end - self.head_end - (self.end - self.start)
                + len(text) + self.region.end - self.body_end - self._old_length + len(raw))

    def _entry(self, new: Entry | None) -> tuple[bytes, bytes]:
        """``new``'s text and its new chunk (b"" when it carries none or the old one as it is)."""
        if new is None:
            return b"", b""
        text, raw = _entry_and_chunk(self.name, new)
        return text.encode(), raw

    def parts(self, new: Entry | None, sign: Callable[[bytes], tuple[bytes, bytes]]) -> list[fsio.Part]:
        """The file with the entry replaced by ``new`` (None: removed), signed through ``sign``
        as ``serialize_v3_parts`` signs; the file's head fields are the caller's."""
        text, raw = self._entry(new)
        carried = new is not None and new._history is None and new.chunk is not None
        region, old_at = self.region, self.body_end + self._before
        if (self._before or self._after or carried) and not region.consistent:
            raise TamperedError(
                f"{region.where}: the earlier versions after the entries do not match what the entries say "
                "(edited, truncated or damaged); refusing to write the file around them",
                hint="restore the file from git (git log -- FILE); its current values are intact",
            )
        data = self.data
        head_bytes = _v3_head_text(self.file).encode("utf-8")
        view = memoryview(data)
        body: list[bytes | memoryview] = [view[self.head_end : self.start], text, view[self.end : self.body_end]]
        digest = crypto.body_digest_of([head_bytes, *body])
        mac, signature = sign(digest)
        file = self.file
        file.digest, file.mac, file.signature = digest, mac, signature
        lines = f'signature = "{_b64(signature)}"\nmac = "{_b64(mac)}"\n'.encode("ascii")
        out: list[fsio.Part] = [head_bytes, lines, *body]
        # the chunks before this entry's, its own (new, or carried as it is), then the rest
        before_end = old_at + (self._old_length if carried else 0)
        if before_end > self.body_end:
            out.append(_region_part(region, self.body_end, before_end))
        if raw:
            out.append(raw)
        if self._after:
            out.append(_region_part(region, old_at + self._old_length, region.end))
        return out


def _flush(carry: list[HistoryChunk]) -> list[fsio.Part]:
    """The bytes of unread chunks waiting in ``carry`` (emptied), one slice per contiguous run;
    only from a region that matches its entries."""
    if not carry:
        return []
    for region in {id(chunk.region): chunk.region for chunk in carry}.values():
        if not region.consistent:
            raise TamperedError(
                f"{region.where}: the earlier versions after the entries do not match what the entries say "
                "(edited, truncated or damaged); refusing to write the file around them",
                hint="restore the file from git (git log -- FILE); its current values are intact",
            )
        assert region.read, "the history of a file read for its current values only"
    region = carry[0].region
    out: list[fsio.Part] = []
    start = end = carry[0].offset
    for chunk in carry:
        if chunk.region is not region or chunk.offset != end:
            out.append(_region_part(region, start, end))
            region, start = chunk.region, chunk.offset
        end = chunk.offset + chunk.length
    out.append(_region_part(region, start, end))
    carry.clear()
    return out


def _region_part(region: HistoryRegion, start: int, end: int) -> memoryview | fsio.FileRange:
    return memoryview(region.data)[start:end] if region.tail is None else region.tail.range(start, end - start)


# --- version 4: sections appended after the history, each sealed ---------------------------
#
# FORMAT.md, "Scope file, version 4". A version-3 file rewritten for every change of one name
# copies all of its history (28 MB at 10,000 names with 10 versions each). A version-4 file is
# the same head and body without the signature, the same history, then one or more sections:
# a section changes entries (``[[secrets.NAME.update]]``, each after its new chunk of history)
# and ends with a seal (``[[seals]]``) that signs a digest chained over the body and every
# section before it. A one-name write appends one section; any other write, or enough
# sections, writes the file again with one seal. Readers take the last seal for the file's
# signature, and each name's last update for its entry.

_SEAL_TEXT = (
    r"\n\[\[seals\]\]\n"
    r"base = ([1-9][0-9]{0,12})\n"
    r"counter = ([1-9][0-9]{0,15})\n"
    rf'signer = "({_KEY})"\n'
    rf'signature = "({_B64_CANONICAL})"\n'
    rf'mac = "({_B64_CANONICAL})"\n'
)
SEAL_BYTES = 1024  # more than any seal: a reader of the head reads this much of the file's end too
COMPACT_SECTIONS = 64  # a write that would make more sections than this writes the file again
COMPACT_BYTES = 1 << 20  # likewise for the bytes after the history


@functools.cache
def _item_re() -> re.Pattern[str]:
    return re.compile(r"\n\[\[(?:secrets\.([A-Za-z][A-Za-z0-9_]{0,254})\.update|seals)\]\]\n")


@functools.cache
def _update_re() -> re.Pattern[str]:
    return re.compile(r"\n\[\[secrets\.([A-Za-z][A-Za-z0-9_]{0,254})\.update\]\]\n" + _ENTRY_FIELDS)


@functools.cache
def _seal_re() -> re.Pattern[str]:
    return re.compile(_SEAL_TEXT)


@functools.cache
def _unsealed_re() -> re.Pattern[str]:
    """What a section cut short can hold: whole lines a section has, then part of one."""
    return re.compile(
        r"(?:\n(?:|\[\[(?:secrets\.[A-Za-z][A-Za-z0-9_]{0,254}\.(?:history|update)|seals)\]\]"
        r'|[a-z_]{1,14} = (?:"[A-Za-z0-9+/=_:-]*"|[0-9]{1,16}|true))(?=\n))*'
        r"(?:\n[^\n]*)?"
    )


@functools.cache
def _seal_shape_re() -> re.Pattern[str]:
    """A seal's five lines, whatever their values, up to the closing quote of its MAC: an append
    cut short holds none (one cut just before its last newline is refused, not skipped: a
    one-byte edit must not hide a whole section)."""
    return re.compile(r'\n\[\[seals\]\]\nbase = [^\n]*\ncounter = [^\n]*\nsigner = [^\n]*\n'
                      r'signature = [^\n]*\nmac = "[^"\n]*"')


class Sections:
    """What a version-4 file's sections say: the entries they change (each name's last update,
    its history a chunk of ``region``), and the last seal, which signs ``digest``."""

    __slots__ = ("updates", "rows", "counter", "signer", "signature", "mac", "digest", "base", "end", "count",
                 "region", "sealed_at")

    def __init__(self) -> None:
        self.updates: dict[str, Entry] = {}
        self.rows: dict[str, Row | None] = {}  # a live update's row (as ``parse_quick`` gives), None: deleted
        self.counter = 0
        self.signer = ""
        self.signature = b""
        self.mac = b""
        self.digest = b""
        self.base = 0  # where the sections start in the file
        self.end = 0  # bytes of them that are whole sections (after them: a write that did not finish)
        self.sealed_at = 0  # where the last seal's signature line starts: the next section's signed bytes do
        self.count = 0
        self.region: HistoryRegion | None = None

    def seal(self, file: ScopeFile) -> None:
        """``file``'s signature fields as the last seal gives them: the counter, signer, signature
        and MAC, over the digest it signs."""
        file.counter, file.signer, file.signature, file.mac, file.digest = (
            self.counter, self.signer, self.signature, self.mac, self.digest)


MAX_SECTIONS = 1024  # a reader refuses more (writers write the file whole at COMPACT_SECTIONS)
MAX_UPDATES = 4096  # updates in all sections, likewise (a writer appends one per section)
MAX_UNSEALED_BYTES = 4 << 20  # after the last seal: more than one section cut short (COMPACT_BYTES plus one)


def parse_sections(region: bytes, base: int, body_digest: bytes, where: str) -> Sections | None:
    """The sections of a version-4 file, ``region`` being its bytes from ``base`` (where its
    history ends) to its end; None unless it is whole sections in the exact layout, each seal's
    ``base`` is ``base`` and its counter larger than the one before, with at least one seal.

    Bytes after the last seal that hold no whole seal, and nothing but lines a section has
    (the last one maybe cut), are a section still being written (a reader can meet one) or
    one a crash cut short: they are not part of the file (``Sections.end`` is where they
    start), no more than one section's worth, and only a regular expression looks at them.
    Anything out of place before a seal, or anything else after the last one (git's
    conflict markers, say), refuses the file. So does a file with more sections or updates
    than a reader takes (``MAX_SECTIONS``, ``MAX_UPDATES``: writers stay far below them).
    """
    text = region.decode("latin-1")  # one character per byte: offsets in ``text`` are offsets in ``region``
    if _too_many_sections(text):
        return None
    found = Sections()
    found.base = base
    found.region = HistoryRegion(region, True, where)
    digest, counter = body_digest, 0
    start = 0  # where the section being read starts
    signed_from = 0  # the first section's signed bytes start at ``base``; each next one's at the seal before
    keys: set[str] = set()  # writers' and signers' keys already found valid: each is checked once
    while (seal_at := text.find("\n[[seals]]\n", start)) >= 0:
        section = _section(text, start, seal_at, found.region, keys)
        seal = None if section is None else _seal_re().match(text, seal_at)
        if section is None or seal is None:
            break  # the rest must be an append cut short (below)
        base_text, counter_text, signer, signature_text, mac_text = seal.groups()
        try:
            signature, mac = _a2b_strict(signature_text), _a2b_strict(mac_text)
        except binascii.Error:
            return None
        if (
            int(base_text) != base
            or not counter < int(counter_text) <= MAX_COUNTER
            or len(signature) != crypto.SIGNATURE_BYTES
            or len(mac) != crypto.MAC_BYTES
            or not _valid_key(signer, keys)
        ):
            return None
        updates, chunks = section
        signed_end = text.index("\nsignature = ", seal_at) + 1
        view, at = memoryview(region), signed_from
        signed: list[bytes | memoryview] = []
        for chunk_start, chunk_end in chunks:  # a chunk is bound by its update's digest, not signed
            signed.append(view[at:chunk_start])
            at = chunk_end
        signed.append(view[at:signed_end])
        digest = crypto.section_digest(digest, signed)
        signed_from, counter = signed_end, int(counter_text)
        for name, (entry, row) in updates.items():
            found.updates.pop(name, None)  # in the order last changed
            found.updates[name] = entry
            found.rows[name] = row
        found.counter, found.signer, found.signature, found.mac, found.digest = (
            counter, signer, signature, mac, digest)
        found.count += 1
        start = seal.end()
    if (
        not found.count
        or len(text) - start > MAX_UNSEALED_BYTES
        or _seal_shape_re().search(text, start) is not None
        or not _unsealed_re().fullmatch(text, start)
    ):
        return None  # no seal at all, a whole one after something out of place, or what no writer appends
    found.end = start
    found.sealed_at = signed_from
    return found


def _too_many_sections(text: str) -> bool:
    """Whether ``text`` (a version-4 file, or its bytes after the history, one character per
    byte) has more seals or updates than a reader takes."""
    return text.count("\n[[seals]]\n") > MAX_SECTIONS or text.count(".update]]\n") > MAX_UPDATES


def _valid_key(text: str, keys: set[str]) -> bool:
    if text in keys:
        return True
    if is_valid_public_text(text):
        keys.add(text)
        return True
    return False


def _section(
    text: str, start: int, seal_at: int, region: HistoryRegion, keys: set[str]
) -> tuple[dict[str, tuple[Entry, Row | None]], list[tuple[int, int]]] | None:
    """The updates of the section from ``start`` to its seal at ``seal_at`` (each after its chunk,
    a name at most once) and where their chunks are; None unless it is exactly that."""
    updates: dict[str, tuple[Entry, Row | None]] = {}
    chunks: list[tuple[int, int]] = []
    pos = start
    decode = _a2b_strict
    while pos < seal_at:
        item = _item_re().search(text, pos, seal_at + 1)
        if item is None or item[1] is None:
            return None
        match = _update_re().match(text, item.start(), seal_at + 1)
        if match is None:
            return None
        name, updated, writer, nonce_text, ciphertext_text, rotate, length_text, digest_text = match.groups()
        length = int(length_text) if length_text else 0
        try:
            nonce = decode(nonce_text) if nonce_text else b""
            ciphertext = decode(ciphertext_text) if ciphertext_text else b""
            chunk_digest = decode(digest_text) if digest_text else b""
        except binascii.Error:
            return None
        if (
            item.start() - pos != length
            or name in updates
            or (writer is not None and not _valid_key(writer, keys))
            or (nonce_text and (len(nonce) != crypto.NONCE_BYTES or len(ciphertext) <= crypto.TAG_BYTES))
            or (digest_text and len(chunk_digest) != crypto.MAC_BYTES)
            or (not nonce_text and not length)  # a deleted name keeps its value in its history
        ):
            return None
        chunk = HistoryChunk(region, pos, length, chunk_digest, name) if length else None
        current = Version(updated, nonce, ciphertext, writer) if nonce_text else None
        row = (name, updated, writer, nonce_text, ciphertext_text, rotate is not None) if nonce_text else None
        updates[name] = (Entry(current, updated, (), writer, rotate is not None, chunk), row)
        if length:
            chunks.append((pos, item.start()))
        pos = match.end()
    return (updates, chunks) if pos == seal_at else None


def _with_sections(
    file: ScopeFile, data: bytes, body_end: int, base: int, base_region: HistoryRegion,
    listing: list[Row] | None, body_only: bool, head_only: bool, where: str,
) -> ScopeFile | None:
    """``file`` (a version-4 head and body, ``file.digest`` the body's) completed from its
    sections, which start at ``base`` in the file: the entries they change, and the last
    seal's counter, signer, signature and MAC, with ``digest`` what it signs. ``head_only``:
    as it is, the sections left to the caller (``Store._append``).

    Where the sections are read from: ``data`` from ``body_end`` when it holds the body
    and then the sections (``body_only``: what ``Store.read_current`` reads); else the file
    from ``base``, in ``data`` or (``base_region.tail``) still open."""
    if head_only:
        return file
    tail = base_region.tail
    if body_only:
        region = data[body_end:]
    elif tail is not None:
        if base > tail.size:
            return None
        region = tail.pread(base, tail.size - base)
    else:
        if base > len(data):
            return None
        region = data[base:]
    sections = parse_sections(region, base, file.digest, where)
    if sections is None:
        return None
    apply_sections(file, sections, listing)
    file.unsealed = len(region) - sections.end
    base_region.consistent = True  # the history is exactly the chunks: the sections start where they end
    return file


def apply_sections(file: ScopeFile, sections: Sections, listing: list[Row] | None = None) -> None:
    """``file`` as its sections leave it: each name's last update for its entry (or its row in
    ``listing``), the last seal for its signature."""
    sections.seal(file)
    if not sections.updates:
        return
    if listing is not None:
        kept = [row for row in listing if row[0] not in sections.rows]
        kept += [row for row in sections.rows.values() if row is not None]
        kept.sort(key=_first)
        listing[:] = kept
        return
    added = any(name not in file.entries for name in sections.updates)
    file.entries.update(sections.updates)
    if added:
        file.entries = dict(sorted(file.entries.items()))


def _first(row: Row) -> str:
    return row[0]


def sealed_head(head: bytes | memoryview, end: bytes | memoryview) -> Head | None:
    """The head of a version-4 file whose head lines are ``head`` and whose bytes end as ``end``
    does (only its last ``SEAL_BYTES`` are looked at): for list's cache, after a write."""
    return head_of(fsio.join([head, b"\n", end[-SEAL_BYTES:]]))


def _v4_head_text(scope: ScopeFile) -> str:
    scope_id = "" if scope.scope_id is None else f'id = "{scope.scope_id}"\n'
    return f'format = "{FORMAT_V4}"\nentity = "{scope.entity}"\n{scope_id}store = "{scope.store_id}"\n'


def _seal_lines(base: int, counter: int, signer: str) -> bytes:
    """A seal's signed lines (the signature and MAC lines follow them)."""
    return f'\n[[seals]]\nbase = {base}\ncounter = {counter}\nsigner = "{signer}"\n'.encode("ascii")


def _signature_lines(signature: bytes, mac: bytes) -> bytes:
    return f'signature = "{_b64(signature)}"\nmac = "{_b64(mac)}"\n'.encode("ascii")


def serialize_v4_parts(scope: ScopeFile, sign: Callable[[bytes], tuple[bytes, bytes]]) -> list[fsio.Part]:
    """The version-4 bytes of ``scope`` (entries sorted by the caller) with one seal, signed
    through ``sign`` as ``serialize_v3_parts`` signs: its head and body, its history, then the
    seal, over the chained digest of the body's digest and the seal's lines."""
    head_bytes = _v4_head_text(scope).encode("utf-8")
    body_bytes, chunks = _body_and_chunks(scope)
    base = len(head_bytes) + len(body_bytes) + sum(len(chunk) for chunk in chunks)
    seal = _seal_lines(base, scope.counter, scope.signer)
    digest = crypto.section_digest(crypto.body4_digest_of([head_bytes, body_bytes]), [seal])
    mac, signature = sign(digest)
    scope.digest, scope.mac, scope.signature = digest, mac, signature
    return [head_bytes, body_bytes, *chunks, seal, _signature_lines(signature, mac)]


def section_bytes(
    name: str, entry: Entry | None, previous: bytes, sealed: bytes, base: int, counter: int, signer: str,
    sign: Callable[[bytes], tuple[bytes, bytes]],
) -> tuple[bytes, bytes]:
    """A section that changes ``name`` to ``entry`` (with its history as a new chunk), sealed
    as ``signer`` with ``counter`` over ``previous``, the digest the file's last seal signs, and
    ``sealed``, that seal's signature and MAC lines: (its bytes, to append, and the digest its
    seal signs)."""
    if entry is None:
        raise ValueError("a section changes an entry; a name leaves the file only when it is written again")
    if entry._history is None and entry.chunk is not None:
        raw = entry.chunk.raw()  # carried as it is: its bytes come along, checked against its digest
    else:
        raw = _history_text(name, entry.history) if entry.history else b""
    pointer = _pointer(len(raw), crypto.history_digest(raw)) if raw else ""
    text = _entry_text(name, entry, pointer)
    header = f"\n[secrets.{name}]\n"
    update = (f"\n[[secrets.{name}.update]]\n" + text[len(header):]).encode("ascii")
    seal = _seal_lines(base, counter, signer)
    digest = crypto.section_digest(previous, [sealed, update, seal])  # its chunk: bound by its digest
    mac, signature = sign(digest)
    return raw + update + seal + _signature_lines(signature, mac), digest


def base_before(end: bytes) -> int | None:
    """The ``base`` of the last whole seal in ``end`` (a version-4 file's last bytes, which do
    not end with a seal), or None. Unchecked: the full read verifies it."""
    text = end.decode("latin-1")
    at = len(text)
    for _ in range(8):  # a section cut short holds at most one seal's header
        at = text.rfind("\n[[seals]]\n", 0, at)
        if at < 0:
            return None
        found = _seal_re().match(text, at)
        if found is not None:
            return int(found[1])
    return None


def last_seal(end: bytes) -> tuple[int, int, str, bytes] | None:
    """(base, counter, signer, the seal's bytes) of the seal ``end`` (a version-4 file's last
    bytes) ends with, or None when it ends otherwise. Only its shape is checked, with string
    operations (no pattern to compile on exec's path): the full read verifies the rest."""
    end = end[-SEAL_BYTES:]
    start = end.rfind(b"\n[[seals]]\n")
    if start < 0:
        return None
    lines = end[start + len(b"\n[[seals]]\n") :].split(b"\n")
    if len(lines) != 6 or lines[5]:
        return None
    base, counter, signer, signature, mac = (
        line.partition(b" = ")[2] if line.startswith(key + b" = ") else b""
        for line, key in zip(lines, (b"base", b"counter", b"signer", b"signature", b"mac"), strict=False)
    )
    if not (
        base.isdigit() and counter.isdigit() and len(counter) <= 16
        and all(len(q) > 2 and q[:1] == q[-1:] == b'"' and b'"' not in q[1:-1] for q in (signer, signature, mac))
    ):
        return None
    return int(base), int(counter), signer[1:-1].decode("latin-1"), end[start:]
