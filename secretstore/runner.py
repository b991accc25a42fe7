"""Launch a program with secrets in its environment.

Two ways to run it:

* :func:`exec_program` replaces this process with the program (``execvpe``):
  nothing stays in between, so nothing can be masked.
* :func:`supervise` runs the program as a child, forwards signals to it and
  copies its output through a :class:`Masker`, which replaces secret values
  with ``[MASKED]``.

This module sits on the ``exec`` fast path, whose import time is measured: at
import it loads only ``os`` and ``sys`` (both already loaded by the
interpreter). Everything else (``re``, ``select``, ``signal``, ``termios``,
the error classes...) is imported inside the function that needs it, so that
:func:`exec_program` costs nothing more. For the same reason annotations that
name ``collections.abc``/``typing`` types are written as strings.

Messages of the errors raised here name commands, variables and sizes, never
a secret value.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from types import FrameType, ModuleType
    from typing import Any, NoReturn

    from secretstore.errors import SecretStoreError

__all__ = [
    "DEFAULT_ARG_MAX",
    "DEFAULT_MARKER",
    "DRAIN_GRACE_SECONDS",
    "MAX_ARG_STRLEN",
    "MIN_MASKED_LENGTH",
    "Masker",
    "check_environment_limits",
    "exec_program",
    "supervise",
]

#: Linux limit on one argument or one ``NAME=value`` string, terminating NUL
#: included (32 pages of 4 KiB; ``MAX_ARG_STRLEN`` in the kernel).
MAX_ARG_STRLEN = 131072
#: Used when ``sysconf(SC_ARG_MAX)`` is unavailable.
DEFAULT_ARG_MAX = 2097152
#: Each argument and environment string also costs one pointer in the new
#: process image.
_POINTER_SIZE = 8

#: Values whose UTF-8 encoding is shorter than this are not masked: masking
#: "abc" or "1" everywhere would mangle ordinary output.
MIN_MASKED_LENGTH = 4
DEFAULT_MARKER = b"[MASKED]"
#: After the child has exited, a grandchild may still hold its stdout/stderr
#: open (a daemon started with ``cmd &``). We drain what is there and stop at
#: EOF, or at the latest this long after the exit, so that such a grandchild,
#: even one that keeps logging, cannot make us hang. (Whatever it writes later
#: is lost.)
DRAIN_GRACE_SECONDS = 0.5

_READ_SIZE = 65536
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


# ---------------------------------------------------------------------------
# Limits


def check_environment_limits(env: "Mapping[str, str]", argv: "Sequence[str]") -> None:
    """Raise :class:`LimitError` if ``execve(argv, env)`` would fail with E2BIG.

    Linux refuses any single argument or ``NAME=value`` string longer than
    :data:`MAX_ARG_STRLEN` bytes (counting its terminating NUL, as the kernel
    does), and a total size of strings plus one pointer each above ARG_MAX.
    Checking first gives a clear message instead of an E2BIG traceback. The
    messages name variables and argument positions, never values.
    """
    per_string = sys.platform.startswith("linux")
    total = 0
    for index, arg in enumerate(argv):
        size = len(os.fsencode(arg)) + 1
        if per_string and size > MAX_ARG_STRLEN:
            raise _limit_error(
                f"argument {index} is {size} bytes; Linux allows at most "
                f"{MAX_ARG_STRLEN} per argument"
            )
        total += size + _POINTER_SIZE
    for name, value in env.items():
        # NAME '=' value NUL
        size = len(os.fsencode(name)) + len(os.fsencode(value)) + 2
        if per_string and size > MAX_ARG_STRLEN:
            raise _limit_error(
                f"environment variable {_printable(name)} is {size} bytes; Linux allows "
                f"at most {MAX_ARG_STRLEN} per variable"
            )
        total += size + _POINTER_SIZE
    limit = _arg_max()
    if total > limit:
        raise _limit_error(
            f"the command line and environment total {total} bytes; "
            f"the system allows at most {limit} (ARG_MAX)"
        )


def _arg_max() -> int:
    try:
        value = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):
        return DEFAULT_ARG_MAX
    return value if value > 0 else DEFAULT_ARG_MAX


def _limit_error(message: str) -> "SecretStoreError":
    from secretstore.errors import LimitError

    return LimitError(message)


# ---------------------------------------------------------------------------
# exec


def exec_program(argv: "Sequence[str]", env: "Mapping[str, str]") -> "NoReturn":
    """Replace this process with ``argv`` (looked up in ``env``'s PATH) and ``env``.

    Never returns. If the program cannot be started, raises
    :class:`CommandNotFoundError` (exit 127) or :class:`CommandNotExecutableError`
    (exit 126), as shells do, :class:`LimitError` for E2BIG, and
    :class:`SecretStoreError` for anything else.

    SIGPIPE and SIGXFSZ, which the Python interpreter ignores and which an
    ignored disposition would pass on through exec, are reset to their default
    first (as ``subprocess`` does), so that e.g. ``... | head`` stops the
    program the usual way.
    """
    argv = list(argv)
    if not argv:
        raise _usage_error("no command given")
    _flush_std_streams()
    restore = _default_exec_signals()
    try:
        _execvpe(argv[0], argv, env)
    except OSError as exc:
        script = _script_without_interpreter(exc, argv[0], env)
        if script is not None:
            try:
                os.execve(_SHELL, [_SHELL, script, *argv[1:]], env)
            except OSError:
                pass
        restore()
        import errno

        if exc.errno == errno.E2BIG:  # say which variable or argument is too long (no value)
            check_environment_limits(env, argv)
        raise _exec_error(argv[0], exc) from exc
    except ValueError as exc:  # NUL byte in a string, '=' in a name; says which, no value
        restore()
        raise _usage_error(f"cannot execute {_printable(argv[0])}: {exc}") from exc
    raise AssertionError("unreachable: execvpe returned")  # pragma: no cover


def _execvpe(file: str, argv: "list[str]", env: "Mapping[str, str]") -> None:
    """``os.execvpe``, except that a PATH entry where ``file`` does not exist is
    skipped after a ``stat`` instead of being tried with ``execve``.

    Each ``execve`` call converts the whole environment again; with 10,000
    secrets that is about 2 ms a try, and ``true`` is often ten PATH entries
    deep. Errors are the ones ``os.execvpe`` raises: the first error other
    than "not found", else the last "not found".
    """
    if os.path.dirname(file):
        os.execve(file, argv, env)
    saved: OSError | None = None
    last: OSError | None = None
    name = os.fsencode(file)
    for directory in os.get_exec_path(env):
        fullname = os.path.join(os.fsencode(directory), name)
        try:
            os.stat(fullname)
        except (FileNotFoundError, NotADirectoryError) as exc:
            last = exc
            continue
        except OSError:
            pass  # execve reports it as os.execvpe would
        try:
            os.execve(fullname, argv, env)
        except (FileNotFoundError, NotADirectoryError) as exc:
            last = exc
        except OSError as exc:
            last = exc
            saved = saved or exc
    error = saved or last
    if error is None:  # pragma: no cover - get_exec_path never returns []
        import errno

        error = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), file)
    raise error


_SHELL = "/bin/sh"


def _script_without_interpreter(exc: OSError, command: str, env: "Mapping[str, str]") -> "str | None":
    """The program's path when exec refused it with ENOEXEC (a script without ``#!``).

    Shells and glibc's ``execvp`` run such a file with ``/bin/sh``; Python's
    ``os.execvpe`` and ``posix_spawn`` do not, so we do it ourselves.
    """
    import errno

    if exc.errno != errno.ENOEXEC:
        return None
    if "/" in command:
        return command
    import shutil

    return shutil.which(command, path=env.get("PATH", os.defpath))


def _default_exec_signals() -> "Callable[[], None]":
    """Set SIGPIPE and SIGXFSZ to SIG_DFL; return a callable that undoes it."""
    sig = _signal_module()
    saved: list[tuple[int, Any]] = []
    for name in ("SIGPIPE", "SIGXFSZ"):
        number = getattr(sig, name, None)
        if number is None:
            continue
        try:
            saved.append((number, sig.signal(number, sig.SIG_DFL)))
        except (OSError, ValueError):  # not the main thread
            pass

    def restore() -> None:
        for number, handler in saved:
            try:
                sig.signal(number, handler if handler is not None else sig.SIG_DFL)
            except (OSError, ValueError, TypeError):
                pass

    return restore


def _signal_module() -> "ModuleType":
    # The interpreter has loaded the built-in ``_signal`` at startup; the
    # ``signal`` wrapper would pull in ``enum``, which the fast path avoids.
    loaded = sys.modules.get("_signal")
    if loaded is not None:
        return loaded
    import signal  # pragma: no cover - not CPython

    return signal  # pragma: no cover


def _exec_error(command: str, exc: OSError) -> "SecretStoreError":
    """Map a failure to start ``command`` to the error the CLI reports."""
    import errno

    from secretstore.errors import (
        CommandNotExecutableError,
        CommandNotFoundError,
        LimitError,
        SecretStoreError,
    )

    name = _printable(command)
    code = exc.errno
    reason = exc.strerror or (os.strerror(code) if code else type(exc).__name__)
    if isinstance(exc, FileNotFoundError) or code in (errno.ENOENT, errno.ENOTDIR):
        return CommandNotFoundError(f"command not found: {name}")
    if isinstance(exc, PermissionError) or code in (errno.EACCES, errno.ENOEXEC, errno.EISDIR):
        return CommandNotExecutableError(f"cannot execute {name}: {reason}")
    if code == errno.E2BIG:
        return LimitError(
            f"cannot execute {name}: the command line and environment are too long (E2BIG)"
        )
    return SecretStoreError(f"cannot execute {name}: {reason}")


def _usage_error(message: str) -> "SecretStoreError":
    from secretstore.errors import UsageError

    return UsageError(message)


def _printable(text: str) -> str:
    """``text`` itself, or its repr if it would not fit on one line."""
    return text if text.isprintable() else repr(text)


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # closed, or EPIPE: nothing more to do
            pass


# ---------------------------------------------------------------------------
# Masking


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


# ---------------------------------------------------------------------------
# supervise


def supervise(
    argv: "Sequence[str]",
    env: "Mapping[str, str]",
    mask_values: "Iterable[str]",
    *,
    use_pty: bool | None = None,
) -> int:
    """Run ``argv`` as a child with ``env``, masking ``mask_values`` in its output.

    Returns the child's exit status. If the child died of signal N, this
    process kills itself with N (default disposition restored first), so that
    its parent sees the same death; if that returns (N ignored or blocked),
    returns 128 + N.

    ``use_pty=None`` uses a pseudo-terminal when our stdout is a terminal, so
    that the child still sees a tty (colours, progress bars, line buffering).
    On a pty the child's stdout and stderr are merged onto it; its stdin is the
    pty too when our stdin is a terminal (which is then put in raw mode and
    copied to it; restored on the way out), otherwise our stdin unchanged.
    Without a pty the child inherits our stdin, and its stdout and stderr are
    pipes copied, each through its own masker, to ours.

    Raises, before starting anything, :class:`CommandNotFoundError` (127),
    :class:`CommandNotExecutableError` (126) or :class:`LimitError`.
    """
    args = list(argv)
    if not args:
        raise _usage_error("no command given")
    check_environment_limits(env, args)
    environ = dict(env)
    path = _resolve_command(args[0], environ)
    masker = Masker(mask_values)
    auto = use_pty is None
    if use_pty is None:
        use_pty = os.isatty(1)
    _flush_std_streams()
    status = _Supervisor(path, args, environ, masker, use_pty=use_pty, auto_pty=auto).run()
    if status < 0:
        return _die_like_child(-status)
    return status


def _resolve_command(command: str, env: "Mapping[str, str]") -> str:
    """The file execvpe would run for ``command`` with ``env``'s PATH.

    Raises CommandNotFoundError or CommandNotExecutableError like
    :func:`exec_program` would: a candidate that exists but is not executable
    is remembered and the search goes on (as execvp does).
    """
    import errno
    import stat

    from secretstore.errors import CommandNotExecutableError, CommandNotFoundError

    name = _printable(command)
    if not command:
        raise CommandNotFoundError(f"command not found: {command!r}")
    if "/" in command:
        candidates = [command]
    else:
        candidates = [os.path.join(d, command) for d in os.get_exec_path(env)]
    refused: int | None = None
    for candidate in candidates:
        try:
            mode = os.stat(candidate).st_mode
        except PermissionError:
            refused = refused or errno.EACCES
            continue
        except (OSError, ValueError):
            continue
        if stat.S_ISDIR(mode):
            refused = refused or errno.EISDIR
        elif not stat.S_ISREG(mode) or not os.access(candidate, os.X_OK):
            refused = refused or errno.EACCES
        else:
            return candidate
    if refused is not None:
        raise CommandNotExecutableError(f"cannot execute {name}: {os.strerror(refused)}")
    raise CommandNotFoundError(f"command not found: {name}")


def _die_like_child(signum: int) -> int:
    import signal

    _flush_std_streams()
    try:
        signal.signal(signum, signal.SIG_DFL)
    except (OSError, ValueError):  # SIGKILL cannot be caught anyway; not main thread
        pass
    os.kill(os.getpid(), signum)
    return 128 + signum


def _in_foreground(fd: int) -> bool:
    """False if ``fd`` is our controlling terminal and another process group
    (the shell, when we run with ``&``) owns it."""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:  # not our controlling terminal: no job control applies
        return True


def _write_all(fd: int, data: bytes) -> None:
    """Write everything (raises OSError, e.g. BrokenPipeError)."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:  # our stdout was left non-blocking by someone
            import select

            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            poller.poll()
            continue
        view = view[written:]


class _Stream:
    """One output of the child: where it goes and through which masker."""

    __slots__ = ("alive", "dest", "masker")

    def __init__(self, masker: Masker, dest: int) -> None:
        self.masker = masker
        self.dest = dest
        self.alive = True

    def emit(self, data: bytes) -> None:
        if not data or not self.alive:
            return
        try:
            _write_all(self.dest, data)
        except OSError:
            # EPIPE (``| head``), EBADF, EIO...: stop writing this stream, no
            # traceback; the reader then closes the child's pipe (see read_stream).
            self.alive = False


class _Supervisor:
    """State of one supervised run (the signal handlers reach it too)."""

    _FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")

    def __init__(
        self,
        path: str,
        argv: "list[str]",
        env: "dict[str, str]",
        masker: Masker,
        *,
        use_pty: bool,
        auto_pty: bool,
    ) -> None:
        self.path = path
        self.argv = argv
        self.env = env
        self.masker = masker
        self.use_pty = use_pty
        self.auto_pty = auto_pty
        self.pid: int | None = None
        self.pidfd: int | None = None
        self.exited = False
        self.interrupted = False
        self.status = 0
        self.pending_signals: list[int] = []
        self.saved_handlers: list[tuple[int, Any]] = []
        self.fds: list[int] = []  # everything we opened and must close
        self.streams: dict[int, _Stream] = {}
        self.master: int | None = None
        self.stdin_tty = False
        self.copy_stdin = False
        self.winsize_fd: int | None = None
        self.saved_tty: list[Any] | None = None
        self.input = bytearray()  # our stdin, on its way to the pty

    # -- lifecycle ---------------------------------------------------------

    def run(self) -> int:
        try:
            self.install_handlers()
            if self.use_pty:
                self.start_pty()
            else:
                self.start_pipes()
            for signum in self.pending_signals:  # arrived before the spawn
                self.forward(signum)
            self.pending_signals.clear()
            self.pump()
            return self.status
        finally:
            self.restore_tty()
            self.restore_handlers()
            for fd in self.fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            if self.pid is not None and not self.exited:  # only after an error
                try:
                    os.waitpid(self.pid, os.WNOHANG)
                except OSError:
                    pass

    def own(self, fd: int) -> int:
        """Record ``fd`` for closing; keep it off 0-2 (which may be closed in
        this process) so the child's dup2 onto 0-2 never is a no-op."""
        if fd < 3:
            import fcntl

            high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
            os.close(fd)
            fd = high
        self.fds.append(fd)
        return fd

    def close(self, fd: int) -> None:
        if fd in self.fds:
            self.fds.remove(fd)
        try:
            os.close(fd)
        except OSError:
            pass

    # -- signals -----------------------------------------------------------

    def install_handlers(self) -> None:
        # Installed before the spawn so that no signal is lost in between;
        # what arrives before the child exists is forwarded right after.
        import signal

        wanted = [getattr(signal, name) for name in self._FORWARDED if hasattr(signal, name)]
        if self.use_pty and hasattr(signal, "SIGWINCH"):
            wanted.append(signal.SIGWINCH)
        for signum in wanted:
            try:
                if signal.getsignal(signum) == signal.SIG_IGN:
                    # Ignored by whoever started us (nohup, background job):
                    # we will not receive it, and leaving it ignored lets the
                    # child inherit that, as it would through exec.
                    continue
                previous = signal.signal(signum, self.on_signal)
            except (OSError, ValueError):
                # Not in the main thread: run without forwarding.
                continue
            self.saved_handlers.append((signum, previous))
        try:
            if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
                # Inherited "ignore SIGCHLD" would reap the child for us and
                # lose its exit status.
                self.saved_handlers.append((signal.SIGCHLD, signal.signal(signal.SIGCHLD, signal.SIG_DFL)))
        except (OSError, ValueError):
            pass

    def restore_handlers(self) -> None:
        import signal

        for signum, previous in reversed(self.saved_handlers):
            try:
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            except (OSError, ValueError, TypeError):
                pass
        self.saved_handlers.clear()

    def on_signal(self, signum: int, frame: "FrameType | None") -> None:
        import signal

        if signum == getattr(signal, "SIGWINCH", None):
            self.sync_winsize()
        elif self.pid is None:
            self.pending_signals.append(signum)
        else:
            self.forward(signum)

    def forward(self, signum: int) -> None:
        """Pass ``signum`` on to the child, unless it got it already.

        SIGTERM and SIGHUP normally come from ``kill`` aimed at us alone, so
        they are always forwarded. SIGINT and SIGQUIT normally come from the
        terminal (Ctrl-C, Ctrl-\\), which signals its whole foreground process
        group: without a pty the child shares our process group and has
        already received them, so they are forwarded only if the child is in
        another process group (always the case with a pty, where the child
        leads its own session; and if it moved itself). The price: a SIGINT
        sent with ``kill`` to our pid alone is not passed on in pipe mode;
        ``kill -INT -PGID`` reaches both.
        """
        import signal

        pid = self.pid
        if pid is None:
            return
        if self.exited:
            # We are only draining what a grandchild still writes: stop now.
            self.interrupted = True
            return
        if signum in (signal.SIGINT, signal.SIGQUIT) and not self.child_in_other_group():
            return
        try:
            if self.pidfd is not None and hasattr(signal, "pidfd_send_signal"):
                signal.pidfd_send_signal(self.pidfd, signum)
            else:
                os.kill(pid, signum)
        except OSError:  # already gone
            pass

    def child_in_other_group(self) -> bool:
        if self.pid is None:
            return False
        try:
            return os.getpgid(self.pid) != os.getpgrp()
        except OSError:
            return self.use_pty

    # -- starting ----------------------------------------------------------

    def spawn(self, file_actions: "list[tuple[Any, ...]]", *, setsid: bool) -> None:
        import signal

        # posix_spawn resets caught signals in the child; reset also the two
        # the interpreter ignores (SIGPIPE, SIGXFSZ), as subprocess does.
        defaults = [getattr(signal, n) for n in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, n)]
        path, argv = self.path, self.argv
        try:
            try:
                self.pid = os.posix_spawn(
                    path, argv, self.env, file_actions=file_actions, setsid=setsid, setsigdef=defaults
                )
            except OSError as exc:
                if _script_without_interpreter(exc, path, self.env) is None:
                    raise
                path, argv = _SHELL, [_SHELL, self.path, *self.argv[1:]]
                self.pid = os.posix_spawn(
                    path, argv, self.env, file_actions=file_actions, setsid=setsid, setsigdef=defaults
                )
        except OSError as exc:
            raise _exec_error(self.argv[0], exc) from exc
        except ValueError as exc:  # NUL byte, '=' in a variable name
            raise _usage_error(f"cannot execute {_printable(self.argv[0])}: {exc}") from exc
        try:
            self.pidfd = self.own(os.pidfd_open(self.pid))
        except (AttributeError, OSError):
            self.pidfd = None  # poll for the exit instead

    def start_pipes(self) -> None:
        out_r, out_w = (self.own(fd) for fd in os.pipe())
        err_r, err_w = (self.own(fd) for fd in os.pipe())
        self.spawn(
            [(os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)],
            setsid=False,
        )
        self.close(out_w)
        self.close(err_w)
        self.streams[out_r] = _Stream(self.masker, 1)
        self.streams[err_r] = _Stream(self.masker.copy(), 2)

    def start_pty(self) -> None:
        import termios

        try:
            master, slave = os.openpty()
        except OSError as exc:
            if self.auto_pty:  # no pty available: plain pipes will do
                self.use_pty = False
                self.start_pipes()
                return
            from secretstore.errors import SecretStoreError

            raise SecretStoreError(f"cannot allocate a pseudo-terminal: {exc.strerror}") from exc
        master = self.own(master)
        slave = self.own(slave)
        self.master = master
        self.stdin_tty = os.isatty(0)
        # Copy our terminal's input (in raw mode) unless we are a background
        # job, where touching the terminal would stop us with SIGTTOU/SIGTTIN.
        self.copy_stdin = self.stdin_tty and _in_foreground(0)
        self.winsize_fd = next((fd for fd in (0, 1, 2) if os.isatty(fd)), None)
        if self.stdin_tty:
            try:  # the child's terminal starts with our terminal's settings
                termios.tcsetattr(slave, termios.TCSANOW, termios.tcgetattr(0))
            except termios.error:
                pass
        self.sync_winsize()
        slave_name = os.ttyname(slave)
        # setsid makes the child a session leader; opening the slave (without
        # O_NOCTTY) then makes it the child's controlling terminal, so job
        # control and Ctrl-C (sent as a byte while we are raw) work inside.
        # Our stderr redirected away from the terminal (2>err.log) stays separate:
        # the child's stderr then goes through a pipe of its own, masked too.
        err_r = err_w = None
        if not os.isatty(2):
            err_r, err_w = (self.own(fd) for fd in os.pipe())
        if self.stdin_tty:
            actions: list[tuple[Any, ...]] = [
                (os.POSIX_SPAWN_OPEN, 0, slave_name, os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 0, 1),
                (os.POSIX_SPAWN_DUP2, 0 if err_w is None else err_w, 2),
            ]
        else:  # keep our stdin (a file, a pipe): copying it through a tty would mangle it
            actions = [
                (os.POSIX_SPAWN_OPEN, 1, slave_name, os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 1 if err_w is None else err_w, 2),
            ]
        self.spawn(actions, setsid=True)
        self.close(slave)  # so that reading the master ends (EIO) when the child is gone
        os.set_blocking(master, False)
        self.streams[master] = _Stream(self.masker, 1)
        if err_r is not None and err_w is not None:
            self.close(err_w)
            self.streams[err_r] = _Stream(self.masker.copy(), 2)
        if self.copy_stdin:
            import tty

            try:
                self.saved_tty = termios.tcgetattr(0)
                tty.setraw(0, termios.TCSADRAIN)
            except termios.error:
                self.saved_tty = None

    def restore_tty(self) -> None:
        if self.saved_tty is None:
            return
        import termios

        try:
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved_tty)
        except termios.error:
            pass
        self.saved_tty = None

    def sync_winsize(self) -> None:
        if self.master is None or self.winsize_fd is None:
            return
        import fcntl
        import termios

        try:
            size = fcntl.ioctl(self.winsize_fd, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
        except OSError:
            pass

    # -- the loop ----------------------------------------------------------

    def reap(self, *, block: bool) -> None:
        assert self.pid is not None
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped by someone else (SIGCHLD ignored?)
            pid, status = self.pid, 0
        if pid == 0:
            return
        self.exited = True
        self.status = os.waitstatus_to_exitcode(status)

    def pump(self) -> None:
        import select
        import time

        readable = select.POLLIN | select.POLLHUP | select.POLLERR
        poller = select.poll()
        for fd in self.streams:
            poller.register(fd, select.POLLIN)
        if self.pidfd is not None:
            poller.register(self.pidfd, select.POLLIN)
        master = self.master
        copying_input = self.use_pty and self.copy_stdin and master is not None
        if copying_input:
            poller.register(0, select.POLLIN)

        def stop_input() -> None:
            nonlocal copying_input
            if copying_input:
                copying_input = False
                self.input.clear()
                try:
                    poller.unregister(0)
                except KeyError:
                    pass
                if master is not None and master in self.streams:
                    poller.modify(master, select.POLLIN)

        def send_input() -> None:
            assert master is not None
            try:
                written = os.write(master, self.input)
            except BlockingIOError:
                written = 0
            except OSError:
                stop_input()
                return
            del self.input[:written]
            if self.input:  # pty full: wait until it can take more, read no more stdin
                poller.modify(master, select.POLLIN | select.POLLOUT)
                try:
                    poller.unregister(0)
                except KeyError:
                    pass
            else:
                poller.modify(master, select.POLLIN)
                poller.register(0, select.POLLIN)

        drain_until: float | None = None  # set when the child's exit is first seen
        while True:
            if not self.streams:
                if not self.exited:
                    self.reap(block=True)
                return
            if self.exited:
                now = time.monotonic()
                if drain_until is None:
                    drain_until = now + DRAIN_GRACE_SECONDS
                elif now >= drain_until:
                    break  # a grandchild keeps the pipe open (and maybe busy): stop draining
                timeout: int | None = max(0, int((drain_until - now) * 1000))
            elif self.pidfd is None:
                timeout = 50
            else:
                timeout = None
            events = poller.poll(timeout)
            if self.exited and (self.interrupted or not events):
                break  # after the exit, idle (a grandchild holds the pipe) or signalled
            for fd, event in events:
                if fd == self.pidfd:
                    poller.unregister(fd)
                    self.reap(block=True)
                    stop_input()
                elif fd == 0 and copying_input:
                    try:
                        data = os.read(0, _READ_SIZE)
                    except OSError:
                        data = b""
                    if data:
                        self.input += data
                        send_input()
                    else:
                        stop_input()
                elif fd in self.streams:
                    if event & select.POLLOUT and copying_input and self.input:
                        send_input()
                    if event & readable:
                        self.read_stream(fd, poller)
            if self.pidfd is None and not self.exited:
                self.reap(block=False)
                if self.exited:
                    stop_input()
            if copying_input and master not in self.streams:
                stop_input()
        # Stopped while streams were still open: emit what the maskers hold.
        for fd in list(self.streams):
            self.end_stream(fd, poller)

    def read_stream(self, fd: int, poller: "Any") -> None:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: the pty's slave side is closed everywhere
            data = b""
        if not data:
            self.end_stream(fd, poller)
            return
        stream = self.streams[fd]
        stream.emit(stream.masker.feed(data))
        if not stream.alive:
            # Our reader went away (``| head``): close our end so the child's next
            # write fails with SIGPIPE/EPIPE, as it would have without masking.
            self.end_stream(fd, poller)

    def end_stream(self, fd: int, poller: "Any") -> None:
        stream = self.streams.pop(fd)
        stream.emit(stream.masker.flush())
        try:
            poller.unregister(fd)
        except KeyError:
            pass
        self.close(fd)
