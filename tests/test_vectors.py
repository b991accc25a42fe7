"""Every vector in tests/vectors/ opens, or fails closed, exactly as its ``expect:`` header says.

Each vector is checked three ways:

- by ``tests/reference_reader.py``, written from FORMAT.md alone (it shares no
  code with secretstore), so a bug in both the library's writer and its reader
  (a framing slip, a wrong key derivation) fails here;
- by the library in-process: ``Store.unlock`` and a decryption of every value,
  history included (a version-3 or -4 name under ``history-refused``: its history is
  refused, by both readers), for scope files; ``Store.roster`` and the writers it
  vouches for, for rosters; the identity file reader; ``Store.from_snapshot``.
  Scope files and rosters are checked both as the whole vector file (header
  comments included, so the reference TOML path parses it) and as the file's
  bytes alone (the writer's exact output, so the fast path parses it; a
  version-3 or -4 file is only its bytes alone: with the header in front it
  is refused, ``expected_scope``). The
  reader's trust state is set up as the header says (``trusted``,
  ``reader-revoked``, ``store-id``, ``signed-seen``, ``seen-counter``,
  ``roster``);
- through the real console script: ``get`` and ``exec`` on every scope file,
  ``recipients list`` on every roster, ``identity`` and ``get`` with every
  identity file. A refused file exits 1 with one ``secretstore: error:`` line
  (and at most a hint line), no traceback, no value on either stream, and
  ``exec`` never runs its program.

Where the library does not do what FORMAT.md says, the case is marked
``xfail(strict=True)`` with the reason in ``LIBRARY_DISAGREES`` (reported,
not hidden: the expectation stays FORMAT.md's, and the mark fails as soon as
the library is fixed, so it gets removed).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from secretstore import scopefile
from secretstore.errors import (
    IdentityError,
    NotRecipientError,
    RollbackError,
    SecretStoreError,
    StoreFormatError,
    TamperedError,
    TrustError,
    UnmergedError,
    UnsignedFileError,
    UnsupportedVersionError,
    WrongKeyError,
)
from secretstore.identity import Identity, parse_identity_text, read_key_file, unlock
from secretstore.keys import PublicKey
from secretstore.snapshot import Snapshots
from secretstore.store import Scope, Store
from tests import reference_reader as rr

VECTORS = Path(__file__).parent / "vectors"
REPO = Path(__file__).resolve().parent.parent
SUFFIXES = {"scope": ".toml", "roster": ".toml", "identity": ".txt", "snapshot": ".bin"}
TEST_IDENTITIES = ("identity-a", "identity-b", "identity-c", "identity-d")
EXPECTATIONS = {
    "scope": {
        rr.SUCCESS, rr.UNMERGED, rr.PARSE_ERROR, rr.UNSUPPORTED, rr.SIGNATURE_FAILURE, rr.UNTRUSTED,
        rr.ROLLBACK, rr.UNSIGNED, rr.NOT_A_RECIPIENT, rr.DECRYPT_FAILURE, rr.MAC_FAILURE,
    },
    "roster": {
        rr.SUCCESS, rr.UNMERGED, rr.PARSE_ERROR, rr.UNSUPPORTED, rr.SIGNATURE_FAILURE, rr.UNTRUSTED,
        rr.ROLLBACK, rr.UNSIGNED,
    },
    "identity": {rr.SUCCESS, rr.PARSE_ERROR, rr.WRONG_PASSPHRASE, rr.KEY_MISMATCH},
    "snapshot": {rr.SUCCESS, rr.MISS, rr.UNTRUSTED, rr.ROLLBACK},
}

# Cases where the library does not do what FORMAT.md says (see the module docstring): none now
# (version 4's parse_reference dropped each entry's history and refused deleted names: fixed).
LIBRARY_DISAGREES: dict[str, str] = {}
# Where ``get`` alone does not do what FORMAT.md says (none: kept for the next one found).
GET_DISAGREES: dict[str, str] = {}
# Where ``exec`` alone does not (none).
EXEC_DISAGREES: dict[str, str] = {}
# Where the library does not, reading a vector's bytes alone (none).
BYTES_DISAGREES: dict[str, str] = {}
# Where the library does not, reading the whole vector file (header comments in front): none now.
WHOLE_DISAGREES: dict[str, str] = {}
# Scope files run through the console script by default; every other one with --run-slow.
CLI_CASES = {
    "success-team", "success-project-opened-by-b", "success-cluster-history-deleted", "success-no-secrets",
    "success-after-rotation", "success-ssk1-recipient", "success-written-by-vouched-member",
    "success-written-by-scoped-member", "success-explicit-trust-beats-roster-revocation",
    "legacy-unsigned-team", "legacy-unsigned-opened-by-b",
    "untrusted-writer-not-trusted", "untrusted-writer-outsider", "untrusted-forged-endorsement",
    "untrusted-revoked-in-roster", "untrusted-scoped-member-outside-scope", "untrusted-member-revoked-by-reader",
    "untrusted-roster-signed-by-outsider", "untrusted-roster-rolled-back", "untrusted-file-of-another-store",
    "rollback-older-counter", "rollback-replayed-before-removal",
    "flip-signature", "signature-by-another-key", "flip-ciphertext", "flip-store", "flip-counter", "swap-values",
    "truncate-before-last-entry", "mac-failure-flip-ciphertext", "mac-failure-readd-removed-recipient-seen-by-b",
    "legacy-unsigned-mac-failure", "decrypt-failure-swap-values", "decrypt-failure-move-value-from-project",
    "decrypt-failure-sealed-key", "not-a-recipient", "not-a-recipient-after-removal",
    "truncate-in-ciphertext", "truncate-after-nonce", "truncate-empty", "unknown-field-entry", "flip-id",
    "flip-utf8", "counter-huge-integer", "recipient-low-order-key", "label-control-characters",
    "future-version", "unmerged-names", "unmerged-whole-file",
    "legacy-unsigned-after-signed-seen", "legacy-unsigned-store-holds-signed-roster",
    "v3-success-team", "v3-history-truncated", "v3-reformatted", "v3-untrusted-writer", "v3-mac-failure",
    "v4-success-sections", "v4-success-unsealed-tail", "v4-rollback-cut-at-an-earlier-seal",
    "v4-flip-section-update", "v4-untrusted-last-signer", "v4-mac-failure", "v4-head-counter-line",
}
ROSTER_CLI_CASES = {
    "valid", "signed-by-vouched-member", "signed-by-outsider", "valid-read-by-b-alone", "valid-older",
    "valid-other-store", "flip-signature", "revoked-and-member", "unknown-field-top", "future-version",
    "unmerged", "members-not-sorted", "legacy", "legacy-after-signed-seen",
}
IDENTITY_CLI_CASES = {
    "unprotected", "unprotected-bad-checksum", "no-key", "protected-interactive", "protected-wrong-passphrase",
    "protected-key-mismatch", "protected-version-1", "protected-opslimit-too-high", "protected-memlimit-too-high",
}
CLI = {"scope": CLI_CASES, "roster": ROSTER_CLI_CASES, "identity": IDENTITY_CLI_CASES}


class Vector:
    """One vector file: its header (``# key: value`` lines up to ``# ---``) and the bytes after it."""

    def __init__(self, path: Path) -> None:
        self.kind = path.parent.name
        self.name = f"{self.kind}/{path.stem}"
        self.raw = path.read_bytes()
        head, sep, self.body = self.raw.partition(b"# ---\n")
        assert sep, f"{self.name}: no '# ---' line ending the header"
        self.header: dict[str, str] = {}
        for line in head.decode("ascii").splitlines():
            assert line.startswith("# ") and ": " in line, f"{self.name}: bad header line {line!r}"
            key, value = line[2:].split(": ", 1)
            assert key not in self.header, f"{self.name}: {key} twice"
            self.header[key] = value
        self.expect = self.header["expect"]

    def __repr__(self) -> str:
        return f"Vector({self.name})"

    def get(self, key: str) -> str | None:
        return self.header.get(key)

    def names(self, key: str) -> list[str]:
        return (self.get(key) or "").split()

    def number(self, key: str) -> int | None:
        value = self.get(key)
        return None if value is None else int(value)

    def json(self, key: str) -> object:
        value = self.get(key)
        return None if value is None else json.loads(value)

    @property
    def relpath(self) -> str:
        return self.header["path"]

    @property
    def scope(self) -> Scope:
        entity, scope_id = rr.scope_of_path(self.relpath)
        return Scope(entity, scope_id)

    @property
    def values(self) -> dict[str, str] | None:
        return self.json("values")  # type: ignore[return-value]

    @property
    def roster(self) -> bytes | None:
        name = self.get("roster")
        return None if name is None else load(name).body


def load(name: str) -> Vector:
    kind = name.split("/")[0]
    return Vector(VECTORS / f"{name}{SUFFIXES[kind]}")


def collect(kind: str) -> list[Vector]:
    return [Vector(path) for path in sorted((VECTORS / kind).glob(f"*{SUFFIXES[kind]}"))]


ALL = {kind: collect(kind) for kind in SUFFIXES}


def params(kind: str) -> list[object]:
    """One pytest param per vector; the library's known disagreements are strict xfails."""
    out = []
    for vector in ALL[kind]:
        out.append(pytest.param(vector, id=vector.name.split("/", 1)[1]))
    return out


def library_params(kind: str, disagrees: dict[str, str] | None = None, *, cli: bool = False) -> list[object]:
    """The vectors of ``kind`` for a check of the library (``cli``: through the console script)."""
    known = {**LIBRARY_DISAGREES, **(disagrees or {})}
    out = []
    for vector in ALL[kind]:
        marks: list[pytest.MarkDecorator] = []
        if vector.name in known:
            marks.append(pytest.mark.xfail(strict=True, reason=known[vector.name]))
        if cli and vector.name.split("/", 1)[1] not in CLI[kind]:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(vector, id=vector.name.split("/", 1)[1], marks=marks))
    return out


