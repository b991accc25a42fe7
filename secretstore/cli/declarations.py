r"""Every command, declared once: its words, arguments, options, help and handler.

The fast parser (``cli/parser.py``) runs every well-formed command line from
these declarations without importing typer; ``--help``, usage errors and
completion installation go to typer, whose objects ``cli/framework.py``
builds from the same declarations; completion requests are answered by
``cli/completion.py`` from them too. There is nothing to keep in step.

Adding a command
----------------

1. Write the use case in ``secretstore/commands/`` (plain values in, data
   out, ``SecretStoreError`` for failures; no printing, no CLI imports).
2. Write its handler in the ``secretstore/cli/`` module of its group: a
   function ``name(args: Args) -> int | None`` that reads ``args.<dest>``,
   calls the use case and prints through ``secretstore.console`` (which
   escapes untrusted text). Prompts belong here too.
3. Declare it below: ``Command(name, summary, help, "module:function",
   [Arg(...), Opt(...), ...])`` and add it to a group (``ROOT``, ``SECRETS``,
   ``RECIPIENTS``, ``GIT``, or a new ``Group``). ``summary`` is the one line
   shown in command lists and completion menus; ``help`` is the full text
   (a ``\b`` line keeps the next block of examples unwrapped). Reuse the
   shared options (``ENTITY``, ``ID``, ``NAME``, ``STORE``, ``JSON``,
   ``PROJECT``, ``CLUSTER``, ...). ``gradient=True`` (the default) adds
   ``--apiKey``, ``--optionsFile`` and ``--createOptionsFile``.
4. Add it to the README's command tables (tests/test_docs.py checks), and
   to the CHANGELOG.

Option values reach the handler as ``str`` (or None), flags as ``bool``,
repeatable options and variadic arguments as ``list[str]``. Validation
(entity, ids, names, choices) is the handler's, so every message is
secretstore's own wording whichever parser ran.
"""

from __future__ import annotations

from secretstore.cli.spec import Arg, Command, Group, Opt

# --- shared parameters ----------------------------------------------------------------

ENTITY = Arg("entity", "ENTITY", "Scope of the secret: team, project or cluster.", complete="entity")
ID = Opt(
    ["--id"], "scope_id",
    "Project or cluster id (required for project and cluster). For team it is optional, "
    "as in Gradient, and must match the store's team id when one is recorded.",
    metavar="ID", complete="scope_id",
)
NAME = Opt(
    ["--name"], "name",
    "Secret name: a letter, then letters, digits or '_' (prompted on a terminal when missing).",
    metavar="NAME", complete="secret_name",
)
STORE = Opt(
    ["--store"], "store",
    "Store directory (default: $SECRETSTORE_DIR, then store in .secretstore.toml, then the user data dir).",
    metavar="DIR",
)
JSON = Opt(["--json"], "as_json", "Print JSON instead of text.", flag=True)
PROJECT = Opt(
    ["--project"], "project",
    "Project whose secrets to merge (default: $SECRETSTORE_PROJECT, then .secretstore.toml).",
    metavar="ID", complete="project_id",
)
CLUSTER = Opt(
    ["--cluster"], "cluster",
    "Cluster whose secrets to merge (default: $SECRETSTORE_CLUSTER, then .secretstore.toml).",
    metavar="ID", complete="cluster_id",
)
NO_TEAM = Opt(
    ["--no-team"], "no_team",
    "Leave team secrets out: team is neither read nor warned about (also SECRETSTORE_NO_TEAM=1, "
    "or team = false in .secretstore.toml).",
    flag=True,
)
STRICT = Opt(
    ["--strict"], "strict",
    "Fail when a named project or cluster has no secrets, or a scope cannot be read with your "
    "identity, instead of warning.",
    flag=True,
)

