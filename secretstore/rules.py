"""What a valid entity, scope id, secret name and secret value are.

Names become environment variables, so they follow the rule Paperspace's
newer CLI uses: ``^[A-Za-z][A-Za-z0-9_]*$``. Ids become file names.
Written without ``re`` to keep the exec fast path's imports small.
"""

from __future__ import annotations

from secretstore.errors import UsageError

ENTITIES = ("team", "project", "cluster")
MAX_NAME_LENGTH = 255
MAX_ID_LENGTH = 128
MAX_VALUE_BYTES = 64 * 1024
MAX_LABEL_LENGTH = 100

def is_valid_name(name: str) -> bool:
    return (
        0 < len(name) <= MAX_NAME_LENGTH
        and name.isascii()
        and name[0].isalpha()
        and name.replace("_", "").isalnum()  # ASCII only (above), so [A-Za-z0-9]; one C call, not one per char
    )


def check_name(name: str) -> str:
    if not name:
        raise UsageError("secret name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise UsageError(f"secret name is {len(name)} characters; the limit is {MAX_NAME_LENGTH}")
    if not is_valid_name(name):
        raise UsageError(
            f"invalid secret name {name!r}: use a letter, then letters, digits or '_'",
            hint="names become environment variables, so they follow ^[A-Za-z][A-Za-z0-9_]*$",
        )
    return name


def is_valid_id(scope_id: str) -> bool:
    return (
        0 < len(scope_id) <= MAX_ID_LENGTH
        and scope_id.isascii()
        and scope_id[0].isalnum()
        and ".." not in scope_id
        and scope_id.replace(".", "").replace("_", "").replace("-", "").isalnum()
    )


def check_id(scope_id: str, entity: str) -> str:
    if not is_valid_id(scope_id):
        raise UsageError(
            f"invalid {entity} id {scope_id!r}: use letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit, no '..', at most {MAX_ID_LENGTH} characters"
        )
    return scope_id


def is_valid_label(label: str) -> bool:
    """A recipient's label: one line of printable text (no control or bidi characters
    that could rewrite what ``recipients list`` or ``doctor`` shows on a terminal)."""
    return len(label) <= MAX_LABEL_LENGTH and label.isprintable()


def check_entity(entity: str) -> str:
    """ENTITY, or a usage error that does not repeat the word: ``set --name X VALUE`` (ENTITY
    left out) puts the value in ENTITY's place. A near miss (``tema``) is named by what it
    resembles, never echoed."""
    if entity not in ENTITIES:
        from difflib import get_close_matches

        close = get_close_matches(entity.lower(), ENTITIES, n=1)
        raise UsageError(
            "unknown entity: ENTITY is team, project or cluster (what was given is not shown: it may be a value)",
            hint=f"did you mean {close[0]}?" if close else None,
        )
    return entity


def check_scope(entity: str, scope_id: str | None) -> tuple[str, str | None]:
    """Validate an (entity, id) pair the way Gradient's CLI does: id required unless team."""
    check_entity(entity)
    if entity == "team":
        if scope_id:
            raise UsageError("team secrets take no --id", hint="drop --id, or use project or cluster")
        return entity, None
    if not scope_id:
        raise UsageError(f"{entity} secrets need --id", hint=f"name the {entity} with --id ID; 'secretstore scopes' lists the ids this store has")
    return entity, check_id(scope_id, entity)


def check_value(value: str) -> str:
    if not value:
        raise UsageError("secret value is empty")
    if "\x00" in value:
        raise UsageError("secret value contains a NUL byte, which no environment variable can hold")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise UsageError("secret value is not valid UTF-8") from None
    if size > MAX_VALUE_BYTES:
        raise UsageError(f"secret value is {size} bytes; the limit is {MAX_VALUE_BYTES} (64 KiB)")
    return value


def strip_one_newline(text: str) -> str:
    """Drop exactly one trailing newline (``\\n`` or ``\\r\\n``), as ``pass insert`` and ``$(...)`` users expect."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text
