"""secretstore.runner.mask: streaming replacement of secret values, however the output is cut.

``reference`` is the specification (a naive one-shot leftmost-longest
replacement); tests/test_mask_scale.py reuses it for long and many values.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.runner.mask import Masker

SECRET = "s3cr3t-value-1"
SECRET_B = SECRET.encode()
M = b"[MASKED]"


def mask_all(data: bytes, values: list[str], chunks: list[int] | None = None) -> bytes:
    """Run ``data`` through a Masker, cut into pieces of the given sizes (cycled)."""
    masker = Masker(values)
    out = []
    position = 0
    sizes = chunks or [len(data) or 1]
    i = 0
    while position < len(data):
        size = max(1, sizes[i % len(sizes)])
        out.append(masker.feed(data[position:position + size]))
        position += size
        i += 1
    out.append(masker.flush())
    return b"".join(out)


def reference(data: bytes, values: list[str]) -> bytes:
    """Naive one-shot leftmost-longest replacement, the specification of Masker."""
    patterns = set()
    for value in values:
        raw = value.encode()
        if len(raw) > 3:
            patterns.add(raw)
            patterns.add(raw.replace(b"\n", b"\r\n"))
    ordered = sorted(patterns, key=len, reverse=True)
    out = []
    i = 0
    while i < len(data):
        for pattern in ordered:
            if data.startswith(pattern, i):
                out.append(M)
                i += len(pattern)
                break
        else:
            out.append(data[i:i + 1])
            i += 1
    return b"".join(out)


def test_masks_whole_value_in_one_chunk() -> None:
    masker = Masker([SECRET])
    out = masker.feed(b"token=" + SECRET_B + b" done\n") + masker.flush()
    assert out == b"token=" + M + b" done\n"


def test_masks_value_split_at_every_position() -> None:
    data = b"before " + SECRET_B + b" after"
    for cut in range(len(data) + 1):
        masker = Masker([SECRET])
        out = masker.feed(data[:cut]) + masker.feed(data[cut:]) + masker.flush()
        assert out == b"before " + M + b" after", cut


def test_masks_value_fed_one_byte_at_a_time() -> None:
    data = b"x" + SECRET_B + SECRET_B + b"y" + SECRET_B
    masker = Masker([SECRET, "other-secret-2"])
    out = b"".join(masker.feed(data[i:i + 1]) for i in range(len(data))) + masker.flush()
    assert out == b"x" + M + M + b"y" + M


def test_longest_value_wins_when_values_overlap() -> None:
    for values in (["abcd", "abcdef"], ["abcdef", "abcd"]):
        assert mask_all(b"abcdef", values) == M
        assert mask_all(b"abcdxy", values) == M + b"xy"
        assert mask_all(b"-abcdef-abcd", values, [1]) == b"-" + M + b"-" + M
        # "abcd" complete but "abcdef" still possible: held until resolved
        masker = Masker(values)
        assert masker.feed(b"<abcd") == b"<"
        assert masker.feed(b"e") == b""
        assert masker.feed(b"f>") == M + b">"
        masker = Masker(values)
        assert masker.feed(b"abcd") == b""
        assert masker.flush() == M


def test_values_of_three_bytes_or_less_are_not_masked() -> None:
    values = ["abc", "é", "日", "x\ny", "abcd", "日本"]  # 3, 2, 3, 3, 4, 6 bytes
    text = "abc é 日 x\ny x\r\ny abcd 日本".encode()
    assert mask_all(text, values) == "abc é 日 x\ny x\r\ny ".encode() + M + b" " + M
    assert mask_all(b"abc", ["abc", "ab", ""]) == b"abc"


def test_no_values_passes_everything_through() -> None:
    masker = Masker([])
    assert masker.feed(b"abc") == b"abc"
    assert masker.feed(b"") == b""
    assert masker.flush() == b""


def test_output_without_secrets_is_emitted_at_once() -> None:
    masker = Masker([SECRET, "another-value"])
    rng = random.Random(7)
    for _ in range(200):
        chunk = bytes(rng.choice(b"xyz 0123\n") for _ in range(rng.randint(0, 50)))
        assert masker.feed(chunk) == chunk  # nothing in it can start a value
    # Only the shortest suffix that could still become a value is held back.
    assert masker.feed(b"log line s3c") == b"log line "
    assert masker.feed(b"r3") == b""
    assert masker.feed(b"!\n") == b"s3cr3!\n"
    assert masker.feed(b"an") == b""
    assert masker.flush() == b"an"
    assert masker.flush() == b""


def test_held_prefix_that_is_not_a_secret_is_emitted() -> None:
    masker = Masker(["secretX"])
    assert masker.feed(b"secre") == b""
    assert masker.feed(b"tive") == b"secretive"
    assert masker.feed(b"ssecre") == b"s"
    assert masker.feed(b"tX.") == M + b"."
    assert masker.flush() == b""


def test_prefix_inside_a_match_is_not_held() -> None:
    # "ab" could start "ab3456", but it is inside a match, where no scan starts.
    masker = Masker(["Qxyab", "ab3456"])
    assert masker.feed(b"Qxyab") == M
    assert masker.feed(b"3456") == b"3456"


def test_multiline_value_masked_with_lf_and_crlf() -> None:
    value = "-----BEGIN KEY-----\nAAAA\n-----END KEY-----"
    lf = value.encode()
    crlf = lf.replace(b"\n", b"\r\n")
    text = b"a " + lf + b" b " + crlf + b" c"
    for chunks in ([1], [3, 7], [len(text)]):
        assert mask_all(text, [value], chunks) == b"a " + M + b" b " + M + b" c"
    partial = b"-----BEGIN KEY-----\r\nAAAA\r\n"
    assert mask_all(partial, [value], [2]) == partial


def test_unicode_values_and_custom_marker() -> None:
    masker = Masker(["pässwörd"], marker=b"\\1***")
    data = "x pässwörd y".encode()
    out = masker.feed(data[:4]) + masker.feed(data[4:]) + masker.flush()
    assert out == b"x \\1*** y"


def test_copy_masks_independently() -> None:
    first = Masker([SECRET])
    second = first.copy()
    assert first.feed(SECRET_B[:5]) == b""
    assert second.feed(b"plain") == b"plain"
    assert first.feed(SECRET_B[5:]) == M
    assert second.feed(SECRET_B) == M


def test_many_values_and_large_output() -> None:
    rng = random.Random(3)
    upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    values = sorted({"".join(rng.choice(upper) for _ in range(rng.randint(8, 40)))
                     for _ in range(300)})
    pieces = []
    expected = []
    for _ in range(20000):  # about 1 MB; the filler is lower case, values upper case
        filler = bytes(rng.choice(b"abcdefgh \n") for _ in range(rng.randint(0, 60)))
        pieces.append(filler)
        expected.append(filler)
        if rng.random() < 0.1:
            pieces.append(rng.choice(values).encode())
            expected.append(M)
    data = b"".join(pieces)
    assert len(data) > 500_000
    assert mask_all(data, values, [65536, 4096, 1, 77]) == b"".join(expected)


_alphabet = st.sampled_from(list("ab\nc-é"))
_values = st.lists(st.text(_alphabet, min_size=1, max_size=8), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_chunked_masking_equals_one_shot_replacement(data: st.DataObject) -> None:
    values = data.draw(_values, label="values")
    inserts = [v.encode() for v in values] + [v.encode().replace(b"\n", b"\r\n") for v in values]
    segments = data.draw(st.lists(st.one_of(
        st.text(_alphabet, max_size=6).map(str.encode),
        st.sampled_from(inserts),
    ), max_size=12), label="segments")
    text = b"".join(segments)
    chunks = data.draw(st.lists(st.integers(1, 9), min_size=1, max_size=20), label="chunks")
    assert mask_all(text, values, chunks) == reference(text, values)
