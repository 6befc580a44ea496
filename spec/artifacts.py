"""Every artifact is a file: written atomically, read with a size bound, identified by sha256."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path


class ArtifactError(ValueError):
    """A file that is missing, too large, or not what it claims to be."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_path(path: Path, mode: int = 0o644):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    A reader therefore sees the old file or the complete new one, never a partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_json(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


def read_json(path: Path, max_bytes: int = 64 << 20):
    """Parse a JSON file, refusing oversized input before reading it."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"missing file: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise ArtifactError(f"{path}: {size} bytes, more than the {max_bytes} allowed")
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}: not valid JSON ({e.__class__.__name__} at {getattr(e, 'pos', '?')})") from None
