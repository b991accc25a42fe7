"""Short fuzz runs of every parser that reads untrusted bytes, and the fast scope-file path.

Any exception other than a ``SecretStoreError`` subclass escaping a parser is a
bug: the CLI would report it as an internal error instead of a one-line reason.
``scripts/fuzz`` runs the same targets for longer (SECRETSTORE_FUZZ_EXAMPLES).

The fast reader and writer of ``scopefile`` (``parse_canonical``,
``serialize_canonical``) must agree with the reference path (tomllib and the
checks of FORMAT.md; tomli_w) on every document either accepts.
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretstore import crypto, formats, scopefile
from secretstore.errors import SecretStoreError
from secretstore.keys import Identity, b64url
from secretstore.scopefile import Entry, ScopeFile, SealedKey, Version

EXAMPLES = int(os.environ.get("SECRETSTORE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- strategies for scope files ---------------------------------------------

# Text that can be encoded as UTF-8 (no lone surrogates); escapes and controls included.
any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
timestamps = st.builds(
    lambda d, s: f"2026-{d:02d}-01T00:00:{s:02d}Z",
    st.integers(1, 12),
    st.integers(0, 59),
)
updated_text = timestamps  # FORMAT.md: a reader refuses any other spelling of a time
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,11}", fullmatch=True)
scope_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,10}", fullmatch=True).filter(
    lambda text: ".." not in text
)


# Valid ssk2 keys (an X25519 key and an Ed25519 key on the curve), made once: deriving them
# per draw would make every example slow.
PUBLIC_KEYS = [Identity(bytes([n]) * 32).public_text for n in range(1, 9)]
writers = st.one_of(st.none(), st.sampled_from(PUBLIC_KEYS))


@st.composite
def versions(draw: st.DrawFn, updated: str | None = None, writer: str | bool | None = False) -> Version:
    return Version(
        updated if updated is not None else draw(updated_text),
        draw(st.binary(min_size=crypto.NONCE_BYTES, max_size=crypto.NONCE_BYTES)),
        draw(st.binary(min_size=crypto.TAG_BYTES + 1, max_size=48)),
        draw(writers) if writer is False else writer,  # type: ignore[arg-type]
    )


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    updated = draw(updated_text)
    history = tuple(draw(st.lists(versions(), max_size=2)))
    writer = draw(writers)
    rotate = draw(st.booleans())
    if history and draw(st.booleans()):
        return Entry(None, updated, history, writer, rotate)
    return Entry(draw(versions(updated, writer)), updated, history, writer, rotate)


@st.composite
def scope_files(draw: st.DrawFn, version: str = scopefile.FORMAT_V2) -> ScopeFile:
    entity = draw(st.sampled_from(["team", "project", "cluster"]))
    scope_id = None if entity == "team" else draw(scope_ids)
    # valid public keys and labels only: FORMAT.md makes a reader refuse anything else
    keys = draw(st.lists(st.sampled_from(PUBLIC_KEYS), min_size=1, max_size=3, unique=True))
    recipients = [
        SealedKey(
            key,
            draw(st.binary(min_size=crypto.SEALED_KEY_BYTES, max_size=crypto.SEALED_KEY_BYTES)),
            draw(st.one_of(st.just(""), any_text.filter(str.isprintable))),
        )
        for key in keys
    ]
    chosen = draw(st.dictionaries(names, entries(), max_size=4))
    return ScopeFile(
        entity,
        scope_id,
        recipients,
        dict(sorted(chosen.items())),
        draw(st.binary(min_size=crypto.MAC_BYTES, max_size=crypto.MAC_BYTES)),
        store_id=b64url(draw(st.binary(min_size=16, max_size=16))),
        counter=draw(st.integers(1, scopefile.MAX_COUNTER)),
        signer=draw(st.sampled_from(PUBLIC_KEYS)),
        signature=draw(st.binary(min_size=crypto.SIGNATURE_BYTES, max_size=crypto.SIGNATURE_BYTES)),
        version=version,
    )


def reference(data: bytes) -> ScopeFile | SecretStoreError:
    try:
        return scopefile.parse_reference(data, "fuzz.toml")
    except SecretStoreError as exc:
        return exc


# --- mutations ----------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few byte-level edits: flips, deletions, duplications, insertions."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        if not out:
            break
        at = draw(st.integers(0, len(out) - 1))
        kind = draw(st.sampled_from(["flip", "delete", "duplicate", "insert", "truncate"]))
        if kind == "flip":
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 40))]
        elif kind == "duplicate":
            out[at:at] = out[at : at + draw(st.integers(1, 200))]
        elif kind == "insert":
            out[at:at] = draw(
                st.sampled_from([b'"', b"\\", b"\n", b"\r\n", b"#", b"=", b"[", b"]", b"\x00",
                                 b" ", b"\t", b"\xff", "\u00e9".encode(), b"deleted = true\n"])
            )
        else:
            del out[at:]
    return bytes(out)


# --- the scope-file parser ------------------------------------------------------


@FUZZ
@given(scope_files())
def test_fast_writer_matches_tomli_w_and_reads_back(scope: ScopeFile) -> None:
    reference_bytes = scopefile.serialize_with_tomli_w(scope)
    fast = scopefile.serialize_canonical(scope)
    if fast is not None:
        assert fast == reference_bytes
    assert scopefile.serialize(scope) == reference_bytes
    assert scopefile.parse(reference_bytes, "fuzz.toml") == scope
    assert reference(reference_bytes) == scope


@FUZZ
@given(st.data())
def test_fast_reader_agrees_with_reference_on_mutated_files(data: st.DataObject) -> None:
    scope = data.draw(scope_files())
    original = scopefile.serialize(scope)
    damaged = data.draw(mutated(original))
    fast = scopefile.parse_canonical(damaged)
    expected = reference(damaged)
    if fast is not None:
        assert fast == expected, "the fast path accepted what the reference reads differently"
    try:
        got: ScopeFile | SecretStoreError = scopefile.parse(damaged, "fuzz.toml")
    except SecretStoreError as exc:
        got = exc
    if isinstance(got, ScopeFile) and got.version == scopefile.FORMAT_V3:
        # The reference refuses every version-3 file (only the exact layout is read, by
        # parse_v3): a mutation that yields one (a v2 file with no entries and "v2" made "v3")
        # must be exactly the bytes a writer would give for what was read.
        assert scopefile.serialize_v3(got, lambda digest: (got.mac, got.signature)) == damaged
        return
    if isinstance(expected, SecretStoreError):
        assert isinstance(got, SecretStoreError)
        assert type(got) is type(expected) and str(got) == str(expected)
    else:
        assert got == expected


def _v3_bytes(scope: ScopeFile) -> bytes:
    """``scope`` written as version 3, its MAC and signature kept as drawn (nothing here verifies them)."""
    return scopefile.serialize_v3(scope, lambda _digest: (scope.mac, scope.signature))


@FUZZ
@given(scope_files(scopefile.FORMAT_V3))
def test_v3_writer_and_reader_round_trip(scope: ScopeFile) -> None:
    data = _v3_bytes(scope)
    read = scopefile.parse(data, "fuzz.toml")
    assert read == scope  # history included: each chunk is read and checked against its entry
    assert read.digest == scope.digest
    assert _v3_bytes(read) == data  # unread history is carried over byte for byte


@FUZZ
@given(st.data())
def test_v3_damage_never_changes_what_the_signature_covers(data: st.DataObject) -> None:
    """A mutated version-3 file is refused, or its signed digest differs (so the signature
    fails), or the damage is in the history alone: then every current value and name is the
    original's, and each name's history is the original's or is refused when read."""
    scope = data.draw(scope_files(scopefile.FORMAT_V3))
    original = _v3_bytes(scope)
    damaged = data.draw(mutated(original))
    try:
        read = scopefile.parse(damaged, "fuzz.toml")
    except SecretStoreError:
        return
    if read.digest != scope.digest:
        return
    assert [(n, e.current, e.updated, e.writer, e.rotate) for n, e in read.entries.items()] == [
        (n, e.current, e.updated, e.writer, e.rotate) for n, e in scope.entries.items()
    ]
    assert (read.recipients, read.counter, read.signer, read.store_id) == (
        scope.recipients, scope.counter, scope.signer, scope.store_id)
    for name, entry in read.entries.items():
        try:
            history = entry.history
        except SecretStoreError:
            continue
        assert history == scope.entries[name].history


