"""Store files that anyone but you could have written are refused (issue 5), like sshd's StrictModes.

Whoever can write a scope file, or rename files in its directory, can replace
it with values of their choosing sealed to your public key, and ``exec``
would inject them. So a scope file or ``recipients.toml`` that is writable by
group or others, or owned by someone but you or root, is refused, and so is
the store directory (and ``projects/``, ``clusters/``) holding it. Group
write is fine when the group is your private group (Debian's
user-group-modes: umask 002). Readability is not checked: the files are
encrypted and committed to git.

Values are fake, and tracked by a marker that must never reach any output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from secretstore import doctor, fsio
from secretstore.errors import StoreFormatError
from secretstore.identity import Identity, create_identity
from secretstore.store import Scope, Store
from tests.conftest import console_script
from tests.sharing_helpers import call

VALUE = "Perm-Marker-fake-4c2a9d"
TEAM = Scope("team")
PROJECT = Scope("project", "prj1")
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="chown to another uid or gid needs root")
Run = Callable[..., subprocess.CompletedProcess[bytes]]

# A uid and a gid that no account on this machine has.
STRANGER_UID = 54321
STRANGER_GID = 54321

# (command line, what it reads) for the three reading commands, on the team and the project scope.
TEAM_COMMANDS = [
    ["get", "team", "--name=TOKEN"],
    ["list", "team"],
    ["exec", "--", "sh", "-c", 'printf %s "$TOKEN"'],
]
PROJECT_COMMANDS = [
    ["get", "project", "--id=prj1", "--name=OTHER"],
    ["list", "project", "--id=prj1"],
    ["exec", "--project=prj1", "--", "sh", "-c", 'printf %s "$OTHER"'],
]


@pytest.fixture
def filled(isolated_env: dict[str, str]) -> tuple[Store, Identity]:
    identity = create_identity(isolated_env["identity"])
    store = Store(isolated_env["store"])
    store.set(TEAM, "TOKEN", VALUE, identity)
    store.set(PROJECT, "OTHER", VALUE + "-project", identity)
    store.add_recipient(Identity.generate().public, identity)  # writes recipients.toml
    return store, identity


@pytest.fixture(autouse=True)
def fresh_group_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test looks groups up afresh (the cache lives for a process)."""
    monkeypatch.setattr(fsio, "_private_groups", {})


def set_mode(path: str | Path, mode: int) -> None:
    """chmod: these tests make store files loose on purpose (ruff's S103 is about the opposite)."""
    os.chmod(path, mode)


def assert_refused(done: subprocess.CompletedProcess[bytes], path: str, mode: str) -> str:
    """Exit 1, one error line and one hint line naming ``path``, ``mode`` and the fix; no value."""
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert VALUE.encode() not in done.stdout + done.stderr
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith(f"secretstore: error: store file {path} ") or lines[0].startswith(
        f"secretstore: error: store directory {path} "
    ), err
    assert f"(mode {mode})" in lines[0], err
    assert lines[1].startswith("secretstore: hint: run: chmod go-w ") and path in lines[1], err
    return err


def private_group(monkeypatch: pytest.MonkeyPatch, private: bool) -> list[int]:
    """Make every group look private (or not) to the check; returns the gids it was asked about."""
    asked: list[int] = []

    def fake(gid: int, uid: int) -> bool:
        asked.append(gid)
        return private

    monkeypatch.setattr(fsio, "_is_private_group", fake)
    return asked


# --- loose scope files ------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o666, 0o646, 0o602, 0o622], ids=oct)
@pytest.mark.parametrize("args", TEAM_COMMANDS, ids=["get", "list", "exec"])
def test_a_scope_file_writable_by_others_is_refused(filled, cli_run: Run, tmp_path: Path,
                                                    args: list[str], mode: int) -> None:
    store, _identity = filled
    path = store.path(TEAM)
    set_mode(path, mode)
    marker = tmp_path / "ran"
    if args[0] == "exec":
        args = [*args[:-1], args[-1] + f"; touch {marker}"]
    done = cli_run(*args)
    err = assert_refused(done, path, f"0{mode:o}")
    assert f"chmod go-w {path}" in err and "writable by others" in err
    assert not marker.exists()  # exec ran nothing


