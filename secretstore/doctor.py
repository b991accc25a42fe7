"""``secretstore doctor``: the identity, the trust in each file's writer, and how the store is shared.

Without a private key it checks who may write the store's files, each file's
shape, its writer's signature and whether you trust that writer for that
scope, each file's version against the newest you have read, who each scope
is sealed to, names ``exec`` will not inject, leftovers of an interrupted
write, and the git merge driver. With ``verify`` it also opens every scope
you can and checks its MAC. Anything refused or unverified is an error: the
command then exits non-zero.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from secretstore import fsio
from secretstore import identity as identities
from secretstore.errors import NotRecipientError, SecretStoreError, UnmergedError, UnsignedFileError
from secretstore.keys import PublicKey
from secretstore.recipients import Roster
from secretstore.records import Record
from secretstore.scopefile import ScopeFile
from secretstore.store import Scope, Store
from secretstore.trust import ENV_TRUST, ENVIRONMENT, UNVERIFIED, short, state_path

OK, INFO, WARN, ERROR = "ok", "info", "warning", "error"
UNSIGNED = ("not signed (written by secretstore 0.1): every command refuses it, as anyone who can write the store "
            "could have made it; only if you wrote this store yourself with 0.1, run 'secretstore upgrade'")


class Finding(Record):
    """One line of the check-up (a Record, not a dataclass: dataclasses costs start-up)."""

    __slots__ = ("level", "message")
    level: str
    message: str

    def __init__(self, level: str, message: str) -> None:
        self.level = level
        self.message = message


def _identity_findings(store_root: str) -> tuple[list[Finding], PublicKey | None]:
    where = identities.ENV_KEY if os.environ.get(identities.ENV_KEY) else None
    try:
        key = identities.key_from_env()
        if key is None:
            from secretstore import paths

            where = paths.identity_path()
            if not os.path.lexists(where):
                return [Finding(WARN, f"identity: none at {where}: run 'secretstore init'")], None
            key = identities.read_key_file(where)
            identities.check_outside_store(where, store_root)
    except SecretStoreError as exc:
        return [Finding(ERROR, f"identity: {exc.message}")], None
    form = "passphrase-protected" if isinstance(key, identities.ProtectedKey) else "unprotected"
    public = key.public
    if not public.can_sign:
        return [Finding(WARN, f"identity: {where} ({form}) names only its 0.1 key {public.text}: "
                              "give its passphrase once (e.g. 'secretstore identity') to upgrade it")], None
    return [Finding(OK, f"identity: {where} ({form}), public key {public.text}")], public


def _may_be_in_git(root: str) -> bool:
    """False only when git could not see a checkout here: no ``.git`` in the store or any
    directory above it, and no ``GIT_DIR``/``GIT_WORK_TREE`` naming one. Spares most stores
    a ``git`` process (and the ``subprocess`` import): about a third of doctor's time."""
    if os.environ.get("GIT_DIR") or os.environ.get("GIT_WORK_TREE"):
        return True
    directory = os.path.realpath(root)
    while True:
        if os.path.lexists(os.path.join(directory, ".git")):
            return True
        parent = os.path.dirname(directory)
        if parent == directory:
            return False
        directory = parent


def _git_findings(root: str) -> list[Finding]:
    if not _may_be_in_git(root):
        return [Finding(INFO, "git: the store is not a git checkout")]
    import subprocess

    from secretstore import gitmerge

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, check=False)
        except FileNotFoundError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    if git("rev-parse", "--is-inside-work-tree") != "true":
        return [Finding(INFO, "git: the store is not a git checkout")]
    findings = []
    attributes = (fsio.read_file(os.path.join(root, ".gitattributes")) or b"").decode("utf-8", "replace")
    missing = [line for line in gitmerge.ATTRIBUTE_RULES if line not in attributes.splitlines()]
    driver = git("config", "--get", f"merge.{gitmerge.DRIVER_NAME}.driver")
    if missing or not driver:
        findings.append(Finding(WARN, "git: the merge driver is not set up here: run 'secretstore git setup'"))
    else:
        findings.append(Finding(OK, f"git: merge driver set up ({driver})"))
    return findings