# --- the test identities -------------------------------------------------------------------


def identity_text(name: str) -> str:
    return (VECTORS / name).read_text("ascii")


def library_identity(name: str) -> Identity:
    return parse_identity_text(identity_text(name), name)


def secret_key(name: str) -> bytes:
    return rr.read_identity((VECTORS / name).read_bytes()).secret_key


def public_text(name: str) -> str:
    """A test identity's ssk2 key, as the reference reader derives it."""
    return rr.public_key_of(secret_key(name)).text


def every_value() -> set[str]:
    """Every plaintext value a vector holds: none may appear in the output of a refused read."""
    found: set[str] = set()
    for vector in ALL["scope"] + ALL["snapshot"]:
        found.update((vector.values or {}).values())
        history = vector.json("history") or {}
        assert isinstance(history, dict)
        for versions in history.values():
            found.update(versions)
    return {value for value in found if len(value) >= 4}  # "v" is in every message


VALUES = every_value()


def test_vectors_are_present_and_well_formed() -> None:
    counts = {kind: len(vectors) for kind, vectors in ALL.items()}
    assert counts["scope"] >= 100 and counts["roster"] >= 30, counts
    assert counts["identity"] >= 15 and counts["snapshot"] >= 10, counts
    for kind, vectors in ALL.items():
        assert {vector.expect for vector in vectors} == EXPECTATIONS[kind], kind
        for vector in vectors:
            if vector.expect == rr.SUCCESS and kind in ("scope", "snapshot"):
                assert vector.values is not None, vector.name
    for name in TEST_IDENTITIES:
        assert "TEST-ONLY" in identity_text(name)
    names = {vector.name for vectors in ALL.values() for vector in vectors}
    assert set(LIBRARY_DISAGREES) | set(GET_DISAGREES) | set(EXEC_DISAGREES) | set(BYTES_DISAGREES) <= names
    assert set(WHOLE_DISAGREES) <= names and not set(WHOLE_DISAGREES) & set(LIBRARY_DISAGREES)
    for kind, chosen in CLI.items():
        assert {f"{kind}/{name}" for name in chosen} <= names
        assert {load(f"{kind}/{name}").expect for name in chosen} == EXPECTATIONS[kind]


