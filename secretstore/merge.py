"""Which secrets a program gets: context, precedence, ``secret:NAME`` references.

- Context: ``--project`` / ``--cluster`` flags > ``$SECRETSTORE_PROJECT`` /
  ``$SECRETSTORE_CLUSTER`` > a ``.secretstore.toml`` in the working directory
  or one of its parents > none. Project and cluster are resolved each on its own.
- Precedence (Gradient's): project > cluster > team. A name set in several
  scopes is applied once, from the highest one.
- The environment a program gets, per variable, lowest to highest:
  inherited environment < team < cluster < project < ``--env VAR=VALUE``.
  With ``no_override`` the inherited value beats every secret (never ``--env``).
  A final value that is exactly ``secret:NAME`` is replaced by the merged value
  of NAME; a missing NAME is an error before anything starts.

This module is on the ``exec`` fast path: it imports no typer, no typing, no
dataclasses, no re, and reads no scope file that the context does not name.
One public-key operation per scope file (``Store.unlock``), never per value.
"""

from __future__ import annotations

import os

from secretstore import limits
from secretstore.errors import NotFoundError, NotRecipientError, UsageError
from secretstore.rules import check_id, is_valid_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Callable, Collection, Iterable, Mapping

    from secretstore.identity import Identity
    from secretstore.snapshot import Snapshots
    from secretstore.store import Scope, Store

ENV_PROJECT = "SECRETSTORE_PROJECT"
ENV_CLUSTER = "SECRETSTORE_CLUSTER"
DOTFILE = ".secretstore.toml"
DOTFILE_KEYS = ("project", "cluster", "allow_vars")
REFERENCE_PREFIX = "secret:"
# secretstore's own credentials: they open every scope their key can, so the
# program never inherits them (it gets what was merged, not the means to merge).
CREDENTIAL_VARIABLES = ("SECRETSTORE_KEY", "SECRETSTORE_PASSPHRASE", "SECRETSTORE_NEW_PASSPHRASE")
INHERITED = "inherited env"
EXPLICIT = "--env"


# --- context ---------------------------------------------------------------


class Context:
    """The project and cluster to merge, and where each came from (for messages)."""

    __slots__ = ("cluster", "cluster_source", "project", "project_source")

    def __init__(
        self,
        project: str | None = None,
        cluster: str | None = None,
        project_source: str = "",
        cluster_source: str = "",
    ) -> None:
        self.project = project
        self.cluster = cluster
        self.project_source = project_source
        self.cluster_source = cluster_source

    def __repr__(self) -> str:
        return f"Context(project={self.project!r}, cluster={self.cluster!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Context) and (self.project, self.cluster) == (
            other.project,
            other.cluster,
        )

    __hash__ = None  # type: ignore[assignment]

    def scopes(self) -> list[Scope]:
        """team, then cluster, then project: lowest precedence first."""
        from secretstore.store import TEAM, Scope

        found = [TEAM]
        if self.cluster:
            found.append(Scope("cluster", self.cluster))
        if self.project:
            found.append(Scope("project", self.project))
        return found


def find_dotfile(start: str) -> str | None:
    """The nearest ``.secretstore.toml`` in ``start`` or one of its parents."""
    directory = os.path.abspath(start)
    while True:
        candidate = os.path.join(directory, DOTFILE)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _simple_toml(text: str) -> dict[str, object] | None:
    """``key = "value"`` lines, blank lines and comments; None for anything else."""
    result: dict[str, object] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, rest = line.partition("=")
        key, rest = key.strip(), rest.strip()
        if not sep or not key.isidentifier() or key in result:
            return None
        if len(rest) < 2 or rest[0] != rest[-1] or rest[0] not in "\"'":
            return None
        inner = rest[1:-1]
        if rest[0] in inner or "\\" in inner:
            return None
        result[key] = inner
    return result


def read_dotfile(path: str) -> dict[str, str]:
    """``project`` and ``cluster`` from a ``.secretstore.toml``, validated."""
    document = _load_dotfile(path)
    found: dict[str, str] = {}
    for key in ("project", "cluster"):
        if key in document:
            value = document[key]
            if not isinstance(value, str):
                raise UsageError(f"{path}: {key} must be a string")
            if value:
                found[key] = _checked_id(value, key, path)
    return found


