"""The local audit log: who changed or read which secrets of a store, and when. Never a value.

One log per user and store, outside the store, beside the trust state:
``<state>/audit/<hash of the store path>.log`` (0600), JSON lines. Each
record names the time, the command, the store, the scope, the names, the
identity's public key and label, and ``prev``: the BLAKE2b-256 of the
previous line's bytes, so removing or editing a line breaks the chain, which
``secretstore audit --verify`` reports. Appends take an exclusive ``flock``
on the log, so two processes never fork the chain.

The log is bounded: a line that would take the file past ``MAX_BYTES`` is
written to a new file instead. The old one is renamed to ``.log.1`` (older
generations shift up to ``GENERATIONS``, the oldest is dropped) and the new
file starts with a ``rotated`` record chained to the last line of the old
one, so the chain stays verifiable across the generations that are kept.

Every file it writes, it can read back and verify. The readers (``read``,
``verify``, ``_last_line``) refuse a file over ``limits.MAX_STATE_FILE_BYTES``
(4 MiB), so no line is longer than ``MAX_RECORD_BYTES`` (256 KiB, and never
more than a quarter of the readers' bound), and before each line the file is
rotated if that line would take it past ``MAX_BYTES`` (1 MiB), unless the file
holds a single line (rotating would gain nothing): a file is at most
``max(MAX_BYTES, 2 * MAX_RECORD_BYTES)`` bytes. A record whose names would
make its line longer (an ``exec`` of a scope of 50,000 names, an ``import``
of long ones) is still written, as one line, with ``"names_omitted": true``,
``names_count`` and ``names_digest`` (``names_digest()``: the BLAKE2b-256 of
the sorted names, each followed by a newline) in place of ``names``; a
``detail`` or ``label`` that still does not fit keeps its first
``DETAIL_KEEP`` characters and says how many more there were. Lines of up to
256 KiB (10,000 names of 20 characters) list every name, as before.

Logging never breaks a command: a log that cannot be written is skipped
(``record`` returns False), and a damaged line is reported when the log is
read or verified, never when it is appended to. Appending needs no JSON
library (``exec`` appends on every run): names, ids and keys are plain
ASCII and the few free-text fields are escaped by hand.
"""

from __future__ import annotations

import os

from secretstore import fsio
from secretstore.errors import SecretStoreError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Iterable, Iterator

MAX_BYTES = 1 << 20  # 1 MiB per generation
MAX_RECORD_BYTES = 1 << 18  # 256 KiB: the longest line written; a longer record's names are summarized
DETAIL_KEEP = 1024  # the characters of a detail or label kept when the line is still too long without names
GENERATIONS = 4  # the current file and 3 rotated ones
GENESIS = "0" * 64
ENV_AUDIT = "SECRETSTORE_AUDIT"  # "0": do not write the log


def log_path(store_root: str) -> str:
    from secretstore import crypto, paths

    digest = crypto.checksum(os.fsencode(os.path.realpath(store_root)), 16).hex()
    return os.path.join(paths.state_dir(), "audit", f"{digest}.log")


def enabled() -> bool:
    return os.environ.get(ENV_AUDIT, "").strip().lower() not in ("0", "off", "no", "false")


def _digest(line: bytes) -> str:
    from secretstore import crypto

    return crypto.checksum(line, 32).hex()


