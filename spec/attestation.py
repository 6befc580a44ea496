"""A witness's signed statement that a DP run's noise was committed before a beacon round: the order the
challenge needs (docs/dp.md, "The order").

    statement = {format, noise_root, chain, after_round}

A witness (a data owner, an auditor: a key the verifier names with --witness) signs it when the trainer shows it
the root of every step's noise commitment (spec/beacon.commitment_root, hex), with the latest round of `chain`
published at that moment. The run's challenges must then come from round after_round + 1: a round no one knew when
the root was fixed, and one the trainer did not choose. The document is an owner statement's (spec/owners.py):
the statement, the key, its proof of possession, the signature, the scheme; signed under its own domain.
"""
from __future__ import annotations

from zkpot.spec.beacon import HASH_HEX
from zkpot.spec.errors import need
from zkpot.spec.owners import check_signed
from zkpot.spec.signature import PUBKEY_HEX, SCHEME, SIG_HEX

FORMAT = "zkpot/dp-commitment-1"
DOMAIN = b"zkpot/dp-commitment-1 sha256:"   # signed: DOMAIN || sha256(canonical JSON of the statement)
STATEMENT = ("format", "noise_root", "chain", "after_round")
DOC = ("statement", "public_key", "proof_of_possession", "signature", "scheme")
MAX_ATTESTATIONS = 16


def statement(noise_root: bytes, chain: str, after_round: int) -> dict:
    return {"format": FORMAT, "noise_root": noise_root.hex(), "chain": chain, "after_round": after_round}


def check_shape(doc, where: str, check: str) -> None:
    """Types and ranges of one attestation (hostile input); raises Rejected(check)."""
    def field(ok: bool, what: str) -> None:
        need(check, ok, f"{where}: {what}")

    field(isinstance(doc, dict) and set(doc) == set(DOC), f"must be an object with exactly {', '.join(DOC)}")
    s = doc["statement"]
    field(isinstance(s, dict) and set(s) == set(STATEMENT), f"statement must have exactly {', '.join(STATEMENT)}")
    field(s["format"] == FORMAT, f"statement format must be {FORMAT}")
    for k in ("noise_root", "chain"):
        field(isinstance(s[k], str) and bool(HASH_HEX.match(s[k])), f"statement {k} must be 32 bytes in lowercase hex")
    field(isinstance(s["after_round"], int) and not isinstance(s["after_round"], bool) and 0 <= s["after_round"] < 1 << 63,
          "statement after_round must be a round number")
    field(isinstance(doc["public_key"], str) and bool(PUBKEY_HEX.match(doc["public_key"])), "public_key must be 96 hex digits")
    for k in ("proof_of_possession", "signature"):
        field(isinstance(doc[k], str) and bool(SIG_HEX.match(doc[k])), f"{k} must be 192 hex digits")
    field(doc["scheme"] == SCHEME, f"scheme must be {SCHEME!r}")


def check_attestation(doc, where: str, check: str, root: str, chain: str, round_: int) -> bytes:
    """One attestation binds this run's order: its shape, proof of possession and signature hold, it is for this
    noise root (hex) and chain, and it was signed while the round before `round_` (the challenges') was the latest.
    Returns the witness's public key; raises Rejected(check)."""
    check_shape(doc, where, check)
    pk = check_signed(doc, where, check, DOMAIN)
    s = doc["statement"]
    need(check, s["noise_root"] == root and s["chain"] == chain,
         f"{where} attests noise root {s['noise_root'][:16]}… on chain {s['chain'][:16]}…, this run's is {root[:16]}… "
         f"on {chain[:16]}…")
    need(check, round_ == s["after_round"] + 1,
         f"{where} was signed while round {s['after_round']} was the latest: the challenges must come from round "
         f"{s['after_round'] + 1}, not {round_}")
    return pk
