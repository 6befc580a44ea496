"""A data owner's side of a clean room, and the trainer's reading of what owners hand over.

On its own machine, an owner preprocesses its own rows (standardised over its own rows, clipped to the
public feature bound, labels encoded), partitions them privately, salts each batch with its own master
key, commits, and signs a statement (protocol.OWNER_STATEMENT) with its BLS key. It publishes
OWNER_DIR/public/owner.json (the signed statement) and hands the trainer OWNER_DIR/private/handoff.json:
the same signed statement and every batch's field elements (the opening of each commitment). The
trainer checks each handoff before any work and trains on the owners' batches, one owner after another.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zkpot.prover import signing
from zkpot.prover.commit import batch_felts, commitment, load_or_create_master_key, partition, private_seed
from zkpot.prover.config import RunConfig
from zkpot.prover.dataset import load_dataset
from zkpot.spec import protocol as P
from zkpot.spec.artifacts import ArtifactError, atomic_path, read_json, write_json
from zkpot.spec.errors import Rejected
from zkpot.spec.felts import is_felt
from zkpot.spec.owners import check_owner_shape, check_signed, statement_bytes
from zkpot.spec.signature import SCHEME

HANDOFF_FORMAT = "zkpot/owner-handoff-1"
MAX_HANDOFF = 1 << 30


class HandoffError(ValueError):
    """An owner's handoff the trainer cannot use: the message says which and why."""


def commit(data: Path, out_dir: Path, key: Path, name: str, *, batch_size: int, loss: str, label_width: int,
           scale: int, feature_bound: float, features: int | None = None, rows: int | None = None,
           label: str | None = None, progress=lambda message: None) -> dict:
    """Commit to one owner's data and sign the statement; writes public/owner.json and private/handoff.json
    (mode 0600) under out_dir. Returns owner.json."""
    signing.load_secret(key)  # a bad key file fails before any work
    if not (1 <= len(name) <= P.MAX_OWNER_NAME and name.isprintable()):
        raise ArtifactError(f"--name must be 1..{P.MAX_OWNER_NAME} printable characters")
    if label_width < 1:
        raise ArtifactError(f"--outputs must be at least 1, got {label_width}")
    cfg = RunConfig(data=str(data), label=label, features=features, rows=rows, loss=loss, batch_size=batch_size,
                    scale=scale, feature_bound=feature_bound)
    cfg.validate()
    out_dir = Path(out_dir)
    master = load_or_create_master_key(out_dir / "private" / "master.key")
    X, Y, _, _ = load_dataset(cfg, private_seed(master, "rows"), out=label_width, progress=progress)
    parts = partition(len(X), batch_size, private_seed(master, "partition"))
    if len(X) % batch_size:
        progress(f"{len(X) % batch_size} of your {len(X)} rows fill no batch of {batch_size}: left out (which ones is private)")
    felts = [batch_felts(X, Y, parts, b, master, scale) for b in range(len(parts))]
    statement = {"format": P.OWNER_FORMAT, "name": name, "root": commitment([commitment(f) for f in felts]),
                 "num_batches": len(parts), "batch_size": batch_size, "features": int(X.shape[1]),
                 "label_width": int(Y.shape[1]), "scale": scale}
    pk, pop, sig = signing.sign(key, statement_bytes(statement), P.OWNER_DOMAIN)
    doc = {"statement": statement, "public_key": pk.hex(), "proof_of_possession": pop.hex(), "signature": sig.hex(),
           "scheme": SCHEME}
    with atomic_path(out_dir / "private" / "handoff.json", mode=0o600) as tmp:
        tmp.write_text(json.dumps({"format": HANDOFF_FORMAT, "owner": doc, "batches": felts}) + "\n")
    write_json(out_dir / "public" / "owner.json", doc)
    return doc


@dataclass
class Handoffs:
    """The owners' batches as the run uses them: owner 0's, then owner 1's, ... (batch b is rows b*B..b*B+B-1)."""
    X: np.ndarray
    Y: np.ndarray
    label_width: int
    batches: list[list[str]]   # each batch's field elements, the owner's salt last
    owners: list[dict]         # each owner's signed statement (owner.json)

    @property
    def parts(self) -> list[list[int]]:
        B = len(self.X) // len(self.batches)
        return [list(range(b * B, (b + 1) * B)) for b in range(len(self.batches))]


