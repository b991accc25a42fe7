"""Stored names that change which code runs are not injected by exec unless allowed.

Unit tests of secretstore.loadervars, and the real console script: a store
that sets PATH, LD_PRELOAD or PYTHONPATH cannot choose what runs. Fake values only.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from secretstore import loadervars, precedence
from secretstore.errors import UsageError
from secretstore.identity import resolve_identity
from secretstore.store import TEAM, Scope, Store

Run = Callable[..., subprocess.CompletedProcess[bytes]]
PY = sys.executable
REPO = Path(__file__).resolve().parent.parent
PROJECT = Scope("project", "prj42")
# A child that prints the variables named in argv as JSON (absent -> null).
SHOW = "import json, os, sys; print(json.dumps({k: os.environ.get(k) for k in sys.argv[1:]}))"

# The names issue 9 lists, and the families the brief asked to consider: all held back.
HELD = [
    "PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES", "GCONV_PATH",
    "NLSPATH", "GLIBC_TUNABLES", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE",
    "PYTHONINSPECT", "PYTHONBREAKPOINT", "BASH_ENV", "ENV", "IFS", "PS4", "SHELLOPTS", "BASHOPTS",
    "PROMPT_COMMAND", "PERL5LIB", "PERL5OPT", "PERL5DB", "RUBYOPT", "RUBYLIB", "NODE_OPTIONS",
    "NODE_PATH", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS", "CLASSPATH",
    "GIT_EXEC_PATH", "GIT_SSH_COMMAND", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0",
    "HOME", "XDG_CONFIG_HOME", "EDITOR", "PAGER", "SECRETSTORE_KEY", "SECRETSTORE_TRUST",
]
# Ordinary secret names, some close to a held-back one: injected as always.
ORDINARY = [
    "TOKEN", "WANDB_API_KEY", "HF_TOKEN", "DATABASE_URL", "LDAP_PASSWORD", "GITHUB_TOKEN",
    "GIT_TOKEN", "PYTHONANYWHERE_API_TOKEN", "NODE_ENV", "ENVIRONMENT", "path", "ld_preload",
    "HTTPS_PROXY", "SSL_CERT_FILE", "TMPDIR", "PIP_INDEX_URL", "KUBECONFIG", "JAVA_OPTS",
]


# --- the policy ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", HELD)
def test_names_that_change_which_code_runs_are_held_back(name: str) -> None:
    assert loadervars.is_loader_variable(name)
    assert loadervars.reason(name)


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_names_are_not(name: str) -> None:
    assert not loadervars.is_loader_variable(name)
    assert loadervars.reason(name) is None
    assert loadervars.store_warning(name) is None


def test_withhold_says_what_from_where_and_how_to_allow() -> None:
    sources = {"PATH": "team", "PYTHONPATH": "project prj42", "LD_PRELOAD": "cluster gpu-a"}
    assert loadervars.withhold(sources, ["LD_PRELOAD"]) == {
        "PATH": "not injecting PATH from team: it changes which programs run; "
                "allow it with --allow-var PATH",
        "PYTHONPATH": "not injecting PYTHONPATH from project prj42: it changes what code Python "
                      "loads or runs; allow it with --allow-var PYTHONPATH",
    }
    assert list(loadervars.withhold(sources, [])) == ["LD_PRELOAD", "PATH", "PYTHONPATH"]
    assert loadervars.withhold({"TOKEN": "team"}, []) == {}


def test_loader_sources_names_the_highest_scope() -> None:
    layers = [(TEAM, {"PATH": "a", "TOKEN": "b"}), (PROJECT, {"PATH": "c", "LD_AUDIT": "d"})]
    assert loadervars.loader_sources(layers) == {"PATH": "project prj42", "LD_AUDIT": "project prj42"}


def test_allowed_names_are_checked() -> None:
    assert loadervars.check_allowed(["PATH", "LD_PRELOAD"], "--allow-var") == ["PATH", "LD_PRELOAD"]
    for bad in ["LD_*", "", "1X", "A-B", 3]:
        with pytest.raises(UsageError, match="is not a variable name"):
            loadervars.check_allowed([bad], "--allow-var")


def test_docs_list_every_name_and_prefix_with_its_reason() -> None:
    """docs/exec.md has a section that lists every held-back name and prefix."""
    text = (REPO / "docs" / "exec.md").read_text()
    section = text[text.index("## Names exec does not inject"):]
    section = section[: section.index("\n## ", 1)]
    listed = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)(\*?)`", section))
    names = {name for name, star in listed if not star}
    prefixes = {name for name, star in listed if star}
    assert set(loadervars.NAMES) <= names, sorted(set(loadervars.NAMES) - names)
    assert set(loadervars.PREFIXES) <= prefixes, sorted(set(loadervars.PREFIXES) - prefixes)
    for why, _names, _prefixes in loadervars.GROUPS:
        assert why in section, why


# --- merge: held back under its own name, still usable by reference ------------------------


def test_withheld_is_not_injected_but_can_be_referenced() -> None:
    layers = [(TEAM, {"PATH": "/store/bin", "TOKEN": "fake-token"})]
    inherited = {"PATH": "/usr/bin", "MINE": "secret:PATH"}
    explicit = [("ALSO_MINE", "secret:PATH")]
    for no_override in (False, True):
        env, decided = precedence.build_environment(
            precedence.merge_scopes(layers), inherited, explicit, no_override=no_override, withheld={"PATH"}
        )
        fast = precedence.environment(layers, inherited, explicit, no_override=no_override, withheld={"PATH"})
        assert env == fast
        assert env["PATH"] == "/usr/bin"
        assert env["MINE"] == env["ALSO_MINE"] == "/store/bin"  # the user chose these variables
        assert env["TOKEN"] == "fake-token"
        assert "PATH" not in {item.name for item in decided}


# --- through the console script -------------------------------------------------------------


@pytest.fixture
def store(isolated_env: dict[str, str], tmp_path: Path) -> Store:
    """team: PATH to a directory whose `true` leaves a marker, LD_PRELOAD, TOKEN; project: PYTHONPATH."""
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    for tool in ("true", "sh"):
        fake = fake_bin / tool
        fake.write_text(f"#!/bin/sh\necho ran >> {tmp_path / 'fake-ran'}\n")
        fake.chmod(0o755)
    target = Store(isolated_env["store"])
    me = resolve_identity(create=True)[0]
    target.set_many(TEAM, {"PATH": str(fake_bin), "LD_PRELOAD": str(tmp_path / "fake.so"),
                           "TOKEN": "fake-token-value"}, me)
    target.set(PROJECT, "PYTHONPATH", str(tmp_path / "fake-modules"), me)
    return target


def warnings_of(stderr: bytes) -> list[str]:
    return [line for line in stderr.decode().splitlines() if line.startswith("secretstore: warning:")]


@pytest.mark.parametrize("mask", [[], ["--mask"]])
def test_a_stored_path_does_not_choose_the_program(cli_run: Run, store: Store, tmp_path: Path,
                                                   mask: list[str]) -> None:
    done = cli_run("exec", *mask, "--", "true")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "fake-ran").exists()
    assert warnings_of(done.stderr) == [
        "secretstore: warning: not injecting LD_PRELOAD from team: it changes what the dynamic "
        "loader and the C library load; allow it with --allow-var LD_PRELOAD",
        "secretstore: warning: not injecting PATH from team: it changes which programs run; "
        "allow it with --allow-var PATH",
    ]
    # Allowed, the stored PATH reaches the program; the program is still found in ours.
    done = cli_run("exec", *mask, "--allow-var", "PATH", "--", "true")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "fake-ran").exists()
    done = cli_run("exec", *mask, "--allow-var", "PATH", "--", PY, "-c", SHOW, "PATH")
    passed_on = "[MASKED]" if mask else str(tmp_path / "fake-bin")  # a secret value, so masked
    assert json.loads(done.stdout) == {"PATH": passed_on}, done.stderr


@pytest.mark.parametrize("mask", [[], ["--mask"]])
def test_held_back_names_are_left_out_unless_allowed(cli_run: Run, store: Store, tmp_path: Path,
                                                     mask: list[str]) -> None:
    program = ["--project", "prj42", "--", PY, "-c", SHOW, "LD_PRELOAD", "PYTHONPATH", "TOKEN"]
    shown = "[MASKED]" if mask else None  # what a secret value looks like in the output
    done = cli_run("exec", *mask, *program)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got == {"LD_PRELOAD": None, "PYTHONPATH": None, "TOKEN": shown or "fake-token-value"}
    assert len(warnings_of(done.stderr)) == 3  # LD_PRELOAD, PATH, PYTHONPATH
    # allowed by the flag and by the dotfile, each by name
    (tmp_path / ".secretstore.toml").write_text('allow_vars = ["PYTHONPATH"]\n')
    done = subprocess.run([*_script(), "exec", *mask, "--allow-var", "PATH", *program],
                          capture_output=True, cwd=tmp_path, timeout=60, check=False)
    got = json.loads(done.stdout)
    assert got["PYTHONPATH"] == (shown or str(tmp_path / "fake-modules"))
    assert got["LD_PRELOAD"] is None
    assert warnings_of(done.stderr) == [
        "secretstore: warning: not injecting LD_PRELOAD from team: it changes what the dynamic "
        "loader and the C library load; allow it with --allow-var LD_PRELOAD",
    ]


def _script() -> list[str]:
    from tests.conftest import console_script

    return [console_script()]


def test_the_users_own_variables_are_never_filtered(cli_run: Run, store: Store, tmp_path: Path) -> None:
    """--env and the inherited environment are the user's: passed as given, no warning for them."""
    done = cli_run("exec", "--refs-only", "--env", "LD_PRELOAD=", "--env", "NODE_OPTIONS=--fake",
                   "--env", "MY_PATH=secret:PATH", "--", PY, "-c", SHOW,
                   "LD_PRELOAD", "NODE_OPTIONS", "PYTHONSTARTUP", "MY_PATH",
                   env={"PYTHONSTARTUP": "/fake/inherited.py"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"LD_PRELOAD": "", "NODE_OPTIONS": "--fake",
                                       "PYTHONSTARTUP": "/fake/inherited.py",
                                       "MY_PATH": str(tmp_path / "fake-bin")}
    assert warnings_of(done.stderr) == []  # --refs-only injects no stored name by its own
    done = cli_run("exec", "--env", "PATH=/usr/bin:/bin", "--", "sh", "-c", 'printf %s "$PATH"')
    assert done.stdout == b"/usr/bin:/bin"
    assert "PATH from team" not in done.stderr.decode()  # --env PATH: the user's choice


def test_dry_run_shows_held_back_names_as_not_injected(cli_run: Run, store: Store) -> None:
    done = cli_run("exec", "--dry-run", "--project", "prj42", "--allow-var", "PYTHONPATH", "--", "true")
    assert done.returncode == 0, done.stderr
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:4]]
            for line in done.stdout.decode().splitlines() if line.startswith("|")}
    assert rows["PATH"] == ["team, not injected", "-"]
    assert rows["LD_PRELOAD"] == ["team, not injected", "-"]
    assert rows["PYTHONPATH"] == ["project prj42", "-"]
    assert rows["TOKEN"] == ["team", "-"]
    assert b"fake-" not in done.stdout


