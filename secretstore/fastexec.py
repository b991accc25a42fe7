"""``secretstore exec`` without typer: a hand-written parser and the exec itself.

``secretstore.main`` sends ``exec`` here so that the most common command pays
only for what it uses (typer's import alone costs several times a bare
``python -c pass``). The typer command in ``secretstore/cli/exec.py`` stays
the documented interface: ``--help``, and any command line this parser does
not understand exactly, fall back to it (``parse`` returns None), so usage
errors and help come from one definition. ``tests/test_exec.py`` checks that
the options below are exactly the ones the typer command declares.

Both parsers end in ``run_exec``: one implementation of what exec does.
"""

from __future__ import annotations

import os

from secretstore.console import (
    disable_core_dumps,
    run_reporting_errors,
    text_table,
    warning_line,
    write_stdout,
)
from secretstore.errors import EXIT_FAILURE

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Mapping, Sequence

    from secretstore.identity import Identity
    from secretstore.merge import Injection

PROG = "secretstore"
ENV_MASK = "SECRETSTORE_MASK"

# Options of ``secretstore exec``: long name -> attribute of ExecOptions.
VALUE_OPTIONS = {
    "--project": "project",
    "--cluster": "cluster",
    "--env": "env",  # repeatable
    "--allow-var": "allow_vars",  # repeatable
    "--store": "store",
}
REPEATABLE = ("--env", "--allow-var")
FLAG_OPTIONS = {
    "--refs-only": "refs_only",
    "--no-override": "no_override",
    "--strict": "strict",
    "--mask": "mask",
    "--dry-run": "dry_run",
}


class ExecOptions:
    """A parsed ``secretstore exec`` command line."""

    __slots__ = (
        "allow_vars",
        "cluster",
        "command",
        "dry_run",
        "env",
        "mask",
        "no_override",
        "project",
        "refs_only",
        "store",
        "strict",
    )

    def __init__(
        self,
        command: Sequence[str] = (),
        *,
        project: str | None = None,
        cluster: str | None = None,
        env: Sequence[str] = (),
        store: str | None = None,
        refs_only: bool = False,
        no_override: bool = False,
        strict: bool = False,
        mask: bool = False,
        dry_run: bool = False,
        allow_vars: Sequence[str] = (),
    ) -> None:
        self.command = list(command)
        self.project = project
        self.cluster = cluster
        self.env = list(env)
        self.store = store
        self.refs_only = refs_only
        self.no_override = no_override
        self.strict = strict
        self.mask = mask
        self.dry_run = dry_run
        self.allow_vars = list(allow_vars)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__ if name != "env")
        return f"ExecOptions({fields}, env=<{len(self.env)} given>)"


def strip_global_store(argv: Sequence[str]) -> tuple[str | None, list[str]] | None:
    """(global --store, the rest of ``argv``); shared by the exec and get fast paths.

    Takes ``--store DIR`` or ``--store=DIR`` off the front (None as the store
    when there is none); None when that value is empty or looks like an option.
    """
    args = list(argv)
    store = None
    if args[:1] == ["--store"] and len(args) >= 3:
        store, args = args[1], args[2:]
    elif args[:1] and args[0].startswith("--store="):
        store, args = args[0][len("--store=") :], args[1:]
    if store is not None and (not store or store.startswith("-")):
        return None
    return store, args


def split_global(argv: Sequence[str]) -> tuple[str | None, list[str]] | None:
    """(global --store, arguments after ``exec``) when ``argv`` is an exec command.

    Recognises ``exec ...``, ``--store DIR exec ...`` and ``--store=DIR exec ...``;
    None for anything else.
    """
    split = strip_global_store(argv)
    if split is None or split[1][:1] != ["exec"]:
        return None
    return split[0], split[1][1:]


def parse(args: Sequence[str], global_store: str | None = None) -> ExecOptions | None:
    """Options after ``exec``, or None when typer should handle the line.

    Like the typer command (click with interspersed arguments off), options
    end at ``--`` or at the first argument that is not an option. Anything
    unusual returns None: help, an unknown option, a missing command, a
    value that looks like an option.
    """
    options = ExecOptions(store=global_store)
    repeated: dict[str, list[str]] = {name: [] for name in REPEATABLE}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            index += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, sep, value = arg.partition("=")
        if name in FLAG_OPTIONS and not sep:
            setattr(options, FLAG_OPTIONS[name], True)
            index += 1
            continue
        if name not in VALUE_OPTIONS:
            return None  # --help, -h, unknown or misspelt: typer says what is wrong
        if not sep:
            if index + 1 >= len(args):
                return None
            value = args[index + 1]
            index += 1
        if value.startswith("-") or (not value and name != "--env"):
            return None
        if name in repeated:
            repeated[name].append(value)
        else:
            setattr(options, VALUE_OPTIONS[name], value)
        index += 1
    options.command = list(args[index:])
    options.env = repeated["--env"]
    options.allow_vars = repeated["--allow-var"]
    if not options.command:
        return None
    return options


