"""Library-level tests of the store: round trips, rules, tampering, concurrency, no plaintext on disk."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from secretstore import scopefile
from secretstore.errors import (
    IdentityError,
    NotFoundError,
    NotRecipientError,
    PermissionsError,
    SecretStoreError,
    StoreFormatError,
    TamperedError,
    UnsupportedVersionError,
    UsageError,
)
from secretstore.identity import Identity, load_identity, load_or_create_identity, unprotected_text
from secretstore.store import Scope, Store

FAKE = "fake-Value-0001"
PROJECT = Scope.of("project", "prj42")
CLUSTER = Scope.of("cluster", "gpu-a")
TEAM = Scope.of("team")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(str(tmp_path / "store"))


@pytest.fixture
def me() -> Identity:
    return Identity.generate("test")


def test_round_trip_every_scope(store: Store, me: Identity) -> None:
    for scope in (TEAM, PROJECT, CLUSTER):
        assert store.set(scope, "API_KEY", f"{FAKE}-{scope.entity}", me) is True
    for scope in (TEAM, PROJECT, CLUSTER):
        assert store.get(scope, "API_KEY", me) == f"{FAKE}-{scope.entity}"
    assert sorted(store.scopes()) == sorted([TEAM, PROJECT, CLUSTER])
    assert os.path.isfile(os.path.join(store.root, "projects", "prj42.toml"))
    assert os.path.isfile(os.path.join(store.root, "clusters", "gpu-a.toml"))


def test_replace_reports_not_new_and_keeps_other_names(store: Store, me: Identity) -> None:
    store.set(TEAM, "A", "fake-a-1", me)
    store.set(TEAM, "B", "fake-b-1", me)
    assert store.set(TEAM, "A", "fake-a-2", me) is False
    assert store.read(TEAM, me) == {"A": "fake-a-2", "B": "fake-b-1"}


@pytest.mark.parametrize(
    "value",
    ["x", "multi\nline\nvalue\n", "-----BEGIN KEY-----\nAAAA\n-----END KEY-----", "ünïcødé ✓ 秘密", "a" * 65536],
)
def test_values_round_trip_exactly(store: Store, me: Identity, value: str) -> None:
    store.set(PROJECT, "V", value, me)
    assert store.get(PROJECT, "V", me) == value


@pytest.mark.parametrize("value", ["", "nul\x00byte", "a" * 65537, "é" * 32769])
def test_bad_values_refused_and_nothing_written(store: Store, me: Identity, value: str) -> None:
    with pytest.raises(UsageError) as caught:
        store.set(TEAM, "V", value, me)
    assert value[:20] not in str(caught.value) or not value
    assert not os.path.exists(store.path(TEAM))


@pytest.mark.parametrize("name", ["", "1ABC", "_A", "A-B", "A B", "Ä", "a" * 256, "A=B"])
def test_bad_names_refused(store: Store, me: Identity, name: str) -> None:
    with pytest.raises(UsageError):
        store.set(TEAM, name, FAKE, me)
    assert not os.path.exists(store.path(TEAM))


def test_name_limit_is_inclusive(store: Store, me: Identity) -> None:
    store.set(TEAM, "A" * 255, FAKE, me)
    assert store.list(TEAM)[0][0] == "A" * 255


@pytest.mark.parametrize("scope_id", ["../x", "a/b", ".hidden", "..", "a..b", "", "x" * 129, "sp ace"])
def test_bad_ids_refused(scope_id: str) -> None:
    with pytest.raises(UsageError):
        Scope.of("project", scope_id)


def test_id_rules_follow_gradient() -> None:
    with pytest.raises(UsageError, match="need --id"):
        Scope.of("cluster", None)
    with pytest.raises(UsageError, match="no --id"):
        Scope.of("team", "x")
    with pytest.raises(UsageError, match="unknown entity"):
        Scope.of("org", None)


def test_delete(store: Store, me: Identity) -> None:
    store.set(TEAM, "A", "fake-a", me)
    store.set(TEAM, "B", "fake-b", me)
    store.delete(TEAM, "A", me)
    assert [name for name, _ in store.list(TEAM)] == ["B"]
    with pytest.raises(NotFoundError):
        store.delete(TEAM, "A", me)
    with pytest.raises(NotFoundError):
        store.delete(PROJECT, "A", me)  # no file at all


def test_list_needs_no_identity_and_empty_scope_is_empty(store: Store, me: Identity) -> None:
    assert store.list(PROJECT) == []
    store.set(PROJECT, "B", "fake", me)
    store.set(PROJECT, "A", "fake", me)
    assert [name for name, _ in store.list(PROJECT)] == ["A", "B"]


def test_permissions_from_creation(store: Store, me: Identity) -> None:
    store.set(PROJECT, "A", FAKE, me)
    for directory in (store.root, os.path.join(store.root, "projects")):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.path(PROJECT)).st_mode) == 0o600


def test_only_our_own_directories_are_private(tmp_path: Path, me: Identity) -> None:
    old_umask = os.umask(0o022)
    try:
        store = Store(str(tmp_path / "home" / ".local" / "share" / "secretstore"))
        store.set(PROJECT, "A", FAKE, me)
        identity_path = tmp_path / "home" / ".config" / "secretstore" / "identity"
        load_or_create_identity(str(identity_path))
    finally:
        os.umask(old_umask)
    for shared in ("home", "home/.local", "home/.local/share", "home/.config"):
        assert stat.S_IMODE(os.stat(tmp_path / shared).st_mode) == 0o755, shared
    for private in ("home/.local/share/secretstore", "home/.local/share/secretstore/projects",
                    "home/.config/secretstore"):
        assert stat.S_IMODE(os.stat(tmp_path / private).st_mode) == 0o700, private


def test_no_plaintext_value_in_any_file(store: Store, me: Identity, tmp_path: Path) -> None:
    values = {"A": "fake-plaintext-canary-1", "B": "fake-multi\nline-canary-2", "C": "ünï-canary-3"}
    for name, value in values.items():
        for scope in (TEAM, PROJECT, CLUSTER):
            store.set(scope, name, value, me)
    store.delete(CLUSTER, "A", me)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for value in values.values():
                assert value.encode() not in data, path
                for line in value.encode().splitlines():
                    assert line not in data, path


def test_other_identity_is_not_a_recipient(store: Store, me: Identity) -> None:
    store.set(TEAM, "A", FAKE, me)
    stranger = Identity.generate("stranger")
    with pytest.raises(NotRecipientError) as caught:
        store.get(TEAM, "A", stranger)
    assert stranger.public_text in (caught.value.hint or "")
    assert "recipients add" in (caught.value.hint or "")
    with pytest.raises(NotRecipientError):
        store.set(TEAM, "B", FAKE, stranger)


def _rewrite(path: str, edit) -> None:  # type: ignore[no-untyped-def]
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    new = edit(text)
    assert new != text, "the edit changed nothing: the test would prove nothing"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(new)


def _field_line(text: str, prefix: str, occurrence: int = 0) -> str:
    return [line for line in text.splitlines() if line.startswith(prefix)][occurrence]


def _flip_b64(line: str, index: int) -> str:
    import base64

    key, _, quoted = line.partition(" = ")
    raw = bytearray(base64.b64decode(quoted.strip('"')))
    raw[index] ^= 0x01
    return f'{key} = "{base64.b64encode(bytes(raw)).decode()}"'


@pytest.mark.parametrize(
    ("prefix", "index"),
    [("nonce", 0), ("nonce", 23), ("ciphertext", 0), ("ciphertext", -1), ("ciphertext", -16), ("mac", 5), ("sealed_key", 40)],
)
def test_flipped_byte_fails_closed(store: Store, me: Identity, prefix: str, index: int) -> None:
    store.set(TEAM, "A", FAKE, me)
    store.set(TEAM, "B", "fake-two", me)
    path = store.path(TEAM)

    def edit(text: str) -> str:
        line = _field_line(text, prefix)
        return text.replace(line, _flip_b64(line, index))

    _rewrite(path, edit)
    with pytest.raises(TamperedError):
        store.read(TEAM, me)
    with pytest.raises(TamperedError):
        store.set(TEAM, "C", "fake-three", me)  # a tampered file is never re-MAC'd into a valid one


def _swap_ciphertexts(text: str) -> str:
    first = _field_line(text, "ciphertext", 0)
    second = _field_line(text, "ciphertext", 1)
    return text.replace(first, "@@1@@").replace(second, first).replace("@@1@@", second)


def _drop_last_entry(text: str) -> str:
    """The last name's entry taken out, whether it is in the body or (version 4) an update
    appended in a section; every other byte, the seals included, left as it is."""
    start = max(text.rindex("\n[secrets."), text.rfind("\n[[secrets.", 0, text.rfind(".update]]\n") + 1))
    end = text.index("\n\n[", start + 1)
    return text[:start] + text[end:]


def _reorder(text: str) -> str:
    head, _, rest = text.partition("[secrets.")
    blocks = ("[secrets." + rest).split("\n\n")
    return head + "\n\n".join(reversed([b.strip("\n") for b in blocks])) + "\n"


@pytest.mark.parametrize("edit", [_swap_ciphertexts, _drop_last_entry, _reorder])
def test_structural_tampering_detected(store: Store, me: Identity, edit) -> None:  # type: ignore[no-untyped-def]
    store.set(TEAM, "A", "fake-one", me)
    store.set(TEAM, "B", "fake-two", me)
    _rewrite(store.path(TEAM), edit)
    with pytest.raises(TamperedError):
        store.read(TEAM, me)


def test_value_moved_between_scopes_fails_decrypt(store: Store, me: Identity) -> None:
    """Even with a valid MAC, a ciphertext moved to another name does not decrypt (AAD)."""
    store.set(TEAM, "A", "fake-one", me)
    unlocked = store.unlock(TEAM, me)
    assert unlocked is not None
    entry = unlocked.file.entries["A"]
    unlocked.file.entries["B"] = entry
    store._write(unlocked, me)  # re-signed'd by a key holder: only the AEAD binding can catch it
    with pytest.raises(TamperedError, match="secret B"):
        store.get(TEAM, "B", me)


def test_file_moved_to_other_scope_refused(store: Store, me: Identity) -> None:
    store.set(PROJECT, "A", FAKE, me)
    other = Scope.of("project", "other")
    os.makedirs(os.path.dirname(store.path(other)), exist_ok=True)
    os.rename(store.path(PROJECT), store.path(other))
    with pytest.raises(StoreFormatError, match="not project other"):
        store.read(other, me)


@pytest.mark.parametrize("cut", [2, 10, 100, 200])
def test_truncated_file_fails_closed(store: Store, me: Identity, cut: int) -> None:
    store.set(TEAM, "A", FAKE, me)
    path = store.path(TEAM)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) - cut])
    with pytest.raises((StoreFormatError, TamperedError)):
        store.read(TEAM, me)


def test_missing_final_newline_is_an_edit(store: Store, me: Identity) -> None:
    """Version 3 signs bytes: the same TOML document with other bytes is not its writer's.
    (A version-2 file without its last newline still reads: tests/vectors/scope/success-final-newline-missing.)"""
    store.set(TEAM, "A", FAKE, me)
    path = Path(store.path(TEAM))
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    with pytest.raises(TamperedError, match="the signature does not cover the file as it is"):
        store.read(TEAM, me)


def test_unknown_version_refused_with_upgrade_hint(store: Store, me: Identity) -> None:
    store.set(TEAM, "A", FAKE, me)
    _rewrite(store.path(TEAM), lambda t: t.replace('"secretstore/v4"', '"secretstore/v5"'))
    with pytest.raises(UnsupportedVersionError) as caught:
        store.list(TEAM)
    assert "newer version" in (caught.value.hint or "")


def test_unknown_field_refused(store: Store, me: Identity) -> None:
    store.set(TEAM, "A", FAKE, me)
    _rewrite(store.path(TEAM), lambda t: t.replace("[secrets.A]\n", "[secrets.A]\nextra = 1\n"))
    with pytest.raises(StoreFormatError, match="unknown field"):
        store.list(TEAM)


def _give_history(store: Store, me: Identity, name: str, old_value: str, new_value: str) -> scopefile.Version:
    """Set ``name`` to ``new_value`` with ``old_value`` kept in its history (as a future version
    of secretstore would); return the old version."""
    store.set(TEAM, name, old_value, me)
    unlocked = store.unlock(TEAM, me)
    assert unlocked is not None
    old = unlocked.file.entries[name].current
    assert old is not None
    unlocked.put(name, new_value, "2026-01-02T00:00:00Z")
    unlocked.file.entries[name] = scopefile.Entry(unlocked.file.entries[name].current, "2026-01-02T00:00:00Z", (old,))
    store._write(unlocked, me)
    return old


def test_history_and_deleted_entries_round_trip_under_the_mac(store: Store, me: Identity) -> None:
    """Format v1 carries history and deleted entries; this code keeps them intact."""
    store.set(TEAM, "B", "fake-b", me)
    old = _give_history(store, me, "A", "fake-old", "fake-new")
    unlocked = store.unlock(TEAM, me)
    assert unlocked is not None
    b_old = unlocked.file.entries["B"].current
    assert b_old is not None
    unlocked.file.entries["B"] = scopefile.Entry(None, "2026-01-03T00:00:00Z", (b_old,))
    store._write(unlocked, me)
    assert store.read(TEAM, me) == {"A": "fake-new"}
    assert [n for n, _ in store.list(TEAM)] == ["A"]
    store.set(TEAM, "C", "fake-c", me)  # a rewrite keeps history
    again = store.unlock(TEAM, me)
    assert again is not None
    assert again.file.entries["A"].history == (old,)
    assert scopefile.decrypt(again.file, again.keys, "A", old, "t") == "fake-old"
    assert store.set(TEAM, "B", "fake-b2", me) is True  # reviving a deleted name counts as new
    assert store.unlock(TEAM, me).file.entries["B"].history == (b_old,)  # type: ignore[union-attr]


def test_delete_keeps_every_version_as_a_deleted_entry(store: Store, me: Identity) -> None:
    old = _give_history(store, me, "A", "fake-old", "fake-new")
    before = store.unlock(TEAM, me)
    assert before is not None
    deleted_value = before.file.entries["A"].current
    store.delete(TEAM, "A", me)
    assert store.list(TEAM) == [] and store.read(TEAM, me) == {}
    again = store.unlock(TEAM, me)
    assert again is not None
    entry = again.file.entries["A"]
    assert entry.current is None and entry.history == (old, deleted_value)  # undelete brings it back
    assert entry.writer == me.public_text
    with pytest.raises(NotFoundError):
        store.delete(TEAM, "A", me)


def test_identity_file_permissions_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "id")
    identity, created = load_or_create_identity(path)
    assert created
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_identity(path).public_text == identity.public_text
    os.chmod(path, 0o644)
    with pytest.raises(PermissionsError) as caught:
        load_identity(path)
    assert caught.value.hint == f"run: chmod 600 {path}"


def test_identity_repr_hides_secret(tmp_path: Path) -> None:
    identity = Identity.generate()
    text = unprotected_text(identity)
    secret_line = [line for line in text.splitlines() if not line.startswith("#")][0]
    assert secret_line not in repr(identity)
    assert secret_line[len("SECRETSTORE-SECRET-KEY-1") :] not in repr(identity)


def test_mistyped_identity_refused(tmp_path: Path) -> None:
    path = tmp_path / "id"
    identity, _ = load_or_create_identity(str(path))
    text = path.read_text()
    key_line = [line for line in text.splitlines() if line.startswith("SECRETSTORE-")][0]
    broken = key_line[:-3] + ("A" if key_line[-3] != "A" else "B") + key_line[-2:]
    path.write_text(text.replace(key_line, broken))
    with pytest.raises(IdentityError, match="checksum|base64"):
        load_identity(str(path))


def _writer(root: str, identity_path: str, worker: int, count: int) -> None:
    identity = load_identity(identity_path)
    store = Store(root)
    for index in range(count):
        store.set(TEAM, f"W{worker}_{index}", f"fake-{worker}-{index}", identity)


def test_eight_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    identity_path = str(tmp_path / "id")
    identity, _ = load_or_create_identity(identity_path)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(root, identity_path, w, 10)) for w in range(8)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    values = Store(root).read(TEAM, identity)
    assert values == {f"W{w}_{i}": f"fake-{w}-{i}" for w in range(8) for i in range(10)}
    leftovers = [name for name in os.listdir(root) if ".tmp-" in name]
    assert leftovers == []


def test_identities_created_concurrently_agree(tmp_path: Path) -> None:
    path = str(tmp_path / "cfg" / "identity")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()

    def create() -> None:
        queue.put(load_or_create_identity(path)[0].public_text)

    workers = [context.Process(target=create) for _ in range(6)]
    for process in workers:
        process.start()
    results = {queue.get(timeout=30) for _ in workers}
    for process in workers:
        process.join(30)
    assert results == {load_identity(path).public_text}


def test_a_symlinked_scope_directory_is_refused(store: Store, me: Identity, tmp_path: Path) -> None:
    """A store is often a git checkout others write to: never follow it elsewhere."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / ".important.toml.tmp-keep").write_text("not ours")
    Path(store.root).mkdir(parents=True)
    os.symlink(outside, os.path.join(store.root, "projects"))
    with pytest.raises(StoreFormatError, match="projects/ in the store is a symlink"):
        store.set(PROJECT, "A", FAKE, me)
    assert sorted(os.listdir(outside)) == [".important.toml.tmp-keep"]
    assert store.scopes() == []