def read_handoff(path: Path) -> tuple[dict, list[list[str]]]:
    """An owner's handoff, its signature and proof of possession checked, its batches hashing to the
    root it signed. Raises HandoffError."""
    try:
        h = read_json(path, max_bytes=MAX_HANDOFF)
    except ArtifactError as e:
        raise HandoffError(f"--owner-data {path}: {e}") from None
    if not (isinstance(h, dict) and set(h) == {"format", "owner", "batches"} and h["format"] == HANDOFF_FORMAT):
        raise HandoffError(f"--owner-data {path}: not an owner handoff ({HANDOFF_FORMAT}: format, owner, batches)")
    try:
        check_owner_shape(h["owner"], f"--owner-data {path}", "handoff")
        check_signed(h["owner"], f"--owner-data {path}", "handoff")
    except Rejected as e:
        raise HandoffError(e.args[0]) from None
    s, batches = h["owner"]["statement"], h["batches"]
    width = s["batch_size"] * (s["features"] + s["label_width"]) + P.SALT_WORDS
    if not (isinstance(batches, list) and len(batches) == s["num_batches"]
            and all(isinstance(v, list) and len(v) == width and all(is_felt(f) for f in v) for v in batches)):
        raise HandoffError(f"--owner-data {path}: expected {s['num_batches']} batch vectors of {width} field elements "
                           "(the statement's layout)")
    if commitment([commitment(v) for v in batches]) != s["root"]:
        raise HandoffError(f"--owner-data {path}: the batches do not hash to the root {s['name']!r} signed "
                           "(altered or another owner's data)")
    return h["owner"], batches


def load_handoffs(paths: list[Path], cfg) -> Handoffs:
    """Every owner's handoff checked against the run (layout, bound, labels), decoded exactly."""
    import ezkl

    owners, batches = [], []
    for path in paths:
        doc, vectors = read_handoff(path)
        s = doc["statement"]
        run = {"batch_size": cfg.batch_size, "scale": cfg.scale, **{k: owners[0]["statement"][k] for k in
                                                                    ("features", "label_width") if owners}}
        for k, v in run.items():
            if s[k] != v:
                raise HandoffError(f"--owner-data {path}: {s['name']!r} committed batches with {k} {s[k]}, the run's "
                                   f"is {v}" + (" (the first owner's)" if k in ("features", "label_width") else ""))
        if any(o["public_key"] == doc["public_key"] for o in owners):
            raise HandoffError(f"--owner-data {path}: this owner's key already signs another handoff of the run")
        owners.append(doc)
        batches += vectors
    B, F, L = cfg.batch_size, owners[0]["statement"]["features"], owners[0]["statement"]["label_width"]
    values = np.array([[ezkl.felt_to_float(f, cfg.scale) for f in v[: B * (F + L)]] for v in batches])
    X = values[:, : B * F].reshape(-1, F).astype(np.float32)
    Y = values[:, B * F :].reshape(-1, L).astype(np.float32)
    worst = float(np.abs(X).max())
    if worst > cfg.feature_bound:
        raise HandoffError(f"a feature of magnitude {worst:.4g} is outside the run's --feature-bound {cfg.feature_bound}: "
                           "the owners must clip to the run's bound")
    salts = [ezkl.felt_to_int(f) for v in batches for f in v[B * (F + L) :]]
    if not all(0 <= w < 1 << P.SALT_BITS for w in salts):
        raise HandoffError(f"a batch's salt word is outside [0, 2^{P.SALT_BITS}): not a zkpot owner commitment")
    _check_labels(cfg.loss, Y)
    return Handoffs(X, Y, L, batches, owners)


def _check_labels(loss: str, Y: np.ndarray) -> None:
    """The owners' encoded labels are ones the run's loss takes (bce: 0/1; ce: one-hot)."""
    binary = bool(np.isin(Y, (0.0, 1.0)).all())
    if loss == "ce" and not (binary and (Y.sum(axis=1) == 1).all()):
        raise HandoffError("ce: the owners' labels must be one-hot rows (commit with --loss ce --outputs CLASSES)")
    if loss == "bce" and not binary:
        raise HandoffError("bce: the owners' labels must be 0 or 1 (commit with --loss bce)")
