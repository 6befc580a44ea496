"""Every artifact is a file: written atomically, read with a size bound, identified by sha256."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
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
    return parse_json(path.read_bytes(), path)


MAX_JSON_DEPTH = 100      # zkpot's formats nest under 10 levels, an ezkl proof 32
DEPTH_CHECKED = 64 << 20   # larger JSON is a prover's own (its witnesses), never a hostile bundle's (MAX_JSON)


def json_depth(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (strings skipped), counted without recursion:
    Python's parser recurses per level and overflows the C stack on deep enough input (a crash, not an error)."""
    import numpy as np

    bare = np.frombuffer(re.sub(rb'"(?:[^"\\]|\\.)*"', b'""', raw), dtype=np.uint8)
    step = np.isin(bare, (ord("["), ord("{"))).astype(np.int8) - np.isin(bare, (ord("]"), ord("}"))).astype(np.int8)
    return int(np.cumsum(step, dtype=np.int32).max(initial=0))


def parse_json(raw: bytes, where) -> object:
    """JSON from untrusted bytes: malformed, or nested deeper than MAX_JSON_DEPTH, is an ArtifactError."""
    if len(raw) <= DEPTH_CHECKED and json_depth(raw) > MAX_JSON_DEPTH:
        raise ArtifactError(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{where}: not valid JSON ({e.__class__.__name__} at {getattr(e, 'pos', '?')})") from None
    except RecursionError:
        raise ArtifactError(f"{where}: JSON nested too deep") from None