@needs_root
@pytest.mark.parametrize("gid", [100, STRANGER_GID], ids=["users", "no-name"])
@pytest.mark.parametrize("args", PROJECT_COMMANDS, ids=["get", "list", "exec"])
def test_a_scope_file_writable_by_another_group_is_refused(filled, cli_run: Run,
                                                           args: list[str], gid: int) -> None:
    """Real lookups: group 100 is not the user's own group; a gid without a name is not either."""
    store, _identity = filled
    path = store.path(PROJECT)
    os.chown(path, -1, gid)
    set_mode(path, 0o620)
    done = cli_run(*args)
    err = assert_refused(done, path, "0620")
    assert "writable by its group" in err


# In-process, exec must not replace pytest: --dry-run shows the names it would inject.
IN_PROCESS_COMMANDS = [*PROJECT_COMMANDS[:2], ["exec", "--dry-run", "--project=prj1", "--", "true"]]


@pytest.mark.parametrize("args", IN_PROCESS_COMMANDS, ids=["get", "list", "exec"])
def test_group_write_is_refused_unless_the_group_is_private(filled, capsys, monkeypatch,
                                                            args: list[str]) -> None:
    """The private-group decision, simulated: no account can be created here."""
    store, _identity = filled
    path = store.path(PROJECT)
    set_mode(path, 0o664)
    asked = private_group(monkeypatch, False)
    code, out, err = call(capsys, monkeypatch, *args)
    assert code == 1 and VALUE not in out + err
    assert f"store file {path} is writable by its group (mode 0664)" in err
    assert f"hint: run: chmod go-w {path}" in err
    assert asked == [os.stat(path).st_gid]

    monkeypatch.setattr(fsio, "_private_groups", {})
    private_group(monkeypatch, True)
    code, out, err = call(capsys, monkeypatch, *args)
    assert code == 0, err
    assert ("OTHER" if "list" in args or "--dry-run" in args else VALUE) in out


def test_no_group_lookup_unless_a_group_write_bit_is_set(filled, monkeypatch) -> None:
    store, identity = filled
    asked = private_group(monkeypatch, False)
    set_mode(store.path(TEAM), 0o644)
    set_mode(store.root, 0o755)
    assert store.get(TEAM, "TOKEN", identity) == VALUE
    assert store.roster(identity.public) is not None
    assert asked == []


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o400, 0o444], ids=oct)
def test_files_not_writable_by_others_are_accepted(filled, cli_run: Run, mode: int) -> None:
    store, _identity = filled
    for scope in (TEAM, PROJECT):
        set_mode(store.path(scope), mode)
    set_mode(store.recipients_path, mode)
    for directory in (store.root, os.path.join(store.root, "projects")):
        set_mode(directory, 0o755)
    assert cli_run("get", "team", "--name=TOKEN").stdout == VALUE.encode()
    done = cli_run("exec", "--project=prj1", "--", "sh", "-c", 'printf %s "$OTHER"')
    assert done.returncode == 0 and done.stdout == (VALUE + "-project").encode()
    assert cli_run("recipients", "list").returncode == 0


# --- directories ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o757, 0o1777], ids=oct)
def test_a_store_directory_writable_by_others_is_refused(filled, cli_run: Run, mode: int) -> None:
    store, _identity = filled
    set_mode(store.root, mode)
    for args in (TEAM_COMMANDS[0], PROJECT_COMMANDS[1], PROJECT_COMMANDS[2]):  # get, list, exec
        err = assert_refused(cli_run(*args), store.root, f"{mode:04o}")
        assert f"store directory {store.root} is writable by others" in err


def test_a_group_writable_store_directory_is_refused_unless_the_group_is_private(filled, monkeypatch) -> None:
    store, identity = filled
    set_mode(store.root, 0o770)
    private_group(monkeypatch, False)
    with pytest.raises(StoreFormatError) as caught:
        store.get(TEAM, "TOKEN", identity)
    assert "writable by its group (mode 0770)" in caught.value.message
    monkeypatch.setattr(fsio, "_private_groups", {})
    private_group(monkeypatch, True)
    assert store.get(TEAM, "TOKEN", identity) == VALUE