# Gradient's options, accepted by every command (``gradient=True``).
API_KEY = Opt(
    ["--apiKey"], "api_key",
    "Accepted for Gradient compatibility and ignored (there is no server); never stored or printed.",
    metavar="KEY",
)
OPTIONS_FILE = Opt(
    ["--optionsFile"], "options_file",
    "Read options from a YAML file whose keys are option names (id, name, value, ...); "
    "the command line wins.",
    metavar="FILE",
)
CREATE_OPTIONS_FILE = Opt(
    ["--createOptionsFile"], "create_options_file",
    "Write this command's options as a YAML template to FILE and exit without running it "
    "(a value or API key is never written).",
    metavar="FILE",
)
GRADIENT_OPTIONS = (API_KEY, OPTIONS_FILE, CREATE_OPTIONS_FILE)

# --- secrets: Gradient's command lines -----------------------------------------------------

SET = Command(
    "set", "Set a secret (create or replace).",
    """Set a secret (create or replace).

    The value comes from a hidden prompt (asked twice) on a terminal, piped
    stdin, --value - (stdin; a hidden prompt on a terminal) or --value-file
    (stored byte for byte). From stdin or a prompt one trailing newline is
    dropped. Setting the value a secret already holds changes nothing on disk.

    \b
      secretstore set team --name=WANDB_API_KEY            # hidden prompt
      printf %s "$TOKEN" | secretstore set cluster --id=gpu-a --name=HF_TOKEN --value -
      secretstore set project --id=prj42 --name=TLS_KEY --value-file key.pem
    """,
    "secrets:set_command",
    [
        ENTITY, ID, NAME,
        Opt(
            ["--value"], "value",
            "The value. Prefer '-' (stdin, or a hidden prompt on a terminal) or --value-file: a "
            "value on the command line lands in shell history and in ps for every user.",
            metavar="VALUE",
        ),
        Opt(
            ["--value-file"], "value_file",
            "Read the value from a file, byte for byte ('-' for stdin, where one trailing newline is dropped).",
            metavar="PATH",
        ),
        STORE,
    ],
)
LIST = Command(
    "list", "List secret names in a scope.",
    """List secret names in a scope, as Gradient's one-column Name table.

    Values are never shown and no key is needed. --long adds when each secret
    last changed; --json prints name, entity, id and updated time.
    """,
    "secrets:list_command",
    [ENTITY, ID, Opt(["--long", "-l"], "long", "Also show when each secret last changed.", flag=True), JSON, STORE],
)
GET = Command(
    "get", "Print a secret's value.",
    """Print a secret's value exactly (a newline is added only on a terminal).

    --version K prints an earlier value: 1 is the one before the current value,
    2 the one before that ('secretstore history' lists them).
    """,
    "secrets:get_command",
    [
        ENTITY, ID, NAME,
        Opt(["--version"], "version", "An earlier value: 0 is the current one, 1 the one before it.", metavar="K"),
        STORE,
    ],
)
DELETE = Command(
    "delete", "Delete a secret.",
    """Delete a secret. Its value joins its history: 'secretstore undelete' brings
    it back while the history lasts. --purge removes it and every earlier value
    (for a value that leaked; git history may still hold old encrypted copies).
    """,
    "secrets:delete_command",
    [
        ENTITY, ID, NAME,
        Opt(["--purge"], "purge", "Remove the name and every earlier value of it too.", flag=True),
        STORE,
    ],
)
SECRETS = Group(
    "secrets", "Gradient's spelling: secrets set|list|get|delete.",
    "Gradient-compatible spelling: 'secretstore secrets set|list|get|delete ...'.",
    [SET, LIST, GET, DELETE],
)

# --- running programs ------------------------------------------------------------------------

