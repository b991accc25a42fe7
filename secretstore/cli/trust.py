"""trust / untrust / accept-revert / upgrade: whose writes to the store you accept."""

from __future__ import annotations

from secretstore.cli.common import (
    identity_for_read,
    print_json,
    prompt_line,
    scope_of,
    stdin_is_tty,
    store_of,
)
from secretstore.console import notice, print_lines, print_table, warning_line
from secretstore.errors import NotFoundError, SecretStoreError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.cli.spec import Args
    from secretstore.store import Store, UpgradePlan
    from secretstore.trust import Trust


def trust_command(args: Args) -> None:
    from secretstore.keys import PublicKey
    from secretstore.layers import require_store
    from secretstore.recipients import check_label
    from secretstore.store import caller_public_key

    store = store_of(args)
    require_store(store)
    trust = store.trust(caller_public_key())
    public_key = args.get("public_key")
    if args.get("show") or public_key is None:
        if public_key is not None:
            raise UsageError("give PUBLIC_KEY or --list, not both")
        _list(store, trust, bool(args.get("as_json")))
        return
    key = PublicKey.parse(str(public_key), check_label(str(args.get("label") or "")))
    added = trust.trust_key(key)
    if added:
        from secretstore.commands.secrets import record

        record(store, "trust", None, [], detail=f"trusted {key.text}")
    shown = f"{key.text} ({key.label})" if key.label else key.text
    print_lines([f"{'Trusted' if added else 'Already trusted'} {shown} as a writer of {store.root}"])


def _list(store: Store, trust: Trust, as_json: bool) -> None:
    from secretstore.recipients import describe_tag

    rows: list[dict[str, object]] = []
    explicit = trust.explicit()
    for key, label in explicit.items():
        info = trust.state.writers.get(key, {})
        how = "you" if label == "you" else info.get("how", "")
        rows.append({"public_key": key, "label": "" if label == "you" else label or store.label_of(key),
                     "trusted": how or "explicitly", "scopes": None})
    try:
        store_wide, scoped, revoked = trust._derive()
    except SecretStoreError as exc:  # a roster this reader does not accept: say why, list the rest
        warning_line(f"recipients.toml vouches for nobody here: {exc.message}")
        store_wide, scoped, revoked = set(), {}, set()
    for key in sorted(store_wide - set(explicit)):
        rows.append({"public_key": key, "label": store.label_of(key), "trusted": "recipients.toml",
                     "scopes": None})
    for key, tags in sorted(scoped.items()):
        if key not in explicit:
            rows.append({"public_key": key, "label": store.label_of(key), "trusted": "recipients.toml",
                         "scopes": sorted(tags)})
    for key in sorted((set(trust.state.revoked) | revoked) - set(explicit)):
        rows.append({"public_key": key, "label": trust.label_of(key), "trusted": "no (removed)",
                     "scopes": None})
    if as_json:
        print_json(rows)
        return
    if not rows:
        print_lines(["No data found"])
        return
    print_table(
        ["Public key", "Label", "Trusted", "Scopes"],
        [[str(r["public_key"]), str(r["label"]), str(r["trusted"]),
          ", ".join(describe_tag(t) for t in r["scopes"]) if isinstance(r["scopes"], list) else "all"]
         for r in rows],
    )


def untrust_command(args: Args) -> None:
    from secretstore.keys import PublicKey
    from secretstore.layers import require_store
    from secretstore.store import caller_public_key

    store = store_of(args)
    require_store(store)
    key = PublicKey.parse(str(args.get("public_key")))
    was = store.trust(caller_public_key()).untrust_key(key)
    from secretstore.commands.secrets import record

    record(store, "untrust", None, [], detail=f"untrusted {key.text}")
    print_lines([f"{'Stopped trusting' if was else 'Now refusing'} {key.text} as a writer of {store.root}"])