def test_a_symlinked_scope_file_is_refused(store: Store, me: Identity, tmp_path: Path) -> None:
    other = Store(str(tmp_path / "other"))
    other.set(TEAM, "A", "fake-other-store", me)
    Path(store.root).mkdir(parents=True)
    os.symlink(other.path(TEAM), store.path(TEAM))
    with pytest.raises(SecretStoreError, match="symlink"):
        store.get(TEAM, "A", me)
    with pytest.raises(SecretStoreError, match="symlink"):
        store.set(TEAM, "B", FAKE, me)
    assert store.scopes() == []


def test_a_fifo_in_place_of_a_scope_file_does_not_hang(store: Store, me: Identity) -> None:
    Path(store.root).mkdir(parents=True)
    os.mkfifo(store.path(TEAM))
    with pytest.raises(SecretStoreError, match="not a regular file"):
        store.list(TEAM)


def test_stray_files_are_not_scopes_and_do_not_stop_rotation(store: Store, me: Identity) -> None:
    store.set(Scope.of("project", "a"), "A", "fake-a", me)
    store.set(Scope.of("project", "z"), "Z", "fake-z", me)
    projects = Path(store.root, "projects")
    (projects / "a copy.toml").write_bytes((projects / "a.toml").read_bytes())
    (projects / "b\x1b]0;title\x07.toml").write_text("junk")
    (projects / "notes.md").write_text("junk")
    assert [s.scope_id for s in store.scopes()] == ["a", "z"]
    before = {name: (projects / f"{name}.toml").read_bytes() for name in ("a", "z")}
    report = store.rotate(None, me)
    assert sorted(s.scope_id or "" for s in report.changed) == ["a", "z"]
    assert all((projects / f"{name}.toml").read_bytes() != before[name] for name in ("a", "z"))


