"""POSIX ACLs: a store file or directory whose ACL lets another user or group write it is refused.

Mode bits do not show a named ACL entry; shared (HPC) file systems often give
a group write access through default ACLs. Tested with real ``setfacl`` when
it is installed (Debian package ``acl``; ``.ci/run`` installs it), and with the
parser on hand-built xattr bytes everywhere.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from secretstore import fsio
from secretstore.errors import StoreFormatError
from secretstore.fsio import (
    ACL_GROUP,
    ACL_GROUP_OBJ,
    ACL_MASK,
    ACL_OTHER,
    ACL_USER,
    ACL_USER_OBJ,
    acl_writers,
    parse_posix_acl,
)

UNDEFINED = 0xFFFFFFFF


def acl_bytes(*entries: tuple[int, int, int], version: int = 2) -> bytes:
    out = version.to_bytes(4, "little")
    for tag, perm, ident in entries:
        out += tag.to_bytes(2, "little") + perm.to_bytes(2, "little") + ident.to_bytes(4, "little")
    return out


def base(*named: tuple[int, int, int], mask: int | None = 0o6) -> bytes:
    entries = [(ACL_USER_OBJ, 0o6, UNDEFINED), *named, (ACL_GROUP_OBJ, 0o4, UNDEFINED)]
    if mask is not None:
        entries.append((ACL_MASK, mask, UNDEFINED))
    entries.append((ACL_OTHER, 0o4, UNDEFINED))
    return acl_bytes(*entries)


# --- the parser, on hand-built bytes ---------------------------------------------------

def test_parse_the_kernels_format() -> None:
    # getfacl: user::rw- user:nobody:rw- group::r-- mask::rw- other::r-- (as read from ext4)
    raw = bytes.fromhex("0200000001000600ffffffff02000600feff000004000400ffffffff10000600ffffffff20000400ffffffff")
    assert parse_posix_acl(raw) == [
        (ACL_USER_OBJ, 6, UNDEFINED), (ACL_USER, 6, 65534), (ACL_GROUP_OBJ, 4, UNDEFINED),
        (ACL_MASK, 6, UNDEFINED), (ACL_OTHER, 4, UNDEFINED),
    ]


@pytest.mark.parametrize("raw", [b"", b"\x02\x00\x00", acl_bytes(version=1), acl_bytes(version=3),
                                 base() + b"\x00", base()[:-1]])
def test_parse_refuses_anything_else(raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse_posix_acl(raw)


OTHER_UID = 4242
OTHER_GID = 4343


@pytest.mark.parametrize(("raw", "writers"), [
    (base(), []),                                                          # no named entry
    (base((ACL_USER, 0o6, OTHER_UID)), [f"uid {OTHER_UID}"]),
    (base((ACL_USER, 0o2, OTHER_UID)), [f"uid {OTHER_UID}"]),              # write only
    (base((ACL_USER, 0o4, OTHER_UID)), []),                                # read only
    (base((ACL_USER, 0o6, OTHER_UID), mask=0o4), []),                      # the mask removes write
    (base((ACL_USER, 0o6, OTHER_UID), mask=None), [f"uid {OTHER_UID}"]),   # no mask: nothing removed
    (base((ACL_USER, 0o6, 0)), []),                                        # root can write anyway
    (base((ACL_GROUP, 0o6, OTHER_GID)), [f"gid {OTHER_GID}"]),
    (base((ACL_GROUP, 0o6, OTHER_GID), mask=0o5), []),
    (base((ACL_USER, 0o7, OTHER_UID), (ACL_GROUP, 0o7, OTHER_GID)), [f"uid {OTHER_UID}", f"gid {OTHER_GID}"]),
])
def test_named_writers_after_the_mask(raw: bytes, writers: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fsio, "_user_name", lambda uid: None)
    monkeypatch.setattr(fsio, "_group_name", lambda gid: None)
    monkeypatch.setitem(fsio._private_groups, OTHER_GID, False)
    me = OTHER_UID + 1
    assert acl_writers(parse_posix_acl(raw), me) == writers


def test_your_own_uid_and_private_group_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fsio._private_groups, OTHER_GID, True)
    raw = base((ACL_USER, 0o6, OTHER_UID), (ACL_GROUP, 0o6, OTHER_GID))
    assert acl_writers(parse_posix_acl(raw), OTHER_UID) == []


# --- real ACLs through the console script ----------------------------------------------

needs_setfacl = pytest.mark.skipif(
    shutil.which("setfacl") is None,
    reason="needs setfacl (Debian package 'acl'; .ci/run installs it)",
)


def other_user() -> pwd.struct_passwd:
    me = os.geteuid()
    for entry in pwd.getpwall():
        if entry.pw_uid not in (me, 0):
            return entry
    pytest.skip("no other user on this machine to grant an ACL to")


def setfacl(*args: str) -> None:
    done = subprocess.run(["setfacl", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0 and "Operation not supported" in done.stderr:
        pytest.skip(f"this file system has no POSIX ACLs: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr


@pytest.fixture
def store(isolated_env: dict[str, str], cli_run) -> Path:
    for scope in (["team"], ["project", "--id=prj1"]):
        assert cli_run("set", *scope, "--name=KEEP", "--value=fake-keep").returncode == 0
    return Path(isolated_env["store"])


@needs_setfacl
@pytest.mark.parametrize("target", ["team.toml", ".", "projects"])
def test_a_named_user_with_write_is_refused(store: Path, cli_run, target: str) -> None:
    other = other_user()
    path = store / target
    setfacl("-m", f"u:{other.pw_name}:rwx", str(path))
    shown = os.path.normpath(str(path))
    scope = ["project", "--id=prj1"] if target == "projects" else ["team"]
    for command in (["get", *scope, "--name=KEEP"], ["list", *scope], ["exec", "--project=prj1", "--", "true"]):
        done = cli_run(*command, env={"SECRETSTORE_CACHE": "0"})
        err = done.stderr.decode()
        assert done.returncode == 1, (command, err)
        assert err.splitlines()[0] == (
            f"secretstore: error: store path {shown} has an ACL that lets user {other.pw_name} "
            f"(uid {other.pw_uid}) write it; refusing to use it")
        assert err.splitlines()[1] == f"secretstore: hint: run: setfacl -b {shown}"
    setfacl("-b", str(path))  # the fix the hint gives
    assert cli_run("get", *scope, "--name=KEEP").stdout == b"fake-keep"


@needs_setfacl
def test_a_named_group_with_write_is_refused(store: Path, cli_run) -> None:
    import grp

    mine = os.getegid()
    group = next((g for g in grp.getgrall() if g.gr_gid not in (mine,) and not fsio._is_private_group(
        g.gr_gid, os.geteuid())), None)
    if group is None:
        pytest.skip("no other group to grant an ACL to")
    setfacl("-m", f"g:{group.gr_name}:rw", str(store / "team.toml"))
    done = cli_run("get", "team", "--name=KEEP")
    assert done.returncode == 1
    assert f"lets group {group.gr_name} (gid {group.gr_gid}) write it" in done.stderr.decode()


@needs_setfacl
def test_acls_that_grant_no_write_pass(store: Path, cli_run) -> None:
    other = other_user()
    team = str(store / "team.toml")
    setfacl("-m", f"u:{other.pw_name}:r", team)                      # read only
    assert cli_run("get", "team", "--name=KEEP").stdout == b"fake-keep"
    setfacl("-m", f"u:{other.pw_name}:rw,m::r", team)                # write masked away
    assert cli_run("get", "team", "--name=KEEP").stdout == b"fake-keep"
    setfacl("-m", f"u:{pwd.getpwuid(os.geteuid()).pw_name}:rw,m::rw", team)  # yourself
    setfacl("-x", f"u:{other.pw_name}", team)
    assert cli_run("get", "team", "--name=KEEP").stdout == b"fake-keep"


@needs_setfacl
def test_a_default_acl_on_the_store_dir_does_not_leak_into_new_files(store: Path, cli_run) -> None:
    """Files are created 0600: a default ACL's named entries get an empty mask, so they pass."""
    other = other_user()
    setfacl("-d", "-m", f"u:{other.pw_name}:rw", str(store))
    assert cli_run("set", "cluster", "--id=gpu", "--name=NEW", "--value=fake-new").returncode == 0
    assert cli_run("get", "cluster", "--id=gpu", "--name=NEW").stdout == b"fake-new"


def test_in_process_refusal_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without setfacl: a fake xattr read gives the same refusal for the file it was read from."""
    (tmp_path / "team.toml").write_bytes(b"x")
    (tmp_path / "team.toml").chmod(0o600)
    tmp_path.chmod(0o700)
    raw = base((ACL_USER, 0o6, OTHER_UID))

    def fake_getxattr(fd: int, name: str) -> bytes:
        assert name == "system.posix_acl_access"
        if os.path.samestat(os.fstat(fd), os.stat(tmp_path / "team.toml")):
            return raw
        raise OSError(61, "No data available")

    monkeypatch.setattr(os, "getxattr", fake_getxattr, raising=False)
    monkeypatch.setattr(fsio, "_user_name", lambda uid: None)
    with pytest.raises(StoreFormatError) as info:
        fsio.read_store_file(str(tmp_path), "team.toml")
    assert info.value.message == (f"store path {tmp_path / 'team.toml'} has an ACL that lets uid {OTHER_UID} "
                                  "write it; refusing to use it")
    assert info.value.hint == f"run: setfacl -b {tmp_path / 'team.toml'}"
