"""secretstore.runner.mask.Masker with long values (up to 64 KiB each) and many values.

The masker's tables cover only the first ``_PREFIX_LEN`` bytes of each value;
a longer value is confirmed against the stream. These tests check that the
output is still exactly the one-shot leftmost-longest replacement
(``tests.test_mask.reference``) however the stream is cut, and that the
tables' size does not grow with the values' length. All values are fake.
"""

from __future__ import annotations

import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.runner import mask
from secretstore.runner.mask import Masker
from tests.test_mask import M, mask_all, reference

P = mask._PREFIX_LEN
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def fake_value(rng: random.Random, length: int, head: str = "fake-") -> str:
    return head + "".join(rng.choice(_ALPHABET) for _ in range(length - len(head)))


def filler(rng: random.Random, length: int) -> bytes:
    # Lower case, spaces and punctuation that no value contains ('#', '.', ' ').
    return bytes(rng.choice(b"#. \n") for _ in range(length))


def feed_pieces(masker: Masker, pieces: list[bytes]) -> bytes:
    return b"".join(masker.feed(piece) for piece in pieces) + masker.flush()


def random_chunks(rng: random.Random, total: int, largest: int) -> list[int]:
    sizes = []
    while sum(sizes) < total:
        sizes.append(rng.choice([1, 2, 3, rng.randint(1, 100), rng.randint(1, largest)]))
    return sizes


@pytest.fixture(scope="module")
def long_values() -> list[str]:
    rng = random.Random(60)
    return [fake_value(rng, 60_000) for _ in range(2)]


def test_long_values_split_at_every_boundary(long_values: list[str]) -> None:
    rng = random.Random(1)
    one, two = (v.encode() for v in long_values)
    pad = filler(rng, 300)
    data = pad + one + pad + two + one + pad
    expected = pad + M + pad + M + M + pad
    assert reference(data, long_values) == expected
    assert mask_all(data, long_values) == expected
    # One cut anywhere in and around the head of the first value, and around its end.
    start, end = len(pad), len(pad) + len(one)
    cuts = [*range(start - 2, start + 2 * P + 3), *range(end - P - 2, end + 3), start + 30_000]
    for cut in cuts:
        assert feed_pieces(Masker(long_values), [data[:cut], data[cut:]]) == expected, cut
    # One byte at a time over the head region, then the rest at once.
    pieces = [data[i:i + 1] for i in range(start + 2 * P)] + [data[start + 2 * P:]]
    assert feed_pieces(Masker(long_values), pieces) == expected
    # One byte at a time around the end of the first value and the start of the next.
    pieces = [data[:end - P], *(data[i:i + 1] for i in range(end - P, end + len(pad) + P)),
              data[end + len(pad) + P:]]
    assert feed_pieces(Masker(long_values), pieces) == expected
    # Random chunk sizes, from 1 byte to more than a value.
    for seed in range(20):
        chunks = random_chunks(random.Random(seed), len(data), 70_000)
        assert mask_all(data, long_values, chunks) == expected, seed


def test_long_value_is_held_while_printing_and_released_when_it_diverges(
    long_values: list[str],
) -> None:
    value = long_values[0].encode()
    for k in (1, P - 1, P, P + 1, 30_000, len(value) - 1):
        masker = Masker(long_values)
        assert masker.feed(b"log: " + value[:k]) == b"log: ", k  # nothing of the value yet
        assert masker.feed(value[k:] + b" ok") == M + b" ok", k
        masker = Masker(long_values)
        assert masker.feed(b"log: " + value[:k]) == b"log: ", k
        assert masker.feed(value[k:]) == M, k  # complete: out now, not at the next write
        masker = Masker(long_values)
        assert masker.feed(b"log: " + value[:k]) == b"log: ", k
        # Not the value after all: everything comes out at once, byte for byte.
        assert masker.feed(b"#") == value[:k] + b"#", k
        assert masker.flush() == b"", k
    masker = Masker(long_values)
    assert masker.feed(value[:-1]) == b""
    assert masker.flush() == value[:-1]  # end of stream: an unfinished value is not masked