@pytest.mark.parametrize("entity", ["project", "cluster"])
def test_a_loose_projects_or_clusters_directory_is_refused_for_its_scopes_only(
        filled, cli_run: Run, entity: str) -> None:
    store, identity = filled
    scope = Scope(entity, "prj1")
    store.set(scope, "OTHER", VALUE + "-scoped", identity)
    directory = os.path.dirname(store.path(scope))
    set_mode(directory, 0o757)
    commands = [
        ["get", entity, "--id=prj1", "--name=OTHER"],
        ["list", entity, "--id=prj1"],
        ["exec", f"--{entity}=prj1", "--", "true"],
    ]
    for args in commands:
        assert_refused(cli_run(*args), directory, "0757")
    # team.toml is not read through that directory
    assert cli_run("get", "team", "--name=TOKEN").stdout == VALUE.encode()


def test_the_hint_names_every_loose_path_on_the_way(filled, cli_run: Run) -> None:
    store, _identity = filled
    projects = os.path.join(store.root, "projects")
    path = store.path(PROJECT)
    set_mode(store.root, 0o777)
    set_mode(projects, 0o777)
    set_mode(path, 0o666)
    err = assert_refused(cli_run(*PROJECT_COMMANDS[0]), store.root, "0777")
    assert f"hint: run: chmod go-w {store.root} {projects} {path}\n" in err
    subprocess.run(["chmod", "go-w", store.root, projects, path], check=True)
    assert cli_run(*PROJECT_COMMANDS[0]).stdout == (VALUE + "-project").encode()


# --- owners ----------------------------------------------------------------------------


@needs_root
@pytest.mark.parametrize("what", ["file", "directory", "projects"])
def test_a_store_file_or_directory_owned_by_someone_else_is_refused(filled, cli_run: Run,
                                                                    what: str) -> None:
    """We are root here: only root's own files pass; another uid's (even 0600) do not."""
    store, _identity = filled
    path = {"file": store.path(PROJECT), "directory": store.root,
            "projects": os.path.join(store.root, "projects")}[what]
    os.chown(path, STRANGER_UID, -1)
    done = cli_run(*PROJECT_COMMANDS[0])
    err = done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in err
    assert VALUE.encode() not in done.stdout + done.stderr
    assert len(err.splitlines()) == 2, err
    kind = "file" if what == "file" else "directory"
    assert f"error: store {kind} {path} is owned by uid {STRANGER_UID}; it must be owned by you (root, uid 0)" in err
    assert f"hint: as root, run: chown root {path}" in err


@needs_root
def test_root_owned_files_pass_for_another_user(filled, monkeypatch) -> None:
    """Simulated: as uid 4242, a root-owned store and a store owned by 4242 pass; 4343's does not."""
    store, identity = filled
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    assert store.get(TEAM, "TOKEN", identity) == VALUE  # everything is root's
    for path in (store.root, store.path(TEAM)):
        os.chown(path, 4242, -1)
    assert store.get(TEAM, "TOKEN", identity) == VALUE
    os.chown(store.path(TEAM), 4343, -1)
    with pytest.raises(StoreFormatError) as caught:
        store.get(TEAM, "TOKEN", identity)
    assert f"{store.path(TEAM)} is owned by uid 4343; it must be owned by you (uid 4242)" in caught.value.message


# --- recipients.toml and writes ---------------------------------------------------------


@pytest.mark.parametrize("mode", [0o666, 0o646], ids=oct)
def test_a_loose_recipients_file_is_refused_and_nothing_is_written(filled, cli_run: Run,
                                                                   mode: int) -> None:
    store, _identity = filled
    path = store.recipients_path
    set_mode(path, mode)
    before = Path(path).read_bytes()
    for args in (["recipients", "list"],
                 ["set", "cluster", "--id=new1", "--name=N", "--value=fake"]):  # a new scope reads it
        assert_refused(cli_run(*args), path, f"0{mode:o}")
    assert not os.path.exists(os.path.join(store.root, "clusters"))
    assert Path(path).read_bytes() == before