EXEC = Command(
    "exec", "Run a program with the merged secrets.",
    """Run CMD with the merged secrets in its environment ('run' is the same command).

    Precedence: project > cluster > team; the merged secrets override inherited
    variables of the same name (--no-override to keep the inherited ones), and
    --env-file, then --env, win over both. Without --mask, secretstore replaces
    itself with CMD (exit status, signals and terminal are CMD's own); 127 when
    CMD is not found, 126 when it cannot be executed.

    \b
      secretstore exec -- python train.py
      secretstore run --project prj42 --cluster gpu-a -- python train.py
      secretstore exec --env WANDB_API_KEY=secret:wandb_key --refs-only -- python train.py
      secretstore exec --env-file .env.example -- python train.py
      secretstore exec --dry-run --project prj42 -- true
    """,
    "exec:exec_command",
    [
        Arg("command", "CMD", "The program to run and its arguments (after --).", variadic=True),
        PROJECT, CLUSTER, NO_TEAM,
        Opt(
            ["--env"], "env",
            "Set VAR for this run (repeatable). VALUE 'secret:NAME' is replaced by the merged "
            "secret NAME (Gradient's reference syntax). Wins over a secret named VAR.",
            metavar="VAR=VALUE", repeatable=True,
        ),
        Opt(
            ["--env-file"], "env_file",
            "Add a dotenv file's variables for this run (values may be secret:NAME); --env wins over them.",
            metavar="FILE",
        ),
        Opt(
            ["--allow-var"], "allow_vars",
            "Inject this stored name although it changes which code runs (PATH, LD_PRELOAD, "
            "PYTHONPATH, ...: see docs/exec.md); repeatable; also allow_vars in .secretstore.toml.",
            metavar="NAME", repeatable=True,
        ),
        Opt(
            ["--refs-only"], "refs_only",
            "Inject only secrets referenced as secret:NAME (by --env, --env-file or inherited variables).",
            flag=True,
        ),
        Opt(["--no-override"], "no_override", "Let inherited environment variables win over secrets of the same name.", flag=True),
        STRICT,
        Opt(
            ["--mask"], "mask",
            "Run CMD as a child and replace secret values in its output with a marker (also SECRETSTORE_MASK=1).",
            flag=True,
        ),
        Opt(["--dry-run"], "dry_run", "Print which variables would be set, from which scope, overriding what; no values.", flag=True),
        Opt(["--json"], "as_json", "With --dry-run: print the explanation as JSON.", flag=True),
        STORE,
    ],
    aliases=["run"],
    interspersed=False,
)
EXPORT = Command(
    "export", "Print the merged secrets as dotenv, json, shell or k8s.",
    """Print the merged secrets (project > cluster > team) with their values.

    dotenv is read back exactly by python-dotenv with interpolate=False;
    shell is safe to eval; k8s is a Secret manifest.

    \b
      secretstore export --format dotenv > .env
      eval "$(secretstore export --format shell --project prj42)"
      secretstore export --format k8s --cluster gpu-a | kubectl apply -f -
    """,
    "formats:export_command",
    [
        PROJECT, CLUSTER, NO_TEAM,
        Opt(["--format", "-f"], "fmt", "Output format.", metavar="dotenv|json|shell|k8s",
            default="dotenv", choices=["dotenv", "json", "shell", "k8s"]),
        Opt(["--k8s-name"], "k8s_name", "metadata.name of the k8s Secret.", metavar="NAME", default="secretstore"),
        Opt(["--namespace"], "namespace", "metadata.namespace of the k8s Secret.", metavar="NS"),
        Opt(
            ["--allow-var"], "allow_vars",
            "Export this stored name although it changes which code runs (PATH, LD_PRELOAD, "
            "PYTHONPATH, ...: left out as exec leaves them out); repeatable; also allow_vars in .secretstore.toml.",
            metavar="NAME", repeatable=True,
        ),
        STRICT, STORE,
    ],
)
IMPORT = Command(
    "import", "Set every secret of a .env or JSON file.",
    """Set every secret of a .env file or a JSON object in one scope, all or nothing.

    Every name and value is checked before anything is written, and the scope
    file is replaced in one atomic write; values it already holds are left as
    they are. An empty value (KEY=) is refused unless --skip-empty leaves it out.

    \b
      secretstore import team .env
      secretstore import project --id prj42 secrets.json --dry-run
      vault-dump | secretstore import cluster --id gpu-a - --format json
    """,
    "formats:import_command",
    [
        ENTITY,
        Arg("file", "FILE", "A .env or JSON file; '-' reads stdin."),
        ID,
        Opt(["--format", "-f"], "fmt", "Input format (default: json for *.json or text starting with '{', else dotenv).",
            metavar="dotenv|json", choices=["dotenv", "json"]),
        Opt(["--dry-run"], "dry_run", "Say per name whether it is new, replaced or unchanged; write nothing.", flag=True),
        Opt(["--skip-empty"], "skip_empty", "Leave out entries with an empty value (and say how many).", flag=True),
        STORE,
    ],
)
INJECT = Command(
    "inject", "Fill {{ secret:NAME }} in a template.",
    """Replace {{ secret:NAME }} in a template with merged secret values.

    A reference to a missing secret is an error that lists every missing name;
    nothing is written then.

    \b
      secretstore inject -i config.yaml.tpl -o config.yaml
    """,
    "formats:inject_command",
    [
        Opt(["--in", "-i"], "template", "Template file ('-' for stdin). Required.", metavar="TEMPLATE"),
        Opt(["--out", "-o"], "output", "Write here (created 0600) instead of stdout.", metavar="OUT"),
        PROJECT, CLUSTER, NO_TEAM, STRICT, STORE,
    ],
)