def _plain(text: str) -> bool:
    """Nothing to escape in JSON: printable ASCII (no control characters) without ``"`` or ``\\``."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def _json_string(text: str) -> str:
    if _plain(text):
        return f'"{text}"'  # names, scopes, keys
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or char in "\u2028\u2029" or 0xD800 <= ord(char) <= 0xDFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _json_list(items: list[str]) -> str:
    """A JSON array of strings. exec's line lists every name it read (10,000 in a large scope):
    names have nothing to escape, which one check of them all shows, so they are joined at once."""
    if not items:
        return "[]"
    if _plain("".join(items)):
        return '["' + '","'.join(items) + '"]'
    return "[" + ",".join(_json_string(item) for item in items) + "]"


def encode(fields: Iterable[tuple[str, object]]) -> str:
    """One JSON object on one line, keys in the given order (str, int, bool, None or lists of str)."""
    parts = []
    for key, value in fields:
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        elif value is None:
            text = "null"
        elif isinstance(value, str):
            text = _json_string(value)
        else:
            assert isinstance(value, (list, tuple))
            text = _json_list([str(item) for item in value])
        parts.append(f"{_json_string(key)}:{text}")
    return "{" + ",".join(parts) + "}"


def _last_line(fd: int) -> bytes:
    """The last complete line of the open log (without its newline), b"" when empty.

    Read from the end, twice as much each time, until the newline before the last
    line (or the file's start) is in view: one record can be far longer than a
    read (an ``import`` of many names). The search stops at the most a log file
    may hold to be read back at all (``limits.MAX_STATE_FILE_BYTES``).
    """
    from secretstore import limits

    size = os.fstat(fd).st_size
    want = 1 << 16
    while True:
        chunk = min(size, want)
        body = os.pread(fd, chunk, size - chunk).rstrip(b"\n")
        if b"\n" in body or chunk == size or chunk >= limits.MAX_STATE_FILE_BYTES:
            return body.rpartition(b"\n")[2]
        want *= 2


def record(
    store_root: str,
    command: str,
    *,
    scope: str = "",
    names: Iterable[str] = (),
    key: str = "",
    label: str = "",
    detail: str = "",
    when: str | None = None,
) -> bool:
    """Append one record; False (and nothing raised) when the log cannot be written."""
    return record_many(store_root, command, [(scope, names)], key=key, label=label, detail=detail, when=when)


def record_many(
    store_root: str,
    command: str,
    scopes: Iterable[tuple[str, Iterable[str]]],
    *,
    key: str = "",
    label: str = "",
    detail: str = "",
    when: str | None = None,
) -> bool:
    """Append one record per (scope, names), chained, under one lock (exec reads three scopes);
    False (and nothing raised) when the log cannot be written."""
    if not enabled():
        return False
    import time

    from secretstore import limits

    path = log_path(store_root)
    stamp = when or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    where = os.path.realpath(store_root)
    # what the readers read back (``fsio.read_private_file``, ``_last_line``) bounds what is written
    longest = min(MAX_RECORD_BYTES, limits.MAX_STATE_FILE_BYTES // 4)
    most = min(MAX_BYTES, limits.MAX_STATE_FILE_BYTES)
    try:
        fd = _open_locked(path)
    except (OSError, SecretStoreError):
        return False
    try:
        size = os.fstat(fd).st_size
        previous = _last_line(fd)
        pending: list[bytes] = []
        for scope, names in scopes:
            fields: list[tuple[str, object]] = [
                ("time", stamp), ("command", command), ("store", where),
                ("scope", scope), ("names", sorted(set(names))), ("key", key), ("label", label),
            ]
            if detail:
                fields.append(("detail", detail))
            body = _bounded(fields, longest)
            line = _chained(body, previous)
            # rotate before a line would take the file past ``most``; not a file of one line,
            # which this line alone (at most ``longest``) follows in a new file just as well
            if size + len(line) + 1 > most and size > len(previous) + 1:
                if pending:
                    os.write(fd, b"".join(pending))
                    pending = []
                fd = _rotate(path, fd)
                size = os.fstat(fd).st_size
                previous = _last_line(fd)
                line = _chained(body, previous)
            pending.append(line + b"\n")
            size += len(line) + 1
            previous = line
        os.write(fd, b"".join(pending))
        return True
    except OSError:
        return False
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


def names_digest(names: Iterable[str]) -> str:
    """What a summarized record holds for its names (``names_digest``): the BLAKE2b-256, in hex, of
    the distinct names sorted, each followed by a newline (UTF-8). Names hold no newline
    (``rules.check_name``), so a list of names compared with a record gives the same digest
    exactly when it is the list the record was written for."""
    return _digest("".join(name + "\n" for name in sorted(set(names))).encode("utf-8", "replace"))


def mentions(fields: dict[str, object], name: str) -> bool:
    """Whether a record may concern ``name``: it lists it, or its names were too many to list
    (``names_omitted``), so it may hold it. What ``audit --name`` and the page's filter keep."""
    names = fields.get("names")
    return (isinstance(names, list) and name in names) or fields.get("names_omitted") is True


def _chained(body: str, previous: bytes) -> bytes:
    """The line of a record: its JSON (``body``, without the closing brace) and ``prev``."""
    return (body + ',"prev":"' + (_digest(previous) if previous else GENESIS) + '"}').encode("utf-8", "replace")


def _bounded(fields: list[tuple[str, object]], longest: int) -> str:
    """The record's JSON without its closing brace, so ``prev`` can follow, short enough that the
    line (with ``prev``) is at most ``longest`` bytes: the names summarized, then the detail cut,
    when they would make it longer. An ordinary record is encoded as it always was."""
    room = longest - len(',"prev":""}') - 64
    body = encode(fields)[:-1]
    if len(body) <= room // 4 or len(body.encode("utf-8", "replace")) <= room:  # 4 bytes a character at most
        return body
    summarized: list[tuple[str, object]] = []
    for name, value in fields:
        if name == "names":
            assert isinstance(value, list)
            summarized += [("names_omitted", True), ("names_count", len(value)),
                           ("names_digest", names_digest(value))]
        else:
            summarized.append((name, value))
    body = encode(summarized)[:-1]
    if len(body.encode("utf-8", "replace")) <= room:
        return body
    return encode([
        (name, f"{value[:DETAIL_KEEP]}... ({len(value) - DETAIL_KEEP:,} more characters)")
        if name in ("detail", "label") and isinstance(value, str) and len(value) > DETAIL_KEEP else (name, value)
        for name, value in summarized
    ])[:-1]


def _open_locked(path: str) -> int:
    """The current log file, open for appending with an exclusive flock held.

    A process that waited for the lock while another rotated the log holds the
    renamed file: it opens the new one instead, so the chain never forks.
    """
    import fcntl

    fsio.ensure_dir(os.path.dirname(path))
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _rotate(path: str, fd: int) -> int:
    """Shift the generations up (``fd``, the current file, locked, becomes ``.1``) and start a new
    file chained to its last line; returns the new file's fd, locked."""
    import fcntl
    import time

    last = _last_line(fd)
    os.lseek(fd, 0, os.SEEK_SET)  # lines this process appended left the offset at the end
    with os.fdopen(os.dup(fd), "rb") as old:
        lines = sum(1 for _ in old)
    for index in range(GENERATIONS - 1, 0, -1):
        source = path if index == 1 else f"{path}.{index - 1}"
        if os.path.exists(source):
            os.replace(source, f"{path}.{index}")
    new = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    fcntl.flock(new, fcntl.LOCK_EX)
    os.close(fd)  # waiters on the old file find it renamed and reopen (``_open_locked``)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    anchor = encode([("time", stamp), ("command", "rotated"), ("lines", lines),
                     ("prev", _digest(last) if last else GENESIS)])
    os.write(new, (anchor + "\n").encode())
    return new


