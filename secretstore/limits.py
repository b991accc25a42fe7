"""How large, and what shape, a store file may be: checked before any TOML parser sees it.

tomllib is quadratic in the number of dotted parts of a key under a dotted
table header (issue 10: a 400 KB file of such keys kept every reader busy
for minutes), and linear but slow everywhere else; a file in the store is
written by whoever can commit to it. So a reader first refuses what no
writer makes (FORMAT.md, "Reading: what a reader MUST reject", rule 0), each
in one linear pass:

* a file larger than its cap (read at most cap + 1 bytes: ``fsio``);
* more lines than one per ``BYTES_PER_LINE`` bytes (plus ``SHORT_FILE_LINES``),
  or a line longer than ``MAX_LINE_BYTES``;
* in a scope file, a value that is an array or an inline table: they cost
  tomllib the most per byte, and a writer makes arrays of tables only as
  ``[[...]]`` headers;
* a table header line longer than ``MAX_HEADER_LINE_BYTES``, or a table
  header of more than ``MAX_HEADER_PARTS`` dotted parts;
* a dotted key on a key/value line (``a.b = 1``): no secretstore document
  has one, and tomllib's cost grows with the product of its parts and the
  table header's;
* a key part longer than ``MAX_KEY_PART_BYTES``.

Where arrays are allowed (recipients.toml), nesting deeper than the parser's
recursion limit is refused by ``scopefile.load_toml`` (the parse stops there).

The caps, derived from what a writer produces:

* A value is at most 64 KiB (``rules.MAX_VALUE_BYTES``); its ciphertext with
  the 16-byte tag is 4 * ceil(65552 / 3) = 87,404 base64 characters, so the
  longest line a writer makes (``ciphertext = "..."``) is 87,419 bytes:
  ``MAX_LINE_BYTES`` is 96 KiB.
* A version (current or previous) of a short value takes about 310 bytes
  with its writer's key (measured: 10,000 names of 40-character values with
  10 versions each make a 30.8 MB file), one of the 64 KiB maximum about
  87.6 KB. A scope file keeps up to 10 previous versions per name: 10,000
  names of short values with full history (11 versions) are about 34 MB.
  ``MAX_SCOPE_FILE_BYTES`` is 64 MiB: 1.9 times that, or 766 versions at the
  maximum size. A writer never makes a larger file (``envelope.seal`` drops
  the oldest earlier versions first, or refuses the write), so a reader's
  cap never locks a store's own users out.
* Writers' lines average at least 21 bytes (a deleted one-letter name with
  one short previous version: 197 bytes in 9 lines): a file may have one
  line per 16 bytes, plus 1,024 for short hand-edited files, so tomllib's
  cost per byte stays that of ordinary lines.
* A recipients.toml line is at most about 300 bytes (a 56-character key and
  a 100-character label, escaped): ``MAX_RECIPIENTS_FILE_BYTES`` is 256 KiB,
  over 850 recipients at the longest labels (every scope file carries a
  sealed key for each).
* ``.secretstore.toml`` holds two ids: 64 KiB.
* The deepest table a writer makes is ``[[secrets.NAME.history]]``: 3 parts
  (``MAX_HEADER_PARTS`` is 4), its longest part a 255-character name
  (``MAX_KEY_PART_BYTES`` is 256), its line about 280 bytes
  (``MAX_HEADER_LINE_BYTES`` is 512).
"""

from __future__ import annotations

import functools
import re

from secretstore.errors import StoreFormatError

MAX_SCOPE_FILE_BYTES = 64 * 1024 * 1024
MAX_RECIPIENTS_FILE_BYTES = 256 * 1024
SIGNER_BYTES = 1 << 16  # a file's signer and its stanza's label are found in its first 64 KiB
MAX_DOTFILE_BYTES = 64 * 1024
# a reader's own trust state and audit log generations (trust.py, audit.py): a roster cache of
# thousands of members, or a 1 MiB log generation, with room to spare
MAX_STATE_FILE_BYTES = 4 * 1024 * 1024
MAX_LINE_BYTES = 96 * 1024
BYTES_PER_LINE = 16
SHORT_FILE_LINES = 1024
MAX_LINES = MAX_SCOPE_FILE_BYTES // BYTES_PER_LINE + SHORT_FILE_LINES
MAX_HEADER_LINE_BYTES = 512
MAX_HEADER_PARTS = 4
MAX_KEY_PART_BYTES = 256