def dotfile_allow_vars(cwd: str | None = None) -> list[str]:
    """``allow_vars`` of the nearest ``.secretstore.toml`` (none without one): the
    names exec may inject although they change which code runs (``loadervars``)."""
    try:
        path = find_dotfile(os.getcwd() if cwd is None else cwd)
    except OSError:  # the working directory was removed: no dotfile to find
        return []
    if path is None:
        return []
    names = _load_dotfile(path).get("allow_vars", [])
    if not isinstance(names, list):
        raise UsageError(f"{path}: allow_vars must be a list of variable names")
    from secretstore.loadervars import check_allowed

    return check_allowed(names, f"{path}: allow_vars")


def _load_dotfile(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(limits.MAX_DOTFILE_BYTES + 1)  # never a huge file read whole
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    limits.check_size(raw, path, limits.MAX_DOTFILE_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not valid UTF-8") from None
    document = _simple_toml(text)
    if document is None:  # anything beyond key = "value": the real parser
        import tomllib

        limits.check_store_file_shape(raw, path, limits.MAX_DOTFILE_BYTES, arrays=True)
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(document) - set(DOTFILE_KEYS))
    if unknown:
        raise UsageError(
            f"{path}: unknown key {unknown[0]!r}",
            hint="a .secretstore.toml holds project, cluster and allow_vars",
        )
    return document


def _checked_id(value: str, entity: str, source: str) -> str:
    try:
        return check_id(value, entity)
    except UsageError as exc:
        raise UsageError(f"{exc.message} (from {source})") from None


def resolve_context(
    project: str | None = None,
    cluster: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Context:
    """flags > ``$SECRETSTORE_PROJECT`` / ``$SECRETSTORE_CLUSTER`` > dotfile > none.

    Empty flags and empty variables count as not given. The dotfile is read
    only when a flag and its variable are both missing.
    """
    env = os.environ if environ is None else environ
    context = Context()
    pending = []
    for entity, flag, variable in (
        ("project", project, ENV_PROJECT),
        ("cluster", cluster, ENV_CLUSTER),
    ):
        if flag:
            value, source = _checked_id(flag, entity, f"--{entity}"), f"--{entity}"
        elif env.get(variable):
            value, source = _checked_id(env[variable], entity, f"${variable}"), f"${variable}"
        else:
            pending.append(entity)
            continue
        setattr(context, entity, value)
        setattr(context, f"{entity}_source", source)
    if pending:
        if cwd is None:
            try:
                cwd = os.getcwd()
            except OSError:  # the working directory was removed: no dotfile to find
                return context
        path = find_dotfile(cwd)
        if path is not None:
            found = read_dotfile(path)
            for entity in pending:
                if entity in found:
                    setattr(context, entity, found[entity])
                    setattr(context, f"{entity}_source", path)
    return context


# --- reading the scopes ------------------------------------------------------


def load_layers(
    store: Store,
    context: Context,
    get_identity: Callable[[], Identity],
    *,
    strict: bool = False,
    snapshot_dir: str | None = None,
) -> tuple[list[tuple[Scope, dict[str, str]]], list[str]]:
    """Every value of team, cluster and project (lowest first), and warnings.

    A scope without a file is empty (not an error). The identity is asked for
    only when some scope has a file. A scope the identity is not a recipient
    of is skipped with its one-line message as a warning, unless ``strict``.
    With ``snapshot_dir``, a scope file whose exact bytes were verified before
    is read from its encrypted snapshot (``secretstore/snapshot.py``), and one
    verified now gets a snapshot.
    """
    layers: list[tuple[Scope, dict[str, str]]] = []
    warnings: list[str] = []
    identity: Identity | None = None
    snapshots: Snapshots | None = None
    for scope in context.scopes():
        data = store.read_bytes(scope)
        if data is None:
            layers.append((scope, {}))
            continue
        if identity is None:
            identity = get_identity()
            if snapshot_dir is not None:
                from secretstore.snapshot import Snapshots

                snapshots = Snapshots(snapshot_dir, identity, store.root)
        try:
            values = store.read_values(scope, data, identity, snapshots)
        except NotRecipientError as exc:
            if strict:
                raise
            warnings.append(exc.message)
            values = {}
        layers.append((scope, values))
    return layers, warnings


# --- precedence ----------------------------------------------------------------


class Merged:
    """One merged secret: its value, the scope it comes from, the scopes it beats."""

    __slots__ = ("name", "overrides", "scope", "value")

    def __init__(self, name: str, value: str, scope: Scope, overrides: list[Scope]) -> None:
        self.name = name
        self.value = value
        self.scope = scope
        self.overrides = overrides

    def __repr__(self) -> str:  # never the value
        return f"Merged({self.name!r}, from={self.scope}, overrides={[str(s) for s in self.overrides]})"


def merge_scopes(layers: Iterable[tuple[Scope, Mapping[str, str]]]) -> dict[str, Merged]:
    """Apply precedence: ``layers`` go lowest first (team, cluster, project).

    Returns name -> Merged, sorted by name.
    """
    merged: dict[str, Merged] = {}
    for scope, values in layers:
        for name, value in values.items():
            previous = merged.get(name)
            overrides = [] if previous is None else [*previous.overrides, previous.scope]
            merged[name] = Merged(name, value, scope, overrides)
    return dict(sorted(merged.items()))


def merged_values(merged: Mapping[str, Merged]) -> dict[str, str]:
    return {name: item.value for name, item in merged.items()}


# --- the environment ----------------------------------------------------------------


class Injection:
    """One variable of the program's environment that secretstore decided.

    ``source`` names where the value comes from ("project prj42", "--env",
    "inherited env"); ``reference`` is the secret NAME when the value was
    ``secret:NAME``, and ``reference_scope`` where that secret came from;
    ``overrides`` lists what the chosen value beat; ``secret`` tells whether
    the final value is a secret (to mask it).
    """

    __slots__ = ("name", "overrides", "reference", "reference_scope", "secret", "source", "value")

    def __init__(self, name: str, value: str, source: str, overrides: list[str]) -> None:
        self.name = name
        self.value = value
        self.source = source
        self.overrides = overrides
        self.reference: str | None = None
        self.reference_scope: str | None = None
        self.secret = source not in (INHERITED, EXPLICIT)

    def __repr__(self) -> str:  # never the value
        return f"Injection({self.name!r}, from={self.source!r}, overrides={self.overrides!r})"

    @property
    def origin(self) -> str:
        """The source as a table shows it: references say where the secret came from."""
        if self.reference is None:
            return self.source
        return f"{self.source} -> secret:{self.reference} ({self.reference_scope})"


def parse_env_assignment(text: str) -> tuple[str, str]:
    """``VAR=VALUE`` from ``--env`` (VALUE may be empty or contain '=')."""
    # The text is never echoed: a mistyped `--env "$TOKEN"` would put a secret in the terminal.
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageError(
            "--env takes VAR=VALUE; an argument without a variable name was given (not shown)"
        )
    if "\x00" in name or "\x00" in value:
        raise UsageError(f"--env {name}: variable names and values cannot contain a NUL byte")
    return name, value


def reference_of(value: str) -> str | None:
    """NAME when ``value`` is exactly ``secret:NAME`` with a valid NAME, else None.

    Anything else that merely starts with ``secret:`` ("secret: do not share") is
    an ordinary value: left alone, and never quoted in an error.
    """
    if value.startswith(REFERENCE_PREFIX):
        name = value[len(REFERENCE_PREFIX) :]
        if is_valid_name(name):
            return name
    return None


def build_environment(
    merged: Mapping[str, Merged],
    inherited: Mapping[str, str],
    explicit: Iterable[tuple[str, str]] = (),
    *,
    refs_only: bool = False,
    no_override: bool = False,
    searched: str = "",
    withheld: Collection[str] = (),
) -> tuple[dict[str, str], list[Injection]]:
    """The program's environment, and the variables secretstore decided (sorted).

    Raises NotFoundError naming every variable whose ``secret:NAME`` has no
    secret, before anything is run. ``searched`` describes the scopes merged
    (for that message). A secret named in ``withheld`` is not injected under
    its own name (``secretstore.loadervars``), but a reference can still use it.
    """
    given = dict(explicit)
    inherited = _without_credentials(inherited, given)
    names = set(given)
    if not refs_only:
        names.update(name for name in merged if name not in withheld)
    names.update(name for name, value in inherited.items() if reference_of(value) is not None)

    env = dict(inherited)
    decided: list[Injection] = []
    missing: list[str] = []
    for name in sorted(names):
        # candidates, lowest precedence first: (source, value)
        candidates: list[tuple[str, str]] = []
        secret = None if refs_only or name in withheld else merged.get(name)
        if secret is not None:
            candidates += [(str(scope), "") for scope in secret.overrides]
            candidates.append((str(secret.scope), secret.value))
        if name in inherited:
            entry = (INHERITED, inherited[name])
            if no_override:
                candidates.append(entry)
            else:
                candidates.insert(0, entry)
        if name in given:
            candidates.append((EXPLICIT, given[name]))
        source, value = candidates[-1]
        item = Injection(name, value, source, [label for label, _ in candidates[:-1]])
        target = reference_of(value) if not item.secret else None
        if target is not None:
            found = merged.get(target)
            if found is None:
                where = f" in {searched}" if searched else ""
                missing.append(f"{name} references secret {target!r}, which is not set{where}")
                continue
            item.value = found.value
            item.reference = target
            item.reference_scope = str(found.scope)
            item.secret = True
        if source == INHERITED and item.reference is None and not item.overrides:
            continue  # an inherited variable nothing touched
        env[name] = item.value
        decided.append(item)
    if missing:
        raise NotFoundError("; ".join(missing), hint=_MISSING_HINT)
    return env, decided


def _without_credentials(inherited: Mapping[str, str], given: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``inherited`` (os.environ re-encodes its keys on every lookup) without
    secretstore's credentials: the program gets them only when ``--env`` gives them."""
    env = dict(inherited)
    for credential in CREDENTIAL_VARIABLES:
        if credential not in given:
            env.pop(credential, None)
    return env


def environment(
    layers: Iterable[tuple[Scope, Mapping[str, str]]],
    inherited: Mapping[str, str],
    explicit: Iterable[tuple[str, str]] = (),
    *,
    refs_only: bool = False,
    no_override: bool = False,
    searched: str = "",
    withheld: Collection[str] = (),
) -> dict[str, str]:
    """The environment ``build_environment`` gives for ``merge_scopes(layers)``, built
    without a per-secret object: what ``exec`` runs a program with.

    ``build_environment`` also explains each variable (``--dry-run``, ``--mask``);
    this does only dict updates, so 10,000 secrets cost about as much as a few.
    tests/test_merge.py checks that the two agree.
    """
    top: dict[str, str] = {}
    for _scope, values in layers:
        top.update(values)
    injected = {name: value for name, value in top.items() if name not in withheld} if withheld else top
    given = dict(explicit)
    inherited = _without_credentials(inherited, given)
    env = dict(inherited)
    if not refs_only:
        if no_override:
            env.update((name, value) for name, value in injected.items() if name not in inherited)
        else:
            env.update(injected)
    env.update(given)
    # Only values from the inherited environment or --env can be references.
    secrets_win = not (refs_only or no_override)
    plain = {name: value for name, value in inherited.items() if not (secrets_win and name in injected)}
    plain.update(given)
    missing: list[str] = []
    for name in sorted(plain):
        target = reference_of(plain[name])
        if target is None:
            continue
        if target in top:
            env[name] = top[target]
        else:
            where = f" in {searched}" if searched else ""
            missing.append(f"{name} references secret {target!r}, which is not set{where}")
    if missing:
        raise NotFoundError("; ".join(missing), hint=_MISSING_HINT)
    return env


_MISSING_HINT = "set the secret, fix the name, or pass --env VAR=VALUE for this run"


def describe_scopes(scopes: Iterable[Scope]) -> str:
    """"team, cluster gpu-a or project prj42"."""
    labels = [str(scope) for scope in scopes]
    if len(labels) <= 1:
        return "".join(labels)
    return f"{', '.join(labels[:-1])} or {labels[-1]}"


def mask_values(decided: Iterable[Injection]) -> list[str]:
    """The secret values a masked run hides, longest first, each once."""
    values = {item.value for item in decided if item.secret and item.value}
    return sorted(values, key=lambda value: (-len(value), value))