def accept_revert_command(args: Args) -> None:
    from secretstore.layers import require_store
    from secretstore.store import caller_public_key

    store = store_of(args)
    require_store(store)
    me = caller_public_key()
    trust = store.trust(me)
    if args.get("entity") == "recipients":
        if args.get("scope_id"):
            raise UsageError("recipients takes no --id")
        data = store.read_roster_bytes()
        if data is None:
            raise NotFoundError("this store has no recipients.toml")
        relpath, counter = "recipients.toml", trust.accept_roster(data, "recipients.toml", check_counter=False).counter
    else:
        scope = scope_of(args, store)
        file = store.load(scope)
        if file is None:
            raise NotFoundError(f"{scope} has no secrets file")
        store.verify(scope, file, me, check_counter=False)
        relpath, counter = scope.relpath, file.counter
    seen = trust.state.counters.get(relpath, 0)
    if counter >= seen:
        print_lines([f"{relpath} is version {counter}; nothing to accept (the newest you have read is {seen})"])
        return
    trust.accept_revert(relpath, counter)
    from secretstore.commands.secrets import record

    record(store, "accept-revert", None if relpath == "recipients.toml" else scope, [],
           detail=f"{relpath} back to version {counter} (had read {seen})")
    print_lines([f"Accepted {relpath} at version {counter} (you had read version {seen})"])


SHOWN_NAMES = 20  # names listed per file before "... and N more"


def upgrade_command(args: Args) -> None:
    """Show what would be signed, ask (or take --yes), then sign exactly that."""
    from secretstore.layers import require_store

    store = store_of(args)
    require_store(store)
    identity = identity_for_read()
    plan = store.upgrade_plan(identity)
    for scope, message in plan.skipped:
        warning_line(f"skipped {scope}: {message}")
    if plan.empty:
        print_lines([f"Nothing to sign: no secretstore 0.1 file you can open; already signed: {len(plan.unchanged)}"])
        return
    print_lines(_describe_plan(store.root, identity.public_text, plan))
    if not args.get("yes"):
        if not stdin_is_tty():
            raise UsageError(
                "refusing to sign without confirmation (stdin is not a terminal): nothing was signed",
                hint="check the list above; only if you wrote this store yourself with secretstore 0.1, "
                "run: secretstore upgrade --yes",
            )
        try:
            answer = prompt_line("Sign them as you? [y/N]")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            raise SecretStoreError("not confirmed: nothing was signed")
    report = store.upgrade(identity, plan)
    if report.roster:
        notice("recipients.toml is signed now: you vouch for every key it lists")
    from secretstore.commands.secrets import record_scopes

    record_scopes(store, "upgrade", [(scope, []) for scope in report.changed], detail="signed as you")
    signed = ", ".join(str(s) for s in report.changed) or "none"
    print_lines([f"Signed: {signed}; already signed: {len(report.unchanged)}"])


def _describe_plan(root: str, me: str, plan: UpgradePlan) -> list[str]:
    """What upgrade would sign: each file with its names (never a value) and readers, and the roster's keys."""
    lines = [f"secretstore upgrade would sign these secretstore 0.1 (unsigned) files of the store {root} "
             f"as you ({me}):"]
    for item in plan.files:
        count = f"{len(item.names)} secret{'' if len(item.names) == 1 else 's'}"
        if item.deleted:
            count += f" and {item.deleted} deleted"
        shown = ", ".join(item.names[:SHOWN_NAMES])
        if len(item.names) > SHOWN_NAMES:
            shown += f", ... and {len(item.names) - SHOWN_NAMES} more"
        lines.append(f"  {item.scope.relpath} ({item.scope}): {count}{': ' + shown if shown else ''}")
        lines.append(f"    sealed to: {', '.join(item.recipients)}")
    if plan.roster is not None:
        members = ", ".join(f"{m.public_key} ({m.label})" if m.label else m.public_key for m in plan.roster)
        lines.append(f"  recipients.toml: {len(plan.roster)} key(s), each becoming a store-wide member you vouch "
                     f"for (sealed into every new scope file; an ssk2 key may write every scope): {members or 'none'}")
    lines.append("Signing vouches for every name, value and key above, as if you had written them. Anyone who can "
                 "write the store could have made these files: sign only a store you wrote yourself with "
                 "secretstore 0.1.")
    return lines