def test_long_values_sharing_more_than_a_head(long_values: list[str]) -> None:
    rng = random.Random(2)
    shared = fake_value(rng, 2 * P + 36)  # past the head, the values still agree
    first = shared + fake_value(rng, 50_000, head="-")
    second = shared + fake_value(rng, 40_000, head="=")
    values = [first, second, *long_values]
    near_miss = (shared + fake_value(rng, 45_000, head="~")).encode()  # the head, then not a value
    almost = first.encode()[:-1] + b"#"  # all of a value but its last byte
    pad = filler(rng, 100)
    data = pad + first.encode() + pad + near_miss + second.encode() + almost + pad + second.encode()
    expected = pad + M + pad + near_miss + M + almost + pad + M
    assert reference(data, values) == expected
    assert mask_all(data, values) == expected
    for chunks in ([P - 1, P, P + 1], [1, 4096], [7, 65536]):
        assert mask_all(data, values, chunks) == expected, chunks
    for seed in range(10):
        assert mask_all(data, values, random_chunks(random.Random(seed), len(data), 70_000)) == expected
    # Near misses alone pass through byte for byte, and are not held once they diverge.
    masker = Masker(values)
    diverges_at = len(shared) + 1
    assert masker.feed(near_miss[:diverges_at - 1]) == b""
    assert masker.feed(near_miss[diverges_at - 1:diverges_at + 10]) == near_miss[:diverges_at + 10]
    assert masker.feed(near_miss[diverges_at + 10:]) == near_miss[diverges_at + 10:]
    assert masker.flush() == b""


def test_value_that_is_a_prefix_of_another() -> None:
    rng = random.Random(3)
    longest = fake_value(rng, 65_536)
    values = [
        longest[:20],  # short, a prefix of the head
        longest[:P],  # exactly the head
        longest[:P + 1],  # one byte past the head
        longest[:30_000],
        longest,  # the longest a value may be
    ]
    raw = longest.encode()
    pad = b" # "
    pieces = [raw, raw[:30_000], raw[:29_999], raw[:P + 1], raw[:P], raw[:P - 1], raw[:20],
              raw[:19], raw[:-1]]
    data = pad.join(pieces)
    expected = pad.join([M, M, M + raw[P + 1:29_999], M, M, M + raw[20:P - 1], M, raw[:19],
                         M + raw[30_000:-1]])
    assert reference(data, values) == expected
    for chunks in (None, [1, 4096], [P - 1, P + 1], [65_535], [3, 65_537]):
        assert mask_all(data, values, chunks) == expected, chunks


def test_multiline_long_value_is_masked_in_both_forms() -> None:
    rng = random.Random(4)
    body = fake_value(rng, 65_536 - 2000)
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    value = "-----BEGIN FAKE KEY-----\n" + "\n".join(lines) + "\n-----END FAKE KEY-----"
    lf = value.encode()
    crlf = lf.replace(b"\n", b"\r\n")  # as a pty prints it, longer than 64 KiB
    assert len(crlf) > 65_536
    data = b"a " + lf + b" b " + crlf + b" c " + crlf[:-1] + b" d"
    expected = b"a " + M + b" b " + M + b" c " + crlf[:-1] + b" d"
    for chunks in (None, [1, 1, 4096], [4095], [P, 70_000]):
        assert mask_all(data, [value], chunks) == expected, chunks


_alphabet = st.sampled_from(list("ab\nc-é"))
_values = st.lists(st.text(_alphabet, min_size=1, max_size=12), min_size=1, max_size=5)


def _check_chunked_against_one_shot(data: st.DataObject, values: list[str], head: int) -> None:
    """Output built from ``values`` (whole, in their pty form, cut short) and other
    text, masked in drawn chunks with heads of ``head`` bytes, equals one-shot masking."""
    inserts = [v.encode() for v in values] + [v.encode().replace(b"\n", b"\r\n") for v in values]
    segments = data.draw(st.lists(st.one_of(
        st.text(_alphabet, max_size=6).map(str.encode),
        st.sampled_from(inserts),
        st.sampled_from(inserts).flatmap(lambda v: st.integers(0, len(v)).map(lambda n: v[:n])),
    ), max_size=12), label="segments")
    text = b"".join(segments)
    chunks = data.draw(st.lists(st.integers(1, 9), min_size=1, max_size=20), label="chunks")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mask, "_PREFIX_LEN", head)
        assert mask_all(text, values, chunks) == reference(text, values)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_chunked_masking_equals_one_shot_with_short_heads(data: st.DataObject) -> None:
    """The property of tests/test_mask.py with heads of 1 to 6 bytes, so that
    small values exercise every path of long ones."""
    head = data.draw(st.integers(1, 6), label="head length")
    values = data.draw(_values, label="values")
    _check_chunked_against_one_shot(data, values, head)


