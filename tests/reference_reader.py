"""A reader of secretstore's on-disk format written from FORMAT.md's text alone (tests only).

It shares no code with ``secretstore`` and imports nothing from it: the
standard library (``tomllib``, ``base64``, ``hashlib``'s BLAKE2b, which takes a
key and a 16-byte personalisation as libsodium's does) and libsodium's
primitives through PyNaCl's low-level bindings. Each function follows one
section of FORMAT.md; the section is named in its docstring, and where the
text left a choice open the choice made is said beside it. A bug shared by
the library's writer and its reader (a framing slip, a wrong
personalisation) makes the test vectors fail here.

Every refusal raises ``Refused`` with one of the outcomes a vector's
``expect:`` header names (``REASONS``), or, for the earlier versions of a
name in a version-3 or -4 file (``earlier_versions``), ``HISTORY_DAMAGED``:
that refuses the history only, the file's current values stay usable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from typing import NoReturn

from nacl import bindings as sodium
from nacl import exceptions as sodium_errors

# --- outcomes --------------------------------------------------------------------

SUCCESS = "success"
UNMERGED = "unmerged"
PARSE_ERROR = "parse error"
UNSUPPORTED = "unsupported version"
SIGNATURE_FAILURE = "signature failure"
UNTRUSTED = "untrusted"
ROLLBACK = "rollback"
UNSIGNED = "unsigned"
NOT_A_RECIPIENT = "not a recipient"
DECRYPT_FAILURE = "decrypt failure"
MAC_FAILURE = "mac failure"
# identity files
WRONG_PASSPHRASE = "wrong passphrase"
KEY_MISMATCH = "key mismatch"
# snapshots: not a refusal, the reader reads the scope file in full instead
MISS = "miss"
# versions 3 and 4: a name's earlier versions do not match what its (signed) entry says; its
# history is refused, not the file (FORMAT.md "Scope file, version 3", "Reading")
HISTORY_DAMAGED = "history damaged"

REASONS = (
    UNMERGED, PARSE_ERROR, UNSUPPORTED, SIGNATURE_FAILURE, UNTRUSTED, ROLLBACK, UNSIGNED,
    NOT_A_RECIPIENT, DECRYPT_FAILURE, MAC_FAILURE, WRONG_PASSPHRASE, KEY_MISMATCH, HISTORY_DAMAGED,
)


class Refused(Exception):
    """The file is refused; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def refuse(reason: str, detail: str) -> NoReturn:
    raise Refused(reason, detail)


# --- Conventions -----------------------------------------------------------------

_B64_ALPHABET = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_B64URL_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
_DIGITS = re.compile(r"0|[1-9][0-9]*")
_UTC_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_COUNTER = 2**53 - 1