@FUZZ
@given(st.data())
def test_v3_quick_read_agrees_with_the_full_parse(data: st.DataObject) -> None:
    """``parse_quick`` (list's and exec's one-scan read) accepts a mutated version-3 file only
    when the full parse does, with the same head and the same live rows."""
    scope = data.draw(scope_files(scopefile.FORMAT_V3))
    damaged = data.draw(mutated(_v3_bytes(scope)))
    end = damaged.find(scopefile.BODY_END)
    body = damaged if end < 0 else damaged[:end]
    quick = scopefile.parse_quick(body, "fuzz.toml")
    if quick is None:
        return
    full = scopefile._parse_v3(damaged, "fuzz.toml")
    assert full is not None, "the quick read accepted a file the full parse refuses"
    file, rows = quick
    assert (file.digest, file.recipients, file.counter, file.signer) == (
        full.digest, full.recipients, full.counter, full.signer)
    assert [(name, updated, writer, scopefile._a2b_strict(nonce), scopefile._a2b_strict(ciphertext), rotate)
            for name, updated, writer, nonce, ciphertext, rotate in rows] == [
        (name, e.updated, e.writer, e.current.nonce, e.current.ciphertext, e.rotate)
        for name, e in full.entries.items() if e.current is not None]


@FUZZ
@given(st.binary(max_size=400))
def test_scope_parser_raises_only_its_own_errors_on_bytes(data: bytes) -> None:
    try:
        scopefile.parse(data, "fuzz.toml")
    except SecretStoreError:
        pass