def test_set_and_import_warn_and_store_the_value(cli_run: Run, isolated_env: dict[str, str],
                                                 tmp_path: Path) -> None:
    done = cli_run("set", "team", "--name", "LD_LIBRARY_PATH", "--value", "/fake/lib")
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().splitlines()[-1:] == [
        "secretstore: warning: LD_LIBRARY_PATH changes what the dynamic loader and the C library "
        "load: exec and export leave it out unless you allow it (--allow-var LD_LIBRARY_PATH, or "
        "allow_vars in .secretstore.toml)"
    ]
    assert cli_run("get", "team", "--name", "LD_LIBRARY_PATH").stdout == b"/fake/lib"
    done = cli_run("set", "team", "--name", "TOKEN", "--value", "fake-token")
    assert warnings_of(done.stderr) == []
    dotenv = tmp_path / "in.env"
    dotenv.write_text("NODE_OPTIONS=--fake\nTOKEN2=fake-2\nBASH_ENV=/fake/rc\n")
    for extra in (["--dry-run"], []):
        done = cli_run("import", "team", str(dotenv), *extra)
        assert done.returncode == 0, done.stderr
        found = warnings_of(done.stderr)
        assert [line.split()[2] for line in found] == ["NODE_OPTIONS", "BASH_ENV"]
    assert cli_run("get", "team", "--name", "BASH_ENV").stdout == b"/fake/rc"


