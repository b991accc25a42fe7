"""``secretstore doctor``: what the identity, the store and its sharing look like, without a key.

It makes changes to who can read what visible: keys a scope is sealed to that
the store's ``recipients.toml`` does not list, scopes you cannot open, and
whether the git merge driver is set up. With ``verify`` it also unlocks every
scope you can open and checks its MAC (a bad hand merge shows up here).
"""

from __future__ import annotations

import os

from secretstore import fsio
from secretstore import identity as identities
from secretstore.errors import NotRecipientError, SecretStoreError
from secretstore.records import Record
from secretstore.store import Store

OK, INFO, WARN, ERROR = "ok", "info", "warning", "error"


class Finding(Record):
    """One line of the check-up (a Record, not a dataclass: dataclasses costs start-up)."""

    __slots__ = ("level", "message")
    level: str
    message: str

    def __init__(self, level: str, message: str) -> None:
        self.level = level
        self.message = message


def _identity_findings(store_root: str) -> tuple[list[Finding], str | None]:
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
    return [Finding(OK, f"identity: {where} ({form}), public key {key.public_text}")], key.public_text


def _git_findings(root: str) -> list[Finding]:
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


def diagnose(store: Store, verify: identities.Identity | None = None) -> list[Finding]:
    """Every finding, in a stable order. ``verify``: also unlock and MAC-check with this identity."""
    findings, mine = _identity_findings(store.root)
    if verify is not None:
        mine = verify.public_text
    if not os.path.isdir(store.root):
        findings.append(Finding(INFO, f"store: {store.root} does not exist yet"))
        return findings
    # A loose store directory fails every file in it the same way: say so once.
    reported: set[str] = set()
    try:
        listed = store.store_recipients()
    except SecretStoreError as exc:
        findings.append(Finding(ERROR, f"recipients.toml: {_problem(exc)}"))
        reported.add(_problem(exc))
        listed = None
    if listed is None:
        findings.append(Finding(INFO, "recipients.toml: none; new scope files are sealed to their writer only"))
    else:
        names = ", ".join(f"{r.text} ({r.label})" if r.label else r.text for r in listed)
        findings.append(Finding(OK, f"recipients.toml: {len(listed)} key(s): {names}"))
    listed_keys = {r.text for r in listed or []}
    scopes = store.scopes()
    findings.append(Finding(OK, f"store: {store.root}, {len(scopes)} scope file(s)"))
    for scope in scopes:
        try:
            file = store.load(scope)
        except SecretStoreError as exc:
            if _problem(exc) not in reported:  # the same error with the same fix
                findings.append(Finding(ERROR, f"{scope}: {_problem(exc)}"))
                reported.add(_problem(exc))
            continue
        if file is None:
            continue
        keys = {s.public_key: s.label for s in file.recipients}
        # Without recipients.toml a scope is expected to be sealed to its writer only, so
        # deleting that file must not silence this report.
        expected = listed_keys if listed is not None else {mine} - {None}
        extra = sorted(key for key in keys if key not in expected)
        if extra:
            shown = ", ".join(f"{k} ({keys[k]})" if keys[k] else k for k in extra)
            against = "keys not in recipients.toml" if listed is not None else "keys other than yours"
            findings.append(Finding(INFO, f"{scope}: also sealed to {against}: {shown}"))
        if mine is not None and mine not in keys:
            findings.append(Finding(WARN, f"{scope}: you are not a recipient"))
        elif verify is not None:
            try:
                store.unlock_file(scope, file, verify)
            except NotRecipientError:
                pass
            except SecretStoreError as exc:
                findings.append(Finding(ERROR, f"{scope}: {exc.message}"))
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