toml_ish = st.lists(
    st.sampled_from([
        'format = "secretstore/v1"\n', 'format = "secretstore/v9"\n', 'entity = "team"\n',
        'entity = "project"\n', 'id = "p1"\n', 'mac = "AAAA"\n', "[[recipients]]\n",
        'public_key = "ssk1x"\n', 'label = "\\u00e9"\n', 'sealed_key = "AAAA"\n',
        "[secrets.A]\n", "[secrets]\n", "[[secrets.A.history]]\n", 'updated = "t"\n',
        'nonce = "AAAA"\n', 'ciphertext = "AAAA"\n', "deleted = true\n", "deleted = 1\n",
        "history = []\n", "history = [{}]\n", "secrets = 3\n", "recipients = [1]\n",
        "x = [[[[[[[[]]]]]]]]\n", "y = {a = {b = 1}}\n", "\n", "# c\n", "=\n", '"\n',
    ]),
    max_size=25,
).map(lambda lines: "".join(lines).encode())


@FUZZ
@given(toml_ish)
def test_scope_parser_raises_only_its_own_errors_on_toml_shapes(data: bytes) -> None:
    try:
        scopefile.parse(data, "fuzz.toml")
    except SecretStoreError:
        pass


def test_deep_nesting_is_a_format_error_not_a_recursion_error() -> None:
    """Found by this suite: tomllib raised RecursionError out of scopefile.parse."""
    for opener in (b"[", b"{a="):
        try:
            scopefile.parse(b"a = " + opener * 5000, "deep.toml")
        except SecretStoreError as exc:
            assert "deep.toml" in str(exc)
        else:
            raise AssertionError("a deeply nested file was accepted")


# --- import's .env and JSON parsers -------------------------------------------------

dotenv_ish = st.lists(
    st.one_of(
        st.sampled_from([
            "A=1", "export B=2", "C='x'", 'D="y\\n"', "E='unterminated", 'F="multi\nline"',
            "#comment", "  ", "G", "=H", "I=${J}", "K = 'a' # c", "\\", "'", '"', "L=\\'",
            "M=\"\\u00e9\"", "\ufeffN=1", "O=\r", "P='\\''", "export", "export =",
        ]),
        any_text,
    ),
    max_size=12,
).map("\n".join)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(any_text, children, max_size=3),
    max_leaves=10,
)


@st.composite
def json_ish(draw: st.DrawFn) -> str:
    text = json.dumps(draw(json_values), ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()) and text:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["", "{", "}", '"', "\\", ",", "\\u12", "1e999999",
                                                 "[" * 3000, "9" * 5000])) + text[at:]
    return text


def _parse_import_only_own_errors(text: str, source: str, fmt: str | None) -> None:
    try:
        result = formats.parse_import(text, source=source, fmt=fmt)
    except SecretStoreError:
        return
    assert isinstance(result, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())


@FUZZ
@given(dotenv_ish, st.sampled_from([None, "dotenv"]))
def test_dotenv_import_raises_only_its_own_errors(text: str, fmt: str | None) -> None:
    _parse_import_only_own_errors(text, "fuzz.env", fmt)


@FUZZ
@given(st.one_of(json_ish(), any_text), st.sampled_from([None, "json"]))
def test_json_import_raises_only_its_own_errors(text: str, fmt: str | None) -> None:
    _parse_import_only_own_errors(text, "fuzz.json", fmt)


@FUZZ
@given(st.text(max_size=200), st.sampled_from([None, "dotenv", "json"]))
def test_import_raises_only_its_own_errors_on_any_text(text: str, fmt: str | None) -> None:
    _parse_import_only_own_errors(text, "fuzz.txt", fmt)
