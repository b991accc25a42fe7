"""``secretstore ui``: the local web page (Gradient's Secrets tab). The page is
``secretstore.ui``, an optional extra this module imports only when the command runs."""

from __future__ import annotations

from secretstore.cli.common import store_of
from secretstore.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.cli.spec import Args


def ui_command(args: Args) -> int:
    port_text = args.get("port") or "0"
    if not (isinstance(port_text, str) and port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise UsageError(f"--port takes a port number from 0 to 65535 (0: a free one), not {port_text!r}")
    from secretstore import ui

    return ui.serve(store_of(args).root, port=int(port_text), open_browser=not args.get("no_browser"))
