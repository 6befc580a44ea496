"""A DP-SGD run's noise: the secret uniforms of every step, their commitments, and the challenges a beacon round
gives them (spec/dp.py, spec/beacon.py; docs/dp.md).

v of step t is drawn from the run's master key (SHAKE-256 keyed by it, one domain per step: fresh for every
step, recomputed on resume, never published); its salt likewise. H(v | salt) is the step's noise commitment,
which its proof carries; the root of all of them, with the round's randomness, gives every step's challenge r.
"""
from __future__ import annotations

import hashlib

from zkpot.prover.commit import commitment, salt_values, salt_words, to_felts
from zkpot.spec import beacon
from zkpot.spec import dp as dp_spec
from zkpot.spec.felts import int_to_felt


def secret_uniforms(master: bytes, step: int, count: int, scale: int) -> list[int]:
    """`count` uniform integers in [0, 2^scale) for step `step`: 3 bytes of SHAKE-256(master || domain) each, the
    low `scale` bits kept (2^scale divides 2^24: exactly uniform)."""
    stream = hashlib.shake_256(master + f"zkpot/dp-noise:{step}".encode()).digest(3 * count)
    mask = (1 << scale) - 1
    return [int.from_bytes(stream[3 * i : 3 * i + 3], "big") & mask for i in range(count)]


def noise_felts(master: bytes, step: int, n_params: int, scale: int) -> list[str]:
    """Step `step`'s noise input: its secret uniforms v on the grid, then their salt, as field elements."""
    v = [int_to_felt(k) for k in secret_uniforms(master, step, dp_spec.uniforms(n_params), scale)]
    return v + to_felts(salt_values(salt_words(master, "noise", step), scale), scale)


def noise_commitments(master: bytes, steps: int, n_params: int, scale: int) -> list[str]:
    """H(noise) of every step of the run, in step order: what each proof will carry."""
    return [commitment(noise_felts(master, t, n_params, scale)) for t in range(steps)]


def noise_root(master: bytes, steps: int, n_params: int, scale: int) -> bytes:
    """The root of every step's noise commitment: what witnesses attest before a beacon round is chosen."""
    return beacon.commitment_root(noise_commitments(master, steps, n_params, scale))


NOISE_ROOT_FORMAT = "zkpot/dp-noise-root-1"


def noise_root_doc(root: bytes, steps: int) -> dict:
    """RUN/noise_root.json: what the trainer shows its witnesses (public: it reveals nothing of the noise)."""
    return {"format": NOISE_ROOT_FORMAT, "noise_root": root.hex(), "steps": steps}


def attest(noise_root_file: dict, chain: dict, latest: dict, key) -> dict:
    """A witness's attestation (spec/attestation.py) that this noise root exists while `latest` (a round of
    `chain`, its signature checked) is the latest round: signed with the witness's key file (prover/signing.py)."""
    from zkpot.prover.signing import sign
    from zkpot.spec import attestation
    from zkpot.spec.owners import statement_bytes
    from zkpot.spec.signature import SCHEME

    if not (isinstance(noise_root_file, dict) and noise_root_file.get("format") == NOISE_ROOT_FORMAT
            and isinstance(noise_root_file.get("noise_root"), str) and beacon.HASH_HEX.match(noise_root_file["noise_root"])):
        raise ValueError(f"not a {NOISE_ROOT_FORMAT} document (the noise_root.json `zkpot train` writes for a DP run)")
    chain_ = beacon.check_chain_info(chain)
    s = attestation.statement(bytes.fromhex(noise_root_file["noise_root"]), chain_.hash,
                              beacon.check_round(chain_, latest).round)
    pk, pop, sig = sign(key, statement_bytes(s), attestation.DOMAIN)
    return {"statement": s, "public_key": pk.hex(), "proof_of_possession": pop.hex(), "signature": sig.hex(),
            "scheme": SCHEME}


def challenge_felts(round_: beacon.Round, root: bytes, step: int, n_params: int, scale: int) -> list[str]:
    """Step `step`'s public challenge r as field elements, from the round and the root of every step's noise
    commitment (spec/dp.challenge: the verifier derives the same)."""
    return dp_spec.challenge(round_.randomness, root, step, n_params, scale)


def as_values(felts: list[str], scale: int) -> list[float]:
    """Grid values k / 2^scale of small non-negative field elements (for the float reference run)."""
    return [int.from_bytes(bytes.fromhex(f), "little") / (1 << scale) for f in felts]
