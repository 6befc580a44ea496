"""A drand round as a format, and a DP run's public challenge derived from it.

drand (League of Entropy) publishes, every `period` seconds, a threshold BLS12-381 signature on the round
number; the round's randomness is sha256(signature). A verifier holding the chain's info checks a round
with one pairing-product equation, offline. What a chain signs depends on its scheme:

    pedersen-bls-chained       message = sha256(previous_signature || round)   key G1 48 B, signature G2 96 B
    pedersen-bls-unchained     message = sha256(round)                         key G1 48 B, signature G2 96 B
    bls-unchained-g1-rfc9380   message = sha256(round)                         key G2 96 B, signature G1 48 B

round is 8 bytes big-endian; the hash-to-curve DST is the IETF basic scheme's of the signature's group
(py_ecc's G2Basic.DST for G2). In the chained scheme, round 1's previous_signature is the chain's groupHash.

A chain's identity is its hash, drand's chain/info.go Info.Hash:
    sha256(period u32 BE || genesis_time i64 BE || public_key || groupHash || beaconID unless "default"/"")
It does not cover schemeID: a scheme relabelled is caught by the key's length or by the signature (each scheme
signs another message), and the chains of KNOWN_CHAINS are pinned to their scheme here.

The challenge (challenge_words, commitment_root): docs/beacon.md.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from zkpot.spec.errors import need
from zkpot.spec.felts import is_felt
from zkpot.spec.signature import PUBKEY_HEX, SIG_HEX

# --- drand's formats ----------------------------------------------------------------------------
CHAINED = "pedersen-bls-chained"
UNCHAINED = "pedersen-bls-unchained"
QUICKNET_SCHEME = "bls-unchained-g1-rfc9380"
DST_G2 = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_"   # = py_ecc G2Basic.DST (tests/test_beacon.py)
DST_G1 = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"
SIG_GROUP = {CHAINED: "G2", UNCHAINED: "G2", QUICKNET_SCHEME: "G1"}   # the signature's group; the key is in the other
REFUSED = {   # drand schemes this verifier does not check, and why
    "bls-unchained-on-g1": "it hashes to G1 with the G2 DST (pre-RFC 9380, drand's deprecated fastnet)",
    "bls-bn254-unchained-on-g1": "it is a BN254 scheme, not BLS12-381",
}
INFO_KEYS = ("public_key", "period", "genesis_time", "hash", "groupHash", "schemeID", "metadata")   # GET /info
METADATA_KEYS = ("beaconID",)
DEFAULT_BEACON_IDS = ("", "default")   # not hashed into the chain's hash (drand's backward compatibility)
ROUND_KEYS = {True: ("round", "randomness", "signature", "previous_signature"),   # GET /public/{round}, chained
              False: ("round", "randomness", "signature")}                       # unchained: no previous_signature

# League of Entropy mainnet chains, by hash (their /info is drand's; each hash recomputed from it in the tests)
MAINNET_DEFAULT = "8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce"   # 30 s, chained, since 2020
QUICKNET = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"          # 3 s, G1 signatures, 2023
KNOWN_CHAINS = {MAINNET_DEFAULT: CHAINED, QUICKNET: QUICKNET_SCHEME}

HASH_HEX = re.compile(r"^[0-9a-f]{64}$")
MAX_BEACON_ID = 64
CHAIN_CHECK, ROUND_CHECK, SIGNATURE_CHECK, RANDOMNESS_CHECK = "beacon-chain", "beacon-round", "beacon-signature", \
    "beacon-randomness"

# --- the challenge --------------------------------------------------------------------------------
CHALLENGE_DOMAIN = b"zkpot/dp-challenge-1\x00"   # SHAKE-256(DOMAIN || randomness || root || step || count || bits)
ROOT_DOMAIN = b"zkpot/dp-noise-root-1\x00"      # sha256(DOMAIN || n || felt_1 || ... || felt_n)
MAX_CHALLENGE_BITS = 24
WORD_BYTES = 3                                   # 24 bits of SHAKE output per word, the low `bits` kept


@dataclass(frozen=True)
class Chain:
    """A drand chain's info, checked: its key is a valid point and `hash` is the hash of the rest."""

    public_key: bytes
    period: int
    genesis_time: int
    hash: str
    group_hash: bytes
    scheme: str
    beacon_id: str


