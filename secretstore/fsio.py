"""The only code that writes or locks a file.

``atomic_write`` gives readers either the old or the new bytes, never a mix:
temp file in the same directory (created 0600, never chmod-ed afterwards),
fsync, ``os.replace``, fsync of the directory. ``locked`` serialises writers
with ``flock`` on the store directory itself, so no lock file litters a store
that is a git checkout. Readers take no lock. ``read_store_file`` refuses a
store file that anyone but you could have written (``check_writers``).
"""

from __future__ import annotations

import os

from secretstore import limits
from secretstore.errors import LockTimeoutError, SecretStoreError, StoreFormatError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from typing import BinaryIO, ClassVar

TEMP_MARKER = ".tmp-"
DIR_MODE = 0o700
FILE_MODE = 0o600

# How long a writer waits for the store's lock before it gives up (seconds).
LOCK_TIMEOUT_ENV = "SECRETSTORE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 10.0

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
    """Create ``path`` 0700 from creation; missing parents get the usual mode, except
    secretstore's own roots (``paths.own_roots``: ``~/.cache/secretstore``), which are 0700 too.

    Only our own directories are private: creating ``~/.local/share`` 0700 for
    a first store would surprise every other program that uses it.
    """
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent and parent != path and not os.path.isdir(parent):
        from secretstore import paths

        ensure_dir(parent, DIR_MODE if parent in paths.own_roots() else 0o777)  # else the umask applies, as for mkdir -p
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


def write_error(path: str, exc: OSError) -> SecretStoreError:
    """Why ``path`` could not be replaced, with what to do about a full or read-only disk."""
    import errno

    hint = None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "the disk (or your quota) is full: free some space and run the command again; nothing was changed"
    elif exc.errno == errno.EROFS:
        hint = "the file system is mounted read-only; nothing was changed"
    return SecretStoreError(f"cannot write {path}: {exc.strerror}", hint=hint)