def tables_and_peak(values: list[str]) -> tuple[mask._MaskTables | None, int]:
    """A masker's tables over ``values``, and the peak memory allocated building them."""
    tracemalloc.start()
    try:
        masker = Masker(values)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return masker._tables, peak


def table_bytes(tables: mask._MaskTables) -> int:
    """The bytes the tables hold apart from the long values themselves: the
    heads (the short values are heads), the regex's prefixes and its pattern."""
    return (sum(len(h) for h in tables.heads) + sum(len(p) for p in tables.lengths)
            + len(tables.regex.pattern))


def table_objects(tables: mask._MaskTables) -> int:
    """The Python objects in the tables, containers' entries counted one each."""
    return len(tables.heads) + len(tables.short) + len(tables.lengths) + len(tables.long_values)


def test_tables_grow_with_the_number_of_values_not_their_length() -> None:
    """A size check, not a timing one: the tables hold the heads (at most
    _PREFIX_LEN bytes per value) and a regex over a part of them, and building
    over 10 x 60 KB values allocates a small multiple of the values themselves."""
    rng = random.Random(5)
    values = [fake_value(rng, 60_000) for _ in range(10)]
    total = sum(len(v) for v in values)
    tables, peak = tables_and_peak(values)
    assert tables is not None
    assert len(tables.heads) <= len(values)
    assert table_bytes(tables) <= 3 * len(values) * P + 64  # escapes, groups
    assert table_objects(tables) <= 4 * len(values)
    assert len(tables.regex.pattern) <= 2 * len(values) * P + 64  # escapes, groups
    assert peak < 4 * total  # the old automaton took about 300 bytes per value byte
    # Many values (and their pty forms): still bounded by values x head length.
    many = [fake_value(rng, rng.randint(100, 2000)) + "\n-" for _ in range(2000)]
    tables = Masker(many)._tables
    assert tables is not None
    assert len(tables.heads) <= 2 * len(many)
    assert table_bytes(tables) <= 3 * 2 * len(many) * P
    assert table_objects(tables) <= 4 * 2 * len(many)
    sample = b" # ".join(v.encode() for v in many[::97])
    assert mask_all(sample, many, [4096]) == b" # ".join([M] * len(many[::97]))


def fake_short_values(count: int) -> list[str]:
    return [f"fake-value-{i:05d}-" + "x" * 20 for i in range(count)]


def test_ten_thousand_short_values() -> None:
    """A scope of 10,000 (fake) secrets: every value is masked wherever the
    stream is cut, near misses pass through, and the tables hold no Python
    object per byte (the automaton they replace had 221,123 dict nodes here,
    and building it peaked at about 60 MiB)."""
    values = fake_short_values(10_000)
    total = sum(len(v) for v in values)
    tables, peak = tables_and_peak(values)
    assert tables is not None
    assert len(tables.heads) == len(values)
    assert table_bytes(tables) <= 3 * total
    assert table_objects(tables) <= 4 * len(values)
    assert len(tables.regex.pattern) <= 8 * mask._REGEX_NODES
    assert peak < 16 * total  # about 7x: the heads, a set and a list of them, one dict
    rng = random.Random(6)
    pieces: list[bytes] = []
    expected: list[bytes] = []
    for value in rng.sample(values, 300):
        pad = filler(rng, rng.randint(0, 40))
        raw = value.encode()
        near = raw[:-1] + b"#" if rng.random() < 0.3 else b""  # all of a value but its last byte
        pieces += [pad, near, raw]
        expected += [pad, near, M]
    for miss in (b"fake-value-10000-" + b"x" * 20, b"fake-value-0000-" + b"x" * 20, b"fake-value-"):
        pieces += [b" ", miss]
        expected += [b" ", miss]
    data = b"".join(pieces)
    assert mask_all(data, values) == b"".join(expected)
    # Cuts that fall inside values (one at every offset of a value, for 37).
    for chunks in ([1], [37], [7, 4096], [30, 31, 32]):
        assert mask_all(data, values, chunks) == b"".join(expected), chunks
    for seed in range(5):
        chunks = random_chunks(random.Random(seed), len(data), 500)
        assert mask_all(data, values, chunks) == b"".join(expected), seed
    # The pty form of a multi-line value among them.
    lines = [*values[:5000], "fake\nmulti-line\nvalue"]
    data = b"a fake\r\nmulti-line\r\nvalue b fake\nmulti-line\nvalue c " + values[4999].encode()
    assert mask_all(data, lines, [5]) == b"a " + M + b" b " + M + b" c " + M


