"""One scope file <-> TOML, exactly as FORMAT.md specifies.

Parsing checks structure only (no key needed), so ``list`` works without
unlocking. Authentication lives in ``verify`` and ``decrypt``: the file MAC
covers every field in document order, and each value's AEAD binds it to its
format, entity, id and name.
"""

from __future__ import annotations

import binascii
import functools
import re

from secretstore import crypto, limits
from secretstore.errors import StoreFormatError, TamperedError, UnsupportedVersionError
from secretstore.identity import is_valid_public_text
from secretstore.records import Record
from secretstore.rules import ENTITIES, MAX_NAME_LENGTH, is_valid_id, is_valid_label, is_valid_name

FORMAT = "secretstore/v1"
FORMAT_FAMILY = "secretstore/"

_TOP_KEYS = {"format", "entity", "id", "mac", "recipients", "secrets"}
_RECIPIENT_KEYS = {"public_key", "label", "sealed_key"}
_ENTRY_KEYS = {"updated", "nonce", "ciphertext", "deleted", "history"}
_VERSION_KEYS = {"updated", "nonce", "ciphertext"}


class SealedKey(Record):
    """A recipient's copy of the file's data key."""

    __slots__ = ("public_key", "sealed_key", "label")
    public_key: str  # "ssk1..." text
    sealed_key: bytes
    label: str

    def __init__(self, public_key: str, sealed_key: bytes, label: str = "") -> None:
        self.public_key = public_key
        self.sealed_key = sealed_key
        self.label = label


class Version(Record):
    """One encrypted value: the current one, or a previous one kept in history."""

    __slots__ = ("updated", "nonce", "ciphertext")
    updated: str
    nonce: bytes
    ciphertext: bytes

    def __init__(self, updated: str, nonce: bytes, ciphertext: bytes) -> None:
        self.updated = updated
        self.nonce = nonce
        self.ciphertext = ciphertext


class Entry(Record):
    """A named secret. ``current`` is None for a deleted name kept for undelete."""

    __slots__ = ("current", "updated", "history")
    current: Version | None
    updated: str
    history: tuple[Version, ...]

    def __init__(self, current: Version | None, updated: str, history: tuple[Version, ...] = ()) -> None:
        self.current = current
        self.updated = updated
        self.history = history


class ScopeFile:
    """One parsed scope file; mutable while a command edits it."""

    __slots__ = ("entity", "scope_id", "recipients", "entries", "mac")

    def __init__(
        self,
        entity: str,
        scope_id: str | None,
        recipients: list[SealedKey],
        entries: dict[str, Entry] | None = None,
        mac: bytes = b"",
    ) -> None:
        self.entity = entity
        self.scope_id = scope_id
        self.recipients = recipients
        self.entries: dict[str, Entry] = {} if entries is None else entries
        self.mac = mac

    def __repr__(self) -> str:
        return f"ScopeFile({describe(self.entity, self.scope_id)}, {len(self.entries)} entries)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScopeFile):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable

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
    return _frame(b"secretstore value", FORMAT.encode(), entity.encode(), (scope_id or "").encode())


def value_aad(entity: str, scope_id: str | None, name: str) -> bytes:
    """Associated data of a value: a ciphertext moved to another name or scope fails.

    ``frame("secretstore value", FORMAT, entity, id or "", name)``; the first four
    parts are the same for every value of a file, so they are framed once.
    """
    encoded = name.encode()
    return _aad_prefix(entity, scope_id) + len(encoded).to_bytes(4, "big") + encoded


def mac_input(scope: ScopeFile) -> bytes:
    """Every field of the file, in document order, framed so no two files collide."""
    parts = [
        b"secretstore file",
        FORMAT.encode(),
        scope.entity.encode(),
        (scope.scope_id or "").encode(),
        str(len(scope.recipients)).encode(),
    ]
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
            history += [version.updated.encode(), version.nonce, version.ciphertext]
        framed.append(_frame(*history))
    return b"".join(framed)


_FRAMED_LIVE = _frame(b"live")
_FRAMED_DELETED = _frame(b"deleted")
_FRAMED_NO_HISTORY = _frame(b"0")


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
    if _TIMESTAMP_RE.fullmatch(text) is None:
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