def test_reading_every_value_names_the_one_that_does_not_open(store: Store, me: Identity) -> None:
    """An insider (holding the data key) swaps two ciphertexts and MACs the file again:
    the batch decryption stops at the first bad value and names it, as ``get`` would."""
    scope = Scope("team")
    store.set_many(scope, {"A": "fake-a", "B": "fake-b", "C": "fake-c"}, me)
    unlocked = store.unlock(scope, me)
    assert unlocked is not None and unlocked.values() == {"A": "fake-a", "B": "fake-b", "C": "fake-c"}
    entries = unlocked.file.entries
    entries["B"], entries["C"] = (
        scopefile.Entry(entries["C"].current, entries["B"].updated),
        scopefile.Entry(entries["B"].current, entries["C"].updated),
    )
    with pytest.raises(TamperedError, match=r"^team\.toml: secret B: value does not decrypt"):
        unlocked.values()
    with pytest.raises(TamperedError, match=r"secret C"):
        unlocked.get("C")


def test_v3_history_with_stray_base64_bits_is_refused(store: Store, me: Identity) -> None:
    """FORMAT.md "Conventions": base64 must be canonical, in a version-3 chunk of history too."""
    store.set(TEAM, "A", "fake-od", me)  # a 23-byte ciphertext: base64 that ends in one "="
    store.set(TEAM, "A", "fake-newer", me)
    data = Path(store.path(TEAM)).read_bytes()
    file = scopefile.parse(data, "team.toml")
    chunk = file.entries["A"].chunk
    assert chunk is not None
    raw = chunk.raw().decode()
    assert scopefile._parse_history_chunk(raw.encode(), "A") is not None
    start = raw.index('ciphertext = "') + len('ciphertext = "')
    end = raw.index('"', start)
    text = raw[start:end]
    assert text.endswith("=") and not text.endswith("==")
    last = text.rstrip("=")[-1]
    stray = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    bumped = stray[stray.index(last) + 1]  # same 6-bit group but a padding bit set
    damaged = raw[: end - 2] + bumped + raw[end - 1 :]
    assert scopefile._parse_history_chunk(damaged.encode(), "A") is None