def test_the_test_identities_are_the_same_key_to_both_readers() -> None:
    """The reference reader derives the same ssk2 key (X25519 and Ed25519 halves) as the library."""
    for name in TEST_IDENTITIES:
        ours = library_identity(name)
        assert public_text(name) == ours.public_text
        assert rr.parse_public_key(ours.public_text).sign == ours.public.sign_key
        assert f"# public key: {ours.public_text}" in identity_text(name)


def test_the_reference_reader_shares_no_code_with_secretstore() -> None:
    tree = ast.parse((Path(__file__).parent / "reference_reader.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    allowed = {"__future__", "base64", "binascii", "dataclasses", "hashlib", "hmac", "nacl", "re",
               "tomllib", "typing", "unicodedata"}
    assert imported <= allowed, imported - allowed


# --- the reader's trust state, from the header ---------------------------------------------


def reference_reader(vector: Vector, identity: str | None, files: dict[str, bytes]) -> rr.Reader:
    counters = {}
    if vector.number("seen-counter") is not None:
        counters[vector.relpath] = vector.number("seen-counter")
    if vector.number("roster-seen-counter") is not None:
        counters[rr.ROSTER_PATH] = vector.number("roster-seen-counter")
    return rr.Reader(
        secret_key=None if identity is None else secret_key(identity),
        trusted=tuple(public_text(name) for name in vector.names("trusted")),
        revoked=tuple(public_text(name) for name in vector.names("reader-revoked")),
        store_id=vector.get("store-id"),
        counters=counters,  # type: ignore[arg-type]
        signed_seen=vector.get("signed-seen") == "yes",
        store_files=files,
    )


def set_up_trust(store: Store, me: Identity, vector: Vector) -> None:
    """The library's trust state for ``me`` in ``store``, as the header says."""
    trust = store.trust(me.public)
    for name in vector.names("trusted"):
        trust.trust_key(PublicKey.decode(public_text(name)))
    for name in vector.names("reader-revoked"):
        trust.untrust_key(PublicKey.decode(public_text(name)))
    seen, roster_seen = vector.number("seen-counter"), vector.number("roster-seen-counter")

    def change(state) -> None:  # type: ignore[no-untyped-def]
        if vector.get("store-id") is not None:
            state.store_id = vector.get("store-id")
        if vector.get("signed-seen") == "yes":
            state.signed = True
        if seen is not None:
            state.counters[vector.relpath] = seen
        if roster_seen is not None:
            state.counters["recipients.toml"] = roster_seen

    trust.state.update(change)


def place(root: Path, relpath: str, data: bytes) -> None:
    target = root / relpath
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.write_bytes(data)
    target.chmod(0o600)


def category(error: SecretStoreError) -> str:
    """The outcome a library error reports, in the vectors' words."""
    message = str(error)
    if isinstance(error, UnmergedError):
        return rr.UNMERGED
    if isinstance(error, UnsupportedVersionError):
        assert error.hint and "newer" in error.hint, error.hint
        return rr.UNSUPPORTED
    if isinstance(error, StoreFormatError):
        return rr.PARSE_ERROR
    if isinstance(error, RollbackError):
        return rr.ROLLBACK
    if isinstance(error, UnsignedFileError):
        return rr.UNSIGNED
    if isinstance(error, TrustError):
        return rr.UNTRUSTED
    if isinstance(error, NotRecipientError):
        return rr.NOT_A_RECIPIENT
    if isinstance(error, TamperedError):
        if "signature" in message:
            return rr.SIGNATURE_FAILURE
        return rr.MAC_FAILURE if "MAC" in message else rr.DECRYPT_FAILURE
    if isinstance(error, WrongKeyError):
        return rr.WRONG_PASSPHRASE
    if isinstance(error, IdentityError):
        return rr.KEY_MISMATCH if "does not match its public key" in message else rr.PARSE_ERROR
    return f"unexpected {type(error).__name__}: {message}"


def check_message(error: SecretStoreError) -> None:
    for text in (error.message, error.hint or ""):
        assert "\n" not in text
        assert not any(value in text for value in VALUES), text


# --- scope files -------------------------------------------------------------------------------


# (outcome, values, every earlier version a reader gives, the names whose earlier versions it refuses)
Outcome = tuple[str, dict[str, str] | None, dict[str, list[str]] | None, set[str] | None]


def reference_scope(vector: Vector, data: bytes) -> Outcome:
    files = {vector.relpath: data}
    if vector.roster is not None:
        files[rr.ROSTER_PATH] = vector.roster
    reader = reference_reader(vector, vector.header["identity"], files)
    try:
        opened = rr.read_scope_file(data, vector.relpath, reader)
        history, refused = {}, set()
        for name in opened.history_names():
            try:
                history[name] = rr.earlier_versions(opened, name)
            except rr.Refused as damaged:
                if damaged.reason != rr.HISTORY_DAMAGED:
                    raise
                refused.add(name)
        return rr.SUCCESS, opened.values, history, refused
    except rr.Refused as refused_file:
        return refused_file.reason, None, None, None


def library_history(entry: scopefile.Entry) -> tuple[scopefile.Version, ...] | None:
    """``entry.history``, or None when the library refuses it as edited or damaged (version 3)."""
    try:
        return entry.history
    except TamperedError as error:
        assert "earlier versions" in str(error), error
        check_message(error)
        return None


def library_scope(vector: Vector, data: bytes, root: Path) -> Outcome:
    notes: list[str] = []
    store = Store(str(root), emit=notes.append)
    place(root, vector.relpath, data)
    if vector.roster is not None:
        place(root, "recipients.toml", vector.roster)
    me = library_identity(vector.header["identity"])
    set_up_trust(store, me, vector)
    try:
        unlocked = store.unlock(vector.scope, me)
        assert unlocked is not None
        values = unlocked.values()
        history, refused = {}, set()
        for name, entry in unlocked.file.entries.items():
            versions = library_history(entry)
            if versions is None:
                refused.add(name)
            elif versions:
                history[name] = [scopefile.decrypt(unlocked.file, unlocked.keys, name, old, vector.relpath)
                                 for old in versions]
    except SecretStoreError as error:
        check_message(error)
        return category(error), None, None, None
    return rr.SUCCESS, values, history, refused


def signs_bytes(vector: Vector) -> bool:
    """A version-3 or -4 file as a writer lays it out (or as one was edited): it starts with its format line."""
    return vector.body.startswith((b'format = "secretstore/v3"\n', b'format = "secretstore/v4"\n'))


def expected_scope(vector: Vector, whole: bool = False) -> Outcome:
    if whole and signs_bytes(vector) and vector.expect not in (rr.PARSE_ERROR, rr.UNSUPPORTED):
        # FORMAT.md "Scope file, version 3" (and 4, "as with version 3"): other bytes than the
        # layout are refused, "however equal the document" (a signature failure, "Reading" rule 6);
        # the header's comment lines make them other bytes, and a version-4 file's unsealed tail is
        # then no longer told apart. A file that is not TOML at all is a parse error first (rule 2),
        # as is one whose fields break rule 5 (the vector's own outcome, kept above).
        try:
            tomllib.loads(vector.raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            return rr.PARSE_ERROR, None, None, None
        return rr.SIGNATURE_FAILURE, None, None, None
    if vector.expect != rr.SUCCESS:
        return vector.expect, None, None, None
    history = vector.json("history") or {}
    return rr.SUCCESS, vector.values, history, set(vector.names("history-refused"))  # type: ignore[return-value]


@pytest.mark.parametrize("vector", params("scope"))
@pytest.mark.parametrize("whole", [False, True], ids=["bytes", "whole"])
def test_scope_vector_reference_reader(vector: Vector, whole: bool) -> None:
    if whole and vector.expect == rr.UNMERGED:
        pytest.skip("the marker must be the file's first line; the header comes first")
    assert reference_scope(vector, vector.raw if whole else vector.body) == expected_scope(vector, whole)


@pytest.mark.parametrize("vector", library_params("scope"))
@pytest.mark.parametrize("whole", [False, True], ids=["bytes", "whole"])
def test_scope_vector_library(vector: Vector, whole: bool, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if whole and vector.expect == rr.UNMERGED:
        pytest.skip("the marker must be the file's first line; the header comes first")
    if not whole and vector.name in BYTES_DISAGREES:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=BYTES_DISAGREES[vector.name]))
    if whole and vector.name in WHOLE_DISAGREES:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=WHOLE_DISAGREES[vector.name]))
    got = library_scope(vector, vector.raw if whole else vector.body, tmp_path / "store")
    assert got == expected_scope(vector, whole)