def test_bad_allowed_names_are_usage_errors(cli_run: Run, store: Store, tmp_path: Path) -> None:
    done = cli_run("exec", "--allow-var", "LD_*", "--", "true")
    assert done.returncode == 2
    assert done.stderr.decode().startswith("secretstore: error: --allow-var: 'LD_*' is not a variable name")
    (tmp_path / ".secretstore.toml").write_text('allow_vars = "PATH"\n')
    done = subprocess.run([*_script(), "exec", "--", "true"], capture_output=True, cwd=tmp_path,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert b"allow_vars must be a list of variable names" in done.stderr


@pytest.mark.parametrize("fmt", ["shell", "dotenv", "json", "k8s"])
def test_export_leaves_out_what_exec_would_not_inject(cli_run: Run, store: Store, tmp_path: Path,
                                                      fmt: str) -> None:
    """export's output is sourced, evaluated or loaded as an environment: the same names stay out."""
    done = cli_run("export", "--format", fmt, "--project", "prj42")
    assert done.returncode == 0, done.stderr
    assert b"TOKEN" in done.stdout
    for name in (b"PATH", b"LD_PRELOAD", b"PYTHONPATH"):
        assert name not in done.stdout
    assert warnings_of(done.stderr) == [
        "secretstore: warning: not exporting LD_PRELOAD from team: it changes what the dynamic "
        "loader and the C library load; allow it with --allow-var LD_PRELOAD",
        "secretstore: warning: not exporting PATH from team: it changes which programs run; "
        "allow it with --allow-var PATH",
        "secretstore: warning: not exporting PYTHONPATH from project prj42: it changes what code Python "
        "loads or runs; allow it with --allow-var PYTHONPATH",
    ]
    # allowed by the flag and by the dotfile, each by name
    (tmp_path / ".secretstore.toml").write_text('allow_vars = ["PYTHONPATH"]\n')
    done = subprocess.run([*_script(), "export", "--format", fmt, "--project", "prj42", "--allow-var", "PATH"],
                          capture_output=True, cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert b"PATH" in done.stdout and b"PYTHONPATH" in done.stdout and b"LD_PRELOAD" not in done.stdout
    assert len(warnings_of(done.stderr)) == 1


def test_inject_fills_a_reference_the_template_names(cli_run: Run, store: Store) -> None:
    """A template names each value it uses, as --env MY=secret:PATH does: nothing is left out."""
    done = cli_run("inject", "-i", "-", input=b"preload={{ secret:LD_PRELOAD }}\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(b"fake.so\n") and warnings_of(done.stderr) == []


def test_export_of_a_bad_allowed_name_is_a_usage_error(cli_run: Run, store: Store) -> None:
    done = cli_run("export", "--allow-var", "LD_*")
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr.decode().startswith("secretstore: error: --allow-var: 'LD_*' is not a variable name")