def _quick_and_full(data: bytes) -> tuple[object, object]:
    return scopefile.parse_quick(data, "team.toml"), scopefile._parse_v3(data, "team.toml")


def test_quick_read_refuses_text_between_entries(store: Store, me: Identity) -> None:
    """list and exec read entries with one ``findall``, which skips what does not match: a line
    slipped in between two entries must still make the file unreadable the quick way, as it is
    the full way (the signature would not cover it as the layout says)."""
    store.set_many(TEAM, {"ALPHA": "fake-a", "BRAVO": "fake-b", "CHARLIE": "fake-c"}, me)
    data = Path(store.path(TEAM)).read_bytes()
    assert all(found is not None for found in _quick_and_full(data))
    at = data.index(b"\n[secrets.BRAVO]")
    for junk in (b"\n# a comment", b"\nextra = 1", b"\n", b"\n[secrets.ALPHA]\nupdated = \"x\""):
        damaged = data[:at] + junk + data[at:]
        assert _quick_and_full(damaged) == (None, None), junk


def test_quick_read_refuses_an_empty_nonce_and_names_out_of_order(store: Store, me: Identity) -> None:
    store.set_many(TEAM, {"ALPHA": "fake-a", "BRAVO": "fake-b"}, me)
    data = Path(store.path(TEAM)).read_bytes()
    start = data.index(b'nonce = "', data.index(b"[secrets.BRAVO]")) + len(b'nonce = "')
    end = data.index(b'"', start)
    assert _quick_and_full(data[:start] + data[end:]) == (None, None)  # nonce = "": not a value
    alpha = data.index(b"\n[secrets.ALPHA]")
    bravo = data.index(b"\n[secrets.BRAVO]")
    swapped = data[:alpha] + data[bravo:] + data[alpha:bravo]
    assert _quick_and_full(swapped) == (None, None)
    doubled = data[:bravo] + data[alpha:bravo] + data[bravo:]
    assert _quick_and_full(doubled) == (None, None)


