"""The store's roster, ``recipients.toml``: who reads this store and whose writes it holds.

Version 2 (``secretstore-recipients/v2``) is signed by its writer and carries,
per member:

- ``public_key`` and an optional ``label``;
- ``scopes``: absent for a store-wide member (every new scope file is sealed
  to it, and it may write every scope), or the scopes it was added to alone
  (``project:prj42``, ``cluster:gpu-a``, ``team``), which it may write;
- ``added_by`` and ``endorsement``: the Ed25519 signature of whoever added
  the member, over the store id, the key, the label and the scopes. A reader
  trusts a member whose endorsement chains back to a key the reader trusts
  (``trust.py``), so a member's trust does not depend on who wrote the file
  last, and a cluster node that trusts one owner (``SECRETSTORE_TRUST``)
  can follow the chain without any local state.

``revoked`` lists keys removed store-wide: never trusted again through this
store until re-added. Version 1 (0.1's, unsigned) is parsed only for
``secretstore upgrade`` to show and sign; every other use refuses it.

Entries are sorted by public key, so the file is deterministic and two
people adding different keys touch different blocks.
"""

from __future__ import annotations

from secretstore import fsio
from secretstore.errors import StoreFormatError, TamperedError, UnsupportedVersionError, UsageError
from secretstore.keys import PUBLIC_PREFIX, PublicKey
from secretstore.limits import MAX_RECIPIENTS_FILE_BYTES, SIGNER_BYTES
from secretstore.records import Record
from secretstore.rules import MAX_LABEL_LENGTH, is_valid_id, is_valid_label

FILENAME = "recipients.toml"
FORMAT_V1 = "secretstore-recipients/v1"
FORMAT = "secretstore-recipients/v2"
_FAMILY = "secretstore-recipients/"
_HEADER = "# secretstore recipients: who reads and writes this store (see FORMAT.md)\n"
MAX_HISTORY = 100

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.keys import Identity


def check_label(label: str) -> str:
    if not is_valid_label(label):
        raise UsageError(
            f"invalid label: use at most {MAX_LABEL_LENGTH} printable characters on one line"
        )
    return label


def scope_tag(entity: str, scope_id: str | None) -> str:
    """How a roster names a scope: ``team``, ``project:ID``, ``cluster:ID``."""
    return entity if scope_id is None else f"{entity}:{scope_id}"


def is_valid_scope_tag(tag: str) -> bool:
    entity, sep, scope_id = tag.partition(":")
    if entity == "team":
        return not sep
    return entity in ("project", "cluster") and bool(sep) and is_valid_id(scope_id)


def describe_tag(tag: str) -> str:
    """``project prj42`` for ``project:prj42``, as messages name scopes."""
    return tag.replace(":", " ", 1)


class Member(Record):
    """One roster entry. ``scopes`` empty: store-wide."""

    __slots__ = ("public_key", "label", "scopes", "added_by", "endorsement")
    public_key: str
    label: str
    scopes: tuple[str, ...]
    added_by: str
    endorsement: bytes

    def __init__(
        self,
        public_key: str,
        label: str = "",
        scopes: tuple[str, ...] = (),
        added_by: str = "",
        endorsement: bytes = b"",
    ) -> None:
        self.public_key = public_key
        self.label = label
        self.scopes = scopes
        self.added_by = added_by
        self.endorsement = endorsement

    @property
    def store_wide(self) -> bool:
        return not self.scopes

    @property
    def key(self) -> PublicKey:
        return PublicKey.decode(self.public_key, self.label)

    def covers(self, tag: str) -> bool:
        """Whether this member may write the scope ``tag``."""
        return self.store_wide or tag in self.scopes


class Roster:
    """A parsed ``recipients.toml``; ``version`` FORMAT_V1 has no store id, counter or signature."""

    __slots__ = ("counter", "history", "members", "revoked", "signature", "signer", "store_id", "version")

    def __init__(
        self,
        members: list[Member] | None = None,
        *,
        version: str = FORMAT,
        store_id: str = "",
        counter: int = 0,
        signer: str = "",
        signature: bytes = b"",
        revoked: tuple[str, ...] = (),
        history: int | None = None,
    ) -> None:
        self.members: list[Member] = [] if members is None else members
        self.version = version
        self.store_id = store_id
        self.counter = counter
        self.signer = signer
        self.signature = signature
        self.revoked = revoked
        self.history = history

    def __repr__(self) -> str:
        return f"Roster({self.version}, {len(self.members)} members)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Roster) and all(
            getattr(self, name) == getattr(other, name) for name in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def signed(self) -> bool:
        return self.version == FORMAT

    def recipients(self) -> list[PublicKey]:
        """The store-wide members: who every new scope file is sealed to (besides the writer)."""
        return [member.key for member in self.members if member.store_wide]

    def find(self, key: PublicKey) -> Member | None:
        """The member with ``key``'s reading key (an ``ssk1`` entry matches its ``ssk2`` key too)."""
        for member in self.members:
            if member.key == key:
                return member
        return None


