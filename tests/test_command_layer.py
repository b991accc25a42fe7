"""Issue 11: one declaration per command, Gradient's command lines verbatim, what a new user missed.

Through the real console script, and in-process through ``cli.run``.
Fake secret values only.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from secretstore import audit
from secretstore.cli import run
from secretstore.cli.declarations import ROOT
from secretstore.cli.spec import Command, Group
from secretstore.identity import resolve_identity
from secretstore.store import TEAM, Scope, Store
from tests.conftest import console_script, run_on_pty

Run = Callable[..., subprocess.CompletedProcess[bytes]]


def call(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
         stdin: bytes = b"") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _commands(group: Group, prefix: str = "") -> list[tuple[str, Command]]:
    found = []
    for item in group.commands:
        if isinstance(item, Group):
            found += _commands(item, f"{prefix}{item.name} ")
        else:
            found.append((f"{prefix}{item.name}", item))
    return found


# --- one declaration ------------------------------------------------------------------------


def test_every_command_is_declared_once_with_help_and_a_handler() -> None:
    import importlib

    commands = _commands(ROOT)
    assert {"set", "list", "get", "delete", "exec", "export", "import", "inject", "where", "scopes",
            "secrets set", "recipients list", "git setup"} <= {path for path, _ in commands}
    for path, command in commands:
        assert command.summary and command.help, path
        module, _sep, function = command.handler.partition(":")
        assert callable(getattr(importlib.import_module(f"secretstore.cli.{module}"), function)), path
        dests = [param.dest for param in command.params]
        assert len(dests) == len(set(dests)), path
        flags = [flag for param in command.opts() for flag in param.flags]
        assert len(flags) == len(set(flags)), path


def test_typer_is_built_from_the_same_declarations() -> None:
    from secretstore.cli.framework import click_command

    group = click_command()
    for path, command in _commands(ROOT):
        click_command_at = group
        for word in path.split():
            click_command_at = click_command_at.commands[word]
        typer_options = {name for param in click_command_at.params if param.param_type_name == "option"
                         for name in param.opts if name not in ("-h", "--help")}
        assert typer_options == {flag for opt in command.opts() for flag in opt.flags}, path
        for alias in command.aliases:
            assert alias in group.commands


def test_no_framework_wording_in_any_help(cli_run: Run) -> None:
    for path, _command in [("", None), *_commands(ROOT)]:
        done = cli_run(*path.split(), "--help")
        assert done.returncode == 0, path
        out = done.stdout.decode()
        for word in ("<str>", "<list[str]>", "{ENTITY}", "{CMD}", "[default: None]"):
            assert word not in out, (path, word)


def test_bare_secretstore_prints_help_on_stdout(cli_run: Run) -> None:
    for argv in ([], ["recipients"], ["git"], ["secrets"]):
        done = cli_run(*argv)
        assert done.returncode == 0 and done.stderr == b""
        assert done.stdout.startswith(b"Usage: secretstore")


def test_help_is_typers_rendering_and_is_cached(cli_run: Run, isolated_env: dict[str, str]) -> None:
    from secretstore.cli.framework import render_help

    first = cli_run("set", "--help")
    cached = list((Path(isolated_env["cache"]) / "help").iterdir())
    assert len(cached) == 1
    assert cli_run("set", "--help").stdout == first.stdout == render_help(["set"]).encode()
    # a tampered cache is not printed
    text = cached[0].read_text()
    cached[0].write_text(text.replace("Set a secret", "Set a \x1b[31msecret"))
    assert cli_run("set", "--help").stdout == first.stdout
    done = cli_run("set", "--help", env={"SECRETSTORE_CACHE": "0"})
    assert done.stdout == first.stdout


def test_help_imports_no_typer_once_cached(cli_run: Run) -> None:
    cli_run("--help")
    done = subprocess.run([sys.executable, "-X", "importtime", console_script(), "--help"], capture_output=True,
                          timeout=60, check=False)
    modules = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines() if "|" in line}
    assert "secretstore.cli.helpcache" in modules and "typer" not in modules


@pytest.mark.parametrize("argv", [["list", "team"], ["set", "team", "--name=A", "--value=fake-a"], ["scopes"],
                                  ["where"], ["identity"], ["recipients", "list"], ["doctor"]])
def test_ordinary_commands_import_no_typer(argv: list[str], cli_run: Run) -> None:
    cli_run("set", "team", "--name=SEED", "--value=fake-seed")
    done = subprocess.run([sys.executable, "-X", "importtime", console_script(), *argv], capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-500:]
    modules = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines() if "|" in line}
    assert not {"typer", "typer._click", "click", "pydantic", "rich", "secretstore.cli.framework"} & modules


def test_unknown_entity_in_our_words(cli_run: Run) -> None:
    for argv in (["set", "tema", "--name=A", "--value=fake"], ["list", "tema"], ["get", "tema", "--name=A"]):
        done = cli_run(*argv)
        assert done.returncode == 2
        assert done.stderr == (b"secretstore: error: unknown entity: ENTITY is team, project or cluster (what was given "
                               b"is not shown: it may be a value)\nsecretstore: hint: did you mean team?\n")


# --- Gradient's command lines -------------------------------------------------------------------


def test_secrets_list_team_prints_gradients_table(cli_run: Run) -> None:
    for name in ("aws_access_key_id", "aws_secret_access_key"):
        assert cli_run("secrets", "set", "team", f"--name={name}", "--value=fake").returncode == 0
    done = cli_run("secrets", "list", "team")
    assert done.stdout.decode() == (
        "+-----------------------+\n"
        "| Name                  |\n"
        "+-----------------------+\n"
        "| aws_access_key_id     |\n"
        "| aws_secret_access_key |\n"
        "+-----------------------+\n"
    )
    me = cli_run("identity").stdout.decode().strip()
    for flag in ("--long", "-l"):
        lines = cli_run("secrets", "list", "team", flag).stdout.decode().splitlines()
        assert lines[1].split("|")[1:3] == [" Name                  ", " Updated              "]
        assert lines[3].split("|")[3].strip() == f"you ({me[:16]}...)"  # your own writes, as history says
    assert [row["name"] for row in json.loads(cli_run("list", "team", "--json").stdout)] == [
        "aws_access_key_id", "aws_secret_access_key"]


def test_team_id_is_accepted_and_checked_against_the_store(cli_run: Run, isolated_env: dict[str, str]) -> None:
    assert cli_run("secrets", "set", "team", "--id", "te1234567", "--name=A", "--value=fake").returncode == 0
    assert cli_run("secrets", "list", "team", "--id", "te1234567").returncode == 0
    done = cli_run("init", "--team", "te1234567")
    assert done.returncode == 0, done.stderr
    assert "team_id = \"te1234567\"" in (Path(isolated_env["store"]) / "store.toml").read_text()
    assert cli_run("get", "team", "--id=te1234567", "--name=A").stdout == b"fake"
    done = cli_run("get", "team", "--id=te7654321", "--name=A")
    assert done.returncode == 2
    assert done.stderr.startswith(b"secretstore: error: team id 'te7654321' does not match this store's team "
                                  b"'te1234567'\n")
    assert cli_run("init", "--team", "te7654321").returncode == 2


def test_api_key_is_accepted_ignored_and_never_shown(cli_run: Run, isolated_env: dict[str, str]) -> None:
    key = "fake-api-key-0123456789"
    for argv in (["set", "team", "--name=A", "--value=fake-a"], ["list", "team"], ["get", "team", "--name=A"],
                 ["delete", "team", "--name=A"], ["scopes"], ["exec", "--dry-run", "--", "true"]):
        done = cli_run(*argv, "--apiKey", key) if argv[0] != "exec" else cli_run("exec", "--apiKey", key,
                                                                                   *argv[1:])
        assert done.returncode == 0, (argv, done.stderr)
        assert done.stderr.count(b"--apiKey is ignored") == 1
        assert key.encode() not in done.stdout + done.stderr
    for path in Path(isolated_env["store"]).rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes()


def test_options_file_and_create_options_file(cli_run: Run, tmp_path: Path) -> None:
    template = tmp_path / "set.yaml"
    done = cli_run("secrets", "set", "project", "--id", "prj42", "--name", "DB", "--value", "fake-never-written",
                   "--apiKey", "fake-key", "--createOptionsFile", str(template))
    assert done.returncode == 0 and done.stdout == b""
    text = template.read_text()
    assert "fake-never-written" not in text and "fake-key" not in text
    import yaml

    assert yaml.safe_load(text) == {"entity": "project", "id": "prj42", "name": "DB", "value": None,
                                    "value-file": None, "apiKey": None}
    assert not os.path.exists(os.environ["SECRETSTORE_DIR"])  # nothing ran
    missing = tmp_path / "no-such-dir" / "set.yaml"
    done = cli_run("secrets", "set", "team", "--name", "DB", "--createOptionsFile", str(missing))
    assert done.returncode == 2 and b"--createOptionsFile: the directory" in done.stderr
    assert not missing.parent.exists()  # not created behind the user's back
    options = tmp_path / "options.yaml"
    options.write_text("entity: project\nid: prj42\nname: DB\nvalue: fake-from-file\n")
    done = cli_run("secrets", "set", "--optionsFile", str(options))
    assert (done.returncode, done.stdout) == (0, b"Set project secret 'DB'\n"), done.stderr
    assert cli_run("get", "project", "--id=prj42", "--name=DB").stdout == b"fake-from-file"
    # the command line wins over the file
    done = cli_run("secrets", "get", "--optionsFile", str(options), "--name", "OTHER")
    assert b"no project prj42 secret 'OTHER'" in done.stderr
    options.write_text("entity: team\nnmae: TYPO\n")
    done = cli_run("get", "--optionsFile", str(options))
    assert done.returncode == 2 and b"unknown option 'nmae'" in done.stderr
    options.write_text("!!python/object/apply:os.system ['echo unsafe']\n")
    done = cli_run("get", "team", "--optionsFile", str(options))
    assert done.returncode == 2 and b"not valid YAML" in done.stderr and b"unsafe" not in done.stdout


# YAML 1.1 reads these plain scalars as numbers (0123 is octal 83, 1.50 is 1.5, 0x1F is 31,
# 1_000 is 1000, .5 is 0.5, +1 is 1, the long decimal a float 1.2345678901234568e+29, 1:20
# sexagesimal 80) or a date; a text option must get the characters written, not str() of that.
YAML_NUMBER_LOOKALIKES = ["0123", "1.50", "0x1F", "1_000", ".5", "+1", "123456789012345678901234567890.0",
                          "1:20", "2026-01-01", ".inf", "=", "9" * 5000]


def test_options_file_keeps_a_value_exactly_as_written(cli_run: Run, tmp_path: Path) -> None:
    options = tmp_path / "options.yaml"
    for index, written in enumerate(YAML_NUMBER_LOOKALIKES):
        options.write_text(f"entity: team\nname: PIN_{index}\nvalue: {written}\n")
        done = cli_run("secrets", "set", "--optionsFile", str(options))
        assert done.returncode == 0, (written[:40], done.stderr)
        assert cli_run("get", "team", f"--name=PIN_{index}").stdout == written.encode(), written[:40]
    # in a list too (a repeatable option): exec --env entries
    options.write_text("env:\n- PIN=0123\n- RATE=1.50\n")
    done = cli_run("exec", "--optionsFile", str(options), "--", "sh", "-c", 'printf "%s|%s" "$PIN" "$RATE"')
    assert (done.returncode, done.stdout) == (0, b"0123|1.50"), done.stderr


def test_options_file_keeps_an_id_exactly_as_written(cli_run: Run, tmp_path: Path) -> None:
    options = tmp_path / "options.yaml"
    options.write_text("entity: project\nid: 0042\nname: PIN\nvalue: fake-pin\n")
    done = cli_run("secrets", "set", "--optionsFile", str(options))
    assert (done.returncode, done.stdout) == (0, b"Set project secret 'PIN'\n"), done.stderr
    assert cli_run("get", "project", "--id=0042", "--name=PIN").stdout == b"fake-pin"
    assert cli_run("get", "project", "--id=34", "--name=PIN").returncode != 0  # not octal 0042
    rows = json.loads(cli_run("scopes", "--json").stdout)
    assert "0042" in json.dumps(rows) and '"34"' not in json.dumps(rows)
    options.write_text("entity: project\nid: 0042\nname: PIN\n")
    assert cli_run("get", "--optionsFile", str(options)).stdout == b"fake-pin"


def test_options_file_refuses_what_it_cannot_keep_as_written(cli_run: Run, tmp_path: Path) -> None:
    options = tmp_path / "options.yaml"
    for key, written in [("value", "yes"), ("value", "!!int 0123"), ("value", "!!float 1.50"),
                         ("value", "!!timestamp 2026-01-01"), ("value", "!!binary Zm9v"), ("name", "off"),
                         ("id", "!!int 0042")]:
        lines = {"entity": "project", "id": "prj42", "name": "PIN", "value": "fake-pin"} | {key: written}
        options.write_text("".join(f"{k}: {v}\n" for k, v in lines.items()))
        done = cli_run("secrets", "set", "--optionsFile", str(options))
        assert done.returncode == 2, (written, done.stderr)
        error = done.stderr.decode().splitlines()
        assert error[0] == f"secretstore: error: options file {options}: {key} must be a string", written
        assert error[1].startswith(f'secretstore: hint: quote it ({key}: "...")'), written
        assert len(error) == 2
        said = done.stderr.replace(str(options).encode(), b"")
        for shown in (b"0123", b"83", b"1.5", b"0042", b"34", b"Zm9v", b"foo", b"2026"):
            assert shown not in said, (written, shown)
    assert not os.path.exists(os.environ["SECRETSTORE_DIR"])  # nothing was stored


def test_options_file_flags_and_numbers_still_work(cli_run: Run, tmp_path: Path) -> None:
    for value in ("fake-v1", "fake-v2", "fake-v3"):
        assert cli_run("set", "team", "--name=PIN", f"--value={value}").returncode == 0
    options = tmp_path / "options.yaml"
    options.write_text("entity: team\nname: PIN\nversion: 2\n")  # get --version K
    assert cli_run("get", "--optionsFile", str(options)).stdout == b"fake-v1"
    options.write_text("entity: team\nname: PIN\nto: 1\n")  # rollback --to K
    assert cli_run("rollback", "--optionsFile", str(options)).returncode == 0
    assert cli_run("get", "team", "--name=PIN").stdout == b"fake-v2"
    options.write_text("dry-run: true\njson: yes\nno-team: false\nenv:\n- X=secret:PIN\n")  # flags
    done = cli_run("exec", "--optionsFile", str(options), "--", "false")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {"name": "X", "source": "--env", "reference": "PIN", "reference_scope": "team", "overrides": [],
            "secret": True, "injected": True} in rows
    options.write_text("port: 0\nno-browser: true\n")  # ui --port N: text, as on the command line
    from secretstore.cli.declarations import ROOT as root
    from secretstore.cli.gradient import merge_options_file

    ui = root.find("ui")
    assert isinstance(ui, Command)
    values: dict[str, object] = {opt.dest: opt.empty() for opt in ui.opts()}
    merge_options_file(ui, values, str(options))
    assert (values["port"], values["no_browser"]) == ("0", True)
    options.write_text("entity: team\nname: PIN\npurge: \"true\"\n")  # a quoted flag is text: refused
    done = cli_run("delete", "--optionsFile", str(options))
    assert done.returncode == 2 and b"purge must be true or false" in done.stderr
    options.write_text("entity: team\nname: PIN\npurge: true\n")
    assert cli_run("delete", "--optionsFile", str(options)).returncode == 0
    assert cli_run("history", "team", "--name=PIN").returncode != 0  # purged: the flag took effect


def test_create_options_file_never_writes_a_literal_env_value(cli_run: Run, tmp_path: Path) -> None:
    assert cli_run("set", "team", "--name=wandb_key", "--value=fake-wandb").returncode == 0
    template = tmp_path / "exec.yaml"
    pasted = "sk_live_FAKE_PASTED_0123"
    done = cli_run("exec", "--env", f"WANDB_API_KEY={pasted}", "--env", "W=secret:wandb_key",
                   "--env", "fake_TOKEN_without_equals", "--env", "EMPTY=", "--env", "BAD\nx: 1=fake-odd",
                   "--createOptionsFile", str(template), "--", "python", "train.py")
    assert done.returncode == 0, done.stderr
    text = template.read_text()
    for leaked in (pasted, "fake_TOKEN_without_equals", "fake-odd"):
        assert leaked not in text and leaked.encode() not in done.stderr
    assert done.stderr.decode().splitlines()[1] == (
        "secretstore: left out of the template: 4 --env entries with a literal value (it may be a secret; "
        "only NAME=secret:REF references are written)")
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert len(comments) == 2 and "Left out: WANDB_API_KEY, EMPTY" in comments[1]
    from secretstore.cli.gradient import read_options_file

    document = read_options_file(str(template))
    assert document["env"] == ["W=secret:wandb_key"]
    assert document["command"] == ["python", "train.py"]
    # the template loads back: the reference is resolved, nothing sets WANDB_API_KEY
    done = cli_run("exec", "--optionsFile", str(template), "--", "sh", "-c",
                   'printf "%s|%s" "$W" "${WANDB_API_KEY-unset}"')
    assert (done.returncode, done.stdout) == (0, b"fake-wandb|unset"), done.stderr
    # only literals: env is left empty, and still loads
    done = cli_run("exec", "--env", f"WANDB_API_KEY={pasted}", "--createOptionsFile", str(template), "--", "true")
    assert done.returncode == 0 and pasted not in template.read_text()
    assert read_options_file(str(template))["env"] is None
    assert b"1 --env entry with a literal value" in done.stderr


def test_name_is_prompted_on_a_terminal_and_a_mismatch_asks_again(cli_run: Run) -> None:
    code, output = run_on_pty([console_script(), "secrets", "set", "team"],
                              answers=[b"PROMPTED\n", b"fake-one\n", b"fake-two\n", b"fake-ok\n", b"fake-ok\n"])
    assert code == 0, output
    assert b"the two values differ; try again" in output
    assert b"Set team secret 'PROMPTED'" in output and b"fake-ok" not in output
    assert cli_run("get", "team", "--name=PROMPTED").stdout == b"fake-ok"


def test_value_dash_on_a_terminal_is_a_hidden_prompt(cli_run: Run) -> None:
    code, output = run_on_pty([console_script(), "set", "team", "--name=HIDDEN", "--value", "-"],
                              answers=[b"fake-hidden\n", b"fake-hidden\n"])
    assert code == 0, output
    assert b"fake-hidden" not in output
    assert cli_run("get", "team", "--name=HIDDEN").stdout == b"fake-hidden"


def test_init_passphrase_from_the_environment(cli_run: Run, isolated_env: dict[str, str]) -> None:
    env = {"SECRETSTORE_PASSPHRASE": "fake-pass-one", "SECRETSTORE_ARGON2_LIMITS": "interactive"}
    done = cli_run("init", "--passphrase", env=env)
    assert done.returncode == 0, done.stderr
    assert "PROTECTED" in Path(isolated_env["identity"]).read_text()
    done = cli_run("set", "team", "--name=A", "--value=fake-a", env=env)
    assert done.returncode == 0, done.stderr
    os.unlink(isolated_env["identity"])
    env["SECRETSTORE_NEW_PASSPHRASE"] = "fake-pass-two"
    assert cli_run("init", "--passphrase", env=env).returncode == 0
    env["SECRETSTORE_PASSPHRASE"] = "fake-pass-two"  # the new one won
    assert cli_run("identity", env=env).returncode == 0
    done = cli_run("set", "project", "--id=p2", "--name=B", "--value=fake-b", env=env)  # a scope of its own
    assert done.returncode == 0, done.stderr


# --- what a new user missed ----------------------------------------------------------------------


def test_where_prints_store_identity_and_cache(cli_run: Run, isolated_env: dict[str, str]) -> None:
    done = cli_run("where")
    assert done.stdout.decode().splitlines() == [
        f"store: {isolated_env['store']} (from $SECRETSTORE_DIR, does not exist yet)",
        f"identity: {isolated_env['identity']} (from $SECRETSTORE_IDENTITY)",
        f"cache: {isolated_env['cache']}/snapshots (from $SECRETSTORE_CACHE_DIR)",
        f"audit log: {audit.log_path(isolated_env['store'])} (from $SECRETSTORE_STATE_DIR)",
    ]
    assert audit.log_path(isolated_env["store"]).startswith(isolated_env["state"] + "/audit/")
    found = json.loads(cli_run("where", "--json").stdout)
    assert found["store"] == isolated_env["store"] and found["identity"] == isolated_env["identity"]
    assert found["audit_log"] == audit.log_path(isolated_env["store"])
    off = cli_run("where", env={"SECRETSTORE_AUDIT": "0"}).stdout.decode().splitlines()
    assert off[-1] == "audit log: off (from $SECRETSTORE_AUDIT)"


def test_scopes_lists_counts(cli_run: Run, isolated_env: dict[str, str]) -> None:
    store = Store(isolated_env["store"])
    me = resolve_identity(create=True)[0]
    store.set_many(TEAM, {"A": "fake-a", "B": "fake-b"}, me)
    store.set(Scope("project", "prj42"), "C", "fake-c", me)
    store.set(Scope("cluster", "gpu-a"), "D", "fake-d", me)
    done = cli_run("scopes")
    assert done.stdout.decode().splitlines() == [
        "+---------+-------+---------+---------------+",
        "| Entity  | Id    | Secrets | Rotate needed |",
        "+---------+-------+---------+---------------+",
        "| team    | -     | 2       | -             |",
        "| project | prj42 | 1       | -             |",
        "| cluster | gpu-a | 1       | -             |",
        "+---------+-------+---------+---------------+",
    ]
    assert json.loads(cli_run("scopes", "--json").stdout) == [
        {"entity": "team", "id": None, "secrets": 2, "rotate_needed": 0, "refused": None},
        {"entity": "project", "id": "prj42", "secrets": 1, "rotate_needed": 0, "refused": None},
        {"entity": "cluster", "id": "gpu-a", "secrets": 1, "rotate_needed": 0, "refused": None},
    ]


def test_json_on_every_command_that_prints_data(cli_run: Run) -> None:
    assert cli_run("set", "team", "--name=A", "--value=fake-a").returncode == 0
    for argv in (["list", "team"], ["scopes"], ["recipients", "list"], ["doctor"], ["where"], ["identity"],
                 ["exec", "--dry-run", "--env", "X=secret:A", "--", "true"]):
        done = cli_run(*argv[:1], "--json", *argv[1:]) if argv[0] == "exec" else cli_run(*argv, "--json")
        assert done.returncode == 0, (argv, done.stderr)
        json.loads(done.stdout)
    rows = json.loads(cli_run("exec", "--json", "--dry-run", "--env", "X=secret:A", "--", "true").stdout)
    assert {"name": "X", "source": "--env", "reference": "A", "reference_scope": "team", "overrides": [],
            "secret": True, "injected": True} in rows
    assert "fake-a" not in json.dumps(rows)


def test_run_is_exec(cli_run: Run) -> None:
    assert cli_run("set", "team", "--name=A", "--value=fake-a").returncode == 0
    done = cli_run("run", "--", "sh", "-c", 'printf %s "$A"')
    assert (done.returncode, done.stdout) == (0, b"fake-a")


def test_exec_env_file(cli_run: Run, tmp_path: Path) -> None:
    assert cli_run("set", "team", "--name=wandb_key", "--value=fake-wandb").returncode == 0
    assert cli_run("set", "team", "--name=PLAIN", "--value=fake-secret-plain").returncode == 0
    env_file = tmp_path / ".env"
    env_file.write_text("WANDB_API_KEY=secret:wandb_key\nPLAIN=from-file\nMODE='train'\n")
    show = ["--", "sh", "-c", 'printf "%s|%s|%s" "$WANDB_API_KEY" "$PLAIN" "$MODE"']
    done = cli_run("exec", "--env-file", str(env_file), *show)
    assert (done.returncode, done.stdout) == (0, b"fake-wandb|from-file|train"), done.stderr
    done = cli_run("exec", "--env-file", str(env_file), "--env", "MODE=eval", *show)
    assert done.stdout == b"fake-wandb|from-file|eval"  # --env wins over the file
    env_file.write_text("X=secret:missing_name\n")
    done = cli_run("exec", "--env-file", str(env_file), "--", "true")
    assert done.returncode == 1 and b"X references secret 'missing_name'" in done.stderr


def test_the_dotfile_may_name_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETSTORE_DIR")
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / ".secretstore.toml").write_text('store = "secrets"\nproject = "prj42"\n')
    env = dict(os.environ)
    done = subprocess.run([console_script(), "set", "project", "--id=prj42", "--name=DB", "--value=fake-db"],
                          cwd=repo / "sub", env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert (repo / "secrets" / "projects" / "prj42.toml").exists()
    done = subprocess.run([console_script(), "exec", "--", "sh", "-c", 'printf %s "$DB"'], cwd=repo / "sub",
                          env=env, capture_output=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, b"fake-db"), done.stderr
    done = subprocess.run([console_script(), "where"], cwd=repo, env=env, capture_output=True, timeout=60,
                          check=False)
    assert done.stdout.decode().splitlines()[0] == f"store: {repo / 'secrets'} (from {repo / '.secretstore.toml'})"


def test_git_setup_in_a_fresh_checkout_creates_the_store(cli_run: Run, tmp_path: Path) -> None:
    checkout = tmp_path / "clone"
    subprocess.run(["git", "init", "-q", str(checkout)], check=True, timeout=60)
    store = checkout / "secrets"
    done = cli_run("--store", str(store), "git", "setup")
    assert done.returncode == 0, done.stderr
    assert (store / ".gitattributes").exists()
    outside = tmp_path / "not-a-checkout" / "store"
    done = cli_run("--store", str(outside), "git", "setup")
    assert done.returncode == 1 and b"is not inside a git checkout" in done.stderr
    assert not outside.exists()


def test_git_setup_of_the_default_store_says_how_to_choose_one_in_the_checkout(tmp_path: Path) -> None:
    """A new user runs it inside their repository without a .secretstore.toml: the default store
    (the user data dir) is no checkout, and the hint used to say 'git init' its parent (~)."""
    checkout = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(checkout)], check=True, timeout=60)
    env = {k: v for k, v in os.environ.items() if k != "SECRETSTORE_DIR"}
    done = subprocess.run([console_script(), "git", "setup"], cwd=checkout, env=env, capture_output=True,
                          timeout=60, check=False)
    default = os.path.join(os.environ["XDG_DATA_HOME"], "secretstore")
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr.decode().splitlines() == [
        f"secretstore: error: {default} (your user data dir, the default store) is not inside a git checkout",
        "secretstore: hint: to share a store through git, choose one inside the checkout: add store = \"DIR\" "
        "to the checkout's .secretstore.toml, or pass --store DIR (docs/sharing.md)",
    ]
    assert b"init" not in done.stderr


def test_in_process_and_console_script_agree(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                              cli_run: Run) -> None:
    assert call(capsys, monkeypatch, "set", "team", "--name=A", "--value=fake-a")[0] == 0
    for argv in (["list", "team"], ["scopes", "--json"], ["where"], ["list", "tema"], ["--help"], []):
        code, out, err = call(capsys, monkeypatch, *argv)
        done = cli_run(*argv)
        assert (code, out.encode(), err.encode()) == (done.returncode, done.stdout, done.stderr), argv