def test_values_sharing_a_long_beginning() -> None:
    """Values that all begin with the same 40 bytes, short and long, some the
    beginning of others: the regex is then 40 bytes deep before it branches."""
    rng = random.Random(7)
    shared = fake_value(rng, 40)
    values = sorted({shared + fake_value(rng, rng.randint(1, 60), head="") for _ in range(150)})
    values += [shared + "-end", shared + "-end-and-more", shared + "-" + "y" * 100,
               shared + "-" + "y" * 23, shared + "-" + "y" * 200]
    pieces = []
    for _ in range(400):
        value = rng.choice(values).encode()
        pieces.append(filler(rng, rng.randint(0, 5)))
        roll = rng.random()
        if roll < 0.5:
            pieces.append(value)
        elif roll < 0.7:
            pieces.append(value[:rng.randint(0, len(value))])  # a beginning of one
        elif roll < 0.85:
            pieces.append(shared.encode()[:rng.randint(30, 40)])  # a beginning of all
        else:
            pieces.append(value + rng.choice(values).encode())  # two back to back
    data = b"".join(pieces)
    expected = reference(data, values)
    assert expected.count(M) > 200
    for chunks in (None, [1], [3, 40, 41], [P - 1, P, P + 1], [39], [4096]):
        assert mask_all(data, values, chunks) == expected, chunks
    for seed in range(10):
        assert mask_all(data, values, random_chunks(random.Random(seed), len(data), 300)) == expected


_shared = st.text(_alphabet, min_size=1, max_size=8)
_tails = st.lists(st.text(_alphabet, max_size=6), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_chunked_masking_equals_one_shot_with_a_shared_beginning(data: st.DataObject) -> None:
    """The property above with values that all begin alike (a regex as deep
    as the heads, or stopping at the shortest), heads of 1 to 10 bytes."""
    head = data.draw(st.integers(1, 10), label="head length")
    shared = data.draw(_shared, label="shared")
    values = [shared + tail for tail in data.draw(_tails, label="tails")]
    _check_chunked_against_one_shot(data, values, head)


def test_regex_special_bytes_in_a_character_class() -> None:
    """Values that differ only in their last byte, where the regex puts a
    character class: the bytes special there are escaped."""
    specials = ["]", "^", "-", "\\", "[", ".", "\x00", "\t", "é", "\udcff"]
    values = ["abc" + s for s in specials]
    data = " ".join([*values, "abc_", "abca", "abc", "ab]"]).encode("utf-8", "surrogateescape")
    expected = b" ".join([M] * len(values) + [b"abc_", b"abca", b"abc", b"ab]"])
    for chunks in (None, [1], [2, 3]):
        assert mask_all(data, values, chunks) == expected, chunks


def test_regex_depth_counts_the_trie_nodes() -> None:
    """_prefix_length against a plain count of the distinct prefixes of each
    length, with heads that are prefixes of others and that contain NUL bytes."""
    rng = random.Random(8)
    for trial in range(300):
        alphabet = rng.choice([b"ab", b"\x00\x01", b"abc\x00\xff"])
        common = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
        heads = sorted({common + bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
                        for _ in range(rng.randint(1, 40))})
        budget = rng.choice([1, 5, 20, 100])
        shortest = min(len(h) for h in heads)
        depth = nodes = 0
        while depth < shortest:
            distinct = len({h[:depth + 1] for h in heads})
            if depth and nodes + distinct > budget:
                break
            nodes += distinct
            depth += 1
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(mask, "_REGEX_NODES", budget)
            assert mask._prefix_length(heads) == depth, (trial, heads, budget)
