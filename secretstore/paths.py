"""Where the store, the identity and the snapshot cache live: flags > environment > user dirs.

Nothing else in the package reads these environment variables (their names live in ``env.py``).

The user dirs are platformdirs' (``user_data_dir``, ``user_config_dir``,
``user_cache_dir``, ``user_state_dir``). On Linux, in the common case (an absolute ``$XDG_*_HOME``
or an absolute ``$HOME``), the XDG rule is applied here directly, because
importing platformdirs pulls in pathlib and costs the ``exec`` fast path about
as much as starting Python; tests/test_paths.py checks that both give the same
directory. Anything else (macOS, Windows, Android, no usable ``$HOME``) asks
platformdirs.
"""

from __future__ import annotations

import os
import sys

from secretstore import env

APP_NAME = "secretstore"
ENV_STORE = env.STORE
ENV_IDENTITY = env.IDENTITY
ENV_CACHE_DIR = env.CACHE_DIR
ENV_CACHE = env.CACHE
ENV_STATE_DIR = env.STATE_DIR
IDENTITY_FILENAME = "identity"
SNAPSHOTS = "snapshots"
LISTINGS = "listings"

# kind -> (XDG variable, default under $HOME, platformdirs function)
_USER_DIRS = {
    "data": ("XDG_DATA_HOME", ".local/share", "user_data_dir"),
    "config": ("XDG_CONFIG_HOME", ".config", "user_config_dir"),
    "cache": ("XDG_CACHE_HOME", ".cache", "user_cache_dir"),
    "state": ("XDG_STATE_HOME", ".local/state", "user_state_dir"),
}


def _xdg_user_dir(kind: str) -> str | None:
    """The XDG user dir for ``kind``, or None when only platformdirs can tell."""
    if sys.platform != "linux" or os.environ.get("ANDROID_ROOT") or hasattr(sys, "getandroidapilevel"):
        return None
    variable, default, _function = _USER_DIRS[kind]
    base = os.environ.get(variable, "")
    if base.startswith("/"):
        return os.path.join(base, APP_NAME)
    if not os.environ.get("HOME", "").startswith("/"):
        return None
    return os.path.join(os.path.expanduser("~/" + default), APP_NAME)


def user_dir(kind: str) -> str:
    """platformdirs' user ``data``, ``config`` or ``cache`` dir for secretstore (not created)."""
    found = _xdg_user_dir(kind)
    if found is not None:
        return found
    import platformdirs

    function = getattr(platformdirs, _USER_DIRS[kind][2])
    return str(function(APP_NAME, appauthor=False))


def _chosen(variable: str) -> str | None:
    chosen = os.environ.get(variable)
    return os.path.abspath(os.path.expanduser(chosen)) if chosen else None


def store_dir(flag: str | None = None) -> str:
    """The store directory: ``--store`` > ``$SECRETSTORE_DIR`` > the user data dir."""
    if flag:
        return os.path.abspath(os.path.expanduser(flag))
    return _chosen(ENV_STORE) or user_dir("data")


def identity_path() -> str:
    """The identity file: ``$SECRETSTORE_IDENTITY`` > the user config dir."""
    return _chosen(ENV_IDENTITY) or os.path.join(user_dir("config"), IDENTITY_FILENAME)


def state_dir() -> str:
    """Where this user's per-store trust state lives: ``$SECRETSTORE_STATE_DIR`` > the user state dir.

    Not the config dir: the state names local paths and records the newest
    version of each file read here, which must not follow the user to another
    machine with their dotfiles.
    """
    return _chosen(ENV_STATE_DIR) or user_dir("state")


def snapshot_dir() -> str | None:
    """Where exec's encrypted snapshots live (``get`` reads them too), or None when
    ``$SECRETSTORE_CACHE`` is off.

    ``$SECRETSTORE_CACHE_DIR`` > the user cache dir, plus ``snapshots``.
    """
    return _cache_subdir(SNAPSHOTS)


def _cache_subdir(name: str) -> str | None:
    if env.is_off(os.environ.get(ENV_CACHE)):
        return None
    return os.path.join(_chosen(ENV_CACHE_DIR) or user_dir("cache"), name)


def listing_dir() -> str | None:
    """Where ``list`` keeps the rows it verified (``snapshot.Listings``), or None when
    ``$SECRETSTORE_CACHE`` is off: beside the snapshots, under ``listings``."""
    return _cache_subdir(LISTINGS)


def own_roots() -> set[str]:
    """The directories that hold only secretstore's own files: created 0700 like everything
    under them, even when only a file deep below is being written (the cache and state roots:
    the store and identity directories are created 0700 as they are)."""
    roots = {user_dir(kind) for kind in ("cache", "state")}
    for variable in (ENV_CACHE_DIR, ENV_STATE_DIR):
        chosen = _chosen(variable)
        if chosen:
            roots.add(chosen)
    return roots