def test_untouched_vectors_take_the_fast_reader() -> None:
    """The success vectors written by the canonical writer parse without tomllib, to the same file."""
    for name in ("success-team", "success-project-two-recipients", "success-cluster-history-deleted",
                 "success-no-secrets", "success-after-rotation", "success-written-by-scoped-member",
                 "success-ssk1-recipient", "flip-mac", "signature-by-another-key"):
        vector = load(f"scope/{name}")
        fast = scopefile.parse_canonical(vector.body)
        assert fast is not None, name
        assert fast == scopefile.parse_reference(vector.body, name)


HISTORY_CASES = (
    "v3-success-team", "v3-history-edited", "v3-history-truncated", "v3-history-extra-version",
    "v4-success-team", "v4-success-sections", "v4-success-unsealed-tail", "v4-history-edited-body-chunk",
    "v4-superseded-body-chunk-edited", "v4-section-chunk-edited", "v4-superseded-section-chunk-edited",
)


@pytest.mark.parametrize("name", HISTORY_CASES)
def test_earlier_versions_are_read_or_refused_alike_by_both_readers(name: str, tmp_path: Path) -> None:
    """FORMAT.md "Scope file, version 3", "Reading": current values never need the history region;
    a name's earlier versions are given only when the region is exactly the chunks and the name's
    chunk has the recorded length and digest, and then both readers give the same versions.
    Version 4 ("Scope file, version 4"): a name's chunk is its last update's, or its body entry's."""
    vector = load(f"scope/{name}")
    refused = set(vector.names("history-refused"))
    expected = vector.json("history") or {}
    assert isinstance(expected, dict)
    assert refused or expected, name
    reader = reference_reader(vector, vector.header["identity"], {vector.relpath: vector.body})
    opened = rr.read_scope_file(vector.body, vector.relpath, reader)
    assert opened.values == vector.values
    parsed = scopefile.parse(vector.body, vector.relpath)  # no key: the history is not read, so not refused
    root = tmp_path / "store"
    store = Store(str(root), emit=lambda _message: None)
    place(root, vector.relpath, vector.body)
    me = library_identity(vector.header["identity"])
    set_up_trust(store, me, vector)
    unlocked = store.unlock(vector.scope, me)
    assert unlocked is not None and unlocked.values() == vector.values
    assert set(opened.history_names()) == refused | set(expected)
    for secret in opened.history_names():
        if secret in refused:
            with pytest.raises(rr.Refused) as caught:
                rr.earlier_versions(opened, secret)
            assert caught.value.reason == rr.HISTORY_DAMAGED
            for file in (parsed, unlocked.file):
                with pytest.raises(TamperedError, match="earlier versions"):
                    _ = file.entries[secret].history
            continue
        ours = unlocked.file.entries[secret].history
        decrypted = [scopefile.decrypt(unlocked.file, unlocked.keys, secret, old, vector.relpath) for old in ours]
        assert rr.earlier_versions(opened, secret) == decrypted == expected[secret]
        theirs = rr.history_versions(opened.file, secret)
        assert [(old.updated, old.writer or "", old.nonce, old.ciphertext) for old in ours] == [
            (old.updated, old.writer, old.nonce, old.ciphertext) for old in theirs
        ]
        assert parsed.entries[secret].history == ours
    for secret, entry in unlocked.file.entries.items():  # names without earlier versions have none
        if secret not in refused | set(expected):
            assert entry.history == () and rr.history_versions(opened.file, secret) == []