@functools.cache
def _bad_line(arrays: bool) -> re.Pattern[bytes]:
    """A line no writer makes: compiled on first use (exec's fast path never needs it).

    A key part is bare, "basic" or 'literal', exactly as TOML's grammar has it;
    a short one is at most ``MAX_KEY_PART_BYTES`` long. Possessive repeats keep
    the engine from backtracking, so each line costs a few steps. Anchored on
    the newline before each line (a literal first byte, which the engine finds
    with a fast search), so the first line is checked apart. Unless
    ``arrays``, a key/value line whose value is an array or an inline table
    is refused too.
    """
    n = MAX_KEY_PART_BYTES
    short = (rb"(?:[A-Za-z0-9_-]{1,%d}+(?![A-Za-z0-9_-])"
             rb"|\"(?:[^\"\\\n]|\\.){0,%d}+\"|'[^'\n]{0,%d}+')" % (n, n, n))
    long = rb"(?:[A-Za-z0-9_-]{%d}|\"(?:[^\"\\\n]|\\.){%d}|'[^'\n]{%d})" % (n + 1, n + 1, n + 1)
    dot = rb"[ \t]*\.[ \t]*"
    # The lookahead lets the commonest lines (``name = "..."`` and a short
    # ``[secrets.NAME]``, at most 4 * 120 + 7 bytes) through in one step.
    gate = rb"(?![A-Za-z0-9_-]{1,%d}+[ \t]*=%s|\[\[?(?:[A-Za-z0-9_-]{1,120}+\.){0,%d}+[A-Za-z0-9_-]{1,120}+\]\]?\r?\n)" % (
        n, rb"" if arrays else rb"[ \t]*+[^\[{]", MAX_HEADER_PARTS - 1)
    value = rb"" if arrays else rb"|%s[ \t]*=[ \t]*+(?P<value>)[\[{]" % short
    return re.compile(
        rb"\n%s[ \t]*(?:(?P<header>\[[^\n]{%d})"
        rb"|\[\[?[ \t]*(?:%s%s){0,%d}+(?:(?P<long>%s)|%s%s(?P<deep>))"
        rb"|(?P<long_key>%s)|%s%s(?P<dotted>)%s)"
        % (gate, MAX_HEADER_LINE_BYTES, short, dot, MAX_HEADER_PARTS - 1, long, short, dot,
           long, short, dot, value)
    )


def size_text(count: int) -> str:
    """``64 MiB``, ``96 KiB``, or bytes."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


def too_large(where: str, max_bytes: int) -> StoreFormatError:
    return StoreFormatError(
        f"{where} is larger than {size_text(max_bytes)}, the most this file may be; refusing to read it",
        hint="a secretstore never writes a file this large: look at who changed it (git log)",
    )


def check_size(data: bytes, where: str, max_bytes: int) -> None:
    """Refuse ``data`` longer than ``max_bytes`` (read at most ``max_bytes + 1`` to call this)."""
    if len(data) > max_bytes:
        raise too_large(where, max_bytes)


def check_store_file_shape(
    data: bytes, where: str, max_bytes: int = MAX_SCOPE_FILE_BYTES, *, arrays: bool = False
) -> None:
    """Refuse ``data`` (a store file's bytes) when it is larger or shaped unlike anything a writer makes.

    ``arrays``: values may be arrays and inline tables (recipients.toml,
    ``.secretstore.toml``, whose caps are small); a scope file has none.
    Linear in ``len(data)``: a refusal takes a fraction of a second even at the cap.
    Raises ``StoreFormatError`` naming ``where``, the line and the rule; never the content.
    """
    check_size(data, where, max_bytes)
    lines = data.count(b"\n") + 1
    if lines > len(data) // BYTES_PER_LINE + SHORT_FILE_LINES:
        raise _refuse(where, None, f"{lines:,} lines in {len(data):,} bytes (more than one per {BYTES_PER_LINE} bytes)")
    long_line = _find_long_line(data, MAX_LINE_BYTES)
    if long_line is not None:
        raise _refuse(where, long_line, f"a line longer than {size_text(MAX_LINE_BYTES)}")
    first_end = data.find(b"\n")
    first = data if first_end < 0 else data[:first_end]
    bad_line = _bad_line(arrays)
    found = bad_line.match(b"\n" + first)
    offset = -1
    if found is None:
        found = bad_line.search(data)
        offset = 0
    if found is None:
        return
    line = data.count(b"\n", 0, found.start() + offset + 1) + 1
    if found.lastgroup == "header":
        raise _refuse(where, line, f"a table header line longer than {MAX_HEADER_LINE_BYTES} bytes")
    if found.lastgroup == "deep":
        raise _refuse(where, line, f"a table header of more than {MAX_HEADER_PARTS} dotted parts")
    if found.lastgroup == "dotted":
        raise _refuse(where, line, "a dotted key (a.b = ...)")
    if found.lastgroup == "value":
        raise _refuse(where, line, "an array or inline table value")
    raise _refuse(where, line, f"a key part longer than {MAX_KEY_PART_BYTES} bytes")


def _find_long_line(data: bytes, limit: int) -> int | None:
    """The 1-based number of a line longer than ``limit`` bytes, or None.

    A line of more than ``limit`` bytes contains a whole aligned block of
    (limit + 1) // 2 bytes without a newline, so only such blocks (at most
    2 * len / limit of them) are looked at closely: C-speed ``find`` calls.
    """
    block = (limit + 1) // 2
    for start in range(0, len(data), block):
        if data.find(b"\n", start, start + block) >= 0:
            continue
        line_start = data.rfind(b"\n", 0, start) + 1
        end = data.find(b"\n", start)
        if (len(data) if end < 0 else end) - line_start > limit:
            return data.count(b"\n", 0, line_start) + 1
    return None


def _refuse(where: str, line: int | None, what: str) -> StoreFormatError:
    at = f"{where}, line {line}" if line is not None else where
    return StoreFormatError(
        f"{at}: {what}, which no secretstore writes; refusing to parse it",
        hint="see FORMAT.md, \"Reading: what a reader MUST reject\"; look at who changed the file (git log)",
    )