def test_store_wide_recipient_changes_write_nothing_when_recipients_toml_is_refused(
        filled, cli_run: Run) -> None:
    """They used to rewrite every scope file first and read recipients.toml last."""
    store, identity = filled
    other = Identity.generate()
    store.add_recipient(other.public, identity)
    set_mode(store.recipients_path, 0o666)
    files = [store.path(TEAM), store.path(PROJECT), store.recipients_path]
    before = [Path(name).read_bytes() for name in files]
    for args in (["recipients", "add", Identity.generate().public_text],
                 ["recipients", "remove", other.public_text]):
        assert_refused(cli_run(*args), store.recipients_path, "0666")
        assert [Path(name).read_bytes() for name in files] == before, args


def test_set_and_delete_on_a_loose_scope_file_write_nothing(filled, cli_run: Run) -> None:
    store, _identity = filled
    path = store.path(TEAM)
    set_mode(path, 0o666)
    before = Path(path).read_bytes()
    assert_refused(cli_run("set", "team", "--name=NEW", "--value=fake"), path, "0666")
    assert_refused(cli_run("delete", "team", "--name=TOKEN"), path, "0666")
    assert Path(path).read_bytes() == before
    assert os.stat(path).st_mode & 0o777 == 0o666  # the check fixes nothing behind your back


@pytest.mark.parametrize("umask", [0o022, 0o002], ids=oct)
def test_the_store_passes_its_own_check_after_every_write(cli_run: Run, isolated_env, umask: int) -> None:
    old = os.umask(umask)
    try:
        for args in (["init"],
                     ["set", "team", "--name=A", "--value=fake-a"],
                     ["set", "project", "--id=p1", "--name=B", "--value=fake-b"],
                     ["set", "cluster", "--id=c1", "--name=C", "--value=fake-c"],
                     ["recipients", "add", Identity.generate().public_text, "--label=other"],
                     ["delete", "team", "--name=A"],
                     ["rotate", "--all"],
                     ["exec", "--project=p1", "--cluster=c1", "--", "true"],
                     ["list", "project", "--id=p1"],
                     ["recipients", "list"]):
            done = cli_run(*args)
            assert done.returncode == 0, (args, done.stderr)
    finally:
        os.umask(old)
    for directory, _dirs, files in os.walk(isolated_env["store"]):
        assert os.stat(directory).st_mode & 0o022 == 0, directory
        for name in files:
            assert os.stat(os.path.join(directory, name)).st_mode & 0o022 == 0, name