# --- identities and sharing -----------------------------------------------------------------

INIT = Command(
    "init", "Create your identity.",
    """Create your identity (refuses to overwrite one) and print its public key.

    --team ID records the team id in the store (store.toml), so that
    Gradient's 'secrets ... team --id ID' is checked against it.
    """,
    "identity:init_command",
    [
        Opt(
            ["--passphrase"], "passphrase",
            "Protect the key with a passphrase (Argon2id): $SECRETSTORE_NEW_PASSPHRASE, else "
            "$SECRETSTORE_PASSPHRASE, else asked twice on a terminal.",
            flag=True,
        ),
        Opt(["--team"], "team", "Record this team id in the store.", metavar="ID"),
        STORE,
    ],
)
IDENTITY = Command(
    "identity", "Print your public key.",
    """Print your public key (ssk2...), the string others add with 'recipients add' or 'trust'.""",
    "identity:identity_command",
    [Opt(["--path"], "show_path", "Print where the identity file lives instead of the public key.", flag=True), JSON],
)
PASSPHRASE = Command(
    "passphrase", "Set, change or remove your passphrase.",
    """Set, change or remove the passphrase of your identity file (atomically).

    The current passphrase comes from a prompt or $SECRETSTORE_PASSPHRASE, the
    new one from a prompt (twice) or $SECRETSTORE_NEW_PASSPHRASE.
    """,
    "identity:passphrase_command",
    [Opt(["--remove"], "remove", "Store the key unprotected again.", flag=True)],
)

SCOPE_TEAM = Opt(["--team"], "team", "Only the team scope.", flag=True)
SCOPE_PROJECT = Opt(["--project"], "project", "Only this project's scope.", metavar="ID", complete="project_id")
SCOPE_CLUSTER = Opt(["--cluster"], "cluster", "Only this cluster's scope.", metavar="ID", complete="cluster_id")
PUBLIC_KEY = Arg("public_key", "PUBLIC_KEY", "A public key (ssk2...), as 'secretstore identity' prints it.")