# --- rosters ------------------------------------------------------------------------------------


def expected_roster(vector: Vector) -> tuple[str, set[str] | None, dict[str, set[str]] | None]:
    if vector.expect != rr.SUCCESS:
        return vector.expect, None, None
    scoped = vector.json("scoped")
    assert isinstance(scoped, dict)
    return (
        rr.SUCCESS,
        {public_text(name) for name in vector.names("store-wide")},
        {public_text(name): set(tags) for name, tags in scoped.items()},
    )


@pytest.mark.parametrize("vector", params("roster"))
@pytest.mark.parametrize("whole", [False, True], ids=["bytes", "whole"])
def test_roster_vector_reference_reader(vector: Vector, whole: bool) -> None:
    if whole and vector.expect == rr.UNMERGED:
        pytest.skip("the marker must be the file's first line; the header comes first")
    data = vector.raw if whole else vector.body
    reader = reference_reader(vector, vector.header["identity"], {rr.ROSTER_PATH: data})
    try:
        roster = rr.read_roster(data, reader)
        got: tuple[str, object, object] = (rr.SUCCESS, roster.store_wide, roster.scoped)
    except rr.Refused as refused:
        got = (refused.reason, None, None)
    assert got == expected_roster(vector)


@pytest.mark.parametrize("vector", library_params("roster"))
@pytest.mark.parametrize("whole", [False, True], ids=["bytes", "whole"])
def test_roster_vector_library(vector: Vector, whole: bool, tmp_path: Path) -> None:
    if whole and vector.expect == rr.UNMERGED:
        pytest.skip("the marker must be the file's first line; the header comes first")
    root = tmp_path / "store"
    store = Store(str(root), emit=lambda _message: None)
    place(root, "recipients.toml", vector.raw if whole else vector.body)
    me = library_identity(vector.header["identity"])
    set_up_trust(store, me, vector)
    try:
        assert store.roster(me.public) is not None
        store_wide, scoped, _revoked = store.trust(me.public)._derive()
        got: tuple[str, object, object] = (rr.SUCCESS, store_wide, scoped)
    except SecretStoreError as error:
        check_message(error)
        got = (category(error), None, None)
    assert got == expected_roster(vector)