# --- canonical encodings ------------------------------------------------------


def _frame(*parts: bytes) -> bytes:
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def endorsement_input(store_id: str, member: Member) -> bytes:
    """What ``added_by`` signs for a member: the store, the key, the label and the scopes."""
    parts = [b"secretstore endorsement", store_id.encode(), member.public_key.encode(), member.label.encode()]
    parts.append(str(len(member.scopes)).encode())
    parts += [tag.encode() for tag in member.scopes]
    return _frame(*parts)


def signed_input(roster: Roster) -> bytes:
    """Every field but ``signature``, framed, after a domain label."""
    parts = [
        b"secretstore signature", FORMAT.encode(), b"secretstore recipients", roster.store_id.encode(),
        str(roster.counter).encode(), roster.signer.encode(),
        b"" if roster.history is None else str(roster.history).encode(),
        str(len(roster.revoked)).encode(), *(key.encode() for key in roster.revoked),
        str(len(roster.members)).encode(),
    ]
    for member in roster.members:
        parts += [member.public_key.encode(), member.label.encode(), str(len(member.scopes)).encode()]
        parts += [tag.encode() for tag in member.scopes]
        parts += [member.added_by.encode(), member.endorsement]
    return _frame(*parts)


def endorse(member: Member, writer: Identity, store_id: str) -> Member:
    """``member`` as added by ``writer``: its endorsement signed now."""
    added = Member(member.public_key, member.label, member.scopes, writer.public_text)
    added.endorsement = writer.sign(endorsement_input(store_id, added))
    return added


def endorsement_valid(member: Member, store_id: str) -> bool:
    """Whether ``member.added_by`` really endorsed this entry for this store."""
    if not member.added_by.startswith(PUBLIC_PREFIX):
        return False
    try:
        adder = PublicKey.decode(member.added_by)
    except ValueError:
        return False
    return adder.verify(member.endorsement, endorsement_input(store_id, member))


def signer_of(data: bytes) -> tuple[str, str] | None:
    """(signer key, its label in the file) of a signed roster, else None. Nothing is checked."""
    import re

    text = data[:SIGNER_BYTES].decode("utf-8", "ignore")
    if f'\nformat = "{FORMAT}"\n' not in text[:200]:
        return None
    found = re.search(r'\nsigner = "(ssk2[A-Za-z0-9_-]+)"\n', text)
    if found is None:
        return None
    label = re.search(rf'\npublic_key = "{found[1]}"\nlabel = "([^"\\\x00-\x1f]*)"\n', text)
    return found[1], label[1] if label else ""


def check_signature(roster: Roster, where: str) -> None:
    signer = PublicKey.decode(roster.signer)
    if not signer.verify(roster.signature, signed_input(roster)):
        raise TamperedError(f"{where}: the signature does not match the file (edited after it was signed, or forged)")


# --- reading -------------------------------------------------------------------


