"""exec (run a program with the merged secrets) and the merged set export and inject print.

One pipeline for every reader of the merged set: ``context`` (which store,
project, cluster, team) -> ``layers`` (read each scope once, snapshots
included) -> ``precedence`` (project > cluster > team, ``secret:NAME``).
On exec's start-up path: imports stay lazy.
"""

from __future__ import annotations

import os

from secretstore import env as env_names

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Callable, Mapping, Sequence

    from secretstore.context import Context
    from secretstore.identity import Identity
    from secretstore.layers import Layers
    from secretstore.precedence import Injection

    Warn = Callable[[str], None]


def mask_requested(flag: bool, environ: Mapping[str, str] | None = None) -> bool:
    """``--mask``, or ``$SECRETSTORE_MASK`` on."""
    environ = os.environ if environ is None else environ
    return flag or env_names.is_on(environ.get(env_names.MASK))


def read_identity() -> Identity:
    from secretstore.identity import resolve_identity

    identity, _created = resolve_identity(create=False)
    return identity


def read_env_file(path: str) -> list[tuple[str, str]]:
    """The variables of a dotenv file for ``exec --env-file`` (python-dotenv's reading, no interpolation)."""
    from secretstore.errors import UsageError
    from secretstore.formats import parse_dotenv
    from secretstore.fsio import read_input

    raw = read_input(path, "env file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not valid UTF-8") from None
    pairs = list(parse_dotenv(text, source=path).items())
    for name, value in pairs:
        if "\x00" in value:
            raise UsageError(f"{path}: {name}: values cannot contain a NUL byte")
    return pairs


def read_layers(
    context: Context, *, strict: bool = False, get_identity: Callable[[], Identity] = read_identity
) -> tuple[Layers, list[str]]:
    """The context's scopes, read once (snapshots included), and warnings.

    ``strict`` also makes an unverifiable writer (``SECRETSTORE_KEY`` without
    ``SECRETSTORE_TRUST``) an error instead of a warning.
    """
    from secretstore import layers, paths
    from secretstore.store import Store

    return layers.load_layers(
        Store(context.store, strict=strict), context, get_identity, strict=strict,
        snapshot_dir=paths.snapshot_dir(),
    )


def record_reads(context: Context, command: str, found: Layers, detail: str = "") -> None:
    """The audit log's line per scope read (``audit.py``): the names, never the values."""
    from secretstore import audit

    if not audit.enabled():
        return
    from secretstore.commands.secrets import record_scopes
    from secretstore.store import Store

    record_scopes(Store(context.store), command, [(scope, sorted(values)) for scope, values in found if values],
                  detail=detail)


def merged_values(
    context: Context, *, strict: bool = False, warn: Warn | None = None, command: str = "export",
    allow_vars: Sequence[str] | None = None,
) -> dict[str, str]:
    """name -> value of the merged set (project > cluster > team): what export and inject print.

    With ``allow_vars`` (export), stored names that change which code runs are
    left out as exec leaves them out, one warning each, unless allowed there or
    in the dotfile; None (inject, whose template names each reference) keeps them.
    """
    from secretstore import loadervars, precedence

    allowed = None if allow_vars is None else loadervars.check_allowed(allow_vars, loadervars.ALLOW_OPTION)
    found, warnings = read_layers(context, strict=strict)
    record_reads(context, command, found)
    merged = precedence.merged_values(precedence.merge_scopes(found))
    if allowed is not None:
        withheld = loadervars.withhold(loadervars.loader_sources(found), [*allowed, *context.allow_vars], "exporting")
        for name in withheld:
            del merged[name]
        warnings += withheld.values()
    if warn is not None:
        for message in warnings:
            warn(message)
    return merged


def prepare(
    context: Context,
    *,
    env: Sequence[str] = (),
    env_file: str | None = None,
    refs_only: bool = False,
    no_override: bool = False,
    strict: bool = False,
    explain: bool = True,
    allow_vars: Sequence[str] = (),
    dry_run: bool = False,
) -> tuple[dict[str, str], list[Injection], list[str], dict[str, str]]:
    """(environment, decided injections, warnings, withheld) for a run; starts nothing.

    Without ``explain`` the injections are not worked out (an empty list): a
    plain run needs only the environment, which ``precedence.environment``
    builds without an object per secret. ``withheld`` maps each stored name
    left out because it changes which code runs (``loadervars``) to its scope;
    ``allow_vars`` (``--allow-var``) and the dotfile's ``allow_vars`` let names through.
    ``dry_run``: only said in the audit line (no program will get the values).
    """
    from secretstore import loadervars, precedence

    allowed = loadervars.check_allowed(allow_vars, loadervars.ALLOW_OPTION)  # usage errors first
    explicit = [precedence.parse_env_assignment(text) for text in env]
    from_file = read_env_file(env_file) if env_file is not None else []
    found, warnings = read_layers(context, strict=strict)
    # the names read (decrypted), and where their values went when not all to the program
    record_reads(context, "exec", found,
                 "dry run: names and scopes shown, no value given to a program" if dry_run
                 else "refs only: only values named by secret:NAME references were given to the program"
                 if refs_only else "")
    # Store names that change which code runs; not the ones --env or --env-file set, nor under --refs-only.
    sources = {} if refs_only else loadervars.loader_sources(found)
    for name, _value in [*explicit, *from_file]:
        sources.pop(name, None)
    withheld = loadervars.withhold(sources, [*allowed, *context.allow_vars]) if sources else {}
    warnings += withheld.values()
    searched = precedence.describe_scopes(scope for scope, _ in found)
    if not explain:
        environment = precedence.environment(
            found, os.environ, explicit, refs_only=refs_only, no_override=no_override,
            searched=searched, env_file=from_file, withheld=withheld,
        )
        return environment, [], warnings, {}
    environment, decided = precedence.build_environment(
        precedence.merge_scopes(found), os.environ, explicit,
        refs_only=refs_only, no_override=no_override, searched=searched, env_file=from_file,
        withheld=withheld,
    )
    return environment, decided, warnings, {name: sources[name] for name in withheld}


def run_program(command: Sequence[str], environment: dict[str, str], decided: Sequence[Injection], masked: bool) -> int:
    """Replace this process with ``command`` or, when ``masked``, supervise it; its exit status."""
    from secretstore import runner

    if masked:
        from secretstore.precedence import mask_values

        # The program does not inherit our credentials, but mask them in case it finds them;
        # the supervisor holds them in memory only (``credentials``: it restarts without them).
        credentials = [os.environ.get(name, "") for name in env_names.CREDENTIALS]
        hidden = [line.strip() for value in credentials for line in [value, *value.splitlines()]]
        values = mask_values(decided) + [v for v in hidden if v]
        return runner.supervise(list(command), environment, values, credentials=env_names.CREDENTIALS)
    runner.exec_program(list(command), environment)
    from secretstore.errors import EXIT_FAILURE

    return EXIT_FAILURE  # not reached: exec_program replaces the process or raises
