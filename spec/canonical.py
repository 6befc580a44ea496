"""The one canonical JSON form: what is hashed, signed or compared byte for byte is exactly these bytes.

Sorted keys, no spaces, ASCII only: the claims' hash (which seeds the calibration samples and names
cached derivations), a package.json and signatures.json on disk, an owner's signed statement.
"""
from __future__ import annotations

import json


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