def check_format_field(document: dict[str, object], where: str) -> None:
    found = document.get("format")
    if found == FORMAT:
        return
    if isinstance(found, str) and found.startswith(FORMAT_FAMILY):
        raise UnsupportedVersionError(
            f"{where}: format {found!r} is not supported by this secretstore (it reads {FORMAT})",
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
        raise StoreFormatError(f"{where}: not valid TOML (damaged or truncated?)") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise StoreFormatError(f"{where}: not a secretstore file (nested too deeply)") from None
    except ValueError:  # an integer over sys.get_int_max_str_digits() (4,300) digits
        raise StoreFormatError(f"{where}: not a secretstore file (a number too long to read)") from None


def parse(data: bytes, where: str) -> ScopeFile:
    """Bytes of a scope file -> ScopeFile, checking structure (not authenticity).

    A file exactly as ``serialize`` writes it takes the fast path
    (``parse_canonical``); anything else, and any file the fast path has a doubt
    about, goes through ``parse_reference``, which accepts it or gives the error.
    """
    fast = parse_canonical(data)
    if fast is not None:
        return fast
    return parse_reference(data, where)


def parse_reference(data: bytes, where: str) -> ScopeFile:
    """The reference reader: tomllib, then every check of FORMAT.md's reading rules."""
    document = load_toml(data, where)
    check_format_field(document, where)
    _only_keys(document, _TOP_KEYS, "the file", where)
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
    mac = _unb64(document.get("mac"), "mac", where)
    if len(mac) != crypto.MAC_BYTES:
        raise StoreFormatError(f"{where}: mac has the wrong length")

    raw_recipients = document.get("recipients")
    if not isinstance(raw_recipients, list) or not raw_recipients:
        raise StoreFormatError(f"{where}: recipients must be a non-empty array")
    recipients: list[SealedKey] = []
    seen_keys: set[str] = set()
    for raw in raw_recipients:
        stanza = _table(raw, "a recipient", where)
        _only_keys(stanza, _RECIPIENT_KEYS, "a recipient", where)
        public_key = _string(stanza.get("public_key"), "public_key", where)
        if not is_valid_public_text(public_key) or public_key in seen_keys:
            raise StoreFormatError(f"{where}: invalid or repeated recipient public_key")
        seen_keys.add(public_key)
        sealed = _unb64(stanza.get("sealed_key"), "sealed_key", where)
        if len(sealed) != crypto.SEALED_KEY_BYTES:
            raise StoreFormatError(f"{where}: sealed_key has the wrong length")
        label = _string(stanza.get("label", ""), "label", where)
        if not is_valid_label(label):
            raise StoreFormatError(f"{where}: a recipient label must be at most 100 printable characters")
        recipients.append(SealedKey(public_key, sealed, label))

    secrets = _table(document.get("secrets", {}), "secrets", where)
    entries: dict[str, Entry] = {}
    for name, raw_entry in secrets.items():
        if not is_valid_name(name):
            raise StoreFormatError(f"{where}: invalid secret name {name!r}")
        entries[name] = _parse_entry(_table(raw_entry, f"secret {name}", where), name, where)
    return ScopeFile(entity, scope_id, recipients, entries, mac)


def _parse_version(table: dict[str, object], what: str, where: str) -> Version:
    _only_keys(table, _VERSION_KEYS, what, where)
    updated = _timestamp(table.get("updated"), f"{what} updated", where)
    nonce = _unb64(table.get("nonce"), f"{what} nonce", where)
    ciphertext = _unb64(table.get("ciphertext"), f"{what} ciphertext", where)
    if len(nonce) != crypto.NONCE_BYTES:
        raise StoreFormatError(f"{where}: {what} nonce has the wrong length")
    if len(ciphertext) <= crypto.TAG_BYTES:
        raise StoreFormatError(f"{where}: {what} ciphertext is too short")
    return Version(updated, nonce, ciphertext)


def _parse_entry(table: dict[str, object], name: str, where: str) -> Entry:
    what = f"secret {name}"
    _only_keys(table, _ENTRY_KEYS, what, where)
    raw_history = table.get("history", [])
    if not isinstance(raw_history, list):
        raise StoreFormatError(f"{where}: {what} history must be an array")
    history = tuple(
        _parse_version(_table(item, f"{what} history", where), f"{what} history", where)
        for item in raw_history
    )
    if "deleted" in table:  # present means true: 'deleted = false' is not a spelling of absent
        if table["deleted"] is not True:
            raise StoreFormatError(f"{where}: {what} deleted must be true when present")
        if "nonce" in table or "ciphertext" in table or not history:
            raise StoreFormatError(f"{where}: deleted {what} must have history and no value")
        updated = _timestamp(table.get("updated"), f"{what} updated", where)
        return Entry(None, updated, history)
    current = _parse_version(
        {key: table[key] for key in _VERSION_KEYS if key in table}, what, where
    )
    return Entry(current, current.updated, history)


# --- writing ----------------------------------------------------------------


def _version_table(version: Version) -> dict[str, str]:
    return {
        "updated": version.updated,
        "nonce": _b64(version.nonce),
        "ciphertext": _b64(version.ciphertext),
    }


def serialize(scope: ScopeFile) -> bytes:
    """Deterministic TOML: entries sorted by name, one block each.

    The caller must have sorted ``scope.entries`` and computed ``scope.mac``
    over that order (see ``seal``). ``serialize_canonical`` writes the same
    bytes without importing tomli_w; it declines the shapes it does not handle.
    """
    fast = serialize_canonical(scope)
    if fast is not None:
        return fast
    return serialize_with_tomli_w(scope)


def serialize_with_tomli_w(scope: ScopeFile) -> bytes:
    """The reference writer: FORMAT.md defines the output as what tomli-w emits."""
    import tomli_w

    document: dict[str, object] = {"format": FORMAT, "entity": scope.entity}
    if scope.scope_id is not None:
        document["id"] = scope.scope_id
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
            table = {"updated": entry.updated, "deleted": True}
        else:
            table = dict(_version_table(entry.current))
        if entry.history:
            table["history"] = [_version_table(version) for version in entry.history]
        secrets[name] = table
    document["secrets"] = secrets
    return tomli_w.dumps(document).encode("utf-8")


def seal(scope: ScopeFile, keys: crypto.FileKeys) -> bytes:
    """Sort entries, MAC the file and serialise it."""
    scope.entries = dict(sorted(scope.entries.items()))
    scope.mac = crypto.compute_mac(keys, mac_input(scope))
    return serialize(scope)


def verify(scope: ScopeFile, keys: crypto.FileKeys, where: str) -> None:
    if not crypto.mac_matches(keys, mac_input(scope), scope.mac):
        raise TamperedError(
            f"{where}: file MAC does not match "
            "(entries were added, removed, reordered or edited by hand, or a merge went wrong)"
        )


def encrypt(scope: ScopeFile, keys: crypto.FileKeys, name: str, value: str, updated: str) -> Version:
    nonce, ciphertext = crypto.encrypt_value(
        keys, value.encode("utf-8"), value_aad(scope.entity, scope.scope_id, name)
    )
    return Version(updated, nonce, ciphertext)


def decrypt_live(scope: ScopeFile, keys: crypto.FileKeys, where: str) -> dict[str, str]:
    """name -> value of every live entry (one batch of AEAD calls), or TamperedError
    naming the first secret that does not open, exactly as ``decrypt`` would."""
    live = [(name, entry.current) for name, entry in scope.entries.items() if entry.current is not None]
    items = []
    for name, version in live:
        items.append((version.nonce, version.ciphertext, value_aad(scope.entity, scope.scope_id, name)))
    values: dict[str, str] = {}
    for (name, version), plaintext in zip(live, crypto.decrypt_values(keys, items), strict=True):
        if plaintext is None:  # the one-at-a-time path raises get's exact error for it
            values[name] = decrypt(scope, keys, name, version, where)
            continue
        values[name] = _text(plaintext, name, where)
    return values


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
_TIMESTAMP_RE = re.compile(_TIMESTAMP)
_B64 = r"[A-Za-z0-9+/=]*"
_HEAD_RE = re.compile(
    r'format = "secretstore/v1"\n'
    r'entity = "(team|project|cluster)"\n'
    r'(?:id = "([A-Za-z0-9._-]+)"\n)?'
    rf'mac = "({_B64})"\n'
)
_RECIPIENT_RE = re.compile(
    r"\n\[\[recipients\]\]\n"
    rf'public_key = "({_SAFE})"\n'
    rf'(?:label = "({_SAFE})"\n)?'
    rf'sealed_key = "({_B64})"\n'
)
_ENTRY_RE = re.compile(
    r"\n\[secrets\.([A-Za-z][A-Za-z0-9_]*)\]\n"
    rf'updated = "({_TIMESTAMP})"\n'
    rf'(?:nonce = "({_B64})"\nciphertext = "({_B64})"\n|deleted = true\n)'
    r"((?:\n\[\[secrets\.\1\.history\]\]\n"
    rf'updated = "{_TIMESTAMP}"\nnonce = "{_B64}"\nciphertext = "{_B64}"\n)*)'

)
_HISTORY_RE = re.compile(
    r"\n\[\[secrets\.[A-Za-z0-9_]+\.history\]\]\n"
    rf'updated = "({_TIMESTAMP})"\nnonce = "({_B64})"\nciphertext = "({_B64})"\n'
)


def parse_canonical(data: bytes) -> ScopeFile | None:
    """A file in exactly the shape ``serialize`` writes -> ScopeFile; otherwise None.

    Returns a ScopeFile only when the reference path would return an equal one.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    a2b = _a2b_canonical
    try:
        head = _HEAD_RE.match(text)
        if head is None:
            return None
        entity, scope_id, mac_text = head.groups()
        if (entity == "team") != (scope_id is None):
            return None
        if scope_id is not None and not is_valid_id(scope_id):
            return None
        mac = a2b(mac_text)
        if len(mac) != crypto.MAC_BYTES:
            return None
        pos = head.end()
        recipients: list[SealedKey] = []
        seen_keys: set[str] = set()
        while (stanza := _RECIPIENT_RE.match(text, pos)) is not None:
            public_key, label, sealed_text = stanza.groups()
            sealed = a2b(sealed_text)
            if (
                not is_valid_public_text(public_key)
                or public_key in seen_keys
                or len(sealed) != crypto.SEALED_KEY_BYTES
                or (label is not None and not is_valid_label(label))
            ):
                return None  # the reference parser names what is wrong
            seen_keys.add(public_key)
            recipients.append(SealedKey(public_key, sealed, label or ""))
            pos = stanza.end()
        if not recipients:
            return None
        entries: dict[str, Entry] = {}
        if text.startswith("\n[secrets]\n", pos):
            pos += len("\n[secrets]\n")
        else:
            nonce_bytes, tag_bytes = crypto.NONCE_BYTES, crypto.TAG_BYTES
            match_entry = _ENTRY_RE.match
            while (found := match_entry(text, pos)) is not None:
                name, updated, nonce_text, ciphertext_text, history_text = found.groups()
                if name in entries or len(name) > MAX_NAME_LENGTH:
                    return None
                history: tuple[Version, ...] = ()
                if history_text:
                    versions = []
                    for old in _HISTORY_RE.finditer(history_text):
                        old_nonce = a2b(old[2])
                        old_ciphertext = a2b(old[3])
                        if len(old_nonce) != nonce_bytes or len(old_ciphertext) <= tag_bytes:
                            return None
                        versions.append(Version(old[1], old_nonce, old_ciphertext))
                    history = tuple(versions)
                if nonce_text is None:  # deleted = true
                    if not history:
                        return None
                    entries[name] = Entry(None, updated, history)
                else:
                    nonce = a2b(nonce_text)
                    ciphertext = a2b(ciphertext_text)
                    if len(nonce) != nonce_bytes or len(ciphertext) <= tag_bytes:
                        return None
                    entries[name] = Entry(Version(updated, nonce, ciphertext), updated, history)
                pos = found.end()
            if not entries:
                return None
        if pos != len(text):
            return None
    except binascii.Error:
        return None
    return ScopeFile(entity, scope_id, recipients, entries, mac)


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
    if scope.entity not in ENTITIES or not scope.recipients:
        return None
    out = [f'format = "{FORMAT}"\nentity = "{scope.entity}"\n']
    if scope.scope_id is not None:
        if not _plain(scope.scope_id):
            return None
        out.append(f'id = "{scope.scope_id}"\n')
    out.append(f'mac = "{b64(scope.mac)}"\n')
    for stanza in scope.recipients:
        if len(stanza.sealed_key) != crypto.SEALED_KEY_BYTES:
            return None
        if not _plain(stanza.public_key) or not _plain(stanza.label):
            return None
        label = f'label = "{stanza.label}"\n' if stanza.label else ""
        out.append(
            f'\n[[recipients]]\npublic_key = "{stanza.public_key}"\n{label}'
            f'sealed_key = "{b64(stanza.sealed_key)}"\n'
        )
    if not scope.entries:
        out.append("\n[secrets]\n")
    for name, entry in scope.entries.items():
        if not is_valid_name(name) or not _plain(entry.updated):
            return None
        current = entry.current
        if current is None:
            out.append(f'\n[secrets.{name}]\nupdated = "{entry.updated}"\ndeleted = true\n')
        else:
            if not _fits_table_form(current) or current.updated != entry.updated:
                return None
            out.append(
                f'\n[secrets.{name}]\nupdated = "{entry.updated}"\n'
                f'nonce = "{b64(current.nonce)}"\nciphertext = "{b64(current.ciphertext)}"\n'
            )
        for version in entry.history:
            if not _fits_table_form(version) or not _plain(version.updated):
                return None
            out.append(
                f'\n[[secrets.{name}.history]]\nupdated = "{version.updated}"\n'
                f'nonce = "{b64(version.nonce)}"\nciphertext = "{b64(version.ciphertext)}"\n'
            )
    return "".join(out).encode("utf-8")


def _fits_table_form(version: Version) -> bool:
    return len(version.nonce) == crypto.NONCE_BYTES and len(version.ciphertext) > crypto.TAG_BYTES
