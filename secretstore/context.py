"""Which store, project and cluster a command works on: flags > environment > ``.secretstore.toml``.

- The store: ``--store`` > ``$SECRETSTORE_DIR`` > ``store = "..."`` in a
  ``.secretstore.toml`` (relative to that file) > the user data dir.
- The project and cluster, each on its own: ``--project`` / ``--cluster`` >
  ``$SECRETSTORE_PROJECT`` / ``$SECRETSTORE_CLUSTER`` > the dotfile > none.
- Team: read unless ``--no-team``, ``$SECRETSTORE_NO_TEAM=1`` or
  ``team = false`` in the dotfile says otherwise.

The dotfile is the nearest ``.secretstore.toml`` in the working directory or
a parent, found as git finds a repository: the search stops at a file-system
boundary (a mount point), and a file owned by anyone but you or root, or
writable by others, is ignored with a note (someone else's file in a shared
``/tmp`` directory must not switch your run to their project or store).

Running inside a store's own directory (a git checkout of a team store) while
the store in use is another one is refused unless ``--store`` chose it: the
run would otherwise use the other store's secrets, or none, in silence.

Library code: it reports notes through a callback and never prints.
"""

from __future__ import annotations

import os

from secretstore import env
from secretstore.errors import UsageError
from secretstore.rules import check_id

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Callable, Mapping

    from secretstore.store import Scope

    Warn = Callable[[str], None]

DOTFILE = ".secretstore.toml"
DOTFILE_KEYS = ("project", "cluster", "store", "team", "allow_vars")
ENV_PROJECT = env.PROJECT
ENV_CLUSTER = env.CLUSTER
# What marks a directory as a secretstore store (for "you are inside another store").
_STORE_ATTRIBUTE = "merge=secretstore"
_STORE_FILES = ("team.toml", "recipients.toml")
_FORMAT_MARK = b'format = "secretstore'


class Dotfile:
    """The settings of one ``.secretstore.toml``, validated."""

    __slots__ = ("allow_vars", "cluster", "path", "project", "store", "team")

    def __init__(self, path: str) -> None:
        self.path = path
        self.project: str | None = None
        self.cluster: str | None = None
        self.store: str | None = None  # absolute
        self.team: bool | None = None
        # names exec may inject although they change which code runs (``loadervars``)
        self.allow_vars: list[str] = []

    def __repr__(self) -> str:
        return f"Dotfile({self.path!r})"


class Context:
    """The store, project and cluster to use, and where each came from (for messages)."""

    __slots__ = (
        "allow_vars",
        "cluster",
        "cluster_source",
        "dotfile",
        "project",
        "project_source",
        "store",
        "store_source",
        "team",
        "team_source",
    )

    def __init__(
        self,
        project: str | None = None,
        cluster: str | None = None,
        project_source: str = "",
        cluster_source: str = "",
        *,
        team: bool = True,
        store: str = "",
        store_source: str = "",
    ) -> None:
        self.project = project
        self.cluster = cluster
        self.project_source = project_source
        self.cluster_source = cluster_source
        self.team = team
        self.team_source = ""
        self.store = store
        self.store_source = store_source
        self.allow_vars: list[str] = []  # from the dotfile: names exec may inject (``loadervars``)
        self.dotfile: str | None = None

    def __repr__(self) -> str:
        return f"Context(project={self.project!r}, cluster={self.cluster!r}, team={self.team!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Context) and (self.project, self.cluster, self.team) == (
            other.project,
            other.cluster,
            other.team,
        )

    __hash__ = None  # type: ignore[assignment]

    def scopes(self) -> list[Scope]:
        """team (unless left out), then cluster, then project: lowest precedence first."""
        from secretstore.store import TEAM, Scope

        found = [TEAM] if self.team else []
        if self.cluster:
            found.append(Scope("cluster", self.cluster))
        if self.project:
            found.append(Scope("project", self.project))
        return found

    def named(self) -> list[Scope]:
        """The scopes someone named (a project or cluster id), as opposed to team, which is implied."""
        return [scope for scope in self.scopes() if scope.scope_id is not None]


# --- finding and reading .secretstore.toml ------------------------------------------


def _owner_problem(status: os.stat_result) -> str | None:
    """Why a dotfile must not be trusted, or None: owned by you or root, not writable by others."""
    uid = os.getuid()
    if status.st_uid not in (uid, 0):
        return f"owned by uid {status.st_uid}, not by you or root"
    if status.st_mode & 0o002:
        return "writable by every user"
    return None