def test_the_cache_and_state_roots_are_private_from_creation(cli_run: Run, isolated_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``~/.cache/secretstore`` and ``~/.local/state/secretstore`` hold only secretstore's files
    (snapshots, list's cache, trust state, the audit log): 0700 like the directories under
    them, although only those are asked for. ``~/.cache`` itself keeps the usual mode."""
    for variable in ("SECRETSTORE_CACHE_DIR", "SECRETSTORE_STATE_DIR"):
        monkeypatch.delenv(variable)
    home = Path(os.environ["HOME"])
    old = os.umask(0o022)
    try:
        for args in (["set", "team", "--name=A", "--value=fake-a"], ["exec", "--", "true"], ["list", "team"]):
            done = cli_run(*args)
            assert done.returncode == 0, (args, done.stderr)
    finally:
        os.umask(old)
    for root in (".cache/secretstore", ".local/state/secretstore"):
        assert os.stat(home / root).st_mode & 0o777 == 0o700, root
        for directory, _dirs, _files in os.walk(home / root):
            assert os.stat(directory).st_mode & 0o777 == 0o700, directory
    assert os.stat(home / ".cache").st_mode & 0o777 == 0o755
    assert os.stat(home / ".local/state").st_mode & 0o777 == 0o755


# --- real git clones --------------------------------------------------------------------


def _git_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(tmp_path / "home"), GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="a", GIT_AUTHOR_EMAIL="a@example.invalid",
               GIT_COMMITTER_NAME="a", GIT_COMMITTER_EMAIL="a@example.invalid")
    return env


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.parametrize("umask", [0o022, 0o002], ids=oct)
def test_a_store_cloned_by_git_works(filled, tmp_path: Path, umask: int) -> None:
    """git gives a clone 0644/0755 (umask 022) or 0664/0775 (umask 002) from the umask."""
    if umask == 0o002 and not fsio._is_private_group(os.getgid(), os.geteuid()):
        pytest.skip("this user's primary group is not a private group: 0664 is refused here, rightly")
    store, _identity = filled
    env = _git_env(tmp_path)
    (tmp_path / "home").mkdir()
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "store"]):
        subprocess.run(["git", "-C", store.root, *args], env=env, check=True, capture_output=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", store.root, str(clone)], env=env, check=True,
                   preexec_fn=lambda: os.umask(umask))
    expected_file, expected_dir = 0o666 & ~umask, 0o777 & ~umask
    assert os.stat(clone / "team.toml").st_mode & 0o777 == expected_file
    assert os.stat(clone / "projects").st_mode & 0o777 == expected_dir
    assert os.stat(clone).st_mode & 0o777 == expected_dir
    env["SECRETSTORE_DIR"] = str(clone)
    for args, expected in (([console_script(), "get", "team", "--name=TOKEN"], VALUE),
                           ([console_script(), "exec", "--project=prj1", "--", "sh", "-c",
                             'printf %s "$OTHER"'], VALUE + "-project"),
                           ([console_script(), "recipients", "list"], None)):
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert expected is None or done.stdout == expected
    done = subprocess.run([console_script(), "doctor"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert "error" not in done.stdout, done.stdout


# --- doctor, the fast path -------------------------------------------------------------


def test_doctor_reports_a_loose_file_with_its_fix(filled, cli_run: Run) -> None:
    store, _identity = filled
    path = store.path(PROJECT)
    set_mode(path, 0o646)
    done = cli_run("doctor")
    out = done.stdout.decode()
    assert done.returncode == 1 and "Traceback" not in done.stderr.decode()
    assert (f"error: project prj1: store file {path} is writable by others (mode 0646); "
            f"refusing to use it (run: chmod go-w {path})") in out
    assert "ok: store:" in out and VALUE not in out


def test_doctor_reports_a_loose_store_directory_once(filled, cli_run: Run) -> None:
    store, _identity = filled
    set_mode(store.root, 0o777)
    out = cli_run("doctor").stdout.decode()
    assert out.count(f"store directory {store.root} is writable by others") == 1, out
    assert f"error: recipients.toml: store directory {store.root}" in out
    # with a loose file too, that file's error lists it in its fix
    set_mode(store.path(TEAM), 0o666)
    out = cli_run("doctor").stdout.decode()
    assert f"error: team: store directory {store.root} is writable by others" in out, out
    assert f"(run: chmod go-w {store.root} {store.path(TEAM)})" in out
    assert out.count(f"store directory {store.root} is writable by others") == 2, out


def _imported_by_exec(tmp_path: Path) -> set[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", console_script(), "exec", "--project=prj1",
                           "--", "true"], capture_output=True, timeout=60, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines() if "|" in line}


def test_the_exec_fast_path_looks_up_no_group_for_a_private_store(filled, tmp_path: Path) -> None:
    modules = _imported_by_exec(tmp_path)
    assert "secretstore.commands.exec" in modules
    for lookup in ("grp", "pwd", "shlex"):
        assert lookup not in modules, lookup


def test_error_messages_hold_no_value(filled, monkeypatch: Any) -> None:
    store, identity = filled
    set_mode(store.path(TEAM), 0o666)
    with pytest.raises(StoreFormatError) as caught:
        store.get(TEAM, "TOKEN", identity)
    error = caught.value
    assert VALUE not in str(error) + repr(error) + (error.hint or "")
    findings = doctor.diagnose(store, identity)
    assert not any(VALUE in finding.message for finding in findings)
    assert any(finding.level == doctor.ERROR for finding in findings)
