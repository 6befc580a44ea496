"""A data owner's signed statement, as a format: its shape, the bytes it signs, and its signature.

The owner signs OWNER_DOMAIN || sha256(canonical JSON of its statement) with its BLS key (protocol.OWNER_*);
verifier/owners.py binds the statements to a run's batch commitments, prover/owner.py writes them.
"""
from __future__ import annotations

from zkpot.spec import protocol as P
from zkpot.spec.canonical import canonical_json
from zkpot.spec.errors import Rejected, need
from zkpot.spec.felts import is_felt
from zkpot.spec.signature import PUBKEY_HEX, SCHEME, SIG_HEX, check_possession, signing_message


def statement_bytes(statement: dict) -> bytes:
    """The one serialisation an owner signs (canonical JSON, as package.json)."""
    return canonical_json(statement)


def check_owner_shape(doc, where: str, check: str) -> None:

    """Types and ranges of one owner document (hostile input); raises Rejected(check)."""
    def field(ok: bool, what: str) -> None:
        need(check, ok, f"{where}: {what}")

    field(isinstance(doc, dict) and set(doc) == set(P.OWNER_DOC), f"must be an object with exactly {', '.join(P.OWNER_DOC)}")
    s = doc["statement"]
    field(isinstance(s, dict) and set(s) == set(P.OWNER_STATEMENT),
         f"statement must have exactly {', '.join(P.OWNER_STATEMENT)}")
    field(s["format"] == P.OWNER_FORMAT, f"statement format must be {P.OWNER_FORMAT}")
    field(isinstance(s["name"], str) and 1 <= len(s["name"]) <= P.MAX_OWNER_NAME and s["name"].isprintable(),
         f"statement name must be 1..{P.MAX_OWNER_NAME} printable characters")
    field(is_felt(s["root"]), "statement root must be a field element")
    for k in ("num_batches", "batch_size", "features", "label_width", "scale"):
        field(isinstance(s[k], int) and not isinstance(s[k], bool) and s[k] >= 1, f"statement {k} must be a positive integer")
    field(s["num_batches"] <= P.MAX_STEPS and s["scale"] <= 16, "statement num_batches or scale out of range")
    field(isinstance(doc["public_key"], str) and bool(PUBKEY_HEX.match(doc["public_key"])), "public_key must be 96 hex digits")
    for k in ("proof_of_possession", "signature"):
        field(isinstance(doc[k], str) and bool(SIG_HEX.match(doc[k])), f"{k} must be 192 hex digits")
    field(doc["scheme"] == SCHEME, f"scheme must be {SCHEME!r}")


def check_signed(doc: dict, where: str, check: str, domain: bytes = P.OWNER_DOMAIN) -> bytes:
    """The signer's proof of possession and its signature on the statement (under `domain`: an owner's, or a
    witness's, spec/attestation.py) hold; returns its public key."""
    from py_ecc.bls import G2ProofOfPossession as bls

    pk = bytes.fromhex(doc["public_key"])
    if not bls.KeyValidate(pk):
        raise Rejected(check, f"{where}: public key is not a point of the G1 subgroup")
    check_possession([pk], [bytes.fromhex(doc["proof_of_possession"])], check)
    message = signing_message(statement_bytes(doc["statement"]), domain)
    if not bls.Verify(pk, message, bytes.fromhex(doc["signature"])):
        raise Rejected(check, f"{where}: the signature does not verify on the statement for key {pk.hex()[:16]}…")
    return pk