RECIPIENTS = Group(
    "recipients", "Who can read the store or one scope.",
    "Who can read (and write) the store or one scope. Without --team/--project/--cluster a change is "
    "store-wide: every scope file you can open, and recipients.toml (who new scopes are sealed to, and "
    "whose writes the readers who trust you accept).",
    [
        Command(
            "list", "List public keys and labels.",
            "List public keys and labels (store-wide: recipients.toml; with a scope option: that file). No key needed.",
            "recipients:list_command",
            [SCOPE_TEAM, SCOPE_PROJECT, SCOPE_CLUSTER, JSON, STORE],
        ),
        Command(
            "add", "Let a public key read the store or one scope.",
            """Let PUBLIC_KEY read the store (every scope you can open, and new ones) or one scope.

            recipients.toml lists the key, endorsed by you: whoever trusts you then
            trusts its writes there (store-wide, or that scope only).

            \b
              secretstore recipients add "$(cat bob.pub)" --label bob
              secretstore recipients add ssk2... --label gpu-a-node --cluster gpu-a
            """,
            "recipients:add_command",
            [
                PUBLIC_KEY,
                Opt(["--label"], "label", "A human label, e.g. a person or a node.", metavar="NAME", default=""),
                SCOPE_TEAM, SCOPE_PROJECT, SCOPE_CLUSTER, STORE,
            ],
        ),
        Command(
            "remove", "Stop a public key reading the store or one scope.",
            "Stop PUBLIC_KEY reading the store or one scope: each file it could open gets a new data key "
            "and every value is re-encrypted (a removed reader may have kept the old key). Store-wide, you "
            "also stop trusting its writes. The secrets it could read are listed and marked 'rotate needed'.",
            "recipients:remove_command",
            [PUBLIC_KEY, SCOPE_TEAM, SCOPE_PROJECT, SCOPE_CLUSTER, STORE],
        ),
    ],
)
ROTATE = Command(
    "rotate", "Give a scope a new data key.",
    """Give a scope (or --all) a new data key and re-encrypt every value, history included.

    Crash-safe: each file is replaced atomically with its new key sealed inside
    it, so a kill at any point leaves each file old or new, never a mix.
    """,
    "recipients:rotate_command",
    [
        Arg("entity", "[ENTITY]", "team, project or cluster.", required=False, complete="entity"),
        ID,
        Opt(["--all"], "all_scopes", "Every scope in the store.", flag=True),
        STORE,
    ],
)
GIT = Group(
    "git", "Share the store as a git checkout.",
    "Share the store as a git checkout: 'git setup' once per clone; git calls 'git merge-driver'.",
    [
        Command(
            "setup", "Set up .gitattributes and the merge driver.",
            "Write .gitattributes in the store (creating the store directory in a fresh checkout) "
            "and register the merge driver in this clone's git config.",
            "git:setup_command",
            [STORE],
        ),
        Command(
            "merge-driver", "Merge a scope file three-way (git calls this).",
            "Merge a scope file three-way, entry by entry (git calls this; exit 1 marks a conflict).",
            "git:merge_driver_command",
            [
                Arg("base", "BASE", "git's %O: the common ancestor."),
                Arg("ours", "OURS", "git's %A: ours, replaced by the result."),
                Arg("theirs", "THEIRS", "git's %B: theirs."),
                Arg("path", "PATH", "git's %P: the file's path, for messages.", required=False),
            ],
            gradient=False,
        ),
    ],
)
GIT.commands.append(
    Command(
        "resolve", "Settle one secret a git merge left in conflict.",
        """Settle one secret a git merge left in conflict with one side's value; nothing else changes.

        The merge driver merges every other entry and leaves the file unmerged
        (every reader refuses it) until each conflicting name is resolved. --ours
        and --theirs are git's sides (stages 2 and 3), as 'git checkout' uses them.

        \b
          secretstore git resolve team --name WANDB_API_KEY --theirs
          git add team.toml && git commit
        """,
        "git:resolve_command",
        [
            ENTITY, ID, NAME,
            Opt(["--ours"], "ours", "Keep our side's value.", flag=True),
            Opt(["--theirs"], "theirs", "Keep their side's value.", flag=True),
            STORE,
        ],
    )
)