# --- identity files --------------------------------------------------------------------------


def passphrase_of(vector: Vector) -> str | None:
    value = vector.json("passphrase")
    assert value is None or isinstance(value, str)
    return value


def reference_identity(data: bytes, passphrase: str | None) -> tuple[str, str | None]:
    try:
        found = rr.read_identity(data)
        named = found.public.text
        return rr.SUCCESS, rr.public_key_of(rr.unlock_identity(found, passphrase)).text
    except rr.Refused as refused:
        if refused.reason in (rr.WRONG_PASSPHRASE, rr.KEY_MISMATCH):
            return refused.reason, named
        return refused.reason, None


def expected_identity(vector: Vector) -> tuple[str, str | None]:
    return vector.expect, vector.get("public-key") if vector.expect != rr.PARSE_ERROR else None


@pytest.mark.parametrize("vector", params("identity"))
@pytest.mark.parametrize("whole", [False, True], ids=["bytes", "whole"])
def test_identity_vector_reference_reader(vector: Vector, whole: bool) -> None:
    got = reference_identity(vector.raw if whole else vector.body, passphrase_of(vector))
    assert got == expected_identity(vector)


def private_copy(data: bytes, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(data)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("vector", library_params("identity"))
@pytest.mark.parametrize("whole", [False, True], ids=["bytes", "whole"])
def test_identity_vector_library(vector: Vector, whole: bool, tmp_path: Path) -> None:
    path = private_copy(vector.raw if whole else vector.body, tmp_path / "identity")
    passphrase = passphrase_of(vector)
    named = None
    try:
        key = read_key_file(str(path))
        named = key.public_text
        got: tuple[str, str | None] = (rr.SUCCESS, unlock(key, str(path), lambda _prompt: passphrase).public_text)
    except SecretStoreError as error:
        check_message(error)
        assert passphrase is None or passphrase not in str(error)
        outcome = category(error)
        got = (outcome, named if outcome in (rr.WRONG_PASSPHRASE, rr.KEY_MISMATCH) else None)
    assert got == expected_identity(vector)


def test_a_version_1_protected_identity_is_rewritten_with_its_ssk2_key(tmp_path: Path) -> None:
    """FORMAT.md: a writer SHOULD rewrite it with the ssk2 key, the same salt and limits, a new nonce."""
    vector = load("identity/protected-version-1")
    path = private_copy(vector.body, tmp_path / "identity")
    before = rr.read_identity(vector.body)
    assert before.public.sign is None  # the line names the ssk1 key
    passphrase = passphrase_of(vector)
    assert unlock(read_key_file(str(path)), str(path), lambda _prompt: passphrase).public_text == vector.get("public-key")
    after = rr.read_identity(path.read_bytes())
    assert after.public.text == vector.get("public-key")
    assert (after.salt, after.opslimit, after.memlimit) == (before.salt, before.opslimit, before.memlimit)
    assert after.nonce != before.nonce
    assert rr.public_key_of(rr.unlock_identity(after, passphrase)).text == vector.get("public-key")


# --- snapshots -----------------------------------------------------------------------------------


def expected_snapshot(vector: Vector) -> tuple[str, dict[str, str] | None]:
    return vector.expect, vector.values if vector.expect == rr.SUCCESS else None


@pytest.mark.parametrize("vector", params("snapshot"))
def test_snapshot_vector_reference_reader(vector: Vector) -> None:
    me = secret_key(vector.header["identity"])
    assert rr.snapshot_name(rr.public_key_of(me).box, vector.header["store"], vector.relpath) == vector.get("file-name")
    file_bytes = load(vector.header["scope-file"]).body
    reader = reference_reader(vector, vector.header["identity"], {vector.relpath: file_bytes})
    try:
        values = rr.read_snapshot(vector.body, reader, vector.header["store"], vector.relpath, file_bytes)
        got = (rr.MISS, None) if values is None else (rr.SUCCESS, values)
    except rr.Refused as refused:
        got = (refused.reason, None)
    assert got == expected_snapshot(vector)


@pytest.mark.parametrize("vector", library_params("snapshot"))
def test_snapshot_vector_library(vector: Vector, tmp_path: Path) -> None:
    me = library_identity(vector.header["identity"])
    cache = tmp_path / "cache"
    snapshots = Snapshots(str(cache), me, vector.header["store"])
    assert os.path.basename(snapshots.path(vector.scope)) == vector.get("file-name")
    private_copy(vector.body, Path(snapshots.path(vector.scope)))
    store = Store(vector.header["store"], emit=lambda _message: None)
    set_up_trust(store, me, vector)
    file_bytes = load(vector.header["scope-file"]).body
    try:
        values = store.from_snapshot(vector.scope, file_bytes, me, snapshots)
        got = (rr.MISS, None) if values is None else (rr.SUCCESS, values)
    except SecretStoreError as error:
        check_message(error)
        got = (category(error), None)
    assert got == expected_snapshot(vector)


def test_generator_reproduces_the_committed_vectors() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen-vectors"), "--check"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr


# --- the console script ------------------------------------------------------------------------


def install_identity(isolated_env: dict[str, str], text: bytes) -> None:
    private_copy(text, Path(isolated_env["identity"]))


def prepare_store(vector: Vector, isolated_env: dict[str, str]) -> None:
    """The vector's file (and roster) in the CLI's store, its identity, and the trust state the header gives."""
    root = Path(isolated_env["store"])
    place(root, vector.relpath, vector.body)
    if vector.roster is not None:
        place(root, "recipients.toml", vector.roster)
    install_identity(isolated_env, (VECTORS / vector.header["identity"]).read_bytes())
    set_up_trust(Store(str(root), emit=lambda _message: None), library_identity(vector.header["identity"]), vector)


def assert_fails_closed(done: subprocess.CompletedProcess[bytes], vector: Vector, where: str) -> None:
    """Exit 1, nothing on stdout, one error line reporting the vector's outcome about ``where``."""
    stdout, stderr = done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
    assert done.returncode == 1, (done.returncode, stdout, stderr)
    assert stdout == ""
    # One error line, at most one hint after it; before it, only notices (a trust notice).
    lines = stderr.splitlines()
    errors = [index for index, line in enumerate(lines) if line.startswith("secretstore: error: ")]
    assert len(errors) == 1, stderr
    after = lines[errors[0] + 1:]
    assert len(after) <= 1 and all(line.startswith("secretstore: hint: ") for line in after), stderr
    assert all(line.startswith("secretstore: ") for line in lines), stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    assert not any(value in stderr for value in VALUES), stderr
    assert reported(lines[errors[0]], " ".join(after), where) == vector.expect, stderr


def reported(error: str, hint: str, where: str) -> str:
    """The outcome an error line (and its hint) reports, in the vectors' words; a parse error
    names the file (``where``) and no other outcome."""
    words = [
        (rr.UNMERGED, " is unmerged"), (rr.ROLLBACK, "older than version"), (rr.UNSIGNED, "is not signed"),
        (rr.UNTRUSTED, "refusing to use it"), (rr.NOT_A_RECIPIENT, "not a recipient"),
        (rr.SIGNATURE_FAILURE, "signature does not match"), (rr.SIGNATURE_FAILURE, "signature does not cover"),
        (rr.MAC_FAILURE, "file MAC does not match"),
        (rr.DECRYPT_FAILURE, "does not decrypt"), (rr.DECRYPT_FAILURE, "does not open"),
        (rr.DECRYPT_FAILURE, "is not UTF-8"), (rr.WRONG_PASSPHRASE, "wrong passphrase"),
        (rr.KEY_MISMATCH, "does not match its public key"),
    ]
    if "newer version" in hint:
        return rr.UNSUPPORTED
    for outcome, word in words:
        if word in error:
            return outcome
    return rr.PARSE_ERROR if error.startswith(f"secretstore: error: {where}") else f"unexpected: {error}"


def names_in(vector: Vector) -> list[str]:
    """The valid secret names in a file, if it is TOML with a secrets table (else API_KEY, a name
    the attacked files hold): a name ``get`` accepts, so the file itself is what gets refused."""
    try:
        secrets = tomllib.loads(vector.body.decode("utf-8")).get("secrets")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError):
        secrets = None
    names = [name for name in secrets if rr._NAME.fullmatch(name) and len(name) <= 255] if isinstance(secrets, dict) else []
    return names or ["API_KEY"]