def _parents(start: str) -> list[str]:
    """``start`` and its parents, up to the root or the last one on the same file system."""
    directory = os.path.abspath(start)
    try:
        device = os.stat(directory).st_dev
    except OSError:
        return []
    found = [directory]
    while True:
        parent = os.path.dirname(directory)
        if parent == directory:
            return found
        try:
            if os.stat(parent).st_dev != device:
                return found  # a mount point: as git, do not look across it
        except OSError:
            return found
        found.append(parent)
        directory = parent


def _read_trusted(path: str, warn: Warn | None) -> bytes | None:
    """The bytes of the dotfile at ``path``, or None when it is missing or not to be trusted."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        status = os.fstat(fd)
        import stat

        if not stat.S_ISREG(status.st_mode):
            return None
        problem = _owner_problem(status)
        if problem is not None:
            if warn is not None:
                warn(f"ignoring {path}: {problem}")
            return None
        from secretstore import limits

        chunks = []
        size = 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > limits.MAX_DOTFILE_BYTES:
                break
        data = b"".join(chunks)
        limits.check_size(data, path, limits.MAX_DOTFILE_BYTES)  # never a huge file read whole
        return data
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def find_dotfile(start: str, warn: Warn | None = None) -> str | None:
    """The nearest trusted ``.secretstore.toml`` in ``start`` or a parent on the same file system."""
    found = _find(start, warn)
    return None if found is None else found[0]


def _find(start: str, warn: Warn | None) -> tuple[str, bytes] | None:
    for directory in _parents(start):
        candidate = os.path.join(directory, DOTFILE)
        if not os.path.lexists(candidate):
            continue
        data = _read_trusted(candidate, warn)
        if data is not None:
            return candidate, data
    return None


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


def parse_dotfile(path: str, raw: bytes) -> Dotfile:
    """The validated settings of the dotfile at ``path`` holding ``raw``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not valid UTF-8") from None
    document = _simple_toml(text)
    if document is None:  # anything beyond key = "value": the real parser
        import tomllib

        from secretstore import limits

        limits.check_store_file_shape(raw, path, limits.MAX_DOTFILE_BYTES, arrays=True)
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: not valid TOML ({exc})") from None
        except ValueError:  # e.g. an integer of more than 4,300 digits
            raise UsageError(f"{path}: not valid TOML (a number is too long)") from None
        except RecursionError:
            raise UsageError(f"{path}: not valid TOML (nested too deeply)") from None
    unknown = sorted(set(document) - set(DOTFILE_KEYS))
    if unknown:
        raise UsageError(
            f"{path}: unknown key {unknown[0]!r}",
            hint="a .secretstore.toml holds project, cluster, store, team and allow_vars",
        )
    found = Dotfile(path)
    for key in ("project", "cluster"):
        if key in document:
            value = document[key]
            if not isinstance(value, str):
                raise UsageError(f"{path}: {key} must be a string")
            if value:
                setattr(found, key, _checked_id(value, key, path))
    if "store" in document:
        value = document["store"]
        if not isinstance(value, str) or not value:
            raise UsageError(f"{path}: store must be a non-empty string (a directory, relative to {DOTFILE})")
        found.store = os.path.normpath(os.path.join(os.path.dirname(path), os.path.expanduser(value)))
    if "team" in document:
        value = document["team"]
        if not isinstance(value, bool):
            raise UsageError(f"{path}: team must be true or false")
        found.team = value
    if "allow_vars" in document:
        names = document["allow_vars"]
        if not isinstance(names, list):
            raise UsageError(f"{path}: allow_vars must be a list of variable names")
        from secretstore.loadervars import check_allowed

        found.allow_vars = check_allowed(names, f"{path}: allow_vars")
    return found


def read_dotfile(path: str) -> dict[str, str]:
    """``project`` and ``cluster`` from the ``.secretstore.toml`` at ``path``, validated."""
    data = _read_trusted(path, None)
    if data is None:
        return {}
    settings = parse_dotfile(path, data)
    return {key: value for key in ("project", "cluster") if (value := getattr(settings, key))}


def load_dotfile(cwd: str | None = None, warn: Warn | None = None) -> Dotfile | None:
    """The settings of the nearest trusted dotfile above ``cwd`` (default: the working directory)."""
    if cwd is None:
        try:
            cwd = os.getcwd()
        except OSError:  # the working directory was removed: no dotfile to find
            return None
    found = _find(cwd, warn)
    return None if found is None else parse_dotfile(*found)


def _checked_id(value: str, entity: str, source: str) -> str:
    try:
        return check_id(value, entity)
    except UsageError as exc:
        raise UsageError(f"{exc.message} (from {source})") from None


# --- the store -------------------------------------------------------------------


def _default_store() -> str:
    from secretstore import paths

    return paths.user_dir("data")