def _problem(exc: SecretStoreError) -> str:
    """An error as a finding: its message, and its fix when it has one (``chmod go-w ...``)."""
    return f"{exc.message} ({exc.hint})" if exc.hint else exc.message


def _who(store: Store, me: PublicKey | None, key: str) -> str:
    label = store.trust(me).label_of(key)
    return f"{short(key)} ({label})" if label else short(key)


def diagnose(store: Store, verify: identities.Identity | None = None) -> list[Finding]:
    """Every finding, in a stable order. ``verify``: also unlock and MAC-check with this identity."""
    findings, me = _identity_findings(store.root)
    if verify is not None:
        me = verify.public
    if not os.path.isdir(store.root):
        findings.append(Finding(ERROR, f"store: no store at {store.root}"))
        return findings
    # A loose store directory fails every file in it the same way: say so once.
    reported: set[str] = set()

    def refused(where: str, exc: SecretStoreError) -> None:
        if _problem(exc) not in reported:  # the same error with the same fix
            findings.append(Finding(ERROR, f"{where}: {_problem(exc)}"))
            reported.add(_problem(exc))

    messages: list[str] = []
    store._emit = messages.append  # trust notices become findings, not stray lines
    try:
        trust = store.trust(me)
    except SecretStoreError as exc:
        findings.append(Finding(ERROR, f"trust: {_problem(exc)}"))
        return findings
    if trust.mode == UNVERIFIED:
        findings.append(Finding(ERROR, f"trust: writers are not verified: {identities.ENV_KEY} is set without "
                                       f"{ENV_TRUST} (set it to the public keys of the store's writers)"))
    elif trust.mode == ENVIRONMENT:
        findings.append(Finding(OK, f"trust: {len(trust.explicit())} writer key(s) from {ENV_TRUST}"))
    else:
        state = state_path(store.root)
        findings.append(Finding(OK, f"trust: {len(trust.explicit())} writer key(s) you trust, kept in {state}"))

    try:
        roster = trust.roster()
    except UnsignedFileError:
        findings.append(Finding(ERROR, f"recipients.toml: {UNSIGNED}"))
        roster = None
    except SecretStoreError as exc:
        refused("recipients.toml", exc)
        roster = None
    if roster is None:
        if not any(f.message.startswith("recipients.toml:") for f in findings):
            findings.append(Finding(INFO, "recipients.toml: none; new scope files are sealed to their writer only"))
    else:
        wide = [m for m in roster.members if m.store_wide]
        scoped = [m for m in roster.members if not m.store_wide]
        names = ", ".join(f"{short(m.public_key)} ({m.label})" if m.label else short(m.public_key) for m in wide)
        findings.append(Finding(OK, f"recipients.toml: version {roster.counter}, signed by "
                                    f"{_who(store, me, roster.signer)}; {len(wide)} store-wide member(s): {names}"
                                    + (f"; {len(scoped)} member(s) of some scopes only" if scoped else "")))

    scopes = store.scopes()
    findings.append(Finding(OK, f"store: {store.root}, {len(scopes)} scope file(s)"))
    for scope in scopes:
        findings.extend(_scope_findings(store, scope, me, verify, roster, refused))
    findings.extend(Finding(INFO, message) for message in messages)
    stale = []
    for directory, subdirs, files in os.walk(store.root):
        subdirs[:] = [name for name in subdirs if name != ".git"]
        stale += [
            os.path.relpath(os.path.join(directory, name), store.root)
            for name in files
            if fsio.is_stale_scope_temp(name)
        ]
    if stale:
        findings.append(Finding(WARN, f"store: leftover temp files of an interrupted write: {', '.join(sorted(stale))}"))
    findings.extend(_git_findings(store.root))
    return findings


def _damaged_history(file: ScopeFile) -> str | None:
    """The first name whose earlier versions (version 3: after the entries) do not match the
    length and digest its signed entry records; readers of current values never look there."""
    for entry in file.entries.values():
        if entry.chunk is not None:
            try:
                entry.chunk.raw()
            except SecretStoreError as exc:
                return f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return None