def scope_args(vector: Vector) -> list[str]:
    scope = vector.scope
    return [scope.entity] if scope.scope_id is None else [scope.entity, f"--id={scope.scope_id}"]


@pytest.mark.parametrize("vector", library_params("scope", GET_DISAGREES, cli=True))
def test_scope_vector_through_get(vector: Vector, cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    prepare_store(vector, isolated_env)
    if vector.expect == rr.SUCCESS:
        assert vector.values is not None
        for name in sorted(vector.values)[:1]:
            done = cli_run("get", *scope_args(vector), f"--name={name}")
            assert done.returncode == 0, done.stderr
            assert done.stdout.decode("utf-8") == vector.values[name]
        return
    # Every name a reader could ask for: "return no value from it" holds for the whole file.
    for name in names_in(vector) if vector.expect == rr.DECRYPT_FAILURE else names_in(vector)[:1]:
        assert_fails_closed(cli_run("get", *scope_args(vector), f"--name={name}"), vector, vector.relpath)


PRINT_ENV = "import json, os, sys; print(json.dumps({k: v for k, v in os.environ.items() if k in sys.argv[1:]}))"


@pytest.mark.parametrize("vector", library_params("scope", EXEC_DISAGREES, cli=True))
def test_scope_vector_through_exec(vector: Vector, cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    """exec runs the program with exactly the file's values, or does not run it at all."""
    prepare_store(vector, isolated_env)
    scope = vector.scope
    options = [] if scope.scope_id is None else [f"--{scope.entity}", scope.scope_id]
    if vector.expect == rr.NOT_A_RECIPIENT:
        options.append("--strict")  # otherwise a scope one cannot read is a warning
    names = sorted(vector.values or {}) or ["API_KEY"]
    done = cli_run("exec", *options, "--", sys.executable, "-c", PRINT_ENV, *names)
    if vector.expect == rr.SUCCESS:
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == vector.values
        return
    assert_fails_closed(done, vector, vector.relpath)


@pytest.mark.parametrize("vector", library_params("roster", cli=True))
def test_roster_vector_through_recipients_list(vector: Vector, cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    root = Path(isolated_env["store"])
    place(root, "recipients.toml", vector.body)
    install_identity(isolated_env, (VECTORS / vector.header["identity"]).read_bytes())
    set_up_trust(Store(str(root), emit=lambda _message: None), library_identity(vector.header["identity"]), vector)
    done = cli_run("recipients", "list", "--json")
    if vector.expect == rr.SUCCESS:
        assert done.returncode == 0, done.stderr
        listed = {row["public_key"] for row in json.loads(done.stdout)}
        members = tomllib.loads(vector.body.decode())["recipients"]
        assert listed == {member["public_key"] for member in members}
        return
    assert_fails_closed(done, vector, "recipients.toml")


@pytest.mark.parametrize("vector", library_params("identity", cli=True))
def test_identity_vector_through_the_console_script(vector: Vector, cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    """``identity`` prints the public key without a passphrase (except for a version-1 line);
    ``get`` unlocks the key and reads a file sealed to it."""
    install_identity(isolated_env, vector.body)
    team = load("scope/success-team")
    place(Path(isolated_env["store"]), "team.toml", team.body)
    passphrase = passphrase_of(vector)
    env = {} if passphrase is None else {"SECRETSTORE_PASSPHRASE": passphrase}
    shown = cli_run("identity", env=env)
    get = cli_run("get", "team", "--name=API_KEY", env=env)
    path = isolated_env["identity"]
    if vector.expect == rr.PARSE_ERROR:
        assert_fails_closed(shown, vector, path)
        assert_fails_closed(get, vector, path)
        return
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.decode().strip() == vector.get("public-key")
    if vector.expect == rr.SUCCESS:
        assert get.returncode == 0, get.stderr
        assert get.stdout.decode() == (team.values or {})["API_KEY"]
    else:
        assert_fails_closed(get, vector, path)
        assert passphrase is None or passphrase not in get.stderr.decode("utf-8", "replace")
