"""Several data owners, one run: each owner's signed statement binds its slice of the batch commitments.

An owner commits to its own batches on its own machine and signs a statement (protocol.OWNER_STATEMENT)
with its BLS key: its root (Poseidon of its batch commitments), how many batches, and their layout.
The run's dataset.json lists the owners' batch commitments one owner after the other, in the order of
manifest dataset.owners; the schedule check already binds those commitments to the proofs. This check
binds them to the owners: every signature and proof of possession holds, each owner's consecutive slice
hashes to its signed root, the slices cover every batch, and (with --owner) the signers are exactly the
keys the verifier named. A signature says nothing unless the verifier chose the keys (as for --publisher).
"""
from __future__ import annotations

from zkpot.spec import protocol as P
from zkpot.spec.errors import Rejected
from zkpot.spec.owners import check_signed
from zkpot.spec.signature import short


def slices(owners: list[dict], batches: list[str]) -> list[list[str]]:
    """Each owner's consecutive slice of the batch commitments (the counts must cover them exactly)."""
    counts = [o["statement"]["num_batches"] for o in owners]
    if sum(counts) != len(batches):
        raise Rejected("owners", f"the owners signed for {sum(counts)} batches ({' + '.join(map(str, counts))}), "
                                 f"the dataset commits to {len(batches)}: a batch of no owner, or an owner's batch dropped")
    out, at = [], 0
    for n in counts:
        out.append(batches[at : at + n])
        at += n
    return out


def owner_label(doc: dict) -> str:
    s = doc["statement"]
    return f"{s['name']} ({short(bytes.fromhex(doc['public_key']))}, {s['num_batches']} batch(es))"


def check_owners(m: dict, batches: list[str], named: list[bytes] | None) -> tuple[str | None, str | None]:
    """The owners' statements bind the run's batch commitments; returns (passed line, warning line).

    `named`: the keys the verifier trusts (--owner); None or empty: the signatures are checked, but
    who signed is only reported as a warning, never as a passed claim."""
    import ezkl

    owners = m["dataset"].get("owners")
    if owners is None:
        if named:
            raise Rejected("owners", "--owner was given, but the bundle names no data owners (dataset.owners)")
        return None, None
    run, layout = m["run"], m["run"]["layout"]
    ours = {"batch_size": run["batch_size"], "features": layout["features"], "label_width": layout["label_width"],
            "scale": run["scale"]}
    keys = []
    for i, doc in enumerate(owners):
        where = f"owner {i} ({doc['statement']['name']!r})"
        keys.append(check_signed(doc, where, "owners"))
        s = doc["statement"]
        for k in P.OWNER_LAYOUT:
            if s[k] != ours[k]:
                raise Rejected("owners", f"{where} signed batches with {k} {s[k]}, the run's is {ours[k]}")
    if len(set(keys)) != len(keys):
        raise Rejected("owners", "one key signs for two owners: each owner's key must be its own")
    for i, (doc, part) in enumerate(zip(owners, slices(owners, batches))):
        if ezkl.poseidon_hash(part)[0] != doc["statement"]["root"]:
            raise Rejected("owners", f"owner {i} ({doc['statement']['name']!r}): batches "
                                     f"{sum(o['statement']['num_batches'] for o in owners[:i])}.. do not hash to the "
                                     "root it signed: another owner's data, or its own swapped, dropped or repeated")
    who = "; ".join(owner_label(doc) for doc in owners)
    if not named:
        return None, (f"the dataset is signed by {len(owners)} data owner key(s) ({who}), none named with --owner: "
                      "the signatures hold, but who the owners are is not checked")
    for doc, pk in zip(owners, keys):
        if pk not in named:
            raise Rejected("owners", f"owner {owner_label(doc)} is not an owner you named with --owner")
    for pk in named:
        if pk not in keys:
            raise Rejected("owners", f"owner {pk.hex()[:16]}… you named signed no statement in this run "
                                     "(its data is not the run's, or was left out)")
    return (f"every batch is a named owner's, in owner order: {who}; each slice hashes to the root its owner "
            "signed"), None
