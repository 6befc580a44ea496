"""The public bundle carries commitments, never the data, the trained weights or the secret salts."""
from __future__ import annotations

import json

import ezkl
import numpy as np
from safetensors.torch import load_file


P = 0x30644E72E131A029B85045B68181585D2833E84879B9709143E1F593F0000001


def _magnitude(felt_le: str) -> int:
    n = int(bytes.fromhex(felt_le)[::-1].hex(), 16)
    return min(n, P - n)


def _encodings_of_felt(felt_le: str) -> set[str]:
    """A field element as the code might write it: LE hex, BE hex (with/without 0x), decimal int."""
    be = bytes.fromhex(felt_le)[::-1].hex()
    found = {felt_le, be, "0x" + be}
    if _magnitude(felt_le) > 10**6:  # shorter decimals match by chance in any large file
        found.add(str(int(be, 16)))
    return found


def test_public_bundle_holds_no_private_value(run_a):
    public_text = b"".join(p.read_bytes() for p in sorted(run_a.public.rglob("*")) if p.is_file())
    public_text = public_text.decode("latin-1").lower()
    cfg = json.loads(run_a.config.read_text())
    scale = cfg["scale"]

    secrets_found = []
    # features: every distinct training value, as decimal and as its field element
    X = np.load(run_a.data)["X"]
    needles = set()
    for v in np.unique(X.round(6)):
        if abs(v) > 1e-3:
            needles.add(f"{v:.6f}")
            felt = ezkl.float_to_felt(float(v), scale)
            if _magnitude(felt) > 16:  # small integers (protocol constants) are everywhere; skip them
                needles |= _encodings_of_felt(felt)
    # the trained weights and the final salt, as field elements and decimals
    final = json.loads(run_a.final_opening.read_text())["state"]
    for felt in final:
        if _magnitude(felt) > 16:
            needles |= _encodings_of_felt(felt)
    for w in load_file(str(run_a.final_model)).values():
        needles |= {f"{x:.6f}" for x in w.reshape(-1).tolist() if abs(x) > 1e-3}
    # every salt except the base state's published one (batch salts and state salts after step 0)
    for t in range(4):
        inputs = json.loads(run_a.chunk_input(t).read_text())["input_data"]
        for felt in inputs[1][-6:] + inputs[-1]:
            needles |= _encodings_of_felt(felt)
    for n in needles:
        if n.lower() in public_text:
            secrets_found.append(n)
    assert not secrets_found, secrets_found[:5]
    assert len(needles) > 100  # the scan looked for something


def test_salts_hide_a_low_entropy_batch(run_a):
    """Binary labels take 2^4 values per batch of 4: trivially guessable from an unsalted hash,
    hopeless from the salted commitment, because the guesser would need the 144-bit salt."""
    import itertools

    inputs = json.loads(run_a.chunk_input(0).read_text())["input_data"]
    batch = inputs[1]
    public = json.loads((run_a.public / "dataset.json").read_text())["batch_commitments"]
    n_feat, B = 8, 4
    labels_at = slice(B * n_feat, B * n_feat + B)
    one, zero = ezkl.float_to_felt(1.0, 8), ezkl.float_to_felt(0.0, 8)

    def guesses(salt):
        for bits in itertools.product([zero, one], repeat=B):
            yield ezkl.poseidon_hash(batch[: labels_at.start] + list(bits) + batch[labels_at.stop : -6] + salt)[0]

    true_salt = batch[-6:]
    assert any(h in public for h in guesses(true_salt))  # with the salt: found
    zero_salt = [zero] * 6
    assert not any(h in public for h in guesses(zero_salt))  # without it: nothing matches
