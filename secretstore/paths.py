"""Where the store and the identity live: flags > environment > platformdirs.

Nothing else in the package reads these environment variables.
platformdirs is imported only when no override is given, because it pulls in
pathlib, which the ``exec`` fast path would otherwise pay for.
"""

from __future__ import annotations

import os

APP_NAME = "secretstore"
ENV_STORE = "SECRETSTORE_DIR"
ENV_IDENTITY = "SECRETSTORE_IDENTITY"
IDENTITY_FILENAME = "identity"


def store_dir(flag: str | None = None) -> str:
    """The store directory: ``--store`` > ``$SECRETSTORE_DIR`` > the user data dir."""
    chosen = flag or os.environ.get(ENV_STORE)
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    import platformdirs

    return str(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def identity_path() -> str:
    """The identity file: ``$SECRETSTORE_IDENTITY`` > the user config dir."""
    chosen = os.environ.get(ENV_IDENTITY)
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    import platformdirs

    config = platformdirs.user_config_dir(APP_NAME, appauthor=False)
    return os.path.join(str(config), IDENTITY_FILENAME)