def _scope_findings(
    store: Store,
    scope: Scope,
    me: PublicKey | None,
    verify: identities.Identity | None,
    roster: Roster | None,
    refused: Callable[[str, SecretStoreError], None],
) -> list[Finding]:
    findings: list[Finding] = []
    try:
        file = store.load(scope)  # a version-3 file's history is read chunk by chunk, not held
        if file is None:
            return findings
        store.verify(scope, file, me)
    except UnmergedError as exc:
        return [Finding(ERROR, f"{scope}: {_problem(exc)}")]
    except UnsignedFileError:
        return [Finding(ERROR, f"{scope}: {UNSIGNED}")]
    except SecretStoreError as exc:
        refused(str(scope), exc)
        return findings
    seen = store.trust(me).state.counters.get(scope.relpath, 0)
    if file.unsealed:
        findings.append(Finding(WARN, f"{scope}: {scope.relpath} ends in {file.unsealed} byte(s) after its last seal "
                                "that no seal covers (a write cut short, or added by hand): every reader skips them, "
                                "and the next write of this scope removes them; do not commit them "
                                f"(in a git checkout, git checkout -- {scope.relpath} drops them now)"))
    damaged = _damaged_history(file)
    if damaged:
        findings.append(Finding(ERROR, damaged))
    newest = f", the newest you have read is {seen}" if seen and seen != file.counter else ""
    findings.append(Finding(OK, f"{scope}: version {file.counter}{newest}, signed by "
                                f"{_who(store, me, file.signer)}, whom you trust for it"))
    keys = {PublicKey.decode(s.public_key).box_key: s for s in file.recipients}
    # Expected: you, its writer and the roster's members for this scope. Without a roster a scope
    # is expected to be sealed to its writer only, so deleting recipients.toml must not silence this.
    # The file's own writer is always one of its recipients.
    expected = {me.box_key} if me is not None else set()
    expected.add(PublicKey.decode(file.signer).box_key)  # verified above: only signed files get here
    if roster is not None:
        expected |= {m.key.box_key for m in roster.members if m.covers(scope.tag)}
    extra = [s for key, s in keys.items() if key not in expected]
    removed = [s for s in extra if roster is not None and s.public_key in roster.revoked]
    for stanza in removed:  # a merge can keep one (git merges team.toml before the roster that removed it)
        shown = f"{stanza.public_key} ({stanza.label})" if stanza.label else stanza.public_key
        flag = "--team" if scope.scope_id is None else f"--{scope.entity} {scope.scope_id}"
        findings.append(Finding(WARN, f"{scope}: still sealed to {shown}, removed from this store: they can read "
                                      f"its values; run: secretstore recipients remove {stanza.public_key} {flag}"))
    extra = [s for s in extra if s not in removed]
    if extra:
        shown = ", ".join(f"{s.public_key} ({s.label})" if s.label else s.public_key for s in extra)
        against = "keys recipients.toml does not list for it" if roster is not None else "keys other than yours"
        findings.append(Finding(INFO, f"{scope}: also sealed to {against}: {shown}"))
    from secretstore.loadervars import is_loader_variable

    held = sorted(name for name in file.live_names() if is_loader_variable(name))
    if held:
        findings.append(Finding(WARN, f"{scope}: exec will not inject {', '.join(held)} (they change which code "
                                      "runs): allow a name with --allow-var NAME or allow_vars in .secretstore.toml"))
    # deleted names too: a deleted credential may still be valid at its source
    rotate = sorted(name if entry.current is not None else f"{name} (deleted)"
                    for name, entry in file.entries.items() if entry.rotate)
    if rotate:
        findings.append(Finding(WARN, f"{scope}: rotate needed (a removed recipient could read them): {', '.join(rotate)}"))
    if me is not None and me.box_key not in keys:
        findings.append(Finding(WARN, f"{scope}: you are not a recipient"))
    elif verify is not None:
        try:
            store.unlock_file(scope, file, verify)
        except NotRecipientError:
            pass
        except SecretStoreError as exc:
            findings.append(Finding(ERROR, f"{scope}: {exc.message}"))
    return findings