@pytest.mark.parametrize("field", ["nonce", "ciphertext"])
def test_a_signed_value_of_the_wrong_length_is_refused_by_the_one_scan_read(store: Store, me: Identity,
                                                                            field: str) -> None:
    """A nonce or ciphertext of the wrong length (the writer's own doing: it is signed): the
    one-scan read refuses the file, the full read gives its format error naming the file, and
    decrypt_rows checks the lengths again as it decodes (not a crash, never a value)."""
    store.set_many(TEAM, {"A": "fake-a", "B": "fake-b"}, me)
    unlocked = store.unlock(TEAM, me)
    assert unlocked is not None
    current = unlocked.file.entries["B"].current
    assert current is not None
    short = scopefile.Version(
        current.updated,
        current.nonce[:-1] if field == "nonce" else current.nonce,
        current.ciphertext[:16] if field == "ciphertext" else current.ciphertext,
        current.writer,
    )
    unlocked.file.entries["B"] = unlocked.file.entries["B"].replace(current=short)
    store._write(unlocked, me)
    data = store.read_current(TEAM)
    assert data is not None
    assert store._values_quick(TEAM, data, me) is None  # the one-scan read refuses it: read in full
    with pytest.raises(StoreFormatError, match=r"^team\.toml: "):
        store.read(TEAM, me)
    # and the rows of a quick read, were one to get through, are checked again as they are decoded
    quick = scopefile.parse_quick(Path(store.path(TEAM)).read_bytes(), "team.toml")
    assert quick is None
    rows = [("B", short.updated, short.writer, scopefile._b64(short.nonce), scopefile._b64(short.ciphertext), False)]
    with pytest.raises(StoreFormatError, match=r"^team\.toml: a value is not a nonce and a ciphertext"):
        scopefile.decrypt_rows(unlocked.file, unlocked.keys, rows, "team.toml")