@dataclass(frozen=True)
class Round:
    """A round of `chain`, its signature verified; `randomness` is sha256(signature), derived here."""

    chain: str
    round: int
    signature: bytes
    previous_signature: bytes | None
    randomness: bytes


def _is_int(v, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v < hi


def chain_hash(period: int, genesis_time: int, public_key: bytes, group_hash: bytes, beacon_id: str) -> str:
    """drand's chain hash (module docstring), in hex."""
    h = hashlib.sha256(period.to_bytes(4, "big") + genesis_time.to_bytes(8, "big", signed=True) + public_key + group_hash)
    if beacon_id not in DEFAULT_BEACON_IDS:
        h.update(beacon_id.encode())
    return h.hexdigest()


def _g2_point(data: bytes):
    """A compressed G2 point of the prime-order subgroup, not the identity; None otherwise."""
    from py_ecc.bls.g2_primitives import signature_to_G2, subgroup_check
    from py_ecc.optimized_bls12_381 import is_inf
    try:
        p = signature_to_G2(data)
    except (ValueError, AssertionError):
        return None
    return None if is_inf(p) or not subgroup_check(p) else p


def _g1_point(data: bytes):
    """A compressed G1 point of the prime-order subgroup, not the identity; None otherwise."""
    from py_ecc.bls.g2_primitives import pubkey_to_G1, subgroup_check
    from py_ecc.optimized_bls12_381 import is_inf
    try:
        p = pubkey_to_G1(data)
    except (ValueError, AssertionError):
        return None
    return None if is_inf(p) or not subgroup_check(p) else p


def check_chain_info(doc, pinned: str | None = None) -> Chain:
    """A chain's info as drand's GET /info returns it (hostile JSON): exact keys, hex lengths, a supported
    scheme, a valid key, and `hash` recomputed from the rest. `pinned`: the chain hash the verifier trusts."""
    def field(ok: bool, what: str) -> None:
        need(CHAIN_CHECK, ok, f"chain info: {what}")

    field(isinstance(doc, dict) and set(doc) == set(INFO_KEYS), f"must be an object with exactly {', '.join(INFO_KEYS)}")
    scheme = doc["schemeID"]
    field(isinstance(scheme, str), "schemeID must be a string")
    field(scheme not in REFUSED, f"scheme {scheme!r} is not supported: {REFUSED.get(scheme)}")
    field(scheme in SIG_GROUP, f"scheme {scheme!r} is not supported (only {', '.join(SIG_GROUP)})")
    meta = doc["metadata"]
    field(isinstance(meta, dict) and set(meta) == set(METADATA_KEYS), "metadata must be exactly {beaconID}")
    bid = meta["beaconID"]
    field(isinstance(bid, str) and len(bid) <= MAX_BEACON_ID and bid.isascii() and bid.isprintable(),
          f"metadata.beaconID must be at most {MAX_BEACON_ID} printable ASCII characters")
    key_g1 = SIG_GROUP[scheme] == "G2"
    key_hex = PUBKEY_HEX if key_g1 else SIG_HEX
    field(isinstance(doc["public_key"], str) and bool(key_hex.match(doc["public_key"])),
          f"public_key must be {48 if key_g1 else 96} bytes in lowercase hex for {scheme}")
    field(_is_int(doc["period"], 1, 1 << 32), "period must be an integer number of seconds in [1, 2^32)")
    field(_is_int(doc["genesis_time"], 0, 1 << 63), "genesis_time must be an integer in [0, 2^63)")
    for k in ("hash", "groupHash"):
        field(isinstance(doc[k], str) and bool(HASH_HEX.match(doc[k])), f"{k} must be 32 bytes in lowercase hex")
    pk, group = bytes.fromhex(doc["public_key"]), bytes.fromhex(doc["groupHash"])
    field(doc["hash"] == chain_hash(doc["period"], doc["genesis_time"], pk, group, bid),
          "hash is not the chain hash of this info (period, genesis_time, public_key, groupHash, beaconID)")
    known = KNOWN_CHAINS.get(doc["hash"], scheme)
    field(scheme == known, f"chain {doc['hash'][:16]}… is {known}, not {scheme}")
    field(pinned is None or doc["hash"] == pinned, f"chain {doc['hash'][:16]}… is not the pinned chain {pinned}")
    field((_g1_point if key_g1 else _g2_point)(pk) is not None,
          f"public_key is not a point of the {'G1' if key_g1 else 'G2'} subgroup (or is the identity)")
    return Chain(pk, doc["period"], doc["genesis_time"], doc["hash"], group, scheme, bid)


def message(chain: Chain, round: int, previous_signature: bytes | None) -> bytes:
    """What the chain signs for `round`: sha256(previous_signature || round) chained, sha256(round) unchained."""
    prefix = previous_signature if chain.scheme == CHAINED else b""
    return hashlib.sha256(prefix + round.to_bytes(8, "big")).digest()


def verify_signature(chain: Chain, msg: bytes, signature: bytes) -> bool:
    """The chain's BLS signature on msg: one pairing-product check (two Miller loops, one final exponentiation)."""
    if SIG_GROUP[chain.scheme] == "G2":
        from py_ecc.bls import G2Basic   # its DST is DST_G2 (tests/test_beacon.py)
        return G2Basic.Verify(chain.public_key, msg, signature)
    from py_ecc.bls.hash_to_curve import hash_to_G1
    from py_ecc.optimized_bls12_381 import FQ12, G2, final_exponentiate, neg, pairing
    sig, pk = _g1_point(signature), _g2_point(chain.public_key)
    if sig is None or pk is None:
        return False
    h = hash_to_G1(msg, DST_G1, hashlib.sha256)   # e(sig, g2) == e(H(m), pk)
    product = pairing(G2, sig, final_exponentiate=False) * pairing(pk, neg(h), final_exponentiate=False)
    return final_exponentiate(product) == FQ12.one()


def check_round(chain: Chain, doc) -> Round:
    """A round as drand's GET /public/{round} returns it (hostile JSON): exact keys for the chain's scheme, hex
    lengths, round >= 1, randomness == sha256(signature), and the signature verified (one pairing check)."""
    chained = chain.scheme == CHAINED
    keys = ROUND_KEYS[chained]
    need(ROUND_CHECK, isinstance(doc, dict) and set(doc) == set(keys),
         f"round: must be an object with exactly {', '.join(keys)}")
    need(ROUND_CHECK, _is_int(doc["round"], 1, 1 << 64), "round: round must be an integer in [1, 2^64)")
    on_g2 = SIG_GROUP[chain.scheme] == "G2"
    sig_hex = SIG_HEX if on_g2 else PUBKEY_HEX
    need(ROUND_CHECK, isinstance(doc["signature"], str) and bool(sig_hex.match(doc["signature"])),
         f"round {doc['round']}: signature must be {96 if on_g2 else 48} bytes in lowercase hex")
    need(ROUND_CHECK, isinstance(doc["randomness"], str) and bool(HASH_HEX.match(doc["randomness"])),
         f"round {doc['round']}: randomness must be 32 bytes in lowercase hex")
    previous = None
    if chained:
        first = doc["round"] == 1   # round 1 chains to the genesis seed, the chain's groupHash
        pattern = HASH_HEX if first else SIG_HEX
        need(ROUND_CHECK, isinstance(doc["previous_signature"], str) and bool(pattern.match(doc["previous_signature"])),
             f"round {doc['round']}: previous_signature must be {32 if first else 96} bytes in lowercase hex")
        previous = bytes.fromhex(doc["previous_signature"])
        need(ROUND_CHECK, not first or previous == chain.group_hash,
             "round 1: previous_signature must be the chain's groupHash (its genesis seed)")
    signature = bytes.fromhex(doc["signature"])
    randomness = hashlib.sha256(signature).digest()
    need(RANDOMNESS_CHECK, doc["randomness"] == randomness.hex(),
         f"round {doc['round']}: randomness is not sha256(signature)")
    need(SIGNATURE_CHECK, verify_signature(chain, message(chain, doc["round"], previous), signature),
         f"round {doc['round']}: the signature does not verify for chain {chain.hash[:16]}…")
    return Round(chain.hash, doc["round"], signature, previous, randomness)


def round_time(chain: Chain, round: int) -> int:
    """When `round` is published (unix seconds): genesis + (round - 1) * period; round 1 at genesis."""
    if not _is_int(round, 1, 1 << 64):
        raise ValueError(f"a drand round is an integer >= 1, got {round!r}")
    return chain.genesis_time + (round - 1) * chain.period


def round_at(chain: Chain, unix_time: float) -> int:
    """The latest round published at `unix_time` (0 before genesis): round_time(r) <= t < round_time(r + 1)."""
    if unix_time < chain.genesis_time:
        return 0
    return int((unix_time - chain.genesis_time) // chain.period) + 1


def commitment_root(hashes: list[str]) -> bytes:
    """The root of a run's noise commitments: the felts each step's proof carries as H(noise), in step order.

    sha256(ROOT_DOMAIN || n as 8 bytes BE || each felt as its 32 bytes): a felt is the 64 hex digits ezkl
    writes (spec/felts.py), each is its value's canonical encoding, so the root is a function of the values."""
    need("beacon-challenge", isinstance(hashes, list) and len(hashes) >= 1 and all(is_felt(h) for h in hashes),
         "the noise commitments must be a non-empty list of field elements")
    h = hashlib.sha256(ROOT_DOMAIN + len(hashes).to_bytes(8, "big"))
    for felt in hashes:
        h.update(bytes.fromhex(felt))
    return h.digest()


def challenge_words(randomness: bytes, root: bytes, step: int, count: int, bits: int) -> list[int]:
    """Step `step`'s public challenge: `count` independent uniform integers in [0, 2^bits).

    SHAKE-256(CHALLENGE_DOMAIN || randomness || root || step, count as 8 bytes BE || bits as 1 byte), read
    WORD_BYTES at a time, the low `bits` of each kept: 2^bits divides 2^24, so each word is exactly uniform
    (no modulo bias), and words are independent as the XOF's output is. count and bits are hashed, so no
    challenge is a prefix of another's.

    Why both the beacon's randomness and the root of all steps' noise commitments (Fiat-Shamir salted by the
    beacon): u = frac(v + r) is uniform only if r was unknown when v was committed.
    - randomness alone is not enough when no one can tell that the commitments preceded the round: a trainer
      who saw r first would pick v = u - r and so choose u outright.
    - the root alone (plain Fiat-Shamir) lets the trainer try commitments offline, with no deadline.
    - both: the trainer cannot choose u, since any change to any step's commitment re-draws every step's
      challenge. It can only grind: try 2^g commitment sets (and rounds, if the round is not fixed in advance)
      and keep the one it likes. That keeps the noise uniform except for a selection among 2^g independent
      draws: about g bits of bias in total over the whole run (a covert channel of about g bits), never a
      chosen u. A commitment known to precede the round (docs/beacon.md) brings g to 0.
    """
    if not (isinstance(randomness, bytes) and len(randomness) == 32 and isinstance(root, bytes) and len(root) == 32):
        raise ValueError("challenge_words: randomness and root must be 32 bytes each")
    if not (_is_int(step, 0, 1 << 64) and _is_int(count, 0, 1 << 32) and _is_int(bits, 1, MAX_CHALLENGE_BITS + 1)):
        raise ValueError(f"challenge_words: step in [0, 2^64), count in [0, 2^32), bits in [1, {MAX_CHALLENGE_BITS}]")
    seed = CHALLENGE_DOMAIN + randomness + root + step.to_bytes(8, "big") + count.to_bytes(8, "big") + bytes([bits])
    stream = hashlib.shake_256(seed).digest(WORD_BYTES * count)
    mask = (1 << bits) - 1
    return [int.from_bytes(stream[i:i + WORD_BYTES], "big") & mask for i in range(0, WORD_BYTES * count, WORD_BYTES)]
