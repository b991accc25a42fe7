"""The docs cannot drift from the code: every command has help and is in the README,
every environment variable the code reads is documented, every exit code is listed."""

from __future__ import annotations

import re
from pathlib import Path

from secretstore import errors
from secretstore.cli.framework import click_command

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def _commands() -> dict[str, object]:
    """'set' -> click command, 'recipients add' -> ..., for every command of the app."""
    root = click_command()
    found: dict[str, object] = {}

    def walk(group: object, prefix: str) -> None:
        for name, command in getattr(group, "commands", {}).items():
            path = f"{prefix}{name}"
            found[path] = command
            walk(command, f"{path} ")

    walk(root, "")
    return found


def test_every_command_has_help() -> None:
    commands = _commands()
    assert {"set", "list", "get", "delete", "exec", "secrets set"} <= set(commands)
    missing = [path for path, command in commands.items() if not (getattr(command, "help", "") or "").strip()]
    assert missing == []


def test_every_top_level_command_is_in_the_readme() -> None:
    top = {path for path in _commands() if " " not in path}
    undocumented = sorted(name for name in top if not re.search(rf"secretstore {re.escape(name)}\b(?!-)", README))
    assert undocumented == []


def test_every_environment_variable_is_documented() -> None:
    used = set()
    for source in (REPO / "secretstore").rglob("*.py"):
        used |= set(re.findall(r"_?SECRETSTORE_[A-Z0-9_]*[A-Z0-9]", source.read_text()))
    assert "SECRETSTORE_DIR" in used  # the scan itself works
    undocumented = sorted(name for name in used if f"`{name}`" not in README)
    assert undocumented == []


def test_every_exit_code_is_documented() -> None:
    codes = {errors.EXIT_FAILURE, errors.EXIT_USAGE, 130}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.SecretStoreError):
            codes.add(value.exit_code)
    table = README[README.index("## Exit codes"):]
    missing = sorted(code for code in codes if f"| {code} |" not in table)
    assert missing == []