def b64(text: object) -> bytes:
    """Standard base64 with padding, canonical: it re-encodes to exactly the same text."""
    if not isinstance(text, str) or not text.isascii() or not _B64_ALPHABET.fullmatch(text):
        raise ValueError("not base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("not canonical base64")
    return raw


def b64url(text: str) -> bytes:
    """base64url without padding, canonical."""
    if not text.isascii() or not _B64URL_ALPHABET.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != text:
        raise ValueError("not canonical base64url")
    return raw


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def frame(*parts: bytes | str) -> bytes:
    """Each part as a 4-byte big-endian length and its bytes (text as UTF-8)."""
    out = []
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        out.append(len(data).to_bytes(4, "big") + data)
    return b"".join(out)


def blake2b(data: bytes, key: bytes = b"", person: bytes = b"", size: int = 32) -> bytes:
    """libsodium's crypto_generichash_blake2b_salt_personal: empty salt, 16-byte person or none."""
    assert person == b"" or len(person) == 16
    return hashlib.blake2b(data, digest_size=size, key=key, person=person).digest()


def is_printable(text: str) -> bool:
    """FORMAT.md: a label holds no character that is "not printable (control, format or
    bidi characters)". Read here as: no character of the Unicode categories Cc, Cf
    (bidi controls are Cf), Cs, Co, Cn, Zl, Zp, and no separator other than the space."""
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            return False
        if category == "Zs" and char != " ":
            return False
    return True


def is_label(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 100 and is_printable(value)


def is_counter(value: object) -> bool:
    return type(value) is int and 1 <= value <= MAX_COUNTER  # a TOML boolean is not an integer


def is_store_id(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return len(b64url(value)) == 16
    except ValueError:
        return False


def aead_open(ciphertext: bytes, aad: bytes, nonce: bytes, key: bytes) -> bytes | None:
    try:
        return bytes(sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, key))
    except sodium_errors.CryptoError:
        return None


def signature_valid(signature: bytes, message: bytes, sign_public: bytes) -> bool:
    """A detached signature is the first 64 bytes of crypto_sign's output: open signature || message."""
    try:
        sodium.crypto_sign_open(signature + message, sign_public)
    except sodium_errors.BadSignatureError:
        return False
    return True


# --- Keys -----------------------------------------------------------------------


@dataclass(frozen=True)
class PublicKey:
    text: str
    box: bytes
    sign: bytes | None  # None for a version-1 ssk1 key


def _is_small_order(box_public: bytes) -> bool:
    """FORMAT.md: "crypto_scalarmult with any clamped scalar gives zero"; libsodium
    reports a zero result as an error."""
    scalar = bytes(range(1, 33))
    try:
        result = sodium.crypto_scalarmult(scalar, box_public)
    except sodium_errors.RuntimeError:
        return True
    return result == bytes(32)


def parse_public_key(text: object) -> PublicKey:
    """``ssk2`` or ``ssk1`` public key; ValueError unless every check of "Public keys" passes.

    FORMAT.md gives the ssk1 checksum only by analogy ("ssk1<base64url(box_public ||
    checksum)>"): read as the first 4 bytes of BLAKE2b(box_public, 4), as for ssk2.
    """
    if not isinstance(text, str):
        raise ValueError("not a string")
    if text.startswith("ssk2"):
        raw = b64url(text[4:])
        if len(raw) != 68:
            raise ValueError("wrong length")
        box, sign, check = raw[:32], raw[32:64], raw[64:]
        if blake2b(box + sign, size=4) != check:
            raise ValueError("bad checksum")
        if not sodium.crypto_core_ed25519_is_valid_point(sign):
            raise ValueError("signing key is not a valid point")
    elif text.startswith("ssk1"):
        raw = b64url(text[4:])
        if len(raw) != 36:
            raise ValueError("wrong length")
        box, sign, check = raw[:32], None, raw[32:]
        if blake2b(box, size=4) != check:
            raise ValueError("bad checksum")
    else:
        raise ValueError("not a public key")
    if _is_small_order(box):
        raise ValueError("small-order box key")
    return PublicKey(text, box, sign)


def public_key_text(box_public: bytes, sign_public: bytes) -> str:
    return "ssk2" + b64url_encode(box_public + sign_public + blake2b(box_public + sign_public, size=4))


def sign_keypair(secret_key: bytes) -> tuple[bytes, bytes]:
    """(sign_public, sign_secret): crypto_sign_seed_keypair(BLAKE2b("", sk, "sstore-signkey-1", 32))."""
    seed = blake2b(b"", key=secret_key, person=b"sstore-signkey-1", size=32)
    public, secret = sodium.crypto_sign_seed_keypair(seed)
    return bytes(public), bytes(secret)


def public_key_of(secret_key: bytes) -> PublicKey:
    box = bytes(sodium.crypto_scalarmult_base(secret_key))
    sign = sign_keypair(secret_key)[0]
    return PublicKey(public_key_text(box, sign), box, sign)


# --- Identity file ----------------------------------------------------------------

SECRET_PREFIX = "SECRETSTORE-SECRET-KEY-1"
PROTECTED_PREFIX = "SECRETSTORE-PROTECTED-KEY-1"
OPSLIMIT_RANGE = (1, 4)  # FORMAT.md: [crypto_pwhash_argon2id_OPSLIMIT_MIN, OPSLIMIT_SENSITIVE]
MEMLIMIT_RANGE = (8192, 1073741824)  # [MEMLIMIT_MIN, MEMLIMIT_SENSITIVE]
_PROTECTED_FIELDS = ("opslimit", "memlimit", "salt", "nonce", "ciphertext")


@dataclass
class IdentityFile:
    """An identity file's key line, read without the passphrase."""

    protected: bool
    public: PublicKey  # derived from the key (unprotected), or the one the line names (protected)
    secret_key: bytes = b""  # unprotected only
    line: str = ""
    opslimit: int = 0
    memlimit: int = 0
    salt: bytes = b""
    nonce: bytes = b""
    ciphertext: bytes = b""


def read_identity(data: bytes) -> IdentityFile:
    """FORMAT.md "Identity file": Refused(PARSE_ERROR) for anything malformed, before any Argon2id."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        refuse(PARSE_ERROR, "not ASCII")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(lines) != 1:
        refuse(PARSE_ERROR, f"{len(lines)} key lines")
    line = lines[0]
    if line.startswith(PROTECTED_PREFIX):
        return _read_protected(line)
    if not line.startswith(SECRET_PREFIX):
        refuse(PARSE_ERROR, "no key line")
    try:
        raw = b64url(line[len(SECRET_PREFIX):])
    except ValueError as exc:
        refuse(PARSE_ERROR, str(exc))
    if len(raw) != 36 or blake2b(raw[:32], size=4) != raw[32:]:
        refuse(PARSE_ERROR, "secret key: wrong length or checksum")
    return IdentityFile(False, public_key_of(raw[:32]), secret_key=raw[:32], line=line)


def _read_protected(line: str) -> IdentityFile:
    fields = line.split(" ")
    if len(fields) != 8 or fields[0] != PROTECTED_PREFIX or fields[2] != "argon2id":
        refuse(PARSE_ERROR, "malformed protected line")
    values: dict[str, str] = {}
    for name, item in zip(_PROTECTED_FIELDS, fields[3:], strict=True):
        key, sep, value = item.partition("=")
        if key != name or not sep:
            refuse(PARSE_ERROR, f"expected {name}=")
        values[name] = value
    try:
        public = parse_public_key(fields[1])
        salt, nonce, ciphertext = (b64url(values[name]) for name in ("salt", "nonce", "ciphertext"))
    except ValueError as exc:
        refuse(PARSE_ERROR, str(exc))
    if not all(value.isascii() and _DIGITS.fullmatch(value) for value in (values["opslimit"], values["memlimit"])):
        refuse(PARSE_ERROR, "limits are not canonical numbers")
    opslimit, memlimit = int(values["opslimit"]), int(values["memlimit"])
    if not OPSLIMIT_RANGE[0] <= opslimit <= OPSLIMIT_RANGE[1]:
        refuse(PARSE_ERROR, "opslimit out of range")
    if not MEMLIMIT_RANGE[0] <= memlimit <= MEMLIMIT_RANGE[1]:
        refuse(PARSE_ERROR, "memlimit out of range")
    if len(salt) != 16 or len(nonce) != 24 or len(ciphertext) != 48:
        refuse(PARSE_ERROR, "salt, nonce or ciphertext of the wrong length")
    return IdentityFile(True, public, line=line, opslimit=opslimit, memlimit=memlimit, salt=salt,
                        nonce=nonce, ciphertext=ciphertext)


def unlock_identity(identity: IdentityFile, passphrase: str | None = None) -> bytes:
    """The 32-byte X25519 secret key (Refused(WRONG_PASSPHRASE) or Refused(KEY_MISMATCH))."""
    if not identity.protected:
        return identity.secret_key
    assert passphrase is not None, "a protected identity needs its passphrase"
    wrapping_key = sodium.crypto_pwhash_alg(
        32, passphrase.encode("utf-8"), identity.salt, identity.opslimit, identity.memlimit,
        sodium.crypto_pwhash_ALG_ARGON2ID13,
    )
    header = identity.line[: identity.line.index(" nonce=")]
    aad = b"secretstore identity key v1\n" + header.encode("ascii")
    secret_key = aead_open(identity.ciphertext, aad, identity.nonce, wrapping_key)
    if secret_key is None:
        refuse(WRONG_PASSPHRASE, "the tag does not verify (wrong passphrase or an altered line)")
    actual = public_key_of(secret_key)
    if actual.box != identity.public.box or (identity.public.sign is not None and actual.sign != identity.public.sign):
        refuse(KEY_MISMATCH, "the decrypted key is not the line's public key")
    return secret_key


# --- The reader's trust state (parameters) -----------------------------------------


@dataclass
class Reader:
    """Who reads, and what FORMAT.md's "Trust state" says this reader decided and saw before.

    ``store_files``: every file in the store (path -> bytes), the roster included:
    the roster gives the members vouched for.
    """

    secret_key: bytes | None
    trusted: tuple[str, ...] = ()  # `secretstore trust KEY` (the reader's own key is always in E)
    revoked: tuple[str, ...] = ()  # keys the reader revoked
    store_id: str | None = None  # the store id recorded for this store
    counters: dict[str, int] = field(default_factory=dict)  # path -> highest counter accepted
    signed_seen: bool = False  # a signed file of this store was accepted before (version-1 files are refused either way)
    store_files: dict[str, bytes] = field(default_factory=dict)

    @property
    def me(self) -> PublicKey | None:
        return None if self.secret_key is None else public_key_of(self.secret_key)

    def explicit(self) -> set[str]:
        """E: the reader's own ssk2 key and the keys it trusted, minus the keys it revoked."""
        revoked = {parse_public_key(text).box for text in self.revoked}
        found = {text for text in self.trusted if parse_public_key(text).box not in revoked}
        if self.me is not None:
            found.add(self.me.text)
        return found

    def revoked_boxes(self) -> set[bytes]:
        return {parse_public_key(text).box for text in self.revoked}


# --- recipients.toml: the roster --------------------------------------------------

ROSTER_PATH = "recipients.toml"
ROSTER_V2 = "secretstore-recipients/v2"
ROSTER_V1 = "secretstore-recipients/v1"
UNMERGED_MARKER = b"# secretstore: unmerged: "


@dataclass
class Member:
    public_key: PublicKey
    label: str
    scopes: tuple[str, ...]
    added_by: str
    endorsement: bytes


@dataclass
class Roster:
    signed: bool
    members: list[Member]
    store: str = ""
    counter: int = 0
    signer: str = ""
    revoked: tuple[str, ...] = ()
    # what FORMAT.md's "Trust" item 2 gives this reader
    store_wide: set[str] = field(default_factory=set)
    scoped: dict[str, set[str]] = field(default_factory=dict)


def _load_toml(data: bytes) -> dict[str, object]:
    if data.startswith(UNMERGED_MARKER):
        refuse(UNMERGED, "the merge driver's marker")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        refuse(PARSE_ERROR, f"not UTF-8 TOML ({type(exc).__name__})")


def _only(table: dict[str, object], allowed: set[str], required: set[str], what: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        refuse(PARSE_ERROR, f"unknown field {sorted(unknown)[0]!r} in {what}")
    missing = required - set(table)
    if missing:
        refuse(PARSE_ERROR, f"missing field {sorted(missing)[0]!r} in {what}")


def _key(value: object, what: str, *, signing: bool = False) -> PublicKey:
    try:
        key = parse_public_key(value)
    except ValueError as exc:
        refuse(PARSE_ERROR, f"{what}: {exc}")
    if signing and key.sign is None:
        refuse(PARSE_ERROR, f"{what} must be an ssk2 key")
    return key


def _bytes(value: object, size: int | None, what: str) -> bytes:
    try:
        raw = b64(value)
    except ValueError as exc:
        refuse(PARSE_ERROR, f"{what}: {exc}")
    if size is not None and len(raw) != size:
        refuse(PARSE_ERROR, f"{what}: {len(raw)} bytes")
    return raw


def is_scope_tag(tag: object) -> bool:
    if not isinstance(tag, str):
        return False
    if tag == "team":
        return True
    entity, sep, scope_id = tag.partition(":")
    return entity in ("project", "cluster") and bool(sep) and is_scope_id(scope_id)


def is_scope_id(scope_id: object) -> bool:
    return (
        isinstance(scope_id, str) and len(scope_id) <= 128 and ".." not in scope_id
        and scope_id.isascii() and _ID.fullmatch(scope_id) is not None
    )


def parse_roster(data: bytes) -> Roster:
    """FORMAT.md "recipients.toml" and the structural rules of "Reading" (1 to 5).

    FORMAT.md states rules 3 and 4 for the ``secretstore/`` family of scope
    files; for the roster they are read with its own family,
    ``secretstore-recipients/``.
    """
    document = _load_toml(data)
    found = document.get("format")
    if not isinstance(found, str) or not found.startswith("secretstore-recipients/"):
        refuse(PARSE_ERROR, "not a roster")
    if found not in (ROSTER_V2, ROSTER_V1):
        refuse(UNSUPPORTED, f"format {found!r}")
    v2 = found == ROSTER_V2
    if v2:
        _only(document, {"format", "store", "counter", "signer", "signature", "history", "revoked", "recipients"},
              {"format", "store", "counter", "signer", "signature", "recipients"}, "the roster")
    else:
        _only(document, {"format", "recipients"}, {"format", "recipients"}, "the roster")
    raw_members = document["recipients"]
    if not isinstance(raw_members, list):
        refuse(PARSE_ERROR, "recipients is not an array of tables")
    members: list[Member] = []
    for raw in raw_members:
        if not isinstance(raw, dict):
            refuse(PARSE_ERROR, "a recipient is not a table")
        if v2:
            _only(raw, {"public_key", "label", "scopes", "added_by", "endorsement"},
                  {"public_key", "added_by", "endorsement"}, "a recipient")
        else:
            _only(raw, {"public_key", "label"}, {"public_key"}, "a recipient")
        key = _key(raw["public_key"], "public_key")
        label = raw.get("label", "")
        if not is_label(label):
            refuse(PARSE_ERROR, "label")
        assert isinstance(label, str)
        scopes: tuple[str, ...] = ()
        added_by, endorsement = "", b""
        if v2:
            if "scopes" in raw:
                tags = raw["scopes"]
                if (
                    not isinstance(tags, list) or not tags or not all(is_scope_tag(tag) for tag in tags)
                    or tags != sorted(tags) or len(set(tags)) != len(tags)
                ):
                    refuse(PARSE_ERROR, "scopes must be a non-empty sorted list of scope tags")
                scopes = tuple(tags)
            added_by = _key(raw["added_by"], "added_by", signing=True).text
            endorsement = _bytes(raw["endorsement"], 64, "endorsement")
        if any(other.public_key.box == key.box for other in members):
            refuse(PARSE_ERROR, "a reader is listed twice")
        members.append(Member(key, label, scopes, added_by, endorsement))
    if not v2:
        return Roster(False, members)
    if [m.public_key.text for m in members] != sorted(m.public_key.text for m in members):
        refuse(PARSE_ERROR, "recipients are not sorted by public_key")
    if not is_store_id(document["store"]):
        refuse(PARSE_ERROR, "store")
    if not is_counter(document["counter"]):
        refuse(PARSE_ERROR, "counter")
    signer = _key(document["signer"], "signer", signing=True)
    signature = _bytes(document["signature"], 64, "signature")
    history = document.get("history")
    if history is not None and not (type(history) is int and 0 <= history <= 100):
        refuse(PARSE_ERROR, "history")
    revoked = document.get("revoked", [])
    if not isinstance(revoked, list):
        refuse(PARSE_ERROR, "revoked")
    revoked_keys = [_key(text, "revoked") for text in revoked]
    if {k.box for k in revoked_keys} & {m.public_key.box for m in members}:
        refuse(PARSE_ERROR, "a key is both a recipient and revoked")
    store, counter = document["store"], document["counter"]
    assert isinstance(store, str) and isinstance(counter, int)
    parts: list[bytes | str] = [
        "secretstore signature", ROSTER_V2, "secretstore recipients", store, str(counter), signer.text,
        "" if history is None else str(history), str(len(revoked_keys)), *(k.text for k in revoked_keys),
        str(len(members)),
    ]
    for member in members:
        parts += [member.public_key.text, member.label, str(len(member.scopes)), *member.scopes,
                  member.added_by, member.endorsement]
    assert signer.sign is not None
    if not signature_valid(signature, frame(*parts), signer.sign):
        refuse(SIGNATURE_FAILURE, "the roster's signature does not verify")
    return Roster(True, members, store, counter, signer.text, tuple(k.text for k in revoked_keys))


def endorsement_valid(member: Member, store: str) -> bool:
    message = frame("secretstore endorsement", store, member.public_key.text, member.label,
                    str(len(member.scopes)), *member.scopes)
    adder = parse_public_key(member.added_by)
    assert adder.sign is not None
    return signature_valid(member.endorsement, message, adder.sign)


def vouched(roster: Roster, reader: Reader) -> tuple[set[str], dict[str, set[str]]]:
    """FORMAT.md "Trust" item 2: (W, the keys trusted store-wide; key -> the scopes it may write)."""
    explicit = reader.explicit()
    revoked = {parse_public_key(text).box for text in roster.revoked} | reader.revoked_boxes()
    store_wide = set(explicit)
    scoped: dict[str, set[str]] = {}
    done: set[int] = set()
    changed = True
    while changed:
        changed = False
        for index, member in enumerate(roster.members):
            key = member.public_key
            if index in done or key.sign is None:
                continue
            if key.box in revoked and key.text not in explicit:
                continue
            if member.added_by not in store_wide or not endorsement_valid(member, roster.store):
                continue
            done.add(index)
            changed = True
            if member.scopes:
                scoped.setdefault(key.text, set()).update(member.scopes)
            else:
                store_wide.add(key.text)
    return store_wide, scoped


def _check_unsigned(reader: Reader, path: str) -> NoReturn:
    """FORMAT.md "Version 1": a reader MUST refuse every version-1 file, whatever its state and the store."""
    refuse(UNSIGNED, f"{path} is a version-1 (unsigned) file")


def _check_store_and_counter(reader: Reader, path: str, store: str, counter: int | None) -> None:
    if reader.store_id is not None and store != reader.store_id:
        refuse(UNTRUSTED, f"{path} is of another store")
    if counter is not None and counter < reader.counters.get(path, 0):
        refuse(ROLLBACK, f"{path} is version {counter}, older than {reader.counters[path]}")


def read_roster(data: bytes, reader: Reader) -> Roster:
    """The roster if this reader accepts it (FORMAT.md "Trust"), with what it vouches for."""
    roster = parse_roster(data)
    if not roster.signed:
        _check_unsigned(reader, ROSTER_PATH)
    store_wide, scoped = vouched(roster, reader)
    if reader.store_id is not None and roster.store != reader.store_id:
        refuse(UNTRUSTED, "the roster is of another store")
    if roster.signer not in store_wide:
        refuse(UNTRUSTED, "the roster's signer is not trusted store-wide")
    _check_store_and_counter(reader, ROSTER_PATH, roster.store, roster.counter)
    roster.store_wide, roster.scoped = store_wide, scoped
    return roster


def writers(reader: Reader) -> tuple[set[str], dict[str, set[str]]]:
    """Whom the reader trusts to write: from the roster when it is acceptable, else E alone."""
    data = reader.store_files.get(ROSTER_PATH)
    if data is None:
        return reader.explicit(), {}
    try:
        roster = read_roster(data, reader)
    except Refused:
        return reader.explicit(), {}  # "The roster itself is used only if it is acceptable"
    return roster.store_wide, roster.scoped


# --- Scope file -----------------------------------------------------------------------

FORMAT_V4 = "secretstore/v4"
FORMAT_V3 = "secretstore/v3"
FORMAT_V2 = "secretstore/v2"
FORMAT_V1 = "secretstore/v1"
SIGNED_FORMATS = (FORMAT_V2, FORMAT_V3, FORMAT_V4)
# FORMAT.md "Scope file, version 3", "Layout": a writer's file starts with this line.
V3_FIRST_LINE = b'format = "secretstore/v3"\n'
# "The history region (item 3) starts at the first occurrence of the bytes `\n[[secrets.`".
HISTORY_START = b"\n[[secrets."
MAX_HISTORY_BYTES = 10**13 - 1
# FORMAT.md "Scope file, version 4": a writer's file starts with this line, and "the body ends
# at the first occurrence of the bytes `\n[[s`".
V4_FIRST_LINE = b'format = "secretstore/v4"\n'
V4_BODY_END = b"\n[[s"
MAX_BASE = 10**13 - 1  # a seal's `base`: "integer, 1 to 10^13 - 1"
SEAL_FIELDS = ("base", "counter", "signer", "signature", "mac")


@dataclass
class Version:
    updated: str
    writer: str
    nonce: bytes
    ciphertext: bytes


@dataclass
class Entry:
    name: str
    updated: str
    writer: str
    rotate: bool
    current: Version | None  # None: deleted
    history: list[Version]  # versions 1 and 2 (a version-3 or -4 entry's are in its chunk, read on demand)
    history_bytes: int = 0  # versions 3, 4: the length of the name's chunk; 0: no earlier versions
    history_digest: bytes = b""  # versions 3, 4: BLAKE2b(chunk, "sstore-history-3", 32)
    chunk_at: int = -1  # version 4: where the name's chunk starts in the file (in the history, or in a section)


@dataclass
class Stanza:
    public_key: PublicKey
    label: str
    sealed_key: bytes


@dataclass
class ScopeFile:
    version: str
    entity: str
    scope_id: str
    store: str
    counter: int
    signer: str
    signature: bytes
    mac: bytes
    recipients: list[Stanza]
    entries: list[Entry]
    # version 3: the whole file (its history region is read only by ``earlier_versions``),
    # where that region starts, and BLAKE2b(signed_bytes, "sstore-filebody3", 32);
    # version 4: the whole file, where its history starts, and the digest its last seal signs
    data: bytes = b""
    region_start: int = 0
    digest: bytes = b""
    sections: int = 0  # version 4: how many (sealed) sections the file has

    def mac_input(self) -> bytes:
        """FORMAT.md "File MAC and signature" (and "Version 1"): every field, framed, in document order;
        for version 3 ("Scope file, version 3"), frame("secretstore file", "secretstore/v3", digest);
        for version 4 ("Scope file, version 4"), the same with "secretstore/v4" and the last digest."""
        if self.version in (FORMAT_V3, FORMAT_V4):
            return frame("secretstore file", self.version, self.digest)
        v2 = self.version == FORMAT_V2
        parts: list[bytes | str] = ["secretstore file", self.version, self.entity, self.scope_id]
        if v2:
            parts += [self.store, str(self.counter), self.signer]
        parts.append(str(len(self.recipients)))
        for stanza in self.recipients:
            parts += [stanza.public_key.text, stanza.label, stanza.sealed_key]
        parts.append(str(len(self.entries)))
        for entry in self.entries:
            parts += [entry.name, entry.updated]
            if v2:
                parts += [entry.writer, "rotate" if entry.rotate else "-"]
            if entry.current is None:
                parts.append("deleted")
            else:
                parts += ["live", entry.current.nonce, entry.current.ciphertext]
            parts.append(str(len(entry.history)))
            for old in entry.history:
                parts.append(old.updated)
                if v2:
                    parts.append(old.writer)
                parts += [old.nonce, old.ciphertext]
        return frame(*parts)

    def signed_input(self) -> bytes:
        """What the signer signed: version 2's ``signed``, or version 3's (version 4's: its last seal's)
        frame of the digest and the MAC."""
        if self.version in (FORMAT_V3, FORMAT_V4):
            return frame("secretstore signature", self.version, self.digest, self.mac)
        return frame("secretstore signature", FORMAT_V2) + self.mac_input() + frame(self.mac)


def scope_of_path(path: str) -> tuple[str, str | None]:
    """(entity, id) a scope file at ``path`` must hold (FORMAT.md "Store layout")."""
    if path == "team.toml":
        return "team", None
    folder, _, filename = path.partition("/")
    entity = {"projects": "project", "clusters": "cluster"}.get(folder)
    scope_id = filename.removesuffix(".toml")
    assert entity is not None and filename.endswith(".toml") and is_scope_id(scope_id), path
    return entity, scope_id


def parse_scope_file(data: bytes, path: str) -> ScopeFile:
    """FORMAT.md "Reading", rules 1 to 5; a version-3 file as "Scope file, version 3" says, a
    version-4 file as "Scope file, version 4" says.

    A version-3 writer's file starts with its format line (``_parse_v3`` reads
    its head and body, never its history); so does a version-4 writer's
    (``_parse_v4`` reads its head, body and sections, never its history). A
    document labelled version 3 or 4 that does not start so is not in the
    layout: it is read whole here only to give the first rule it breaks, which
    is at the latest rule 6 (**signature failure**: "MUST refuse any other
    bytes, however equal the document").
    """
    if data.startswith(V3_FIRST_LINE):
        return _parse_v3(data, path)
    if data.startswith(V4_FIRST_LINE):
        return _parse_v4(data, path)
    document = _load_toml(data)
    found = _format(document)
    file = _parse_document(document, found, path, whole=True)
    if found in (FORMAT_V3, FORMAT_V4):
        refuse(SIGNATURE_FAILURE, f"a {found} document in other bytes than the layout its writer signs")
    return file


def _format(document: dict[str, object]) -> str:
    """Rules 3 and 4."""
    found = document.get("format")
    if not isinstance(found, str) or not found.startswith("secretstore/"):
        refuse(PARSE_ERROR, "format is missing or not secretstore/...")
    if found not in (FORMAT_V4, FORMAT_V3, FORMAT_V2, FORMAT_V1):
        refuse(UNSUPPORTED, f"format {found!r}: a newer secretstore may have written it")
    return found


def _parse_document(document: dict[str, object], found: str, path: str, *, whole: bool = False) -> ScopeFile:
    """Rule 5 for a TOML document of format ``found`` (for version 3: its head and body,
    or, read ``whole``, the document with its history tables; for version 4: its head and
    body, without counter, signer, signature or mac, or, read ``whole``, the document with
    its history tables, its updates and its seals, the last seal giving those four)."""
    signed, v4 = found in SIGNED_FORMATS, found == FORMAT_V4
    # `secrets` is not marked optional in the field table: a missing one is a missing field.
    top = {"format", "entity", "mac", "recipients", "secrets"}
    if v4:  # "the head: the lines format, entity, id (not for team) and store ... (no counter, signer,
        # signature or mac: the seals hold them)"; read whole, "`seals` an array of tables"
        top = {"format", "entity", "store", "recipients", "secrets"} | ({"seals"} if whole else set())
    elif signed:
        top |= {"store", "counter", "signer", "signature"}
    _only(document, top | {"id"}, top, "the file")
    entity, scope_id = document["entity"], document.get("id")
    if entity not in ("team", "project", "cluster"):
        refuse(PARSE_ERROR, "entity")
    if entity == "team" and scope_id is not None:
        refuse(PARSE_ERROR, "a team file has an id")
    if entity != "team" and not is_scope_id(scope_id):
        refuse(PARSE_ERROR, "id")
    if (entity, scope_id) != scope_of_path(path):
        refuse(PARSE_ERROR, f"{entity} {scope_id} found at {path}")
    assert isinstance(entity, str)
    store, counter, signer, signature, mac = "", 0, "", b"", b""
    if signed:
        if not is_store_id(document["store"]):
            refuse(PARSE_ERROR, "store")
        store = document["store"]  # type: ignore[assignment]
    if v4 and whole:
        raw_seals = document["seals"]
        if not isinstance(raw_seals, list) or not raw_seals:
            refuse(PARSE_ERROR, "seals must be a non-empty array of tables")
        last = [_parse_seal(raw) for raw in raw_seals][-1]
        counter, signer, signature, mac = last.counter, last.signer, last.signature, last.mac
    elif signed and not v4:
        if not is_counter(document["counter"]):
            refuse(PARSE_ERROR, "counter")
        counter = document["counter"]  # type: ignore[assignment]
        signer = _key(document["signer"], "signer", signing=True).text
        signature = _bytes(document["signature"], 64, "signature")
    if not v4:
        mac = _bytes(document["mac"], 32, "mac")
    raw_recipients = document["recipients"]
    if not isinstance(raw_recipients, list) or not raw_recipients:
        refuse(PARSE_ERROR, "recipients must be a non-empty array of tables")
    recipients: list[Stanza] = []
    for raw in raw_recipients:
        if not isinstance(raw, dict):
            refuse(PARSE_ERROR, "a recipient is not a table")
        _only(raw, {"public_key", "label", "sealed_key"}, {"public_key", "sealed_key"}, "a recipient")
        key = _key(raw["public_key"], "public_key")
        if any(other.public_key.box == key.box for other in recipients):
            refuse(PARSE_ERROR, "a reader is listed twice")
        label = raw.get("label", "")
        if not is_label(label):
            refuse(PARSE_ERROR, "label")
        assert isinstance(label, str)
        recipients.append(Stanza(key, label, _bytes(raw["sealed_key"], 80, "sealed_key")))
    secrets = document["secrets"]
    if not isinstance(secrets, dict):
        refuse(PARSE_ERROR, "secrets is not a table")
    entries = []
    for name, table in secrets.items():
        raw = table
        if v4 and isinstance(table, dict) and "update" in table:  # read whole: the name's updates, then its body entry
            updates = table["update"]
            if not isinstance(updates, list) or not updates:
                refuse(PARSE_ERROR, f"{name}: update is not an array of tables")
            for item in updates:
                _parse_entry(name, item, found, update=True)
            raw = {key: value for key, value in table.items() if key != "update"}
            if set(raw) <= {"history"}:  # the name is in sections only (their chunks: its history)
                for item in raw.get("history") or []:
                    _version(item, True, f"{name} history")
                continue
        entries.append(_parse_entry(name, raw, found))
    return ScopeFile(found, entity, str(scope_id or ""), store, counter, signer, signature, mac, recipients, entries)


@dataclass
class Seal:
    """FORMAT.md "Scope file, version 4": a seal's fields."""

    base: int
    counter: int
    signer: str
    signature: bytes
    mac: bytes


def _parse_seal(raw: object) -> Seal:
    """Rule 5 for a seal ("Scope file, version 4", the seal's field table): `base` an integer from
    1 to 10^13 - 1, `counter` as version 2's, `signer` an ssk2 key, `signature` 64 and `mac` 32
    bytes of canonical base64, and no other field."""
    if not isinstance(raw, dict):
        refuse(PARSE_ERROR, "a seal is not a table")
    _only(raw, set(SEAL_FIELDS), set(SEAL_FIELDS), "a seal")
    base = raw["base"]
    if type(base) is not int or not 1 <= base <= MAX_BASE:
        refuse(PARSE_ERROR, "a seal's base is not an integer from 1 to 10^13 - 1")
    if not is_counter(raw["counter"]):
        refuse(PARSE_ERROR, "a seal's counter")
    signer = _key(raw["signer"], "a seal's signer", signing=True).text
    return Seal(base, raw["counter"], signer, _bytes(raw["signature"], 64, "a seal's signature"),
                _bytes(raw["mac"], 32, "a seal's mac"))


def _time(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.isascii() or not _UTC_TIME.fullmatch(value):
        refuse(PARSE_ERROR, f"{what} is not a UTC time")
    return value


def _writer(table: dict[str, object], what: str) -> str:
    if "writer" not in table:
        return ""
    return _key(table["writer"], f"{what} writer", signing=True).text


def _version(table: object, signed: bool, what: str) -> Version:
    if not isinstance(table, dict):
        refuse(PARSE_ERROR, f"{what} is not a table")
    fields = {"updated", "nonce", "ciphertext"}
    _only(table, fields | ({"writer"} if signed else set()), fields, what)
    ciphertext = _bytes(table["ciphertext"], None, f"{what} ciphertext")
    if len(ciphertext) <= 16:
        refuse(PARSE_ERROR, f"{what} ciphertext is too short")
    return Version(_time(table["updated"], what), _writer(table, what),
                   _bytes(table["nonce"], 24, f"{what} nonce"), ciphertext)


def _parse_entry(name: str, raw: object, found: str, *, update: bool = False) -> Entry:
    """Rule 5 for an entry (``update``: a version-4 update, "the lines of a version-3 entry",
    which has no `history` of its own: its chunk comes before it)."""
    if not (len(name) <= 255 and name.isascii() and _NAME.fullmatch(name)):
        refuse(PARSE_ERROR, f"invalid name {name!r}")
    if not isinstance(raw, dict):
        refuse(PARSE_ERROR, f"{name} is not a table")
    signed, v3 = found in SIGNED_FORMATS, found in (FORMAT_V3, FORMAT_V4)  # version 4's entries are version 3's
    allowed = {"updated", "nonce", "ciphertext", "deleted"} | (set() if update else {"history"})
    if signed:
        allowed |= {"writer", "rotate"}
    if v3:
        allowed |= {"history_bytes", "history_digest"}
    _only(raw, allowed, {"updated"}, name)
    rotate = False
    if "rotate" in raw:
        if raw["rotate"] is not True:
            refuse(PARSE_ERROR, f"{name}: rotate present but not true")
        rotate = True
    raw_history = raw.get("history", [])
    if not isinstance(raw_history, list):
        refuse(PARSE_ERROR, f"{name}: history is not an array of tables")
    history = [_version(item, signed, f"{name} history") for item in raw_history]
    # Versions 3, 4: "when the name has earlier versions, `history_bytes` and `history_digest`":
    # the two together or neither.
    history_bytes, history_digest = 0, b""
    if "history_bytes" in raw or "history_digest" in raw:
        if "history_bytes" not in raw or "history_digest" not in raw:
            refuse(PARSE_ERROR, f"{name}: history_bytes and history_digest go together")
        history_bytes = raw["history_bytes"]  # type: ignore[assignment]
        if type(history_bytes) is not int or not 1 <= history_bytes <= MAX_HISTORY_BYTES:
            refuse(PARSE_ERROR, f"{name}: history_bytes is not an integer from 1 to 10^13 - 1")
        history_digest = _bytes(raw["history_digest"], 32, f"{name} history_digest")
    if "deleted" in raw:
        if raw["deleted"] is not True:
            refuse(PARSE_ERROR, f"{name}: deleted present but not true")
        # "A deleted entry MUST have them (a deleted name keeps at least one earlier version)";
        # version 4: "a deleted update MUST have a chunk" (rule 5: "a deleted entry has ... no history").
        has_history = bool(history_bytes) if v3 else bool(history)
        if "nonce" in raw or "ciphertext" in raw or not has_history:
            refuse(PARSE_ERROR, f"{name}: a deleted entry has a value or no history")
        return Entry(name, _time(raw["updated"], name), _writer(raw, name), rotate, None, history,
                     history_bytes, history_digest)
    current = _version({k: v for k, v in raw.items() if k in ("updated", "writer", "nonce", "ciphertext")}, signed, name)
    return Entry(name, current.updated, current.writer, rotate, current, history, history_bytes, history_digest)


# --- Scope file, version 3 -----------------------------------------------------------


def b64_encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _basic_string(text: str) -> str:
    """A TOML basic string's content: "the only escapes are \\" and \\\\"."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _parse_v3(data: bytes, path: str) -> ScopeFile:
    """FORMAT.md "Scope file, version 3": rules 1 to 5 on the head and body (the bytes before
    the history region), then the exact layout (else Refused(SIGNATURE_FAILURE)). The history
    region is neither parsed nor checked here: a reader of current values does not need it."""
    start = data.find(HISTORY_START)
    region_start = len(data) if start < 0 else start
    body = data[:region_start]
    document = _load_toml(body)
    file = _parse_document(document, _format(document), path)
    if body != v3_layout(file):
        refuse(SIGNATURE_FAILURE, "not the exact layout a version-3 writer produces (the signature covers bytes)")
    file.data, file.region_start = data, region_start
    file.digest = blake2b(v3_signed_bytes(body), person=b"sstore-filebody3", size=32)
    return file


def v3_layout(file: ScopeFile) -> bytes:
    """The head and body a version-3 writer makes of ``file``'s fields ("Layout", items 1 and 2):
    each line ending with \\n, a blank line before each table, entries in name (byte) order."""
    out = [f'format = "{FORMAT_V3}"\n', f'entity = "{file.entity}"\n']
    if file.entity != "team":
        out.append(f'id = "{file.scope_id}"\n')
    out += [
        f'store = "{file.store}"\n', f"counter = {file.counter}\n", f'signer = "{file.signer}"\n',
        f'signature = "{b64_encode(file.signature)}"\n', f'mac = "{b64_encode(file.mac)}"\n',
    ]
    return "".join(out).encode("utf-8") + _body_layout(file)


def _body_layout(file: ScopeFile) -> bytes:
    """The body ("Scope file, version 3", "Layout", item 2; version 4's is "exactly as version 3's")."""
    out = []
    for stanza in file.recipients:
        out.append(f'\n[[recipients]]\npublic_key = "{stanza.public_key.text}"\n')
        if stanza.label:
            out.append(f'label = "{_basic_string(stanza.label)}"\n')
        out.append(f'sealed_key = "{b64_encode(stanza.sealed_key)}"\n')
    if not file.entries:
        out.append("\n[secrets]\n")
    for entry in sorted(file.entries, key=lambda item: item.name.encode("utf-8")):
        out.append(f"\n[secrets.{entry.name}]\n" + _entry_lines(entry))
    return "".join(out).encode("utf-8")


def _entry_lines(entry: Entry) -> str:
    """The lines of a version-3 entry after its table header: `updated`, `writer` (when known),
    then `nonce` and `ciphertext` or `deleted = true`, then `rotate = true` when set, then
    `history_bytes` and `history_digest` when it has earlier versions."""
    out = [f'updated = "{entry.updated}"\n']
    if entry.writer:
        out.append(f'writer = "{entry.writer}"\n')
    if entry.current is None:
        out.append("deleted = true\n")
    else:
        out.append(f'nonce = "{b64_encode(entry.current.nonce)}"\n'
                   f'ciphertext = "{b64_encode(entry.current.ciphertext)}"\n')
    if entry.rotate:
        out.append("rotate = true\n")
    if entry.history_bytes:
        out.append(f"history_bytes = {entry.history_bytes}\n"
                   f'history_digest = "{b64_encode(entry.history_digest)}"\n')
    return "".join(out)


def v3_signed_bytes(body: bytes) -> bytes:
    """ "The file's bytes up to the start of the history region, less the two lines
    `signature = ...` and `mac = ...` (their bytes and newlines removed)"."""
    lines = body.split(b"\n")  # the body ends with \n: the last item is empty
    kept = [line for line in lines if not line.startswith((b"signature = ", b"mac = "))]
    assert len(lines) - len(kept) == 2, "the layout has exactly one signature and one mac line"
    return b"\n".join(kept)


def _chunk_layout(name: str, versions: list[Version]) -> bytes:
    """A name's chunk as a writer lays it out ("Layout", item 3)."""
    out = []
    for old in versions:
        out.append(f'\n[[secrets.{name}.history]]\nupdated = "{old.updated}"\n')
        if old.writer:
            out.append(f'writer = "{old.writer}"\n')
        out.append(f'nonce = "{b64_encode(old.nonce)}"\nciphertext = "{b64_encode(old.ciphertext)}"\n')
    return "".join(out).encode("utf-8")


def history_versions(file: ScopeFile, name: str) -> list[Version]:
    """FORMAT.md "Scope file, version 3", "Reading", for a reader of ``name``'s earlier versions:
    the history region MUST be exactly the chunks (chunk k starting where chunk k - 1 ends, the
    first at the region's start) and the name's chunk of the recorded length and digest, else
    Refused(HISTORY_DAMAGED); then the chunk is read "as version 2 reads `history`", anything
    else in it being Refused(PARSE_ERROR). For a version-1 or -2 file: its ``history``.

    Version 4 ("Scope file, version 4"): the name's chunk is its last update's (the bytes before
    that update), or its body entry's in the history; the history is exactly the chunks the body
    gives, as every seal's `base` says (``_parse_v4`` checked it), so only the chunk's length and
    digest are left to check here: "A chunk whose bytes do not match its length and digest
    refuses that name's history only, as in version 3"."""
    entry = _entry(file, name)
    if file.version not in (FORMAT_V3, FORMAT_V4):
        return entry.history
    if not entry.history_bytes:  # its signed entry records no earlier versions: no chunk to find
        return []
    if file.version == FORMAT_V4:
        offset = entry.chunk_at
    else:
        region = file.data[file.region_start:]
        if len(region) != sum(other.history_bytes for other in file.entries):
            refuse(HISTORY_DAMAGED, "the history region is not exactly the chunks the entries record")
        offset = file.region_start
        for other in file.entries:  # document order, which the layout made name order
            if other is entry:
                break
            offset += other.history_bytes
    chunk = file.data[offset: offset + entry.history_bytes]
    if len(chunk) != entry.history_bytes or not hmac.compare_digest(
        blake2b(chunk, person=b"sstore-history-3", size=32), entry.history_digest
    ):
        refuse(HISTORY_DAMAGED, f"{name}: the chunk does not have the recorded length and digest")
    try:
        document = tomllib.loads(chunk.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        refuse(PARSE_ERROR, f"{name}: the chunk is not UTF-8 TOML ({type(exc).__name__})")
    secrets = document.get("secrets")
    table = secrets.get(name) if isinstance(secrets, dict) else None
    raw_versions = table.get("history") if isinstance(table, dict) else None
    if (
        set(document) != {"secrets"} or not isinstance(secrets, dict) or set(secrets) != {name}
        or not isinstance(table, dict) or set(table) != {"history"}
        or not isinstance(raw_versions, list) or not raw_versions
    ):
        refuse(PARSE_ERROR, f"{name}: the chunk holds something else than the name's earlier versions")
    versions = [_version(item, True, f"{name} history") for item in raw_versions]
    if chunk != _chunk_layout(name, versions):
        refuse(PARSE_ERROR, f"{name}: the chunk is not in the layout a writer produces")
    return versions


def _entry(file: ScopeFile, name: str) -> Entry:
    found = [entry for entry in file.entries if entry.name == name]
    if not found:
        raise KeyError(name)
    return found[0]


# --- Scope file, version 4 -----------------------------------------------------------

# "A seal is a blank line, `[[seals]]` and the lines" base, counter, signer, signature and mac.
# A *complete* seal, for finding the last one, is those five lines whole, whatever they hold:
# what they hold is checked when the seal is read (rule 5, then the layout).
_COMPLETE_SEAL = re.compile(
    rb"\n\[\[seals\]\]\nbase = [^\n]*\ncounter = [^\n]*\nsigner = [^\n]*\nsignature = [^\n]*\nmac = [^\n]*\n"
)
# Where the next update (`[[secrets.NAME.update]]`, after its chunk) or seal starts.
_SECTION_ITEM = re.compile(rb"\n\[\[(?:secrets\.([A-Za-z][A-Za-z0-9_]*)\.update|seals)\]\]\n")
# "each of their whole lines is one a section has (a blank line, a `[[secrets.NAME.history]]`,
# `[[secrets.NAME.update]]` or `[[seals]]` header, or `key = value` with a value of digits, `true`,
# or a string of base64 or base64url characters)". The list leaves out the one other value every
# section has, an `updated` line's UTC time (its `:`): read as a line a section has too.
_UNSEALED_LINE = re.compile(
    rb"|\[\[(?:secrets\.[A-Za-z][A-Za-z0-9_]*\.(?:history|update)|seals)\]\]"
    rb'|[A-Za-z0-9_-]+ = (?:[0-9]+|true|"[A-Za-z0-9+/=_-]*"|"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")'
)


def last_seal_end(data: bytes, start: int = 0) -> int | None:
    """FORMAT.md "Scope file, version 4", "Reading": where the file's last complete seal ends (None:
    it has none). "Bytes after the last seal that contain no complete seal are a section still
    being written, or one a crash cut short: a reader MUST ignore them" (``is_unsealed_tail``)."""
    end = None
    for found in _COMPLETE_SEAL.finditer(data, start):
        end = found.end()
    return end


def is_unsealed_tail(tail: bytes) -> bool:
    """ "Scope file, version 4", "Reading": bytes after the last seal are ignored "provided each of
    their whole lines is one a section has ... and the last line, cut short, is any text without
    a newline"; "any other bytes after the last seal" refuse the file."""
    *whole, _cut_short = tail.split(b"\n")
    return all(_UNSEALED_LINE.fullmatch(line) for line in whole)


def v4_head_lines(file: ScopeFile) -> bytes:
    """ "Layout", item 1: the lines `format`, `entity`, `id` (not for team) and `store`."""
    scope_id = "" if file.entity == "team" else f'id = "{file.scope_id}"\n'
    return f'format = "{FORMAT_V4}"\nentity = "{file.entity}"\n{scope_id}store = "{file.store}"\n'.encode()


def v4_layout(file: ScopeFile) -> bytes:
    """The head and body a version-4 writer makes of ``file``'s fields ("Layout", items 1 and 2)."""
    return v4_head_lines(file) + _body_layout(file)


def _block_end(data: bytes, start: int, end: int) -> int:
    """Where the block (an update or a seal: a blank line, its header and its lines) starting at
    ``start`` ends: at the blank line that starts the next one, or at ``end``."""
    found = data.find(b"\n\n", start + 1, end)
    return end if found < 0 else found + 1


def _read_update(block: bytes, name: str) -> Entry:
    """An update ("Layout", item 4): rules 2 and 5 on its lines (Refused(PARSE_ERROR)), then its
    exact bytes, `[[secrets.NAME.update]]` and "the lines of a version-3 entry" (else
    Refused(SIGNATURE_FAILURE))."""
    document = _load_toml(block)
    secrets = document.get("secrets")
    table = secrets.get(name) if isinstance(secrets, dict) else None
    updates = table.get("update") if isinstance(table, dict) else None
    if (
        set(document) != {"secrets"} or not isinstance(secrets, dict) or set(secrets) != {name}
        or not isinstance(table, dict) or set(table) != {"update"} or not isinstance(updates, list)
        or len(updates) != 1
    ):
        refuse(SIGNATURE_FAILURE, f"{name}: an update's block holds something else than one update")
    entry = _parse_entry(name, updates[0], FORMAT_V4, update=True)
    if block != f"\n[[secrets.{name}.update]]\n{_entry_lines(entry)}".encode():
        refuse(SIGNATURE_FAILURE, f"{name}: an update not in the exact layout a version-4 writer produces")
    return entry


def _read_seal(block: bytes) -> Seal:
    """A seal ("Layout", item 4): rules 2 and 5 on its lines (Refused(PARSE_ERROR)), then its
    exact bytes (else Refused(SIGNATURE_FAILURE))."""
    document = _load_toml(block)
    seals = document.get("seals")
    if set(document) != {"seals"} or not isinstance(seals, list) or len(seals) != 1:
        refuse(SIGNATURE_FAILURE, "a seal's block holds something else than one seal")
    seal = _parse_seal(seals[0])
    if block != _seal_layout(seal):
        refuse(SIGNATURE_FAILURE, "a seal not in the exact layout a version-4 writer produces")
    return seal


def _seal_layout(seal: Seal) -> bytes:
    return (f'\n[[seals]]\nbase = {seal.base}\ncounter = {seal.counter}\nsigner = "{seal.signer}"\n'
            f'signature = "{b64_encode(seal.signature)}"\nmac = "{b64_encode(seal.mac)}"\n').encode()


def section_digest(previous: bytes, signed: bytes) -> bytes:
    """ "digest_k = BLAKE2b(u32be(32) || digest_{k-1} || signed_k, no key, "sstore-section-4", 32)"."""
    assert len(previous) == 32
    return blake2b((32).to_bytes(4, "big") + previous + signed, person=b"sstore-section-4", size=32)


def _parse_v4(data: bytes, path: str) -> ScopeFile:
    """FORMAT.md "Scope file, version 4": the head and body as version 3's (rules 1 to 5, then
    the exact layout), then the sections from `base`, each update and seal checked the same way
    in file order, then the layout's own rules; Refused(SIGNATURE_FAILURE) for anything out of
    the layout. The file ends at its last complete seal (``last_seal_end``): what follows is
    ignored when it is a section cut short (``is_unsealed_tail``). The history (item 3) is
    neither read nor checked here, only its length, which the body's `history_bytes` give: a
    reader of current values "reads the body and the sections (from the last seal's `base`),
    not the history".

    "A seal anywhere after anything that is not in this layout, any other bytes after the last
    seal ..., or a file with no seal, is refused (**signature failure**)". Where the text leaves
    a choice open, the choices made: rules 2 to 5 are applied to each piece the layout delimits
    (the head and body, one update, one seal) before its bytes are compared with the layout,
    and pieces are taken in file order, so the first rule a piece breaks is reported, at the
    latest rule 6. A seal whose `base` is not where the history ends, whose `counter` is not
    larger than the seal's before it, and a name twice in one section are out of the layout
    (**signature failure**: no writer signs such a file). A deleted update without a chunk is
    a **parse error**: rule 5's "a deleted entry has ... no history". A complete seal is its
    five lines whole, whatever they hold (``_COMPLETE_SEAL``): one that holds a bad value is
    not ignored but refused by rule 5.
    """
    body_end = data.find(V4_BODY_END)
    body = data if body_end < 0 else data[:body_end]
    document = _load_toml(body)
    file = _parse_document(document, _format(document), path)
    if body != v4_layout(file):
        refuse(SIGNATURE_FAILURE, "not the exact layout a version-4 writer produces (the signature covers bytes)")
    end = None if body_end < 0 else last_seal_end(data, body_end)
    if end is None:
        refuse(SIGNATURE_FAILURE, "no seal: no writer signed the file")
    entries = {entry.name: entry for entry in file.entries}
    base = body_end
    for entry in file.entries:  # "the history is the chunks the body's entries give", in entry order
        if entry.history_bytes:
            entry.chunk_at = base
            base += entry.history_bytes
    if base >= end:
        refuse(SIGNATURE_FAILURE, "the history the entries give runs past the last seal")
    digest = blake2b(body, person=b"sstore-filebody4", size=32)  # digest_0: the head and the body
    # signed_k: "the bytes from the `signature` line of the seal before it (for the first section:
    # from `base`) to the end of its own seal's `signer` line, less its updates' chunks (each bound
    # by its update's `history_digest`, as the body's are by their entries)"
    pos, counter, seal, signed_from = base, 0, None, base
    while pos < end:  # one section: zero or more updates (each after its chunk), then one seal
        changed, chunks = {}, []
        while True:
            item = _SECTION_ITEM.search(data, pos, end)
            if item is None:
                refuse(SIGNATURE_FAILURE, "bytes before the last seal that are no section")
            block_end = _block_end(data, item.start(), end)
            block = data[item.start(): block_end]
            if item[1] is None:
                if item.start() != pos:
                    refuse(SIGNATURE_FAILURE, "bytes before a seal that no update claims")
                seal = _read_seal(block)
                break
            name = item[1].decode("ascii")
            update = _read_update(block, name)
            if item.start() - pos != update.history_bytes:  # its chunk is "exactly the history_bytes bytes before"
                refuse(SIGNATURE_FAILURE, f"{name}: the bytes before its update are not a chunk of history_bytes bytes")
            if name in changed:
                refuse(SIGNATURE_FAILURE, f"{name} appears twice in one section")
            update.chunk_at = pos
            changed[name] = update
            chunks.append((pos, item.start()))
            pos = block_end
        if seal.base != base:
            refuse(SIGNATURE_FAILURE, f"a seal's base is {seal.base}, but the sections start at {base}")
        if seal.counter <= counter:
            refuse(SIGNATURE_FAILURE, "a seal's counter is not larger than the seal's before it")
        signed_end = data.index(b"\nsignature = ", item.start(), block_end) + 1  # the end of its `signer` line
        signed, at = [], signed_from
        for chunk_start, chunk_end in chunks:
            signed.append(data[at:chunk_start])
            at = chunk_end
        signed.append(data[at:signed_end])
        digest = section_digest(digest, b"".join(signed))
        signed_from = signed_end
        counter = seal.counter
        entries.update(changed)  # "each update applied in file order: an update replaces its name's entry (or adds the name)"
        file.sections += 1
        pos = block_end
    assert seal is not None
    if not is_unsealed_tail(data[end:]):
        refuse(SIGNATURE_FAILURE, "bytes after the last seal that are not a section cut short")
    file.entries = sorted(entries.values(), key=lambda entry: entry.name.encode("utf-8"))
    # "The file's counter, signer, signature and mac are its last seal's, over its last digest"
    file.counter, file.signer, file.signature, file.mac = seal.counter, seal.signer, seal.signature, seal.mac
    file.data, file.region_start, file.digest = data, body_end, digest
    return file


# --- Reading a scope file ------------------------------------------------------------


@dataclass
class Opened:
    """A scope file this reader accepted: its values (and how to read its history)."""

    file: ScopeFile
    value_key: bytes
    values: dict[str, str]

    def history_names(self) -> list[str]:
        """The names with earlier versions, as their (signed) entries say."""
        return [entry.name for entry in self.file.entries if entry.history or entry.history_bytes]

    def history(self) -> dict[str, list[str]]:
        """Every history version's plaintext, oldest first (Refused(DECRYPT_FAILURE) if one fails;
        for version 3, Refused as ``earlier_versions`` says)."""
        return {name: earlier_versions(self, name) for name in self.history_names()}


def earlier_versions(opened: Opened, name: str) -> list[str]:
    """``name``'s earlier versions' plaintexts, oldest first, decrypted like current values (the
    same associated data as the name's current value). For a version-3 file the history region
    is checked first (``history_versions``): Refused(HISTORY_DAMAGED) when it was edited or damaged."""
    file = opened.file
    return [_decrypt(file, opened.value_key, name, old) for old in history_versions(file, name)]


def value_aad(entity: str, scope_id: str, name: str) -> bytes:
    return frame("secretstore value", "secretstore/v1", entity, scope_id, name)


def _decrypt(file: ScopeFile, value_key: bytes, name: str, version: Version) -> str:
    plaintext = aead_open(version.ciphertext, value_aad(file.entity, file.scope_id, name), version.nonce, value_key)
    if plaintext is None:
        refuse(DECRYPT_FAILURE, f"{name}: the AEAD tag does not verify")
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        refuse(DECRYPT_FAILURE, f"{name}: not UTF-8")


def check_writer(file: ScopeFile, path: str, reader: Reader) -> None:
    """FORMAT.md "Trust": rules 6 and 7 of "Reading" for a parsed scope file (no private key needed)."""
    if file.version in SIGNED_FORMATS:
        signer = parse_public_key(file.signer)
        assert signer.sign is not None
        if not signature_valid(file.signature, file.signed_input(), signer.sign):
            refuse(SIGNATURE_FAILURE, "the signature does not verify")
    check_trust(file, path, reader)


def check_trust(file: ScopeFile, path: str, reader: Reader) -> None:
    """Rule 7 (or, for a version-1 file, "Version 1"): the store, the writer, the counter."""
    if file.version == FORMAT_V1:
        _check_unsigned(reader, path)
        return
    if reader.store_id is not None and file.store != reader.store_id:
        refuse(UNTRUSTED, f"{path} is of another store")
    store_wide, scoped = writers(reader)
    tag = file.entity if file.entity == "team" else f"{file.entity}:{file.scope_id}"
    if file.signer not in store_wide and tag not in scoped.get(file.signer, set()):
        refuse(UNTRUSTED, f"{path} is signed by a writer not trusted for {tag}")
    _check_store_and_counter(reader, path, file.store, file.counter)


def read_scope_file(data: bytes, path: str, reader: Reader) -> Opened:
    """Every check of FORMAT.md "Reading", in its order, then every live value (for version 3,
    from the head and body alone: ``earlier_versions`` reads a name's history when asked)."""
    file = parse_scope_file(data, path)
    check_writer(file, path, reader)
    assert reader.secret_key is not None
    me = public_key_of(reader.secret_key)
    mine = [stanza for stanza in file.recipients if stanza.public_key.box == me.box]
    if not mine:
        refuse(NOT_A_RECIPIENT, "no stanza for this reader")
    try:
        data_key = bytes(sodium.crypto_box_seal_open(mine[0].sealed_key, me.box, reader.secret_key))
    except sodium_errors.CryptoError:
        refuse(DECRYPT_FAILURE, "the sealed data key does not open")
    if len(data_key) != 32:
        refuse(DECRYPT_FAILURE, "the sealed data key is not 32 bytes")
    mac_key = blake2b(b"", key=data_key, person=b"sstore-mackey-v1", size=32)
    if not hmac.compare_digest(blake2b(file.mac_input(), key=mac_key, size=32), file.mac):
        refuse(MAC_FAILURE, "the file MAC does not verify")
    value_key = blake2b(b"", key=data_key, person=b"sstore-value-v1\x00", size=32)
    values = {
        entry.name: _decrypt(file, value_key, entry.name, entry.current)
        for entry in file.entries if entry.current is not None
    }
    return Opened(file, value_key, values)


# --- Exec snapshots -----------------------------------------------------------------

SNAPSHOT_MAGIC = b"secretstore-snapshot/v2\n"
_HEAD_KEYS = (
    [b"format", b"entity", b"mac"],
    [b"format", b"entity", b"id", b"mac"],
    [b"format", b"entity", b"store", b"counter", b"signer", b"signature", b"mac"],
    [b"format", b"entity", b"id", b"store", b"counter", b"signer", b"signature", b"mac"],
)
_V4_HEAD_KEYS = ([b"format", b"entity", b"store"], [b"format", b"entity", b"id", b"store"])


def snapshot_name(box_public: bytes, store: str, relpath: str) -> str:
    """The snapshot's file name. FORMAT.md's "the identity's 32 raw bytes" is read as its
    X25519 public key (box_public), the key that names a reader."""
    return blake2b(box_public + b"\0" + store.encode() + b"\0" + relpath.encode(), size=16).hex()


def snapshot_head(file_bytes: bytes) -> bytes | None:
    """FORMAT.md "Exec snapshots": the file's first lines, `format` through `mac` in the order
    "Writing" gives, each `key = value`, followed by a blank line; None when the file has no such head.

    Version 4: "its lines `format` through `store` followed by the bytes of its last seal (from
    the blank line before `[[seals]]` to the end of the file)"; none when the file "does not end
    with a whole seal" (``_last_seal_bytes``)."""
    end = file_bytes.find(b"\n\n")
    if end < 0:
        return None
    head = file_bytes[: end + 1]
    try:
        head.decode("ascii")
        fields = tomllib.loads(head.decode("ascii"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    keys = [line.split(b" = ", 1)[0] for line in head[:-1].split(b"\n")]
    if list(fields) != [key.decode() for key in keys]:
        return None
    if fields["format"] == FORMAT_V4:
        seal = _last_seal_bytes(file_bytes)
        return None if keys not in _V4_HEAD_KEYS or seal is None else head + seal
    if keys not in _HEAD_KEYS:
        return None
    if fields["format"] not in (FORMAT_V1, FORMAT_V2, FORMAT_V3) or (fields["format"] != FORMAT_V1) != ("store" in fields):
        return None
    return head


def _last_seal_bytes(file_bytes: bytes) -> bytes | None:
    """A version-4 file's last seal, "from the blank line before `[[seals]]` to the end of the
    file", when the file ends with a whole one: the five lines of "Scope file, version 4", in
    order, a counter and a signer that ``check_trust`` can read; else None."""
    start = file_bytes.rfind(b"\n[[seals]]\n")
    if start < 0 or _COMPLETE_SEAL.fullmatch(file_bytes, start) is None:
        return None
    seal = file_bytes[start:]
    try:
        seals = tomllib.loads(seal.decode("ascii"))["seals"]
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError):
        return None
    fields = seals[0] if isinstance(seals, list) and len(seals) == 1 else None
    if not isinstance(fields, dict) or list(fields) != list(SEAL_FIELDS):
        return None
    if not is_counter(fields["counter"]) or not isinstance(fields["signer"], str):
        return None
    return seal


def _head_fields(head: bytes) -> dict[str, object]:
    """The fields of a head (``snapshot_head``); a version-4 head's counter and signer are its seal's."""
    fields = tomllib.loads(head.decode("ascii"))
    if fields["format"] == FORMAT_V4:
        seal = fields.pop("seals")[0]
        fields["counter"], fields["signer"] = seal["counter"], seal["signer"]
    return fields


def open_snapshot(blob: bytes, secret_key: bytes, store: str, relpath: str, file_bytes: bytes) -> dict[str, str] | None:
    """The values a snapshot holds for a file with ``file_bytes``'s head, or None (a miss)."""
    head = snapshot_head(file_bytes)
    if head is None or not blob.startswith(SNAPSHOT_MAGIC):
        return None
    nonce = blob[len(SNAPSHOT_MAGIC): len(SNAPSHOT_MAGIC) + 24]
    if len(nonce) != 24:
        return None
    key = blake2b(b"", key=secret_key, person=b"sstore-snapkey-1", size=32)
    aad = (SNAPSHOT_MAGIC + blake2b(head, person=b"sstore-snapfile1", size=32)
           + store.encode() + b"\0" + relpath.encode())
    plaintext = aead_open(blob[len(SNAPSHOT_MAGIC) + 24:], aad, nonce, key)
    if plaintext is None:
        return None
    if not plaintext:
        return {}
    try:
        items = plaintext.decode("utf-8").split("\0")
    except UnicodeDecodeError:
        return None
    if len(items) % 2:
        return None
    return dict(zip(items[0::2], items[1::2], strict=True))


@dataclass
class SnapshotHead:
    """The fields of a head that ``check_trust`` reads."""

    version: str
    store: str | None
    entity: str
    scope_id: str | None
    signer: str | None
    counter: int | None


def read_snapshot(blob: bytes, reader: Reader, store: str, relpath: str, file_bytes: bytes) -> dict[str, str] | None:
    """FORMAT.md "Exec snapshots": the values, None for a miss, or Refused when the head's
    writer is no longer trusted or a newer version was read (checked again every time, from the head)."""
    assert reader.secret_key is not None
    values = open_snapshot(blob, reader.secret_key, store, relpath, file_bytes)
    if values is None:
        return None
    head = snapshot_head(file_bytes)
    assert head is not None
    fields = _head_fields(head)
    check_trust(SnapshotHead(  # type: ignore[arg-type]  # the fields check_trust reads
        version=fields["format"], store=fields.get("store"), entity=fields["entity"], scope_id=fields.get("id"),
        signer=fields.get("signer"), counter=fields.get("counter"),
    ), relpath, reader)
    return values
