"""Stored names that exec does not inject unless allowed: the ones that change which code runs.

A value in the store is a string for a program to use; a variable named
``PATH``, ``LD_PRELOAD`` or ``PYTHONPATH`` is more than that: it decides
which program, library or module runs, as you, with your files and keys.
Whoever can write a scope (a teammate, or anyone who manages to get a file
into the store) must not get that power by choosing a name. So ``exec``
leaves such names out of the program's environment, with one warning each,
unless the user allows them by name (``--allow-var NAME``, or ``allow_vars``
in ``.secretstore.toml``). Variables the user sets (``--env``, the inherited
environment) are the user's own and never filtered; a held-back secret can
still be referenced (``--env MY_VAR=secret:PATH``), since the user then
chooses the variable. ``set`` and ``import`` of such a name warn, and store it.
``export`` prints what exec would inject, so it leaves the same names out (its
output is meant to be sourced, evaluated or loaded as an environment), with the
same ``--allow-var``; ``inject`` fills only the references its template names.

What is held back (docs/exec.md lists every name and why): the names read by
the dynamic loader and the C library to load code, ``PATH``, the ones that
make shells run commands, the conventional variables naming a command other
programs run (``EDITOR``, ``PAGER``...), the directories every program reads
its configuration from (``HOME``, ``XDG_*``), the start-up variables of the
common language runtimes that load code or options, git's command and
configuration variables, and secretstore's own. Not held back: names that
redirect data rather than code (proxies, CA bundles, DNS, ``TMPDIR``), and
one tool's own configuration variables (``KUBECONFIG``, ``AWS_CONFIG_FILE``):
the boundary and the reasons are in docs/exec.md.

On exec's fast path: imports nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Iterable, Mapping

# (why, names, prefixes): why is the end of "it ...", said in the warning.
GROUPS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("changes which programs run", ("PATH",), ()),
    (
        "changes what the dynamic loader and the C library load",
        # LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT... (glibc, musl; Solaris too);
        # DYLD_INSERT_LIBRARIES... (macOS); LDR_PRELOAD, LIBPATH (AIX); SHLIB_PATH
        # (HP-UX); gconv modules are shared objects; getconf runs programs from
        # GETCONF_DIR; tunables pick library variants; message catalogs are
        # printf formats.
        ("LIBPATH", "SHLIB_PATH", "GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "NLSPATH"),
        ("LD_", "DYLD_", "LDR_"),
    ),
    (
        "changes what shells run",
        (
            "BASH_ENV", "ENV", "ZDOTDIR", "SHELLOPTS", "BASHOPTS", "PS0", "PS1", "PS2", "PS4",
            "PROMPT_COMMAND", "IFS", "CDPATH", "FPATH", "NULLCMD", "READNULLCMD",
            "BASH_LOADABLES_PATH", "EXECIGNORE",
        ),
        ("BASH_FUNC_",),
    ),
    (
        "names a command other programs run",
        (
            "EDITOR", "VISUAL", "PAGER", "MANPAGER", "BROWSER", "SHELL", "LESS", "LESSOPEN",
            "LESSCLOSE", "SSH_ASKPASS", "SUDO_ASKPASS",
        ),
        (),
    ),
    ("changes where programs read their configuration, plugins and caches", ("HOME",), ("XDG_",)),
    (
        "changes what code Python loads or runs",
        (
            "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONPLATLIBDIR",
            "PYTHONPYCACHEPREFIX", "PYTHONINSPECT", "PYTHONBREAKPOINT", "PYTHONWARNINGS",
            "PYTHONEXECUTABLE", "PYTHONOPTIMIZE", "PYTHONCASEOK",
        ),
        (),
    ),
    (
        "changes what code Perl loads or runs",
        ("PERL5LIB", "PERLLIB", "PERL5OPT", "PERL5DB", "PERL5SHELL"),
        (),
    ),
    (
        "changes what code Ruby loads or runs",
        ("RUBYOPT", "RUBYLIB", "RUBYPATH", "RUBYSHELL", "GEM_HOME", "GEM_PATH", "BUNDLE_GEMFILE"),
        (),
    ),
    ("changes what code Node.js loads", ("NODE_OPTIONS", "NODE_PATH", "NODE_REPL_EXTERNAL_MODULE"), ()),
    (
        "changes what code the Java VM loads",
        ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS", "CLASSPATH"),
        (),
    ),
    (
        "changes what code R, Julia, Lua, PHP, Tcl or .NET loads",
        (
            "R_PROFILE", "R_PROFILE_USER", "R_ENVIRON", "R_ENVIRON_USER", "R_LIBS", "R_LIBS_USER",
            "R_LIBS_SITE", "JULIA_LOAD_PATH", "JULIA_DEPOT_PATH", "PHPRC", "PHP_INI_SCAN_DIR",
            "TCLLIBPATH", "DOTNET_STARTUP_HOOKS", "DOTNET_ADDITIONAL_DEPS",
        ),
        ("LUA_INIT", "LUA_PATH", "LUA_CPATH", "CORECLR_PROFILER_PATH"),
    ),
    (
        "makes git run commands or read other configuration",
        (
            "GIT_EXEC_PATH", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_EDITOR",
            "GIT_SEQUENCE_EDITOR", "GIT_PAGER", "GIT_EXTERNAL_DIFF", "GIT_PROXY_COMMAND",
            "GIT_ALLOW_PROTOCOL", "GIT_CONFIG", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM",
            "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_DIR", "GIT_COMMON_DIR",
            "GIT_TEMPLATE_DIR",
        ),
        ("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"),
    ),
    ("changes which store, identity or key secretstore uses", (), ("SECRETSTORE_",)),
)

NAMES: dict[str, str] = {name: why for why, names, _prefixes in GROUPS for name in names}
PREFIXES: dict[str, str] = {prefix: why for why, _names, prefixes in GROUPS for prefix in prefixes}
_PREFIX_TUPLE = tuple(PREFIXES)

ALLOW_OPTION = "--allow-var"
DOTFILE_KEY = "allow_vars"


def reason(name: str) -> str | None:
    """Why ``name`` is held back ("changes which programs run"), or None when it is not."""
    found = NAMES.get(name)
    if found is not None or not name.startswith(_PREFIX_TUPLE):
        return found
    return next(why for prefix, why in PREFIXES.items() if name.startswith(prefix))


def is_loader_variable(name: str) -> bool:
    """Whether ``name`` changes which code a program runs (exec holds it back by default)."""
    return name in NAMES or name.startswith(_PREFIX_TUPLE)


def loader_sources(layers: Iterable[tuple[object, Mapping[str, str]]]) -> dict[str, str]:
    """Loader variables set in ``layers`` (lowest precedence first), each with the
    label of the highest scope that sets it (``str(scope)``: "team", "project prj42")."""
    found: dict[str, str] = {}
    for scope, values in layers:
        for name in values:
            if name in NAMES or name.startswith(_PREFIX_TUPLE):
                found[name] = str(scope)
    return found


def withhold(sources: Mapping[str, str], allowed: Iterable[str], verb: str = "injecting") -> dict[str, str]:
    """Which of the merged secrets' loader variables not to inject, with one warning each.

    ``sources`` maps a stored name to the scope it comes from (see
    :func:`loader_sources`); ``allowed`` are the names the user allowed. Returns
    name -> warning line (without the ``secretstore: warning:`` prefix), sorted
    by name.
    """
    permitted = set(allowed)
    return {
        name: warning(name, source, verb)
        for name, source in sorted(sources.items())
        if name not in permitted and is_loader_variable(name)
    }


def warning(name: str, source: str, verb: str = "injecting") -> str:
    why = reason(name) or "changes which code runs"
    return f"not {verb} {name} from {source}: it {why}; allow it with {ALLOW_OPTION} {name}"


def store_warning(name: str) -> str | None:
    """The line ``set`` and ``import`` print for a held-back name (it is stored all the same)."""
    why = reason(name)
    if why is None:
        return None
    return (
        f"{name} {why}: exec and export leave it out unless you allow it "
        f"({ALLOW_OPTION} {name}, or {DOTFILE_KEY} in .secretstore.toml)"
    )


def check_allowed(names: Iterable[object], source: str) -> list[str]:
    """The names of ``--allow-var`` or ``allow_vars``, each checked to be a variable name."""
    from secretstore.errors import UsageError
    from secretstore.rules import is_valid_name

    checked = []
    for name in names:
        if not isinstance(name, str) or not is_valid_name(name):
            shown = repr(name) if isinstance(name, str) and name.isprintable() else "(not shown)"
            raise UsageError(
                f"{source}: {shown} is not a variable name",
                hint="allow names one by one, such as LD_LIBRARY_PATH (no patterns)",
            )
        checked.append(name)
    return checked