# --- trust: whose writes you accept ----------------------------------------------------------

TRUST = Command(
    "trust", "Trust a public key's writes to this store, or --list whom you trust.",
    """Trust PUBLIC_KEY to write this store (check it with its owner first), or --list whom you trust.

    Files signed by anyone you do not trust (yourself, keys you trust, and keys
    they added with 'recipients add') are refused. Your choice is kept outside
    the store, for this store only. A node without local state uses
    SECRETSTORE_TRUST instead.

    \b
      secretstore trust ssk2... --label alice
      secretstore trust --list
    """,
    "trust:trust_command",
    [
        Arg("public_key", "PUBLIC_KEY", "A writer's public key (ssk2...), as 'secretstore identity' prints it.",
            required=False),
        Opt(["--label"], "label", "A label for the key, e.g. a person.", metavar="NAME", default=""),
        Opt(["--list"], "show", "List the writers you trust for this store (and why).", flag=True),
        JSON, STORE,
    ],
)
UNTRUST = Command(
    "untrust", "Stop trusting a public key's writes to this store.",
    """Stop trusting PUBLIC_KEY's writes to this store, also when recipients.toml vouches for it.""",
    "trust:untrust_command",
    [Arg("public_key", "PUBLIC_KEY", "The key to stop trusting."), STORE],
)
ACCEPT_REVERT = Command(
    "accept-revert", "Accept an older version of a file you reverted on purpose.",
    """Accept an older version of a file that you reverted on purpose.

    A file older than a version you already read is refused as a rollback;
    after an intentional revert, accept it once with this command.

    \b
      git revert HEAD && secretstore accept-revert team
      secretstore accept-revert project --id prj42
      secretstore accept-revert recipients
    """,
    "trust:accept_revert_command",
    [
        Arg("entity", "ENTITY", "team, project, cluster, or recipients (recipients.toml).", complete="entity"),
        ID, STORE,
    ],
)
UPGRADE = Command(
    "upgrade", "Sign the store's 0.1 files as you (only a store you wrote with 0.1).",
    """Sign the store's 0.1 (unsigned) files that you can open, and its 0.1 recipients.toml, as you.

    Every other command refuses 0.1 files: they are unsigned, so anyone who
    can write the store could have made them. Run this only on a store you
    wrote yourself with secretstore 0.1: signing vouches for every name and
    value the files hold and every key recipients.toml lists. It first shows
    what it would sign (each file, its names and readers; never a value) and
    asks; without a terminal it signs only with --yes. Files you cannot open
    are skipped: one of their recipients must upgrade them.
    """,
    "trust:upgrade_command",
    [Opt(["--yes"], "yes", "Sign what it shows without asking (check the list first).", flag=True), STORE],
)

# --- history and audit -----------------------------------------------------------------------

HISTORY = Command(
    "history", "List a secret's versions (never their values).",
    """List a secret's versions, newest first, with when and by whom each was written; never a value.

    Version 0 is the current value (or its deletion), 1 the one before it, and
    so on; 'get --version K' prints one, 'rollback --to K' makes it current again.
    """,
    "history:history_command",
    [ENTITY, ID, NAME, JSON, STORE],
)
ROLLBACK = Command(
    "rollback", "Make an earlier value of a secret current again.",
    """Make version K of a secret its value again, as a new version.

    The value is sealed to today's recipients only: a removed recipient never
    regains a value through history.

    \b
      secretstore rollback team --name WANDB_API_KEY --to 1
    """,
    "history:rollback_command",
    [ENTITY, ID, NAME, Opt(["--to"], "to", "The version to restore (1: the one before the current).", metavar="K"),
     STORE],
)
UNDELETE = Command(
    "undelete", "Bring back a deleted secret.",
    """Bring back a deleted secret with the value it had, while its history lasts.""",
    "history:undelete_command",
    [ENTITY, ID, NAME, STORE],
)
AUDIT = Command(
    "audit", "Show who read or changed which secrets (never values).",
    """Show the local audit log of this store: every read and change, by whom, of which names; never values.

    The log is hash-chained: --verify checks that no line was removed or
    edited, and exits 1 when one was.

    \b
      secretstore audit --since 2026-12-01 --name WANDB_API_KEY
      secretstore audit --since 2h
      secretstore audit --verify
    """,
    "history:audit_command",
    [
        Opt(["--since"], "since", "Only entries from this UTC date or time on (2026-12-01, 2026-12-01T09:00), "
            "or this long ago (30m, 2h, 7d, 2w), or today or yesterday.",
            metavar="WHEN"),
        Opt(["--name"], "name", "Only entries about this secret.", metavar="NAME", complete="secret_name"),
        Opt(["--verify"], "verify", "Check the log's hash chain; exit 1 on a break.", flag=True),
        JSON, STORE,
    ],
)