# --- reading -------------------------------------------------------------------------------


class Entry:
    """One line of the log as read back: its fields, or why it could not be read."""

    __slots__ = ("fields", "file", "line", "number", "problem")

    def __init__(self, file: str, number: int, line: bytes, fields: dict[str, object] | None, problem: str) -> None:
        self.file = file
        self.number = number
        self.line = line
        self.fields = fields
        self.problem = problem

    def __repr__(self) -> str:
        return f"audit.Entry({self.file}:{self.number})"


def generations(store_root: str) -> list[str]:
    """The log's files, oldest first."""
    path = log_path(store_root)
    found = [f"{path}.{index}" for index in range(GENERATIONS - 1, 0, -1) if os.path.exists(f"{path}.{index}")]
    if os.path.exists(path):
        found.append(path)
    return found


def read(store_root: str) -> Iterator[Entry]:
    """Every line of every generation, oldest first; damaged lines come with their problem."""
    import json

    from secretstore import limits

    for path in generations(store_root):
        try:
            oversize = os.stat(path).st_size > limits.MAX_STATE_FILE_BYTES
        except OSError:
            oversize = False  # gone since it was listed, or unreadable: read_private_file says which
        if oversize:
            # Written whole by a secretstore that did not yet bound its lines: reported, not read,
            # and the files after it are still read (rotation drops it in time).
            yield Entry(path, 0, b"", None,
                        f"larger than {limits.size_text(limits.MAX_STATE_FILE_BYTES)}, not read "
                        "(written before secretstore bounded the log's lines)")
            continue
        data = fsio.read_private_file(path) or b""
        for number, line in enumerate(data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n"), 1):
            if not line:
                continue
            try:
                fields = json.loads(line.decode("utf-8"))
                if not isinstance(fields, dict) or not isinstance(fields.get("prev"), str):
                    raise ValueError
            except (ValueError, UnicodeDecodeError):
                yield Entry(path, number, line, None, "not a log record (damaged)")
                continue
            yield Entry(path, number, line, fields, "")


def verify(store_root: str) -> list[str]:
    """Every break of the chain, one message each; [] when the log is intact.

    The first line of the oldest generation kept starts the chain (its ``prev``
    cannot be checked once older generations were dropped).
    """
    problems: list[str] = []
    previous: bytes | None = None
    for entry in read(store_root):
        where = f"{entry.file}:{entry.number}"
        if entry.fields is None:
            problems.append(f"{where}: {entry.problem}")
        elif previous is not None:
            expected = _digest(previous)
            if entry.fields.get("prev") != expected:
                problems.append(f"{where}: does not follow the line before it (a line was removed or edited)")
        elif entry.fields.get("command") != "rotated" and entry.fields.get("prev") != GENESIS:
            problems.append(f"{where}: the log's first line follows a line that is gone (lines were removed)")
        previous = entry.line or None  # a file not read (too large) has no last line to follow
    return problems


def since_bound(text: str, now: float | None = None) -> str | None:
    """What ``audit --since WHEN`` keeps entries from, as text that compares with a record's
    ``time`` (``2026-12-01T09:30:00Z``); None when ``text`` is not a WHEN.

    A WHEN is a UTC date or time that exists (``2026-12-01``, ``2026-12-01T09``,
    ``2026-12-01T09:00``, ``2026-12-01T09:00:00Z``: what is not given counts as 0), a
    duration back from ``now`` as ``docker logs --since`` takes one (``90s``, ``30m``,
    ``2h``, ``7d``, ``2w``, or several, as ``1h30m``), or ``today`` or ``yesterday``
    (from 00:00 UTC).
    """
    import re
    import time
    from datetime import (  # not at the top: exec appends, and never needs datetime
        UTC,
        datetime,
        timedelta,
    )

    stamp = "%Y-%m-%dT%H:%M:%SZ"  # the records' own format
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC).replace(microsecond=0)
    word = text.strip().lower()
    if word in ("today", "yesterday"):
        midnight = moment.replace(hour=0, minute=0, second=0)
        return (midnight - timedelta(days=1 if word == "yesterday" else 0)).strftime(stamp)
    if re.fullmatch(r"(?:[0-9]{1,6}[smhdw])+", word):
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
        back = sum(int(count) * seconds[unit] for count, unit in re.findall(r"([0-9]+)([smhdw])", word))
        try:
            return (moment - timedelta(seconds=back)).strftime(stamp)
        except OverflowError:  # before year 1: every entry
            return ""
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}(:[0-9]{2}(:[0-9]{2}Z?)?)?)?", text) is None:
        return None
    bare = text.rstrip("Z")
    try:
        datetime.strptime(bare + "T00:00:00"[len(bare) - 10 :], "%Y-%m-%dT%H:%M:%S")  # the parts not given: 0
    except ValueError:
        return None
    return bare  # a prefix of the records' own format: compares as the time it names
