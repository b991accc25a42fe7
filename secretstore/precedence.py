"""Which value each variable gets: precedence, ``secret:NAME`` references, the dry-run explanation.

- Precedence (Gradient's): project > cluster > team. A name set in several
  scopes is applied once, from the highest one.
- The environment a program gets, per variable, lowest to highest:
  inherited environment < team < cluster < project < ``--env VAR=VALUE``
  (and ``--env-file`` below ``--env``). With ``no_override`` the inherited
  value beats every secret (never ``--env``).
- A final value that is exactly ``secret:NAME`` is replaced by the merged
  value of NAME; a missing NAME is an error before anything starts.

Pure functions over what ``layers.load_layers`` read: no file, no key, no
typer. On exec's start-up path, so no typing, dataclasses or re.
"""

from __future__ import annotations

from secretstore import env as env_names
from secretstore.errors import NotFoundError, UsageError
from secretstore.rules import is_valid_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Collection, Iterable, Mapping

    from secretstore.store import Scope

REFERENCE_PREFIX = "secret:"
# secretstore's own credentials: the program never inherits them.
CREDENTIAL_VARIABLES = env_names.CREDENTIALS
INHERITED = "inherited env"
EXPLICIT = "--env"
ENV_FILE = "--env-file"


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
        self.secret = source not in (INHERITED, EXPLICIT, ENV_FILE)

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
    env_file: Iterable[tuple[str, str]] = (),
    withheld: Collection[str] = (),
) -> tuple[dict[str, str], list[Injection]]:
    """The program's environment, and the variables secretstore decided (sorted).

    ``env_file`` holds ``--env-file``'s variables: like ``--env`` (which
    beats them), they win over secrets and may be ``secret:NAME``.
    Raises NotFoundError naming every variable whose ``secret:NAME`` has no
    secret, before anything is run. ``searched`` describes the scopes merged
    (for that message). A secret named in ``withheld`` is not injected under
    its own name (``secretstore.loadervars``), but a reference can still use it.
    """
    from_file = dict(env_file)
    given = dict(explicit)
    inherited = _without_credentials(inherited, {**from_file, **given})
    names = set(given) | set(from_file)
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
        if name in from_file:
            candidates.append((ENV_FILE, from_file[name]))
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
    secretstore's credentials: the program gets them only when ``--env`` (or ``--env-file``) gives them."""
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
    env_file: Iterable[tuple[str, str]] = (),
    withheld: Collection[str] = (),
) -> dict[str, str]:
    """The environment ``build_environment`` gives for ``merge_scopes(layers)``, built
    without a per-secret object: what ``exec`` runs a program with.

    ``build_environment`` also explains each variable (``--dry-run``, ``--mask``);
    this does only dict updates, so 10,000 secrets cost about as much as a few.
    tests/test_precedence.py checks that the two agree.
    """
    top: dict[str, str] = {}
    for _scope, values in layers:
        top.update(values)
    injected = {name: value for name, value in top.items() if name not in withheld} if withheld else top
    given = dict(env_file)
    given.update(explicit)
    inherited = _without_credentials(inherited, given)
    env = dict(inherited)
    if not refs_only:
        if no_override:
            env.update((name, value) for name, value in injected.items() if name not in inherited)
        else:
            env.update(injected)
    env.update(given)
    # Only values from the inherited environment, --env-file or --env can be references.
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


def dry_run_rows(decided: Iterable[Injection], withheld: Mapping[str, str] | None = None) -> list[list[str]]:
    """The rows of ``exec --dry-run``'s table: name, where the value comes from, what it overrides.

    A ``withheld`` name (-> the scope it comes from) shows as not injected.
    """
    rows = [[item.name, item.origin, ", ".join(item.overrides) or "-"] for item in decided]
    rows += [[name, f"{source}, not injected", "-"] for name, source in (withheld or {}).items()]
    return sorted(rows, key=lambda row: row[0])


def dry_run_json(decided: Iterable[Injection], withheld: Mapping[str, str] | None = None) -> list[dict[str, object]]:
    """``exec --dry-run --json``: the same explanation as data, never a value."""
    rows: list[dict[str, object]] = [
        {
            "name": item.name,
            "source": item.source,
            "reference": item.reference,
            "reference_scope": item.reference_scope,
            "overrides": list(item.overrides),
            "secret": item.secret,
            "injected": True,
        }
        for item in decided
    ]
    rows += [
        {"name": name, "source": source, "reference": None, "reference_scope": None, "overrides": [],
         "secret": True, "injected": False}
        for name, source in (withheld or {}).items()
    ]
    return sorted(rows, key=lambda row: str(row["name"]))
