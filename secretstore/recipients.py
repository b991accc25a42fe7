"""The store-wide recipients list, ``recipients.toml`` in the store directory.

It names who every *new* scope file is sealed to (besides the writer), and
who ``recipients add|remove`` without a scope option changes. It is plain,
unauthenticated TOML on purpose: a team sharing the store in git reviews it
like any other file. Anyone who can commit to the store can change who future
scopes are sealed to (as with pass's ``.gpg-id`` or sops's ``.sops.yaml``)::

    # secretstore recipients: new scope files are sealed to these keys
    format = "secretstore-recipients/v1"

    [[recipients]]
    public_key = "ssk1..."
    label = "alice"

Entries are sorted by public key, so the file is deterministic and two
people adding different keys touch different lines.
"""

from __future__ import annotations

from secretstore import fsio
from secretstore.errors import StoreFormatError, UnsupportedVersionError, UsageError
from secretstore.identity import Recipient
from secretstore.limits import MAX_RECIPIENTS_FILE_BYTES
from secretstore.rules import MAX_LABEL_LENGTH, is_valid_label

FILENAME = "recipients.toml"
FORMAT = "secretstore-recipients/v1"
_FAMILY = "secretstore-recipients/"
_HEADER = "# secretstore recipients: new scope files are sealed to these keys (and the writer)\n"


def check_label(label: str) -> str:
    if not is_valid_label(label):
        raise UsageError(
            f"invalid label: use at most {MAX_LABEL_LENGTH} printable characters on one line"
        )
    return label


def parse(data: bytes, where: str) -> list[Recipient]:
    from secretstore.scopefile import load_toml

    document = load_toml(data, where, MAX_RECIPIENTS_FILE_BYTES, arrays=True)
    found = document.get("format")
    if found != FORMAT:
        if isinstance(found, str) and found.startswith(_FAMILY):
            raise UnsupportedVersionError(
                f"{where}: format {found!r} is not supported (this secretstore reads {FORMAT})",
                hint="a newer version of secretstore may have written it; upgrade secretstore",
            )
        raise StoreFormatError(f'{where}: not a recipients file (no format = "{FORMAT}" line)')
    unknown = sorted(set(document) - {"format", "recipients"})
    if unknown:
        raise StoreFormatError(f"{where}: unknown field {unknown[0]!r}")
    raw = document.get("recipients", [])
    if not isinstance(raw, list):
        raise StoreFormatError(f"{where}: recipients must be an array of tables")
    result: list[Recipient] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) - {"public_key", "label"}:
            raise StoreFormatError(f"{where}: each recipient has public_key and an optional label")
        key, label = item.get("public_key"), item.get("label", "")
        if not isinstance(key, str) or not isinstance(label, str):
            raise StoreFormatError(f"{where}: public_key and label must be strings")
        try:
            recipient = Recipient.parse(key, check_label(label))
        except UsageError as exc:
            raise StoreFormatError(f"{where}: {exc.message}") from None
        if recipient in result:
            raise StoreFormatError(f"{where}: {recipient.text} is listed twice")
        result.append(recipient)
    return result


def serialize(recipients: list[Recipient]) -> bytes:
    import tomli_w

    items = []
    for recipient in sorted(recipients, key=lambda r: r.text):
        item = {"public_key": recipient.text}
        if recipient.label:
            item["label"] = recipient.label
        items.append(item)
    return (_HEADER + tomli_w.dumps({"format": FORMAT, "recipients": items})).encode("utf-8")


def save(path: str, recipients: list[Recipient]) -> None:
    fsio.atomic_write(path, serialize(recipients))
