"""exec's encrypted snapshots: used only for the head of a file verified in full, never trusted otherwise.

Fake secret values only.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from secretstore import context, scopefile
from secretstore import layers as layers_module
from secretstore.errors import TamperedError
from secretstore.identity import Identity, resolve_identity
from secretstore.snapshot import LISTING_MAGIC, MAGIC, Listings, Snapshots
from secretstore.store import TEAM, Scope, Store

Run = Callable[..., subprocess.CompletedProcess[bytes]]
PROJECT = Scope("project", "prj42")
CONTEXT = context.Context("prj42", None)


@pytest.fixture
def me(isolated_env: dict[str, str]) -> Identity:
    return resolve_identity(create=True)[0]


@pytest.fixture
def store(isolated_env: dict[str, str], me: Identity) -> Store:
    store = Store(isolated_env["store"])
    store.set_many(TEAM, {"SHARED": "fake-team", "TEAM_ONLY": "fake-team-only"}, me)
    store.set_many(PROJECT, {"SHARED": "fake-project", "MULTI": "fake\nmulti-line"}, me)
    return store


def _head_by_format_md(file_bytes: bytes) -> bytes:
    """FORMAT.md "Exec snapshots": a version-4 file's head is its lines ``format`` through
    ``store``, then its last seal (from the blank line before ``[[seals]]`` to the file's end)."""
    assert file_bytes.startswith(b'format = "secretstore/v4"\n')
    lines = file_bytes[: file_bytes.index(b"\n\n") + 1]
    return lines + file_bytes[file_bytes.rindex(b"\n[[seals]]\n"):]


def _behind(old: bytes, new: bytes) -> bytes:
    """``old``'s file with ``new``'s head: its last seal replaced by ``new``'s last seal."""
    old_seal, new_seal = (data[data.rindex(b"\n[[seals]]\n"):] for data in (old, new))
    assert old[: old.index(b"\n\n")] == new[: new.index(b"\n\n")]  # the same head lines
    return old[: len(old) - len(old_seal)] + new_seal


def _load(store: Store, me: Identity, cache: str) -> list[tuple[Scope, dict[str, str]]]:
    layers, warnings = layers_module.load_layers(store, CONTEXT, lambda: me, snapshot_dir=cache)
    assert warnings == []
    return layers


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[Scope]:
    """Scopes read the full way (verified and unlocked from the file), from now on."""
    parsed: list[Scope] = []
    real_unlock = Store.unlock_file

    def counting(self: Store, scope: Scope, *args: object, **kwargs: object) -> object:
        parsed.append(scope)
        return real_unlock(self, scope, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "unlock_file", counting)
    return parsed


def _snapshot_files(cache: str) -> list[Path]:
    return sorted(Path(cache).glob("*")) if os.path.isdir(cache) else []


def test_second_read_comes_from_the_snapshot_with_the_same_values(
    store: Store, me: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = str(tmp_path / "snaps")
    parsed = _count_parses(monkeypatch)
    first = _load(store, me, cache)
    assert parsed == [TEAM, PROJECT]
    assert len(_snapshot_files(cache)) == 2
    second = _load(store, me, cache)
    assert parsed == [TEAM, PROJECT]  # nothing parsed again
    assert second == first == _load(store, me, None)  # None: no cache, read the full way
    assert dict(second)[PROJECT] == {"SHARED": "fake-project", "MULTI": "fake\nmulti-line"}


def test_a_changed_scope_file_is_verified_again_and_its_snapshot_replaced(
    store: Store, me: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = str(tmp_path / "snaps")
    _load(store, me, cache)
    store.set(TEAM, "TEAM_ONLY", "fake-team-changed", me)
    parsed = _count_parses(monkeypatch)
    layers = _load(store, me, cache)
    assert parsed == [TEAM]
    assert dict(layers)[TEAM]["TEAM_ONLY"] == "fake-team-changed"
    assert len(_snapshot_files(cache)) == 2  # replaced in place, not added
    _load(store, me, cache)
    assert parsed == [TEAM]


def test_a_tampered_scope_file_fails_even_with_a_snapshot(
    store: Store, me: Identity, tmp_path: Path
) -> None:
    cache = str(tmp_path / "snaps")
    _load(store, me, cache)
    path = store.path(TEAM)
    data = bytearray(Path(path).read_bytes())
    mac_at = data.index(b'mac = "') + len(b'mac = "')
    data[mac_at] = ord("A") if data[mac_at] != ord("A") else ord("B")
    Path(path).write_bytes(bytes(data))
    with pytest.raises(TamperedError):
        _load(store, me, cache)


def test_an_unchanged_file_is_not_read_past_its_head(
    store: Store, me: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot is bound to the head, so a hit costs the same for 1 secret or 10,000 with history."""
    cache = str(tmp_path / "snaps")
    first = _load(store, me, cache)

    real_read = Store.read_bytes

    def head_only(self: Store, scope: Scope, *, prefix: int | None = None, until: bytes | None = None,
                  suffix: int = 0) -> bytes | None:
        if prefix is None or suffix > scopefile.SEAL_BYTES:
            raise AssertionError(f"read {scope.relpath} past its head and last seal")
        return real_read(self, scope, prefix=prefix, until=until, suffix=suffix)

    monkeypatch.setattr(Store, "read_bytes", head_only)
    assert _load(store, me, cache) == first


def test_a_forged_body_behind_a_verified_head_is_never_used(
    store: Store, me: Identity, tmp_path: Path
) -> None:
    """Another file's body behind the head of the verified one: the snapshot gives the verified
    values, and a full read (no snapshot) refuses the file."""
    cache = str(tmp_path / "snaps")
    path = Path(store.path(TEAM))
    old = path.read_bytes()
    store.set(TEAM, "TEAM_ONLY", "fake-newer-value", me)
    verified = dict(_load(store, me, cache))[TEAM]
    assert verified["TEAM_ONLY"] == "fake-newer-value"
    new = path.read_bytes()
    old_head, new_head = scopefile.head_of(old), scopefile.head_of(new)
    assert old_head is not None and new_head is not None and old_head.key != new_head.key
    path.write_bytes(_behind(old, new))  # the newest head (its last seal), an older body
    assert scopefile.head_of(path.read_bytes()) == new_head
    assert dict(_load(store, me, cache))[TEAM] == verified  # the snapshot's values, not the body's
    with pytest.raises(TamperedError):
        _load(store, me, None)


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic", "empty", "directory"])
def test_a_damaged_snapshot_is_a_miss_and_is_rewritten(
    store: Store, me: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    cache = str(tmp_path / "snaps")
    expected = _load(store, me, cache)
    target = Path(Snapshots(cache, me, store.root).path(TEAM))
    blob = target.read_bytes()
    if damage == "flip":
        target.write_bytes(blob[:-5] + bytes([blob[-5] ^ 1]) + blob[-4:])
    elif damage == "truncate":
        target.write_bytes(blob[: len(MAGIC) + 10])
    elif damage == "magic":
        target.write_bytes(b"X" + blob[1:])
    elif damage == "empty":
        target.write_bytes(b"")
    else:
        target.unlink()
        target.mkdir()
    parsed = _count_parses(monkeypatch)
    assert _load(store, me, cache) == expected
    assert parsed == [TEAM]
    if damage != "directory":  # a directory in the way cannot be replaced: run without
        assert target.read_bytes() != blob and target.read_bytes().startswith(MAGIC)
        _load(store, me, cache)
        assert parsed == [TEAM]


def test_a_snapshot_opens_only_for_its_own_scope_store_and_identity(
    store: Store, me: Identity, tmp_path: Path
) -> None:
    cache = str(tmp_path / "snaps")
    _load(store, me, cache)
    mine = Snapshots(cache, me, store.root)
    team_bytes = store.read_bytes(TEAM)
    assert team_bytes is not None
    head = scopefile.head_of(team_bytes)
    assert head is not None and head.key == _head_by_format_md(team_bytes) and head.key.endswith(b'"\n')
    team_bytes = head.key
    assert mine.load(TEAM, team_bytes) is not None
    # moved to another scope's name: the scope is in the associated data
    os.replace(mine.path(TEAM), mine.path(PROJECT))
    assert mine.load(PROJECT, team_bytes) is None
    os.replace(mine.path(PROJECT), mine.path(TEAM))
    # another store path, another identity: neither opens it
    elsewhere = Snapshots(cache, me, store.root + "-copy")
    Path(elsewhere.path(TEAM)).write_bytes(Path(mine.path(TEAM)).read_bytes())
    assert elsewhere.load(TEAM, team_bytes) is None
    stranger = Snapshots(cache, Identity.generate("stranger"), store.root)
    Path(stranger.path(TEAM)).write_bytes(Path(mine.path(TEAM)).read_bytes())
    assert stranger.load(TEAM, team_bytes) is None
    # the same head, one byte changed: no longer bound to it
    assert mine.load(TEAM, team_bytes + b"\n") is None
    assert mine.load(TEAM, team_bytes.replace(b"counter = 1\n", b"counter = 2\n")) is None


def test_snapshots_hold_no_plaintext_and_are_private(store: Store, me: Identity, tmp_path: Path) -> None:
    cache = tmp_path / "snaps"
    _load(store, me, str(cache))
    files = _snapshot_files(str(cache))
    assert files
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        data = path.read_bytes()
        for value in (b"fake-team", b"fake-project", b"multi-line", b"SHARED", b"TEAM_ONLY", b"prj42"):
            assert value not in data, path
        assert store.root.encode() not in path.name.encode()


def test_an_unwritable_cache_costs_nothing_but_speed(store: Store, me: Identity, tmp_path: Path) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a directory")
    layers = _load(store, me, str(in_the_way / "snaps"))
    assert dict(layers)[TEAM]["SHARED"] == "fake-team"


def test_no_snapshot_for_a_scope_it_cannot_open(isolated_env: dict[str, str], me: Identity,
                                                tmp_path: Path) -> None:
    store = Store(isolated_env["store"])
    store.set(TEAM, "T", "fake-team", Identity.generate("someone else"))
    cache = str(tmp_path / "snaps")
    layers, warnings = layers_module.load_layers(store, context.Context(), lambda: me, snapshot_dir=cache)
    assert layers == [(TEAM, {})] and len(warnings) == 1
    assert _snapshot_files(cache) == []


# --- through the real console script ---------------------------------------------------


def test_exec_uses_and_refreshes_snapshots_end_to_end(store: Store, cli_run: Run,
                                                      isolated_env: dict[str, str]) -> None:
    cache = os.path.join(isolated_env["cache"], "snapshots")
    show = ["exec", "--project", "prj42", "--", "sh", "-c", 'printf "%s|%s" "$SHARED" "$TEAM_ONLY"']
    first = cli_run(*show)
    assert (first.returncode, first.stdout, first.stderr) == (0, b"fake-project|fake-team-only", b"")
    assert len(_snapshot_files(cache)) == 2
    assert cli_run(*show).stdout == b"fake-project|fake-team-only"
    assert cli_run("set", "team", "--name=TEAM_ONLY", "--value=fake-after-set").returncode == 0
    assert cli_run(*show).stdout == b"fake-project|fake-after-set"


def test_delete_drops_the_scopes_snapshot(store: Store, cli_run: Run, isolated_env: dict[str, str],
                                          me: Identity) -> None:
    cache = os.path.join(isolated_env["cache"], "snapshots")
    assert cli_run("exec", "--project", "prj42", "--", "true").returncode == 0
    team_snapshot = Snapshots(cache, me, store.root).path(TEAM)
    assert os.path.exists(team_snapshot)
    assert cli_run("delete", "team", "--name=TEAM_ONLY").returncode == 0
    assert not os.path.exists(team_snapshot)


@pytest.mark.parametrize("setting", ["0", "off"])
def test_cache_off_writes_no_snapshot(store: Store, cli_run: Run, isolated_env: dict[str, str],
                                      setting: str) -> None:
    result = cli_run("exec", "--", "sh", "-c", 'printf %s "$SHARED"', env={"SECRETSTORE_CACHE": setting})
    assert (result.returncode, result.stdout) == (0, b"fake-team")
    assert _snapshot_files(os.path.join(isolated_env["cache"], "snapshots")) == []


def test_snapshot_bytes_match_format_md(store: Store, me: Identity, tmp_path: Path) -> None:
    """Rebuild name, key, associated data and plaintext from FORMAT.md with nacl.bindings."""
    from nacl import bindings

    cache = str(tmp_path / "snaps")
    _load(store, me, cache)
    relpath = PROJECT.relpath.encode()
    label = b"\0".join([me.box_key, store.root.encode(), relpath])
    name = bindings.crypto_generichash_blake2b_salt_personal(label, digest_size=16).hex()
    blob = (Path(cache) / name).read_bytes()
    magic = b"secretstore-snapshot/v2\n"
    assert blob[:24] == magic
    secret_key = Identity.__dict__["_secret_key"].__get__(me)  # the slot, read for this check only
    key = bindings.crypto_generichash_blake2b_salt_personal(
        b"", digest_size=32, key=secret_key, person=b"sstore-snapkey-1"
    )
    file_bytes = Path(store.path(PROJECT)).read_bytes()
    head = _head_by_format_md(file_bytes)
    digest = bindings.crypto_generichash_blake2b_salt_personal(head, digest_size=32, person=b"sstore-snapfile1")
    aad = magic + digest + store.root.encode() + b"\0" + relpath
    plain = bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(blob[48:], aad, blob[24:48], key)
    items = plain.decode().split("\0")
    assert dict(zip(items[0::2], items[1::2], strict=True)) == {
        "MULTI": "fake\nmulti-line", "SHARED": "fake-project"
    }


# --- list's cache ----------------------------------------------------------------------------


def _listing(store: Store, cache: str | None, scope: Scope = TEAM) -> list[tuple[str, str, str | None, bool]]:
    return store.listing(scope, listings=None if cache is None else Listings(cache, store.root))


def _count_full_reads(monkeypatch: pytest.MonkeyPatch) -> list[Scope]:
    """Scopes whose file was read past its head, from now on."""
    read: list[Scope] = []
    real = Store.read_current

    def counting(self: Store, scope: Scope) -> bytes | None:
        read.append(scope)
        return real(self, scope)

    monkeypatch.setattr(Store, "read_current", counting)
    return read


def test_list_reads_only_the_head_of_a_file_it_verified_before(
    store: Store, me: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = str(tmp_path / "listings")
    read = _count_full_reads(monkeypatch)
    first = _listing(store, cache)
    assert read == [TEAM] and len(_snapshot_files(cache)) == 1
    assert _listing(store, cache) == first == _listing(store, None)
    assert read == [TEAM, TEAM]  # the second read was the uncached one
    assert [row[0] for row in first] == ["SHARED", "TEAM_ONLY"]
    assert all(row[2] == me.public_text and row[3] is False for row in first)


def test_list_cache_follows_every_change_of_the_file(
    store: Store, me: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = str(tmp_path / "listings")
    _listing(store, cache)
    store.set(TEAM, "ADDED", "fake-added", me)
    read = _count_full_reads(monkeypatch)
    assert [row[0] for row in _listing(store, cache)] == ["ADDED", "SHARED", "TEAM_ONLY"]
    store.delete(TEAM, "SHARED", me)
    assert [row[0] for row in _listing(store, cache)] == ["ADDED", "TEAM_ONLY"]
    assert read == [TEAM, TEAM]
    assert len(_snapshot_files(cache)) == 1  # replaced in place


def test_list_cache_checks_the_writer_again_on_every_use(
    isolated_env: dict[str, str], me: Identity, tmp_path: Path
) -> None:
    """A cached listing is what a verified read gave; whether its writer still counts is
    decided again each time, so untrusting the writer stops the cached rows too."""
    from secretstore.errors import TrustError

    alice = Identity.generate("alice")
    store = Store(isolated_env["store"])
    store.set(TEAM, "FROM_ALICE", "fake-alice", alice)
    store.trust(me.public).trust_key(alice.public)  # (one state directory here: alice's own write counts too)
    cache = str(tmp_path / "listings")
    assert [row[0] for row in _listing(store, cache)] == ["FROM_ALICE"]
    assert Listings(cache, store.root).load(TEAM, scopefile.head_of(store.read_bytes(TEAM) or b"").key)  # type: ignore[union-attr]
    assert store.trust(me.public).untrust_key(alice.public)
    with pytest.raises(TrustError) as refused:
        _listing(store, cache)
    # said as what happened here (it said "who was removed from this store"), with the way back
    assert "whom you stopped trusting (secretstore untrust)" in refused.value.message
    assert refused.value.hint is not None and f"secretstore trust {alice.public.text}" in refused.value.hint


def test_list_cache_gives_the_verified_rows_behind_a_copied_head(store: Store, me: Identity, tmp_path: Path) -> None:
    """As with snapshots: an older body behind the newest head lists what was verified for that
    head, and a read without the cache refuses the file."""
    cache = str(tmp_path / "listings")
    path = Path(store.path(TEAM))
    old = path.read_bytes()
    store.set(TEAM, "NEWER", "fake-newer", me)
    verified = _listing(store, cache)
    new = path.read_bytes()
    old_head, new_head = scopefile.head_of(old), scopefile.head_of(new)
    assert old_head is not None and new_head is not None
    path.write_bytes(_behind(old, new))
    assert _listing(store, cache) == verified
    with pytest.raises(TamperedError):
        _listing(store, None)


@pytest.mark.parametrize("damage", ["binding", "columns", "writer", "flags", "utf8", "empty", "directory"])
def test_a_damaged_listing_is_a_miss_and_is_rewritten(
    store: Store, me: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    cache = str(tmp_path / "listings")
    expected = _listing(store, cache)
    target = Path(Listings(cache, store.root).path(TEAM))
    blob = target.read_bytes()
    magic_end = len(LISTING_MAGIC)
    lines = blob[magic_end:].split(b"\n")
    if damage == "binding":
        lines[0] = lines[0][:-1] + (b"0" if lines[0][-1:] != b"0" else b"1")
    elif damage == "columns":
        lines[2] += b"\tEXTRA"
    elif damage == "writer":
        lines[4] = lines[4].replace(b"0", b"7")
    elif damage == "flags":
        lines[5] = lines[5].replace(b"0", b"x")
    elif damage == "utf8":
        lines[2] = b"\xff" + lines[2]
    if damage == "empty":
        target.write_bytes(b"")
    elif damage == "directory":
        target.unlink()
        target.mkdir()
    else:
        target.write_bytes(blob[:magic_end] + b"\n".join(lines))
    read = _count_full_reads(monkeypatch)
    assert _listing(store, cache) == expected
    assert read == [TEAM]
    if damage != "directory":
        assert target.read_bytes() == blob  # rewritten as it was


def test_list_through_the_console_script_keeps_and_uses_its_cache(
    store: Store, cli_run: Run, isolated_env: dict[str, str]
) -> None:
    listings = os.path.join(isolated_env["cache"], "listings")
    first = cli_run("list", "team")
    assert first.returncode == 0 and b"TEAM_ONLY" in first.stdout
    assert len(_snapshot_files(listings)) == 1
    assert cli_run("list", "team").stdout == first.stdout
    assert cli_run("set", "team", "--name=LATER", "--value=fake-later").returncode == 0
    assert b"LATER" in cli_run("list", "team").stdout
    off = cli_run("list", "project", "--id", "prj42", env={"SECRETSTORE_CACHE": "0"})
    assert off.returncode == 0 and b"MULTI" in off.stdout
    assert len(_snapshot_files(listings)) == 1  # the cache off: nothing kept for the project
    assert stat.S_IMODE(os.stat(_snapshot_files(listings)[0]).st_mode) == 0o600


def test_listing_bytes_match_format_md(store: Store, me: Identity, tmp_path: Path) -> None:
    """Rebuild the cache file's name and bytes from FORMAT.md ("list's cache") with nacl.bindings."""
    from nacl import bindings

    cache = str(tmp_path / "listings")
    store.set(PROJECT, "ROTATED", "fake-rotated", me)
    rows = _listing(store, cache, PROJECT)
    relpath = PROJECT.relpath.encode()
    label = b"\0".join([b"listing", store.root.encode(), relpath])
    name = "l-" + bindings.crypto_generichash_blake2b_salt_personal(label, digest_size=16).hex()
    blob = (Path(cache) / name).read_bytes()
    file_bytes = Path(store.path(PROJECT)).read_bytes()
    head = _head_by_format_md(file_bytes)
    magic = b"secretstore-listing/v1\n"
    binding = bindings.crypto_generichash_blake2b_salt_personal(
        b"\0".join([magic, head, store.root.encode(), relpath]), digest_size=32, person=b"sstore-snapfile1"
    ).hex()
    names = "\t".join(row[0] for row in rows)
    times = "\t".join(row[1] for row in rows)
    expected = f"{binding}\n{me.public_text}\n{names}\n{times}\n" + "\t".join("0" for _ in rows) + "\n" + "0" * len(rows)
    assert blob == magic + expected.encode()


def test_a_write_keeps_the_listing_of_the_file_it_wrote(
    isolated_env: dict[str, str], me: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """set, delete and the other writes keep the rows of the file they just wrote, so the next
    list reads only its head; the rows are those a full read of that file gives."""
    cache = str(tmp_path / "listings")
    store = Store(isolated_env["store"], listing_dir=cache)
    store.set_many(TEAM, {"ALPHA": "fake-a", "BRAVO": "fake-b", "CHARLIE": "fake-c"}, me)
    store.delete(TEAM, "BRAVO", me)
    store.set(TEAM, "ALPHA", "fake-a2", me)
    read = _count_full_reads(monkeypatch)
    rows = store.listing(TEAM)
    assert read == []
    assert rows == Store(isolated_env["store"]).listing(TEAM)  # no cache: read in full
    assert [row[0] for row in rows] == ["ALPHA", "CHARLIE"]
    assert read == [TEAM]


@pytest.mark.parametrize("rows", [
    [],
    [("A", "2026-12-01T00:00:00Z", None, False)],
    [("A", "2026-12-01T00:00:00Z", "ssk2one", True), ("B", "2026-12-01T00:00:01Z", None, False),
     ("C", "2026-12-01T00:00:02Z", "ssk2two", False), ("D", "2026-12-01T00:00:03Z", "ssk2one", True)],
])
def test_listing_encoding_round_trips(rows: list[tuple[str, str, str | None, bool]]) -> None:
    """No rows (every name deleted), unknown writers (0.1 files) and several writers."""
    from secretstore.snapshot import decode_listing, encode_listing

    blob = encode_listing(rows, b"ab12")
    assert decode_listing(blob, b"ab12") == rows
    assert decode_listing(blob, b"ab13") is None