@pytest.mark.parametrize("field, bad", [
    ("ciphertext", "AAAAAAAAAAAAAAAAAAAAAA="),  # 23 characters: not base64 at all
    ("ciphertext", "AAAAAAAAAAAAAAAAAAAAAA=="),  # 16 bytes: a tag and no value
    ("ciphertext", ""),
    ("nonce", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="),  # 32 characters, 22 bytes
    ("nonce", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
])
def test_quick_read_refuses_values_the_full_parse_cannot_decode(store: Store, me: Identity, field: str,
                                                                bad: str) -> None:
    """Found by ``scripts/fuzz``: list's one-scan read took every field's text as it stood, so it
    listed a file whose ciphertext was not base64 of a possible length, which the full parse
    (and exec, get and doctor) refuse. Now it refuses what the full parse cannot decode."""
    store.set_many(TEAM, {"A": "fake-a", "B": "fake-b"}, me)
    data = Path(store.path(TEAM)).read_bytes()
    start = data.index(f'{field} = "'.encode(), data.index(b"[secrets.B]")) + len(f'{field} = "')
    end = data.index(b'"', start)
    damaged = data[:start] + bad.encode() + data[end:]
    assert _quick_and_full(damaged) == (None, None)


def test_quick_read_refuses_a_deleted_name_without_history_and_a_bad_digest(
    store: Store, me: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entries' one scan, which versions 3 and 4 share, on a version-3 body (B's history
    pointer in the body: version 4 appends B's later values in sections)."""
    monkeypatch.setattr(scopefile, "WRITE_FORMAT", scopefile.FORMAT_V3)
    store.set(TEAM, "A", "fake-a", me)
    store.set(TEAM, "B", "fake-b1", me)
    store.set(TEAM, "B", "fake-b2", me)
    data = Path(store.path(TEAM)).read_bytes()
    body = data[: data.index(scopefile.BODY_END)]
    assert all(found is not None for found in _quick_and_full(body))
    digest_at = body.index(b'history_digest = "') + len(b'history_digest = "')
    digest_end = body.index(b'"', digest_at)
    short = body[:digest_at] + b"A" * 40 + b"AA==" + body[digest_end:]  # 44 characters, 31 bytes
    assert _quick_and_full(short) == (None, None)
    a_nonce = body.index(b"nonce = ", body.index(b"[secrets.A]"))  # A has no history: deleted, it could not be
    after_value = body.index(b"\n", body.index(b"ciphertext = ", a_nonce)) + 1
    deleted = body[:a_nonce] + b"deleted = true\n" + body[after_value:]
    assert _quick_and_full(deleted) == (None, None)
