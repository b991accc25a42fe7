"""Replace secret values in a byte stream with ``[MASKED]``, however it is cut.

Pure: no OS calls, no I/O; :class:`Masker` takes bytes and returns bytes.
``re``, ``bisect`` and ``collections`` are imported when a masker with values
is built (``exec --mask`` only).
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

#: Values whose UTF-8 encoding is shorter than this are not masked: masking
#: "abc" or "1" everywhere would mangle ordinary output.
MIN_MASKED_LENGTH = 4
DEFAULT_MARKER = b"[MASKED]"

# Deeper than this, the trie-shaped regex (see _build_regex) falls back to a
# flat longest-first alternation, so pathological value sets (such as "aaaa",
# "aaaaa", "aaaaaa"...) cannot exhaust the recursion limit of re's parser.
_MAX_REGEX_NESTING = 32
# Only the first _PREFIX_LEN bytes of each value go into the tables (see
# _MaskTables); a longer value is then confirmed by comparing the whole of it
# with the stream. This bounds the tables by (number of values x _PREFIX_LEN)
# whatever the values' sizes (they may be 64 KiB each). Values up to this
# length, the usual tokens and passwords, are matched as before.
_PREFIX_LEN = 64
# The regex that finds where values may start spells out at most this many
# trie nodes (see _prefix_length): building and compiling it then takes
# milliseconds, not the ~0.5 s a trie over 10,000 whole heads did.
_REGEX_NODES = 4096


class _MaskTables:
    """What all maskers for one set of values share (built once, read only).

    Built over the *heads* of the values, their first :data:`_PREFIX_LEN`
    bytes, so that their size is bounded by the number of values, not by the
    values' total size. A value no longer than that is its own head (a
    *short* value); a *long* value is found by its head, then confirmed by
    comparing the whole value with the stream (``long_values``). Nothing here
    holds a Python object per byte of the heads: the tables are the heads
    themselves, a few containers of them and one small regex.

    * ``heads``: the distinct heads, sorted. All heads that begin with a given
      byte string are contiguous there, so one ``bisect`` tells whether a
      suffix of the stream is a proper prefix of some head, which the stream
      must then hold back (see :meth:`partial`).
    * ``regex``: a trie-shaped alternation of the heads' first few bytes (all
      the same number, at most the shortest head), to find in C the positions
      where a value may start (see :func:`_prefix_length` for how deep it
      goes: at most :data:`_REGEX_NODES` trie nodes, so that building and
      compiling it stays cheap however many values there are).
    * ``lengths``: such a prefix -> the lengths of the heads that begin with
      it, longest first; at a position the regex finds, the longest value
      there is found by looking up slices of those lengths in ``short`` and
      ``long_values``.
    * ``short``: the short values.
    * ``long_values``: head -> the long values with that head, longest first.
    """

    __slots__ = (
        "bisect",
        "first_bytes",
        "heads",
        "lengths",
        "long_values",
        "quick_len",
        "regex",
        "short",
        "window",
    )

    def __init__(self, patterns: "list[bytes]") -> None:
        import re
        from bisect import bisect_right

        heads = sorted({p[:_PREFIX_LEN] for p in patterns})
        long_values: dict[bytes, list[bytes]] = {}
        for pattern in patterns:
            if len(pattern) > _PREFIX_LEN:
                long_values.setdefault(pattern[:_PREFIX_LEN], []).append(pattern)
        for group in long_values.values():
            group.sort(key=len, reverse=True)
        self.long_values = long_values
        self.short = frozenset(p for p in patterns if len(p) <= _PREFIX_LEN)
        self.heads = heads
        self.bisect = bisect_right
        self.first_bytes = frozenset(h[0] for h in heads)
        # Shorter than this, a buffer can hold neither a whole value nor the
        # start of a long one: only a prefix of one, at its end.
        self.quick_len = min(len(h) for h in heads)
        # The longest suffix that can be a proper prefix of a head.
        self.window = max(len(h) for h in heads) - 1
        depth = _prefix_length(heads)
        # Heads with the same prefix are contiguous: group them in one pass.
        lengths: dict[bytes, tuple[int, ...]] = {}
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}  # one tuple of each kind
        prefix, sizes = heads[0][:depth], {len(heads[0])}
        for head in heads[1:]:
            if head.startswith(prefix):
                sizes.add(len(head))
                continue
            key = tuple(sorted(sizes, reverse=True))
            lengths[prefix] = shared.setdefault(key, key)
            prefix, sizes = head[:depth], {len(head)}
        key = tuple(sorted(sizes, reverse=True))
        lengths[prefix] = shared.setdefault(key, key)
        self.lengths = lengths
        self.regex = re.compile(_build_regex(list(lengths)))

    def partial(self, data: bytes) -> bool:
        """Whether ``data`` is a proper prefix of some head."""
        heads = self.heads
        # The first head after ``data`` in sorted order begins with it if any does.
        i = self.bisect(heads, data)
        return i < len(heads) and heads[i].startswith(data)

    def scan(self, buf: bytes, *, final: bool) -> "tuple[list[tuple[int, int]], int, list[bytes]]":
        """Leftmost-longest matches of the values in ``buf``, as ``(start, end)`` spans.

        Unless ``final`` (the end of the stream), the scan stops at the first
        position, outside any match, where ``buf`` ends inside a long value
        (``buf[x:]`` is a proper prefix of it): what is there depends on data
        still to come. Returns the spans before it, that position (or
        ``len(buf)``) and the long values ``buf[x:]`` begins.
        """
        size = len(buf)
        spans: list[tuple[int, int]] = []
        search = self.regex.search
        lengths = self.lengths
        short = self.short
        long_values = self.long_values
        position = 0
        while (found := search(buf, position)) is not None:
            start = found.start()
            end = 0
            for length in lengths[found.group()]:  # longest first
                stop = start + length
                if stop > size:
                    continue
                head = buf[start:stop]
                group = long_values.get(head) if long_values else None
                if group is not None:
                    if not final:
                        rest = memoryview(buf)[start:]
                        growing = [v for v in group if len(v) > size - start and v.startswith(rest)]
                        if growing:
                            return spans, start, growing
                    end = next((start + len(v) for v in group if buf.startswith(v, start)), 0)
                    if end:
                        break
                    # The head, but none of its long values: a short value?
                if head in short:
                    end = stop
                    break
            if end:
                spans.append((start, end))
                position = end
            else:
                position = start + 1
        return spans, size, []


def _prefix_length(heads: "list[bytes]") -> int:
    """How many leading bytes of the heads the candidate regex spells out.

    As many as keep its trie within :data:`_REGEX_NODES` nodes, at least one
    and at most the shortest head: a deeper regex finds fewer positions that
    turn out to hold no value (each costs a few dictionary look-ups in
    Python), a larger one costs more to build and compile (about 5 us a node).
    With values that share a long beginning the regex is as deep as that; with
    10,000 random ones it is two bytes deep.

    The trie has one node per distinct prefix of each length; in sorted order
    a head adds those longer than its common prefix with the previous head.
    That common prefix is found for all pairs at once, in C: the first
    differing bit of the heads read as equally long big-endian integers.
    """
    from collections import Counter
    from operator import xor

    shortest = min(len(h) for h in heads)
    width = max(len(h) for h in heads)
    numbers = [int.from_bytes(h.ljust(width, b"\0"), "big") for h in heads]
    # common[c]: how many adjacent pairs first differ at byte c (c capped at
    # ``shortest``, beyond which nothing is counted; the padding lies beyond).
    common = [0] * (shortest + 1)
    for bits, count in Counter(map(int.bit_length, map(xor, numbers, numbers[1:]))).items():
        common[min((8 * width - bits) // 8, shortest)] += count
    depth = nodes = 0
    distinct = 1  # distinct prefixes of length depth + 1
    while depth < shortest:
        distinct += common[depth]
        if depth and nodes + distinct > _REGEX_NODES:
            break
        nodes += distinct
        depth += 1
    return depth


def _build_regex(patterns: "list[bytes]") -> bytes:
    """A regex matching, at any position, the longest of ``patterns`` there.

    Built as a radix trie (``abc(?:d(?:ef)?|xy)``) rather than a flat
    alternation: with hundreds of values a flat alternation costs one
    comparison per value at every position of the output, the trie one per
    distinct first byte. At each node the longer continuations are tried
    before stopping (greedy ``?``), hence longest match. Where they are all
    single bytes they make one character class (``ab[cxy]``), which re
    compiles in a fraction of the time of an alternation.
    """
    from re import escape

    def node(suffixes: "list[bytes]", level: int) -> bytes:
        optional = b"" in suffixes
        rest = [s for s in suffixes if s]
        if not rest:
            return b""
        if len(rest) > 1 and all(len(s) == 1 for s in rest):
            char_class = b"[" + b"".join(escape(s) for s in rest) + b"]"
            return char_class + b"?" if optional else char_class
        if level >= _MAX_REGEX_NESTING:
            flat = [escape(s) for s in sorted(rest, key=len, reverse=True)]
            if optional:
                flat.append(b"")
            return b"(?:" + b"|".join(flat) + b")"
        groups: dict[int, list[bytes]] = {}
        for s in rest:
            groups.setdefault(s[0], []).append(s)
        alternatives = []
        for first in sorted(groups):
            members = groups[first]
            shortest, longest = min(members), max(members)
            common = 1
            while common < len(shortest) and shortest[common] == longest[common]:
                common += 1
            head = shortest[:common]
            alternatives.append(
                escape(head) + node([m[common:] for m in members], level + 1)
            )
        body = alternatives[0] if len(alternatives) == 1 else b"(?:" + b"|".join(alternatives) + b")"
        return b"(?:" + body + b")?" if optional else body

    return node(sorted(set(patterns)), 0)


class Masker:
    """Streaming replacement of secret values in a byte stream.

    ``feed`` returns what can be emitted now, ``flush`` (at EOF) the held
    tail. The result of any chunking equals a one-shot leftmost-longest
    replacement of the whole stream: scanning left to right, at each position
    the longest value that starts there is replaced by the marker and the scan
    resumes after it.

    Only values longer than 3 bytes in UTF-8 are masked. A value containing
    ``\\n`` is also masked in the form a pseudo-terminal prints it (``\\r\\n``).
    Data that cannot be part of a secret is returned at once: only the
    shortest suffix that could still grow into a match is held back, until the
    next ``feed`` or ``flush`` resolves it (never on a timer).
    """

    __slots__ = ("_growing", "_held", "_marker", "_tables")

    def __init__(self, values: "Iterable[str]", marker: bytes = DEFAULT_MARKER) -> None:
        patterns: set[bytes] = set()
        for value in values:
            raw = value.encode("utf-8", "surrogateescape")
            if len(raw) < MIN_MASKED_LENGTH:
                continue
            patterns.add(raw)
            if b"\n" in raw:
                patterns.add(raw.replace(b"\n", b"\r\n"))  # a tty's ONLCR
        self._tables = _MaskTables(sorted(patterns)) if patterns else None
        self._marker = bytes(marker)
        self._held = b""
        # The long values the held bytes are a proper prefix of, if any.
        self._growing: list[bytes] = []

    def copy(self) -> "Masker":
        """A masker with the same values and marker and a fresh stream state
        (for another stream; shares the compiled tables)."""
        twin = Masker.__new__(Masker)
        twin._tables = self._tables
        twin._marker = self._marker
        twin._held = b""
        twin._growing = []
        return twin

    def feed(self, data: bytes) -> bytes:
        """Take the next chunk of the stream; return what may be emitted now."""
        tables = self._tables
        data = bytes(data)
        if tables is None or not data:
            return data
        held = self._held
        buf = held + data if held else data
        size = len(buf)
        if self._growing:
            # The held bytes begin some long values: keep holding while the
            # new data continues one of them (checking only the new data).
            growing = [v for v in self._growing if len(v) > size and v.startswith(data, len(held))]
            self._growing = growing
            if growing:
                self._held = buf
                return b""
        window = tables.window
        partial = tables.partial
        if size <= window and partial(buf):
            # The whole buffer is still a proper prefix of a head: keep
            # holding it (cheap path for a value arriving a byte at a time).
            self._held = buf
            return b""
        if size >= tables.quick_len:
            # The scan stops at ``hold`` if a long value may be printing from
            # there (at least a head before the end, so before any position
            # the loop below looks at).
            spans, hold, growing = tables.scan(buf, final=False)
        else:
            spans, hold, growing = [], size, []  # too short to hold a value
        # Positions x whose suffix buf[x:] is a proper prefix of some head (it
        # could still become a value), in increasing order: only the last
        # ``window`` bytes can start one.
        first_bytes = tables.first_bytes
        for x in range(max(size - window, 0), hold):
            if buf[x] not in first_bytes or not partial(buf[x:]):
                continue
            # A candidate inside a match is never a match start (the scan has
            # skipped it); the first one that is not, is where we must stop:
            # everything before it is decided whatever comes next.
            inside = False
            for start, end in reversed(spans):
                if end <= x:
                    break
                if start < x:
                    inside = True
                    break
            if not inside:
                hold = x
                break
        self._held = buf[hold:]
        self._growing = growing
        return self._replace(buf, spans, hold)

    def flush(self) -> bytes:
        """End of stream: return the held tail, with any complete match masked."""
        held, self._held, self._growing = self._held, b"", []
        if not held or self._tables is None:
            return held
        spans, _, _ = self._tables.scan(held, final=True)
        return self._replace(held, spans, len(held))

    def _replace(self, buf: bytes, spans: "list[tuple[int, int]]", stop: int) -> bytes:
        if not spans or spans[0][0] >= stop:
            return buf[:stop] if stop < len(buf) else buf
        pieces = []
        position = 0
        for start, end in spans:
            if start >= stop:
                break
            pieces.append(buf[position:start])
            pieces.append(self._marker)
            position = end
        pieces.append(buf[position:stop])
        return b"".join(pieces)