def parse(data: bytes, where: str) -> Roster:
    from secretstore import scopefile
    from secretstore.keys import is_valid_public_text

    if data.startswith(scopefile.UNMERGED_MARKER):
        raise scopefile.unmerged_error(data, where)
    document = scopefile.load_toml(data, where, MAX_RECIPIENTS_FILE_BYTES, arrays=True)
    found = document.get("format")
    if found not in (FORMAT, FORMAT_V1):
        if isinstance(found, str) and found.startswith(_FAMILY):
            raise UnsupportedVersionError(
                f"{where}: format {found!r} is not supported (this secretstore reads {FORMAT_V1} and {FORMAT})",
                hint="a newer version of secretstore may have written it; upgrade secretstore",
            )
        raise StoreFormatError(f'{where}: not a recipients file (no format = "{FORMAT}" line)')
    v2 = found == FORMAT
    allowed = {"format", "recipients"}
    if v2:
        allowed |= {"store", "counter", "signer", "signature", "revoked", "history"}
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise StoreFormatError(f"{where}: unknown field {unknown[0]!r}")
    roster = Roster(version=FORMAT if v2 else FORMAT_V1)
    if v2:
        roster.store_id = scopefile.parse_store_id(document.get("store"), where)
        roster.counter = scopefile.parse_counter(document.get("counter"), where)
        roster.signer = scopefile.parse_signer(document.get("signer"), where)
        roster.signature = scopefile.parse_signature(document.get("signature"), where)
        history = document.get("history")
        if history is not None and (type(history) is not int or not 0 <= history <= MAX_HISTORY):
            raise StoreFormatError(f"{where}: history must be a whole number from 0 to {MAX_HISTORY}")
        roster.history = history
        revoked = document.get("revoked", [])
        if not isinstance(revoked, list) or not all(
            isinstance(key, str) and is_valid_public_text(key) for key in revoked
        ):
            raise StoreFormatError(f"{where}: revoked must be an array of public keys")
        roster.revoked = tuple(revoked)
    raw = document.get("recipients", [])
    if not isinstance(raw, list):
        raise StoreFormatError(f"{where}: recipients must be an array of tables")
    member_keys = {"public_key", "label", "scopes", "added_by", "endorsement"} if v2 else {"public_key", "label"}
    for item in raw:
        if not isinstance(item, dict) or set(item) - member_keys:
            raise StoreFormatError(
                f"{where}: each recipient has public_key and an optional label"
                + (", scopes, added_by and endorsement" if v2 else "")
            )
        member = _parse_member(item, v2, where)
        if any(other.key == member.key for other in roster.members):
            raise StoreFormatError(f"{where}: {member.public_key} is listed twice")
        roster.members.append(member)
    if v2 and [m.public_key for m in roster.members] != sorted(m.public_key for m in roster.members):
        raise StoreFormatError(f"{where}: recipients must be sorted by public_key")
    if v2 and {m.key.box_key for m in roster.members} & {PublicKey.decode(k).box_key for k in roster.revoked}:
        raise StoreFormatError(f"{where}: a key is both a recipient and revoked")
    return roster


def _parse_member(item: dict[str, object], v2: bool, where: str) -> Member:
    from secretstore import scopefile

    key, label = item.get("public_key"), item.get("label", "")
    if not isinstance(key, str) or not isinstance(label, str):
        raise StoreFormatError(f"{where}: public_key and label must be strings")
    try:
        PublicKey.parse(key)
        if key != key.strip():
            raise UsageError("invalid public key: surrounding space")
        check_label(label)
    except UsageError as exc:
        raise StoreFormatError(f"{where}: {exc.message}") from None
    if not v2:
        return Member(key, label)
    scopes = item.get("scopes", [])
    if (
        not isinstance(scopes, list)
        or ("scopes" in item and not scopes)
        or not all(isinstance(tag, str) and is_valid_scope_tag(tag) for tag in scopes)
        or len(set(scopes)) != len(scopes)
        or scopes != sorted(scopes)
    ):
        raise StoreFormatError(
            f"{where}: scopes must be a non-empty sorted array of team, project:ID or cluster:ID"
        )
    added_by = scopefile.parse_signer(item.get("added_by"), where)
    endorsement = scopefile.parse_signature(item.get("endorsement"), where)
    return Member(key, label, tuple(scopes), added_by, endorsement)


# --- writing -------------------------------------------------------------------


def serialize(roster: Roster) -> bytes:
    """Format 2, members sorted by public key; the caller signed it (``sign``)."""
    import binascii

    import tomli_w

    def b64(data: bytes) -> str:
        return binascii.b2a_base64(data, newline=False).decode("ascii")

    document: dict[str, object] = {
        "format": FORMAT,
        "store": roster.store_id,
        "counter": roster.counter,
        "signer": roster.signer,
        "signature": b64(roster.signature),
    }
    if roster.history is not None:
        document["history"] = roster.history
    if roster.revoked:
        document["revoked"] = list(roster.revoked)
    items = []
    for member in roster.members:
        item: dict[str, object] = {"public_key": member.public_key}
        if member.label:
            item["label"] = member.label
        if member.scopes:
            item["scopes"] = list(member.scopes)
        item["added_by"] = member.added_by
        item["endorsement"] = b64(member.endorsement)
        items.append(item)
    document["recipients"] = items
    return (_HEADER + tomli_w.dumps(document)).encode("utf-8")


def sign(roster: Roster, writer: Identity, *, store_id: str, counter: int) -> bytes:
    """Sort, sign as ``writer`` and serialise (format 2)."""
    roster.members.sort(key=lambda member: member.public_key)
    roster.revoked = tuple(sorted(set(roster.revoked)))
    roster.version = FORMAT
    roster.store_id = store_id
    roster.counter = counter
    roster.signer = writer.public_text
    roster.signature = writer.sign(signed_input(roster))
    return serialize(roster)


def save(path: str, data: bytes) -> None:
    fsio.atomic_write(path, data)
