"""One prover per run directory: an exclusive lock on RUN/.lock for the whole of train, setup and prove.

Two provers on one run would race on the same witnesses, keys and proofs (each file is written
atomically, but a half-finished run of one would be resumed by the other with different ideas of
what is done). The second is refused at once with one line naming the holder. The lock is a
flock, so the kernel drops it when its holder dies, even by SIGKILL: a crashed run never leaves a
stale lock behind.

Under the lock, temporary files that a killed writer left (spec/artifacts.atomic_path names
them `.NAME.XXXXXXXX.tmp` beside their target) are removed: no later step reads them, and they
must not travel with a published bundle.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
from pathlib import Path

LOCK_NAME = ".lock"
STALE_TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


_held: set[Path] = set()


class RunLocked(OSError):
    """Another process holds the run directory (an OSError, like EBUSY: the CLI prints one line)."""


@contextlib.contextmanager
def run_lock(root: Path, command: str):
    """Hold RUN/.lock exclusively for the block; raise RunLocked at once if another process has it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    key = root.resolve()
    if key in _held:  # this process already holds it (e.g. `demo` running train, setup and prove)
        yield
        return
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise RunLocked(f"{root} is in use by {holder}: wait for it to finish (or stop it), then run again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"zkpot {command} (pid {os.getpid()})\n".encode(), 0)
        _held.add(key)
        remove_stale_temps(root)
        yield
    finally:
        _held.discard(key)
        os.close(fd)  # closing the descriptor releases the flock


def remove_stale_temps(root: Path) -> list[Path]:
    """Delete temporaries left by writers that died before renaming them (only safe under the lock)."""
    removed = []
    root = Path(root)
    for path in root.rglob(".*.tmp"):
        if "fold" in path.relative_to(root).parts[:-1]:  # `zkpot fold PUBLIC` may write there without this lock
            continue
        if STALE_TEMP.match(path.name) and path.is_file() and not path.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed
