"""``secretstore ui``: the local web page (Gradient's Secrets tab). Parsing only: the page
is ``secretstore.ui``, an optional extra this module never imports at load time."""

from __future__ import annotations

from typing import Annotated

import typer

from secretstore.cli import app
from secretstore.cli.common import StoreOpt, open_store


@app.command("ui")
def ui_command(
    ctx: typer.Context,
    port: Annotated[
        int,
        typer.Option(
            "--port",
            metavar="N",
            min=0,
            max=65535,
            help="Port on 127.0.0.1 to serve on (default 0: a free port chosen at random).",
        ),
    ] = 0,
    no_browser: Annotated[
        bool,
        typer.Option("--no-browser", help="Only print the login URL; do not open a browser."),
    ] = False,
    store: StoreOpt = None,
) -> int:
    """Serve the Secrets page on 127.0.0.1 until Ctrl-C (needs the ui extra).

    Prints one URL with a one-time login token on stdout and opens it in your
    browser. The page lists, creates and deletes secrets of every scope and
    shows the precedence, never a value. Ctrl-C stops it (exit 0).

    \b
      secretstore ui
      secretstore ui --no-browser --port 8765
    """
    from secretstore import ui

    code = ui.serve(open_store(ctx, store).root, port=port, open_browser=not no_browser)
    if code:
        raise typer.Exit(code)
    return 0
