"""A proof file's public instances, read with a bound: the one place that parses what ezkl wrote there."""
from __future__ import annotations

from pathlib import Path

from zkpot.spec.artifacts import ArtifactError, read_json
from zkpot.spec.errors import Rejected
from zkpot.spec.protocol import MAX_PROOF


def read_instances(path: Path, check: str, n: int | None = None, chunk: int | None = None) -> list[str]:
    """The proof's one list of public instances (of `n` values, if given); Rejected(check) otherwise."""
    try:
        inst = read_json(path, max_bytes=MAX_PROOF)["instances"]
    except (ArtifactError, KeyError, TypeError) as e:
        raise Rejected(check, f"unreadable proof ({e})", chunk) from None
    if not (isinstance(inst, list) and len(inst) == 1 and isinstance(inst[0], list)
            and (n is None or len(inst[0]) == n) and all(isinstance(h, str) for h in inst[0])):
        raise Rejected(check, f"expected {n if n is not None else 'a list of'} public instances, found {inst!r:.80}", chunk)
    return inst[0]