def atomic_write(path: str, data: Data, mode: int = FILE_MODE, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, and no plaintext.

    The bytes go to an unnamed file in the same directory (``O_TMPFILE``, where
    the system has it), which is linked into place only once complete: a new
    ``path`` appears whole; an existing one is replaced by linking a temp name
    and renaming it over, so a writer killed between those two calls is the
    only one to leave a temp file behind, and the next write of ``path``
    removes it (``remove_leftover_temps``). Where there is no ``O_TMPFILE``, a
    named temp file is written and renamed as before. ``durable=False`` skips
    both fsyncs: for a cache, where losing the new file in a power cut costs
    nothing but a rebuild. ``data`` may be a list of parts, written one after the
    other (a scope file's history is not copied to be written).
    """
    directory = os.path.dirname(path) or "."
    ensure_dir(directory)
    remove_leftover_temps(path)
    try:
        anonymous = _open_anonymous(directory, mode)
    except OSError as exc:
        raise write_error(path, exc) from None
    if anonymous is None or not _write_anonymous_then_link(anonymous, path, data, durable):
        _write_named_then_rename(path, data, mode, durable)
    _crash_point("after-replace")
    if durable:
        fsync_dir(directory)


def _pwrite(fd: int, data: memoryview, offset: int) -> int:
    return os.pwrite(fd, data, offset)


def append_at(path: str, data: bytes, offset: int, read: OpenFile | None) -> bool:
    """Write ``data`` at ``offset`` of the existing file ``path`` and fsync it: a version-4 scope
    file's new section (FORMAT.md, "Scope file, version 4"), under the store lock.

    Anything after ``offset`` (a section a crash cut short, which readers already ignore) is
    cut off first. False, with nothing written, when ``path`` is not the file ``read`` has open
    (replaced since it was read), has another link (a hard-linked copy would change too), or
    is shorter than ``offset``: the caller writes the file again instead. A failed write is
    undone (the file is cut back to ``offset``) before the error is raised, so a reader sees
    the old file or the new one, and a crash leaves at most an unsealed tail that readers skip.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        status = os.fstat(fd)
        if read is not None:
            before = os.fstat(read.fd)
            if (before.st_dev, before.st_ino) != (status.st_dev, status.st_ino):
                return False
        if status.st_nlink != 1 or status.st_size < offset:
            return False
        try:
            if status.st_size > offset:
                os.ftruncate(fd, offset)
            written = 0
            view = memoryview(data)
            if os.environ.get(_CRASH_ENV) == "append-partial":  # tests: a writer killed mid-section
                os.pwrite(fd, view[: len(data) // 2], offset)
                _crash_point("append-partial")
            while written < len(data):
                written += _pwrite(fd, view[written:], offset + written)
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, offset)
                os.fsync(fd)
            except OSError:
                pass  # the unsealed tail left is skipped by readers and cut off by the next writer
            raise write_error(path, exc) from None
        _crash_point("after-append")
        return True
    finally:
        os.close(fd)


class OpenFile:
    """A store file kept open after its start was read (``read_store_file(keep=...)``): the rest
    is read (``pread``) or copied by the kernel (``FileRange``) only when needed, never held.

    The descriptor is closed by ``close`` or when the object goes (``__del__``; no ``weakref``
    import, which would cost every write a millisecond).
    """

    __slots__ = ("fd", "size", "path")

    # At most this many at once: a command that holds many scopes (rotate, recipients add
    # across a store of a thousand projects) reads the rest whole, as before, rather than
    # run out of descriptors.
    MAX_OPEN: ClassVar[int] = 64
    _open: ClassVar[set[int]] = set()

    def __init__(self, fd: int, size: int, path: str) -> None:
        self.fd = fd
        self.size = size  # as fstat gave it when the file was checked
        self.path = path
        OpenFile._open.add(fd)

    @classmethod
    def can_keep(cls) -> bool:
        return len(cls._open) < cls.MAX_OPEN

    def __repr__(self) -> str:
        return f"OpenFile({self.path!r}, {self.size} bytes)"

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            OpenFile._open.discard(fd)
            os.close(fd)

    def __del__(self) -> None:
        try:
            self.close()
        except OSError:  # nothing to report to from a finaliser
            pass

    def pread(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``; SecretStoreError if the file is shorter now."""
        chunks = []
        try:
            while length > 0 and (chunk := os.pread(self.fd, min(length, 1 << 20), offset)):
                chunks.append(chunk)
                offset += len(chunk)
                length -= len(chunk)
        except OSError as exc:
            raise SecretStoreError(f"cannot read {self.path}: {exc.strerror}") from None
        if length > 0:
            raise _changed_while_read(self.path)
        return b"".join(chunks)

    def range(self, offset: int, length: int) -> FileRange:
        return FileRange(self, offset, length)


class FileRange:
    """``length`` bytes of an ``OpenFile`` at ``offset``, as a part of what ``atomic_write``
    writes: copied file to file by the kernel (``copy_file_range``), not through memory."""

    __slots__ = ("file", "offset", "length")

    def __init__(self, file: OpenFile, offset: int, length: int) -> None:
        self.file = file
        self.offset = offset
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"FileRange({self.file.path!r}, {self.offset}, {self.length})"


def _changed_while_read(path: str) -> SecretStoreError:
    return SecretStoreError(f"{path} was cut short while it was read; run the command again",
                            hint="another program is writing the store's files in place")


Part = bytes | memoryview | FileRange
Data = bytes | list[Part]  # the bytes, or the parts that make them


def join(parts: list[Part]) -> bytes:
    """The bytes ``parts`` make (a ``FileRange`` read from its file)."""
    return b"".join(part.file.pread(part.offset, part.length) if isinstance(part, FileRange) else part
                    for part in parts)


def _write_all(fd: int, data: Data) -> None:
    for part in data if isinstance(data, list) else [data]:
        if isinstance(part, FileRange):
            _copy_range(part, fd)
        else:
            _write_bytes(fd, part)


def _write_bytes(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _copy_range(part: FileRange, fd: int) -> None:
    """Copy ``part`` to ``fd`` at its position: in the kernel where it can, else 1 MiB at a time."""
    offset, left = part.offset, part.length
    copy = getattr(os, "copy_file_range", None)
    while left > 0 and copy is not None:
        try:
            done = copy(part.file.fd, fd, left, offset)
        except OSError:  # across file systems on old kernels, or not supported here: copy through memory
            break
        if done == 0:
            raise _changed_while_read(part.file.path)
        offset += done
        left -= done
    while left > 0:
        chunk = part.file.pread(offset, min(left, 1 << 20))
        _write_bytes(fd, chunk)
        offset += len(chunk)
        left -= len(chunk)


def _write_anonymous_then_link(fd: int, path: str, data: Data, durable: bool) -> bool:
    """Write ``data`` to the unnamed file ``fd`` and put it at ``path``; False if it cannot be linked.

    Linking through ``/proc/self/fd`` can be refused where ``/proc`` is
    restricted (some sandboxes): the caller then writes a named temp file.
    """
    directory, base = os.path.split(path)
    tmp = None
    try:
        dir_fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _write_all(fd, data)
            _crash_point("after-temp-write")
            if durable:
                os.fsync(fd)
            _crash_point("after-fsync")
            try:
                _link_anonymous(fd, dir_fd, base)  # a new file appears complete
                return True
            except FileExistsError:
                pass
            except OSError:
                return False
            name = os.path.basename(temp_path_for(path))
            try:
                _link_anonymous(fd, dir_fd, name)
            except OSError:
                return False
            tmp = os.path.join(directory, name)
            _crash_point("after-link")  # the one point where a crash leaves a file
            os.replace(tmp, path)
            return True
        finally:
            os.close(dir_fd)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise
    finally:
        os.close(fd)


def _write_named_then_rename(path: str, data: Data, mode: int, durable: bool) -> None:
    tmp = temp_path_for(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        try:
            _write_all(fd, data)
            _crash_point("after-temp-write")
            if durable:
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
            raise write_error(path, exc) from None
        raise


# Whether /proc/self/fd is there to link an O_TMPFILE file by (checked once).
_proc_fd: list[bool] = []


def _open_anonymous(directory: str, mode: int) -> int | None:
    """An unnamed file in ``directory`` opened for writing, or None where there is none to be had.

    A crash before it is linked leaves nothing: the kernel frees it with the
    last descriptor. None when the system has no ``O_TMPFILE``, no ``/proc``
    to link it by, or the file system does not support it.
    """
    flag = getattr(os, "O_TMPFILE", 0)
    if not _proc_fd:
        _proc_fd.append(os.path.isdir("/proc/self/fd"))
    if not flag or not _proc_fd[0]:
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY | os.O_CLOEXEC, mode)
    except OSError as exc:
        import errno

        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return None
        raise


def _try_link(fd: int, dir_fd: int, name: str) -> bool | None:
    """Link the unnamed file ``fd`` as ``name``: True, False if ``name`` exists, None if refused."""
    try:
        _link_anonymous(fd, dir_fd, name)
    except FileExistsError:
        return False
    except OSError:
        return None
    return True


def _link_anonymous(fd: int, dir_fd: int, name: str) -> None:
    """Give the unnamed file ``fd`` the name ``name`` in ``dir_fd`` (linkat with AT_SYMLINK_FOLLOW)."""
    os.link(f"/proc/self/fd/{fd}", name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


# A temp file younger than this may belong to a writer between its link and its rename.
LEFTOVER_AGE = 60.0


def remove_leftover_temps(path: str, older_than: float = LEFTOVER_AGE) -> int:
    """Remove the temp files of ``path`` (``.BASE.tmp-HEX``) that a killed writer left behind.

    They may hold plaintext: an ``inject -o`` output, an identity without its
    passphrase. Only regular files of yours, named exactly like ours and last
    written more than ``older_than`` seconds ago, are removed: a younger one
    may be a running writer's, between its link and its rename. Returns how
    many were removed.
    """
    import stat
    import time

    directory, base = os.path.split(path)
    prefix = f".{base}{TEMP_MARKER}"
    try:
        names = [name for name in os.listdir(directory or ".") if name.startswith(prefix)]
    except OSError:
        return 0
    removed = 0
    now, uid = time.time(), os.geteuid()
    for name in names:
        suffix = name[len(prefix) :]
        if len(suffix) != 12 or suffix.strip("0123456789abcdef"):
            continue
        leftover = os.path.join(directory, name)
        try:
            status = os.lstat(leftover)
            if stat.S_ISREG(status.st_mode) and status.st_uid == uid and now - status.st_mtime > older_than:
                os.unlink(leftover)
                removed += 1
        except OSError:
            pass
    return removed


def create_exclusive(path: str, data: bytes, mode: int = FILE_MODE) -> bool:
    """Write ``path`` complete or not at all, only if it does not exist yet.

    The bytes go to an unnamed file (``O_TMPFILE``; a named temp file where
    there is none) and are then hard-linked into place, so a concurrent reader
    never sees a partial file, two racing creators cannot overwrite each
    other, and a crash leaves no copy behind. Returns False when ``path``
    already existed.
    """
    directory = os.path.dirname(path) or "."
    ensure_dir(directory)
    remove_leftover_temps(path)
    try:
        anonymous = _open_anonymous(directory, mode)
        if anonymous is not None:
            try:
                dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    _write_all(anonymous, data)
                    os.fsync(anonymous)
                    _crash_point("after-fsync")
                    linked = _try_link(anonymous, dir_fd, os.path.basename(path))
                finally:
                    os.close(dir_fd)
            finally:
                os.close(anonymous)
            if linked is not None:
                if linked:
                    fsync_dir(directory)
                return linked
    except OSError as exc:
        raise SecretStoreError(f"cannot create {path}: {exc.strerror}") from None
    tmp = temp_path_for(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        _crash_point("after-fsync")
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


class locked:  # lower case: used as ``with fsio.locked(directory):``, like the function it was
    """Hold an exclusive ``flock`` on ``directory`` (created if missing) for the block.

    Anyone who can read the directory can ``flock`` it too, so the wait is
    bounded: ``lock_timeout()`` seconds, then ``LockTimeoutError``. (A class, not
    ``contextlib.contextmanager``: exec, which never writes, then skips that import.)
    """

    __slots__ = ("_directory", "_fd")

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._fd: int | None = None

    def __enter__(self) -> None:
        timeout = lock_timeout()
        ensure_dir(self._directory)
        if os.environ.get(_NO_LOCK_ENV) == "1":
            return
        fd = os.open(self._directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _acquire(fd, self._directory, timeout)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def __exit__(self, *exc_info: object) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock


def lock_timeout() -> float:
    """``$SECRETSTORE_LOCK_TIMEOUT`` in seconds (0 or more), else ``DEFAULT_LOCK_TIMEOUT``."""
    text = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):  # also refuses nan
        shown = text if text.isprintable() and len(text) <= 20 else repr(text[:20])
        raise UsageError(f"{LOCK_TIMEOUT_ENV} must be a number of seconds, 0 or more (got {shown})")
    return value


def _acquire(fd: int, directory: str, timeout: float) -> None:
    """``flock(LOCK_EX)`` on ``fd``, polling until ``timeout`` seconds have passed."""
    import fcntl
    import time

    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            import shlex

            raise LockTimeoutError(
                f"the store {directory} is locked by another process: waited {timeout:g} s "
                "for its write lock (a flock on the directory)",
                hint=f"another secretstore may be writing; if none is, find the holder with: "
                f"fuser -v {shlex.quote(directory)}; or wait longer with {LOCK_TIMEOUT_ENV}=SECONDS",
            )
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)


def read_file(path: str, max_bytes: int = limits.MAX_SCOPE_FILE_BYTES) -> bytes | None:
    """The bytes of the regular file ``path``, or None when it does not exist.

    A symlink or a special file (a FIFO, a device) is refused: a store shared
    through git is written by others, and must not make us read elsewhere, hang
    on a FIFO or read /dev/zero forever. So is a file larger than ``max_bytes``
    (by default the largest a store file may be), of which at most
    ``max_bytes + 1`` bytes are read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _open_error(path, exc) from None
    return _read_regular(fd, path, [], max_bytes)


MAX_INPUT_BYTES = 64 * 1024 * 1024  # the most a user's input file may hold: the largest scope file


def read_input(path: str, what: str, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """A file the user names (a value, an import, a template, an env or options file), read up to
    ``max_bytes``: more is a usage error, so ``/dev/zero`` ends the command instead of filling memory."""
    try:
        with open(path, "rb") as handle:
            return read_bounded(handle, path, what, max_bytes)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


def read_bounded(handle: BinaryIO, source: str, what: str, max_bytes: int) -> bytes:
    """At most ``max_bytes`` from ``handle`` (stdin, say), or UsageError, reading one byte past."""
    data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UsageError(f"{what} from {source} is larger than {limits.size_text(max_bytes)}; refusing to read more")
    return data


def read_private_file(path: str) -> bytes | None:
    """The bytes of one of the user's own state files, or None when it does not exist.

    Refused unless it is a regular file owned by the user (or root) that no one
    else can write: whoever can write a reader's trust state chooses whom it trusts.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _open_error(path, exc) from None
    import stat

    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise SecretStoreError(f"{path} is not a regular file")
        if status.st_uid not in (os.geteuid(), 0):
            raise _wrong_owner(path, status, os.geteuid())
        if status.st_mode & 0o022:
            raise StoreFormatError(
                f"{path} is writable by others (mode {status.st_mode & 0o7777:04o}); refusing to use it",
                hint=f"run: chmod 600 {path}",
            )
    except BaseException:
        os.close(fd)
        raise
    return _read_regular(fd, path, [], limits.MAX_STATE_FILE_BYTES)


def read_store_file(
    root: str, relpath: str, max_bytes: int = limits.MAX_SCOPE_FILE_BYTES, *, prefix: int | None = None,
    until: bytes | None = None, keep: list[OpenFile] | None = None, suffix: int = 0,
) -> bytes | None:
    """``read_file`` for a file of the store, refused if anyone but you could have written it.

    ``relpath`` is ``/``-separated below ``root`` (``team.toml``,
    ``projects/ID.toml``, ``recipients.toml``). The file, the store directory
    and every directory between them must pass ``check_writers``. Each
    directory is opened (below the root, without following a link) and the
    next name opened relative to it, so the directories checked are the ones
    the file was read through. Nothing is checked when the file does not exist.
    With ``prefix``, only the file's first ``prefix`` bytes are read (exec's
    snapshot check needs only a scope file's head), after the same checks; with
    ``suffix`` too, those bytes followed by the file's last ``suffix`` bytes (the
    whole file when it is no longer than both): a version-4 file's last seal.
    With ``until``, reading stops at the first occurrence of those bytes (not
    included): a version-3 scope file's current entries end where its history
    begins, and a reader of current values needs nothing after them. With
    ``until`` and ``keep``, the file is left open and appended to ``keep`` as an
    ``OpenFile`` when the bytes were found, so a writer can copy what follows
    them (the history) without reading it.
    """
    if keep is not None and not OpenFile.can_keep():
        until = keep = None  # too many files held open already: read this one whole
    *subdirs, filename = relpath.split("/")
    path = root
    opened: list[tuple[str, int]] = []
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        try:
            opened.append((root, os.open(root, flags)))
            for name in subdirs:
                path = os.path.join(path, name)
                opened.append((path, os.open(name, flags | os.O_NOFOLLOW, dir_fd=opened[-1][1])))
            path = os.path.join(path, filename)
            fd = os.open(
                filename,
                os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                dir_fd=opened[-1][1],
            )
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _open_error(path, exc) from None
        return _read_regular(fd, path, opened, max_bytes, prefix, until, keep, suffix)
    finally:
        for _name, directory_fd in opened:
            os.close(directory_fd)


def _open_error(path: str, exc: OSError) -> SecretStoreError:
    import errno

    if exc.errno == errno.ELOOP:
        return SecretStoreError(f"{path} is a symlink; refusing to follow it")
    return SecretStoreError(f"cannot read {path}: {exc.strerror}")


def _find_in_last(chunks: list[bytes], marker: bytes) -> int | None:
    """Where ``marker`` first occurs relative to the start of the last chunk (negative: it
    starts in the chunk before), given it occurs in no earlier chunk; else None."""
    chunk = chunks[-1]
    if len(chunks) > 1:  # the marker may straddle the two last chunks
        before = chunks[-2][1 - len(marker):]
        found = (before + chunk[: len(marker) - 1]).find(marker)
        if found >= 0:
            return found - len(before)
    found = chunk.find(marker)
    return None if found < 0 else found


def _read_regular(
    fd: int, path: str, directories: list[tuple[str, int]], max_bytes: int, prefix: int | None = None,
    until: bytes | None = None, keep: list[OpenFile] | None = None, suffix: int = 0,
) -> bytes:
    """Read and close ``fd``; with ``directories`` (path, fd), check who can write them and it first.

    At most ``max_bytes + 1`` bytes are read; more than ``max_bytes`` is refused.
    With ``prefix``, at most the first ``prefix`` bytes (a file over the cap is still refused).
    """
    import stat

    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise SecretStoreError(f"{path} is not a regular file")
        if directories:
            check_writers([*((name, os.fstat(d)) for name, d in directories), (path, status)])
            check_acls([*directories, (path, fd)])
        if status.st_size > max_bytes:
            raise limits.too_large(path, max_bytes)
        os.set_blocking(fd, True)
        end = b""
        if prefix is not None and suffix:
            if status.st_size <= prefix + suffix:
                prefix = prefix + suffix  # the whole file
            else:
                end = os.pread(fd, suffix, status.st_size - suffix)
        if prefix is None and until is None:  # the whole file, in one read (one allocation) when it can
            first = os.read(fd, status.st_size + 1)
            if len(first) <= status.st_size:
                rest = os.read(fd, max_bytes + 1 - len(first)) if len(first) == status.st_size else b""
                data = first + rest if rest else first
                limits.check_size(data, path, max_bytes)  # the file grew after fstat
                return data
            chunks = [first]
            left = max_bytes + 1 - len(first)
        else:
            chunks = []
            left = max_bytes + 1 if prefix is None else min(prefix, max_bytes + 1)
        seen = 0  # bytes before the last chunk, for ``until``
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
            if until is not None:
                at = _find_in_last(chunks, until)
                if at is not None:
                    if keep is not None:
                        keep.append(OpenFile(fd, status.st_size, path))
                        fd = -1  # kept open: the OpenFile closes it
                    if at < 0:  # it starts in the chunk before
                        return b"".join(chunks)[: seen + at]
                    chunks[-1] = chunks[-1][:at]
                    return b"".join(chunks)  # one copy of what comes before, not two
                seen += len(chunk)
        data = b"".join(chunks)
        if prefix is None:
            limits.check_size(data, path, max_bytes)  # the file grew after fstat
        return data + end if end else data
    except OSError as exc:
        raise SecretStoreError(f"cannot read {path}: {exc.strerror}") from None
    finally:
        if fd >= 0:
            os.close(fd)


# --- who can write a store file ----------------------------------------------------

# gid -> whether it is the current user's private group (looked up once per process).
_private_groups: dict[int, bool] = {}


def check_writers(chain: list[tuple[str, os.stat_result]]) -> None:
    """Refuse a store file that anyone but you (or root) could have written: sshd's StrictModes.

    ``chain`` is (path, status) of the store directory, the directories below
    it and the file, outermost first. Each must be owned by you or root and
    not writable by others, nor by its group unless the group is your private
    group (Debian's user-group-modes: umask 002 gives 0664 clones). Someone
    who can write a scope file, or rename files in its directory, could
    replace it with values of their choosing sealed to your public key, and
    ``exec`` would inject them. The common case costs no lookup: group and
    user names are looked up only when a group-write bit is set.

    Raises ``StoreFormatError`` naming the path, the mode or owner, and the fix.
    """
    uid = os.geteuid()
    for path, status in chain:
        if status.st_uid not in (uid, 0):
            raise _wrong_owner(path, status, uid)
    loose = [(path, status) for path, status in chain if _writable_by_others(status, uid)]
    if loose:
        import shlex

        path, status = loose[0]
        who = "others" if status.st_mode & 0o002 else "its group"
        what = "store directory" if _is_dir(status) else "store file"
        raise StoreFormatError(
            f"{what} {path} is writable by {who} (mode {status.st_mode & 0o7777:04o}); refusing to use it",
            hint="run: chmod go-w " + " ".join(shlex.quote(p) for p, _s in loose),
        )


def _writable_by_others(status: os.stat_result, uid: int) -> bool:
    if status.st_mode & 0o002:
        return True
    if not status.st_mode & 0o020:
        return False
    gid = status.st_gid
    if gid not in _private_groups:
        _private_groups[gid] = _is_private_group(gid, uid)
    return not _private_groups[gid]


def _is_private_group(gid: int, uid: int) -> bool:
    """Whether group ``gid`` is ``uid``'s own: named like the user, and no one else in it."""
    import grp
    import pwd

    try:
        group = grp.getgrgid(gid)
        user = pwd.getpwuid(uid)
    except KeyError:  # a gid or uid with no name: nothing to show it is private
        return False
    if group.gr_name != user.pw_name or any(member != user.pw_name for member in group.gr_mem):
        return False
    # Members by primary group are not listed in the group entry: look for another user with it.
    return all(other.pw_uid == uid for other in pwd.getpwall() if other.pw_gid == gid)


# --- POSIX ACLs: the write permission that mode bits do not show -------------------

ACL_XATTR = "system.posix_acl_access"
ACL_VERSION = 2
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
ACL_WRITE = 0x02


def parse_posix_acl(data: bytes) -> list[tuple[int, int, int]]:
    """(tag, perm, id) of each entry of a ``system.posix_acl_access`` value.

    The kernel's format: a little-endian u32 version (2), then 8-byte entries
    of u16 tag, u16 perm, u32 id. Raises ValueError for anything else.
    """
    if len(data) < 4 or (len(data) - 4) % 8 or int.from_bytes(data[:4], "little") != ACL_VERSION:
        raise ValueError("not a version 2 POSIX ACL")
    return [
        (
            int.from_bytes(data[at : at + 2], "little"),
            int.from_bytes(data[at + 2 : at + 4], "little"),
            int.from_bytes(data[at + 4 : at + 8], "little"),
        )
        for at in range(4, len(data), 8)
    ]


def acl_writers(entries: list[tuple[int, int, int]], uid: int) -> list[str]:
    """Who besides ``uid`` (and root) a named ACL entry lets write, after the mask: ``user NAME (uid N)``.

    Only named entries (ACL_USER, ACL_GROUP) are looked at: the owner, owning
    group and others are the mode bits, which ``check_writers`` checks. A
    group that is your private group is fine, as in ``check_writers``.
    """
    mask = next((perm for tag, perm, _id in entries if tag == ACL_MASK), 0o7)
    found = []
    for tag, perm, ident in entries:
        if not perm & mask & ACL_WRITE:
            continue
        if tag == ACL_USER and ident not in (uid, 0):
            name = _user_name(ident)
            found.append(f"user {name} (uid {ident})" if name else f"uid {ident}")
        elif tag == ACL_GROUP:
            if ident not in _private_groups:
                _private_groups[ident] = _is_private_group(ident, uid)
            if not _private_groups[ident]:
                name = _group_name(ident)
                found.append(f"group {name} (gid {ident})" if name else f"gid {ident}")
    return found


def check_acls(opened: list[tuple[str, int]]) -> None:
    """Refuse a store file or directory whose POSIX ACL lets another user or group write it.

    ``opened`` is (path, fd), outermost first. Shared file systems (HPC
    scratch and project dirs) often carry default ACLs that give a group write
    access the mode bits do not show. One ``fgetxattr`` per path; a file
    system without ACLs, or a file without one, passes.
    """
    getxattr = getattr(os, "getxattr", None)
    if getxattr is None:  # not Linux: no POSIX ACL xattr to read
        return
    uid = os.geteuid()
    loose: list[tuple[str, list[str]]] = []
    for path, fd in opened:
        try:
            raw = getxattr(fd, ACL_XATTR)
        except OSError as exc:
            if exc.errno in _NO_ACL_ERRNOS:
                continue
            raise SecretStoreError(f"cannot read the ACL of {path}: {exc.strerror}") from None
        try:
            writers = acl_writers(parse_posix_acl(raw), uid)
        except ValueError:
            writers = ["an ACL entry secretstore cannot read"]
        if writers:
            loose.append((path, writers))
    if loose:
        import shlex

        path, writers = loose[0]
        raise StoreFormatError(
            f"store path {path} has an ACL that lets {', '.join(writers)} write it; refusing to use it",
            hint="run: setfacl -b " + " ".join(shlex.quote(p) for p, _w in loose),
        )


def _no_acl_errnos() -> frozenset[int]:
    import errno

    return frozenset(
        getattr(errno, name) for name in ("ENODATA", "ENOTSUP", "EOPNOTSUPP", "ENOSYS") if hasattr(errno, name)
    )


_NO_ACL_ERRNOS = _no_acl_errnos()


def _group_name(gid: int) -> str | None:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def _wrong_owner(path: str, status: os.stat_result, uid: int) -> StoreFormatError:
    import shlex

    what = "store directory" if _is_dir(status) else "store file"
    me = _user_name(uid)
    return StoreFormatError(
        f"{what} {path} is owned by {_describe_user(status.st_uid)}; it must be owned by you "
        f"({_describe_user(uid)}); refusing to use it",
        hint=f"as root, run: chown {me or uid} {shlex.quote(path)}; or use a store of your own",
    )


def _is_dir(status: os.stat_result) -> bool:
    import stat

    return stat.S_ISDIR(status.st_mode)


def _user_name(uid: int) -> str | None:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _describe_user(uid: int) -> str:
    name = _user_name(uid)
    return f"uid {uid}" if name is None else f"{name}, uid {uid}"