def choose_store(
    flag: str | None, dotfile: Dotfile | None, environ: Mapping[str, str]
) -> tuple[str, str]:
    """(store directory, where it came from): ``--store`` > ``$SECRETSTORE_DIR`` > dotfile > default."""
    if flag:
        return os.path.abspath(os.path.expanduser(flag)), "--store"
    chosen = environ.get(env.STORE)
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen)), f"${env.STORE}"
    if dotfile is not None and dotfile.store is not None:
        return dotfile.store, dotfile.path
    return _default_store(), "default"


def looks_like_store(directory: str) -> bool:
    """Whether ``directory`` holds a secretstore store: its ``.gitattributes`` line or a scope file."""
    for name in (".gitattributes", *_STORE_FILES):
        try:
            with open(os.path.join(directory, name), "rb") as handle:
                head = handle.read(4096)
        except OSError:
            continue
        if name == ".gitattributes":
            if _STORE_ATTRIBUTE.encode() in head:
                return True
        elif _FORMAT_MARK in head:
            return True
    return False


def enclosing_store(cwd: str) -> str | None:
    """The store directory the working directory is in (itself or a parent), if any."""
    for directory in _parents(cwd):
        if looks_like_store(directory):
            return directory
    return None


def check_not_inside_other_store(store: str, source: str, cwd: str | None) -> None:
    """Refuse to use ``store`` while the working directory is inside another store, unless
    ``--store`` chose it: a team checkout would otherwise be silently ignored."""
    if source == "--store" or cwd is None:
        return
    inside = enclosing_store(cwd)
    if inside is None:
        return
    if os.path.realpath(inside) == os.path.realpath(store):
        return
    why = "the default store" if source == "default" else f"the store from {source}"
    raise UsageError(
        f"the working directory is inside the store {inside}, but {why} is {store}",
        hint=f"pass --store {inside} to use this one (or --store {store} to keep the other)",
    )


def _cwd(cwd: str | None) -> str | None:
    if cwd is not None:
        return cwd
    try:
        return os.getcwd()
    except OSError:
        return None


def resolve_store(
    flag: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    warn: Warn | None = None,
) -> tuple[str, str]:
    """(store directory, where it came from) for a command that needs only the store."""
    environ = os.environ if environ is None else environ
    cwd = _cwd(cwd)
    dotfile = None
    if not flag and not environ.get(env.STORE) and cwd is not None:
        dotfile = load_dotfile(cwd, warn)
    store, source = choose_store(flag, dotfile, environ)
    check_not_inside_other_store(store, source, cwd)
    return store, source


# --- the whole context ---------------------------------------------------------------


def resolve_context(
    project: str | None = None,
    cluster: str | None = None,
    *,
    store: str | None = None,
    no_team: bool = False,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    warn: Warn | None = None,
    check_store: bool = True,
    allow_vars: bool = False,
) -> Context:
    """flags > ``$SECRETSTORE_*`` > dotfile > defaults, for the store, project, cluster and team.

    Empty flags and empty variables count as not given (the command line
    refuses an option given empty, ``cli.execute``). The dotfile is read
    only when some setting is left for it to give; ``allow_vars`` (exec) always
    reads it, for the names it allows.
    """
    environ = os.environ if environ is None else environ
    cwd = _cwd(cwd)
    context = Context()
    pending = []
    for entity, flag, variable in (
        ("project", project, ENV_PROJECT),
        ("cluster", cluster, ENV_CLUSTER),
    ):
        if flag:
            value, source = _checked_id(flag, entity, f"--{entity}"), f"--{entity}"
        elif environ.get(variable):
            value, source = _checked_id(environ[variable], entity, f"${variable}"), f"${variable}"
        else:
            pending.append(entity)
            continue
        setattr(context, entity, value)
        setattr(context, f"{entity}_source", source)
    if no_team:
        context.team, context.team_source = False, "--no-team"
    elif env.is_on(environ.get(env.NO_TEAM)):
        context.team, context.team_source = False, f"${env.NO_TEAM}"
    else:
        pending.append("team")
    if not store and not environ.get(env.STORE):
        pending.append("store")
    if allow_vars:
        pending.append("allow_vars")
    dotfile = load_dotfile(cwd, warn) if pending and cwd is not None else None
    if dotfile is not None:
        context.dotfile = dotfile.path
        context.allow_vars = dotfile.allow_vars
        for entity in ("project", "cluster"):
            value = getattr(dotfile, entity)
            if entity in pending and value:
                setattr(context, entity, value)
                setattr(context, f"{entity}_source", dotfile.path)
        if "team" in pending and dotfile.team is False:
            context.team, context.team_source = False, dotfile.path
    context.store, context.store_source = choose_store(store, dotfile, environ)
    if check_store:
        check_not_inside_other_store(context.store, context.store_source, cwd)
    return context
