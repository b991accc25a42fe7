"""secretstore exec through the real console script, and the fast parser reading its declaration.

Fake values only. Every subprocess has a timeout.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from secretstore.identity import Identity, resolve_identity, unprotected_text
from secretstore.store import TEAM, Scope, Store
from tests.conftest import console_script

CLUSTER = Scope("cluster", "gpu-a")
PROJECT = Scope("project", "prj42")
PY = sys.executable
# A child that prints the variables named in argv as JSON (absent -> null).
SHOW = "import json, os, sys; print(json.dumps({k: os.environ.get(k) for k in sys.argv[1:]}))"

Run = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def seeded(isolated_env: dict[str, str]) -> Store:
    """team, cluster gpu-a and project prj42, with SHARED in all three."""
    store = Store(isolated_env["store"])
    me = resolve_identity(create=True)[0]
    for scope, values in (
        (TEAM, {"SHARED": "fake-team", "TEAM_ONLY": "fake-team-only", "wandb_key": "fake-wandb"}),
        (CLUSTER, {"SHARED": "fake-cluster", "CLUSTER_ONLY": "fake-cluster-only"}),
        (PROJECT, {"SHARED": "fake-project", "PROJECT_ONLY": "fake-project-only"}),
    ):
        for name, value in values.items():
            store.set(scope, name, value, me)
    return store


def show(cli_run: Run, *args: str, names: tuple[str, ...], env: dict[str, str] | None = None,
         cwd: str | None = None) -> dict[str, str | None]:
    full = [console_script(), "exec", *args, "--", PY, "-c", SHOW, *names]
    full_env = dict(os.environ)
    full_env.update(env or {})
    done = subprocess.run(full, capture_output=True, env=full_env, cwd=cwd, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)  # type: ignore[no-any-return]


# --- what the program gets -------------------------------------------------------------


NAMES = ("SHARED", "TEAM_ONLY", "CLUSTER_ONLY", "PROJECT_ONLY")


@pytest.mark.parametrize(
    ("args", "expected_shared", "present"),
    [
        ((), "fake-team", {"TEAM_ONLY"}),
        (("--cluster", "gpu-a"), "fake-cluster", {"TEAM_ONLY", "CLUSTER_ONLY"}),
        (("--project", "prj42"), "fake-project", {"TEAM_ONLY", "PROJECT_ONLY"}),
        (("--project", "prj42", "--cluster", "gpu-a"), "fake-project", {"TEAM_ONLY", "CLUSTER_ONLY", "PROJECT_ONLY"}),
    ],
)
def test_precedence_end_to_end(seeded: Store, cli_run: Run, args: tuple[str, ...],
                               expected_shared: str, present: set[str]) -> None:
    got = show(cli_run, *args, names=NAMES)
    assert got["SHARED"] == expected_shared
    assert {name for name in NAMES[1:] if got[name] is not None} == present


def test_context_from_env_and_dotfile(seeded: Store, cli_run: Run, tmp_path: Path) -> None:
    work = tmp_path / "repo" / "sub"
    work.mkdir(parents=True)
    (tmp_path / "repo" / ".secretstore.toml").write_text('project = "prj42"\ncluster = "gpu-a"\n')
    got = show(cli_run, names=NAMES, cwd=str(work))
    assert got["SHARED"] == "fake-project" and got["CLUSTER_ONLY"] == "fake-cluster-only"
    got = show(cli_run, names=NAMES, cwd=str(work), env={"SECRETSTORE_PROJECT": "nosuch"})
    assert got["SHARED"] == "fake-cluster"  # a project with no secrets is not an error
    got = show(cli_run, "--cluster", "nosuch", names=NAMES, cwd=str(work))
    assert (got["SHARED"], got["CLUSTER_ONLY"]) == ("fake-project", None)


def test_inherited_override_and_no_override(seeded: Store, cli_run: Run) -> None:
    env = {"SHARED": "inherited", "UNRELATED": "kept"}
    got = show(cli_run, names=("SHARED", "UNRELATED"), env=env)
    assert got == {"SHARED": "fake-team", "UNRELATED": "kept"}
    got = show(cli_run, "--no-override", names=("SHARED", "TEAM_ONLY"), env=env)
    assert got == {"SHARED": "inherited", "TEAM_ONLY": "fake-team-only"}


def test_references_and_explicit_env(seeded: Store, cli_run: Run) -> None:
    got = show(
        cli_run,
        "--env", "MY_KEY=secret:wandb_key",
        "--env", "SHARED=typed-literal",
        "--project", "prj42",
        names=("MY_KEY", "SHARED", "INHERITED_REF"),
        env={"INHERITED_REF": "secret:PROJECT_ONLY"},
    )
    assert got == {"MY_KEY": "fake-wandb", "SHARED": "typed-literal", "INHERITED_REF": "fake-project-only"}


def test_refs_only(seeded: Store, cli_run: Run) -> None:
    got = show(cli_run, "--refs-only", "--env", "K=secret:TEAM_ONLY", names=("K", "TEAM_ONLY", "SHARED"))
    assert got == {"K": "fake-team-only", "TEAM_ONLY": None, "SHARED": None}


def test_missing_reference_fails_before_start(seeded: Store, cli_run: Run, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    done = cli_run("exec", "--env", "MY_KEY=secret:not_there", "--", "touch", str(marker))
    assert done.returncode == 1
    assert not marker.exists()
    err = done.stderr.decode()
    assert "MY_KEY" in err and "not_there" in err and err.startswith("secretstore: error:")


def test_dry_run_table_without_values(seeded: Store, cli_run: Run) -> None:
    done = cli_run("exec", "--dry-run", "--project", "prj42", "--cluster", "gpu-a",
                   "--env", "R=secret:wandb_key", "--", "false", env={"SHARED": "inherited"})
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "fake-" not in out
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:4]]
            for line in out.splitlines() if line.startswith("|")}
    assert rows["SHARED"] == ["project prj42", "inherited env, team, cluster gpu-a"]
    assert rows["TEAM_ONLY"] == ["team", "-"]
    assert rows["R"] == ["--env -> secret:wandb_key (team)", "-"]


def test_not_recipient_warns_unless_strict(seeded: Store, cli_run: Run) -> None:
    seeded.set(Scope("cluster", "theirs"), "THEIRS", "fake-theirs", Identity.generate("stranger"))
    done = cli_run("exec", "--cluster", "theirs", "--", "true")
    assert done.returncode == 0
    assert b"secretstore: warning: skipped cluster theirs: not a recipient" in done.stderr
    # least privilege: the hint asks for this cluster only, not every scope of the store
    assert done.stderr.rstrip().endswith(b"--cluster theirs)")
    done = cli_run("exec", "--strict", "--cluster", "theirs", "--", "true")
    assert done.returncode != 0 and b"not a recipient" in done.stderr
    assert b"secretstore: hint: ask an owner to run: secretstore recipients add ssk2" in done.stderr
    assert b"--cluster theirs\n" in done.stderr


def test_an_empty_store_and_no_identity_still_runs(cli_run: Run, isolated_env: dict[str, str]) -> None:
    os.makedirs(isolated_env["store"])
    done = cli_run("exec", "--", "sh", "-c", "exit 0")
    assert done.returncode == 0, done.stderr
    assert not os.path.exists(isolated_env["identity"])


# --- process behaviour --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "code"),
    [(["true"], 0), (["sh", "-c", "exit 7"], 7), (["/definitely/not/here"], 127), (["no-such-cmd-xyz"], 127)],
)
def test_exit_codes(seeded: Store, cli_run: Run, argv: list[str], code: int) -> None:
    for mask in ([], ["--mask"]):
        done = cli_run("exec", *mask, "--", *argv)
        assert done.returncode == code, (mask, done.stderr)


def test_exit_126_not_executable(seeded: Store, cli_run: Run, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    for mask in ([], ["--mask"]):
        done = cli_run("exec", *mask, "--", str(script))
        assert done.returncode == 126, done.stderr
        assert b"secretstore: error:" in done.stderr


def test_usage_error_is_2(cli_run: Run) -> None:
    assert cli_run("exec", "--bogus", "--", "true").returncode == 2
    assert cli_run("exec").returncode == 2
    assert cli_run("exec", "--env", "NOEQUALS", "--", "true").returncode == 2


def test_death_by_signal_is_the_programs_own(seeded: Store) -> None:
    for mask in ("", "--mask"):
        line = f"{console_script()} exec {mask} -- sh -c 'kill -TERM $$'; echo $?"
        done = subprocess.run(["sh", "-c", line], capture_output=True, timeout=60, check=False)
        assert done.stdout.decode().strip() == "143", (mask, done.stderr)


def test_stdin_passed_through(seeded: Store, cli_run: Run) -> None:
    for mask in ([], ["--mask"]):
        done = cli_run("exec", *mask, "--", "cat", input=b"line one\nline two\n")
        assert done.stdout == b"line one\nline two\n"


def test_mask_split_writes(seeded: Store, cli_run: Run) -> None:
    child = (
        "import os, sys, time\n"
        "v = os.environ['TEAM_ONLY']\n"
        "sys.stdout.write('a=' + v[:5]); sys.stdout.flush(); time.sleep(0.3)\n"
        "sys.stdout.write(v[5:] + ' end\\n'); sys.stdout.flush()\n"
        "sys.stderr.write('err=' + os.environ['SHARED'] + '\\n')\n"
    )
    for how, env in ((["--mask"], {}), ([], {"SECRETSTORE_MASK": "1"})):
        done = cli_run("exec", *how, "--", PY, "-c", child, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout == b"a=[MASKED] end\n"
        assert done.stderr == b"err=[MASKED]\n"


def test_mask_on_a_pty(seeded: Store) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [console_script(), "exec", "--mask", "--", "sh", "-c", 'test -t 1 && echo "tty:$TEAM_ONLY"'],
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=os.environ.copy(),
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=30) == 0
    assert b"tty:[MASKED]" in output
    assert b"fake-team-only" not in output


@pytest.mark.parametrize("name", ["TERM", "USR1", "USR2"])
def test_mask_forwards_a_signal_to_a_child_that_traps_it(seeded: Store, name: str) -> None:
    # USR1 was not forwarded: its default action killed secretstore and orphaned the program.
    child = f'trap "echo got-{name}; exit 3" {name}; echo ready; while :; do sleep 0.05; done'
    proc = subprocess.Popen([console_script(), "exec", "--mask", "--", "sh", "-c", child],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(getattr(signal, f"SIG{name}"))
    out, _err = proc.communicate(timeout=30)
    assert out == f"got-{name}\n".encode()
    assert proc.returncode == 3


def test_global_store_flag_before_exec(seeded: Store, cli_run: Run, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store_dir = seeded.root
    monkeypatch.setenv("SECRETSTORE_DIR", str(tmp_path / "elsewhere"))
    for args in (["--store", store_dir, "exec"], [f"--store={store_dir}", "exec"], ["exec", "--store", store_dir]):
        done = cli_run(*args, "--", PY, "-c", SHOW, "TEAM_ONLY")
        assert json.loads(done.stdout) == {"TEAM_ONLY": "fake-team-only"}, args


# --- the fast path -------------------------------------------------------------------------


def test_exec_imports_no_typer(seeded: Store) -> None:
    done = subprocess.run([PY, "-X", "importtime", "-m", "secretstore", "exec", "--", "true"],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    modules = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines() if "|" in line}
    assert "secretstore.commands.exec" in modules and "secretstore.cli.parser" in modules
    assert "secretstore.store" in modules
    for heavy in ("typer", "typer._click", "click", "rich", "pydantic", "secretstore.cli.framework",
                  "dotenv", "json", "tomli_w", "yaml"):
        assert heavy not in modules, heavy


def test_help_comes_from_typer(cli_run: Run) -> None:
    done = cli_run("exec", "--help")
    assert done.returncode == 0
    out = done.stdout.decode()
    assert "Usage" in out and "--refs-only" in out and "--no-override" in out


COMMAND_LINES = [
    (["--", "true"], {"command": ["true"]}),
    (["true", "--mask"], {"command": ["true", "--mask"], "mask": False}),  # options end at the command
    (["--project", "p1", "--cluster=c1", "--", "cmd", "-x", "--project", "q"],
     {"project": "p1", "cluster": "c1", "command": ["cmd", "-x", "--project", "q"]}),
    (["--env", "A=1", "--env=B=secret:x", "--env", "C=", "--", "cmd"], {"env": ["A=1", "B=secret:x", "C="]}),
    (["--refs-only", "--no-override", "--strict", "--mask", "--dry-run", "--no-team", "--", "cmd"],
     {"refs_only": True, "no_override": True, "strict": True, "mask": True, "dry_run": True, "no_team": True}),
    (["--store", "/tmp/somewhere", "cmd", "arg"], {"store": "/tmp/somewhere", "command": ["cmd", "arg"]}),
    (["--mask", "cmd", "--", "x"], {"mask": True, "command": ["cmd", "--", "x"]}),
    (["--env-file", ".env", "--json", "--dry-run", "--", "x"], {"env_file": ".env", "as_json": True}),
    (["--allow-var", "PATH", "--allow-var=LD_PRELOAD", "--", "cmd"], {"allow_vars": ["PATH", "LD_PRELOAD"]}),
]


@pytest.mark.parametrize(("args", "expected"), COMMAND_LINES)
def test_the_parser_reads_exec_lines_from_the_declaration(args: list[str], expected: dict[str, object]) -> None:
    from secretstore.cli.declarations import ROOT
    from secretstore.cli.parser import parse

    for word in ("exec", "run"):
        parsed = parse([word, *args], ROOT)
        assert parsed.kind == "run" and parsed.path == ["exec"]
        for key, value in expected.items():
            assert parsed.values[key] == value, (key, parsed.values[key])


@pytest.mark.parametrize(
    ("args", "kind"),
    [(["--help"], "help"), (["-h"], "help"), (["--bogus", "--", "x"], "fallback"), ([], "fallback"),
     (["--project"], "fallback"), (["--mask=yes", "--", "x"], "fallback"), (["--"], "fallback")],
)
def test_unusual_exec_lines_go_to_help_or_typer(args: list[str], kind: str) -> None:
    from secretstore.cli.declarations import ROOT
    from secretstore.cli.parser import parse

    assert parse(["exec", *args], ROOT).kind == kind


def test_a_usage_error_comes_from_typer(cli_run: Run) -> None:
    done = cli_run("exec", "--bogus", "--", "true")
    assert done.returncode == 2
    assert done.stderr.startswith(b"secretstore: error: No such option: --bogus")
    assert b"Traceback" not in done.stderr


def test_fast_path_is_the_one_that_runs(seeded: Store, cli_run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """A usage error from the fast path's fallback and an exec through it look the same as typer's."""
    done = cli_run("exec", "--env", "BAD", "--", "true")
    assert done.returncode == 2
    assert done.stderr.startswith(b"secretstore: error: --env takes VAR=VALUE")
    assert b"BAD" not in done.stderr  # the argument might have been a secret


def test_identity_created_nowhere_by_exec(cli_run: Run, isolated_env: dict[str, str]) -> None:
    Store(isolated_env["store"]).set(TEAM, "X", "fake-x", Identity.generate("elsewhere"))
    done = cli_run("exec", "--", "true")
    assert done.returncode == 1
    assert b"identity" in done.stderr
    assert not os.path.exists(isolated_env["identity"])


def test_the_program_never_inherits_secretstores_own_credentials(cli_run: Run, isolated_env: dict[str, str]) -> None:
    """SECRETSTORE_KEY opens every scope its key can: the program gets the merged values, not the key."""
    key = Identity.generate("ci")
    Store(isolated_env["store"]).set(TEAM, "TOKEN", "fake-token-value", key)
    env = {"SECRETSTORE_KEY": unprotected_text(key), "SECRETSTORE_PASSPHRASE": "fake-pw",
           "SECRETSTORE_NEW_PASSPHRASE": "fake-new-pw"}
    for extra in ([], ["--mask"], ["--refs-only"]):
        done = cli_run("exec", *extra, "--", "sh", "-c", "env", env=env)
        assert done.returncode == 0, done.stderr
        assert b"SECRETSTORE_KEY" not in done.stdout and b"SECRETSTORE_PASSPHRASE" not in done.stdout
        assert b"SECRETSTORE_NEW_PASSPHRASE" not in done.stdout
    done = cli_run("exec", "--", "sh", "-c", 'printf %s "$TOKEN"', env=env)
    assert done.stdout == b"fake-token-value"
    # given explicitly for this run, a variable of that name is the user's choice
    done = cli_run("exec", "--env", "SECRETSTORE_PASSPHRASE=fake-explicit", "--", "sh", "-c",
                   'printf %s "$SECRETSTORE_PASSPHRASE"', env=env)
    assert done.stdout == b"fake-explicit"


def test_a_value_that_merely_starts_with_secret_colon_is_left_alone(cli_run: Run, seeded: Store) -> None:
    done = cli_run("exec", "--", "sh", "-c", 'printf %s "$NOTE"', env={"NOTE": "secret: do not share"})
    assert (done.returncode, done.stdout) == (0, b"secret: do not share")
    assert b"do not share" not in done.stderr


@pytest.mark.parametrize("mask", [[], ["--mask"]])
def test_a_script_without_a_shebang_runs_with_sh_as_a_shell_would(
    cli_run: Run, seeded: Store, tmp_path: Path, mask: list[str]
) -> None:
    script = tmp_path / "no-shebang"
    script.write_text('printf "%s|%s" "$1" "$TEAM_ONLY"\nexit 5\n')
    script.chmod(0o755)
    done = cli_run("exec", *mask, "--", str(script), "arg1")
    assert done.returncode == 5, done.stderr
    assert done.stdout.startswith(b"arg1|")
    done = cli_run("exec", *mask, "--", script.name, "arg2",
                   env={"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"})
    assert done.returncode == 5 and done.stdout.startswith(b"arg2|")
