"""The only code that writes or locks a file.

``atomic_write`` gives readers either the old or the new bytes, never a mix:
temp file in the same directory (created 0600, never chmod-ed afterwards),
fsync, ``os.replace``, fsync of the directory. ``locked`` serialises writers
with ``flock`` on the store directory itself, so no lock file litters a store
that is a git checkout. Readers take no lock.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from secretstore.errors import SecretStoreError

TEMP_MARKER = ".tmp-"
DIR_MODE = 0o700
FILE_MODE = 0o600

# Crash-consistency tests set this to kill the writer at a named point.
_CRASH_ENV = "SECRETSTORE_TEST_CRASH_AT"
# TEST ONLY: "1" makes ``locked`` a no-op, so tests/test_concurrency.py can show
# that its check fails without the lock (the negative control). Never set it.
_NO_LOCK_ENV = "SECRETSTORE_TEST_NO_LOCK"


def _crash_point(name: str) -> None:
    if os.environ.get(_CRASH_ENV) == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def ensure_dir(path: str, mode: int = DIR_MODE) -> None:
    """Create ``path`` 0700 from creation; missing parents get the usual mode.

    Only our own directories are private: creating ``~/.local/share`` 0700 for
    a first store would surprise every other program that uses it.
    """
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent and parent != path:
        ensure_dir(parent, 0o777)  # the umask applies, as for mkdir -p
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not os.path.isdir(path):
            raise SecretStoreError(f"{path} exists and is not a directory") from None
    except OSError as exc:
        raise SecretStoreError(f"cannot create directory {path}: {exc.strerror}") from None


def temp_path_for(path: str) -> str:
    directory, base = os.path.split(path)
    return os.path.join(directory, f".{base}{TEMP_MARKER}{os.urandom(6).hex()}")


def is_temp_name(filename: str) -> bool:
    return filename.startswith(".") and TEMP_MARKER in filename


def is_stale_scope_temp(filename: str) -> bool:
    """A temp file of a scope or recipients file (``.NAME.toml.tmp-HEX``), and no one else's."""
    return filename.startswith(".") and f".toml{TEMP_MARKER}" in filename


def atomic_write(path: str, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file."""
    directory = os.path.dirname(path) or "."
    ensure_dir(directory)
    tmp = temp_path_for(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except OSError as exc:
        raise SecretStoreError(f"cannot write {path}: {exc.strerror}") from None
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            _crash_point("after-temp-write")
            os.fsync(fd)
        finally:
            os.close(fd)
        _crash_point("after-fsync")
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise SecretStoreError(f"cannot write {path}: {exc.strerror}") from None
        raise
    _crash_point("after-replace")
    fsync_dir(directory)


def create_exclusive(path: str, data: bytes, mode: int = FILE_MODE) -> bool:
    """Write ``path`` complete or not at all, only if it does not exist yet.

    The bytes go to a temp file first and are then hard-linked into place, so a
    concurrent reader never sees a partial file and two racing creators cannot
    overwrite each other. Returns False when ``path`` already existed.
    """
    directory = os.path.dirname(path) or "."
    ensure_dir(directory)
    tmp = temp_path_for(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    except OSError as exc:
        raise SecretStoreError(f"cannot create {path}: {exc.strerror}") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    fsync_dir(directory)
    return True


def fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename is still atomic
    finally:
        os.close(fd)


def remove_file(path: str) -> None:
    """Delete ``path`` durably; a missing file is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SecretStoreError(f"cannot remove {path}: {exc.strerror}") from None
    fsync_dir(os.path.dirname(path) or ".")


def clean_stale_temps(directory: str) -> int:
    """Remove scope-file temp files left by a writer that died. Call only while holding the lock.

    Only ``.*.toml.tmp-*``: temp files of writers that take no lock (git setup
    writing .gitattributes, an export written into the store) are left alone.
    """
    removed = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for filename in names:
        if is_stale_scope_temp(filename):
            try:
                os.unlink(os.path.join(directory, filename))
                removed += 1
            except OSError:
                pass
    return removed


@contextmanager
def locked(directory: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` (created if missing) for the block."""
    import fcntl

    ensure_dir(directory)
    if os.environ.get(_NO_LOCK_ENV) == "1":
        yield
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def read_file(path: str) -> bytes | None:
    """The bytes of the regular file ``path``, or None when it does not exist.

    A symlink or a special file (a FIFO, a device) is refused: a store shared
    through git is written by others, and must not make us read elsewhere, hang
    on a FIFO or read /dev/zero forever.
    """
    import errno
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SecretStoreError(f"{path} is a symlink; refusing to follow it") from None
        raise SecretStoreError(f"cannot read {path}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SecretStoreError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise SecretStoreError(f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