# --- the web page --------------------------------------------------------------------------------

UI = Command(
    "ui", "Serve the Secrets page on 127.0.0.1.",
    """Serve the Secrets page on 127.0.0.1 until Ctrl-C (needs the ui extra).

    Prints one URL with a one-time login token on stdout and opens it in your
    browser. The page lists, creates and deletes secrets of every scope and
    shows the precedence, never a value. Ctrl-C stops it (exit 0).

    \b
      secretstore ui
      secretstore ui --no-browser --port 8765
    """,
    "ui:ui_command",
    [
        Opt(["--port"], "port", "Port on 127.0.0.1 (default 0: a free port chosen at random).", metavar="N",
            default="0"),
        Opt(["--no-browser"], "no_browser", "Only print the login URL; do not open a browser.", flag=True),
        STORE,
    ],
)

DOCTOR = Command(
    "doctor", "Check the identity, the store and its sharing.",
    """Check the identity, whom you trust and each file's writer, who each scope is sealed to, and the git setup.

    Needs no private key (and asks no passphrase) unless --verify is given.
    Exit 1 when something is broken, refused or unverified.
    """,
    "git:doctor_command",
    [Opt(["--verify"], "verify", "Also unlock every scope you can open and check its MAC.", flag=True), JSON, STORE],
)
WHERE = Command(
    "where", "Print the store, identity and cache in use.",
    """Print the store, the identity and the snapshot cache in use, one per line, with where each comes from.""",
    "info:where_command",
    [JSON, STORE],
)
SCOPES = Command(
    "scopes", "List team, projects and clusters with their counts.",
    """List team, every project and every cluster of the store with how many secrets each holds (no key needed).""",
    "info:scopes_command",
    [JSON, STORE],
)

ROOT = Group(
    "secretstore", "",
    "A local, offline-first secret store. Secrets live sealed with libsodium in "
    "per-scope files (team, cluster, project) and reach programs through "
    "'secretstore exec -- CMD'. Precedence: project > cluster > team.",
    [
        SET, LIST, GET, DELETE, SECRETS,
        EXEC, EXPORT, IMPORT, INJECT,
        INIT, IDENTITY, PASSPHRASE, RECIPIENTS, ROTATE, GIT, DOCTOR,
        TRUST, UNTRUST, ACCEPT_REVERT, UPGRADE,
        HISTORY, ROLLBACK, UNDELETE, AUDIT,
        WHERE, SCOPES, UI,
    ],
    params=[
        Opt(["--store"], "store", STORE.help, metavar="DIR"),
        Opt(["--version"], "version", "Print the version and exit.", flag=True),
    ],
)


def _with_gradient_options(group: Group) -> None:
    for item in group.commands:
        if isinstance(item, Group):
            _with_gradient_options(item)
        elif item.gradient and OPTIONS_FILE not in item.params:
            item.params.extend(GRADIENT_OPTIONS)


_with_gradient_options(ROOT)