# --- running -------------------------------------------------------------------


def mask_requested(flag: bool, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return flag or env.get(ENV_MASK, "").strip().lower() in ("1", "true", "yes", "on")


def _read_identity() -> Identity:
    from secretstore.identity import resolve_identity

    identity, _created = resolve_identity(create=False)
    return identity


def prepare(
    options: ExecOptions, *, explain: bool = True
) -> tuple[dict[str, str], list[Injection], list[str], dict[str, str]]:
    """(environment, decided injections, warnings, withheld) for ``options``; runs nothing.

    Without ``explain`` the injections are not worked out (an empty list):
    a plain run needs only the environment, which ``merge.environment``
    builds without an object per secret. ``withheld`` maps each stored name
    left out because it changes which code runs (``loadervars``) to its scope.
    """
    from secretstore import loadervars, merge, paths
    from secretstore.store import Store

    explicit = [merge.parse_env_assignment(text) for text in options.env]  # usage errors first
    allowed = loadervars.check_allowed(options.allow_vars, loadervars.ALLOW_OPTION)
    context = merge.resolve_context(options.project, options.cluster)
    store = Store(paths.store_dir(options.store), strict=options.strict)
    layers, warnings = merge.load_layers(
        store, context, _read_identity, strict=options.strict, snapshot_dir=paths.snapshot_dir()
    )
    refs_only, no_override = options.refs_only, options.no_override
    # Store names that change which code runs; not the ones --env sets, nor under --refs-only.
    sources = {} if refs_only else loadervars.loader_sources(layers)
    for name, _value in explicit:
        sources.pop(name, None)
    withheld = loadervars.withhold(sources, allowed + merge.dotfile_allow_vars()) if sources else {}
    warnings += withheld.values()
    searched = merge.describe_scopes(scope for scope, _ in layers)
    if not explain:
        env = merge.environment(
            layers, os.environ, explicit, refs_only=refs_only, no_override=no_override,
            searched=searched, withheld=withheld,
        )
        return env, [], warnings, {}
    env, decided = merge.build_environment(
        merge.merge_scopes(layers), os.environ, explicit,
        refs_only=refs_only, no_override=no_override, searched=searched, withheld=withheld,
    )
    return env, decided, warnings, {name: sources[name] for name in withheld}


def dry_run_table(decided: Sequence[Injection], withheld: Mapping[str, str] | None = None) -> str:
    """The --dry-run table; a ``withheld`` name (-> its scope) shows as not injected."""
    if not decided and not withheld:
        return "No data found"
    rows = []
    for item in decided:
        overrides = ", ".join(item.overrides) or "-"
        rows.append([item.name, item.origin, overrides])
    for name, source in (withheld or {}).items():
        rows.append([name, f"{source}, not injected", "-"])
    rows.sort(key=lambda row: row[0])
    return text_table(["Name", "From", "Overrides"], rows)


def run_exec(options: ExecOptions) -> int:
    """Do what ``secretstore exec`` does; returns an exit status unless the process is replaced."""
    masked = mask_requested(options.mask)
    env, decided, warnings, withheld = prepare(options, explain=options.dry_run or masked)
    for message in warnings:
        warning_line(message)
    if options.dry_run:
        write_stdout((dry_run_table(decided, withheld) + "\n").encode("utf-8"))
        return 0
    from secretstore import runner

    if masked:
        from secretstore.merge import CREDENTIAL_VARIABLES, mask_values

        # The program does not inherit our credentials, but mask them in case it finds them.
        credentials = [os.environ.get(name, "") for name in CREDENTIAL_VARIABLES]
        hidden = [line.strip() for value in credentials for line in [value, *value.splitlines()]]
        values = mask_values(decided) + [v for v in hidden if v]
        return runner.supervise(options.command, env, values, credentials=CREDENTIAL_VARIABLES)
    runner.exec_program(options.command, env)
    return EXIT_FAILURE  # not reached: exec_program replaces the process or raises


def main(argv: Sequence[str]) -> int | None:
    """The fast path: an exit status, or None when the typer CLI should take ``argv``."""
    split = split_global(argv)
    if split is None:
        return None
    options = parse(split[1], split[0])
    if options is None:
        return None
    disable_core_dumps()
    return run_reporting_errors(lambda: run_exec(options))
