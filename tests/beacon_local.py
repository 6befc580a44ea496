"""A local drand beacon for tests: a BLS key from a fixed seed, its chain info, and rounds signed as drand signs them.

    beacon = LocalBeacon()                      # pedersen-bls-unchained: any round costs one signature
    chain = check_chain_info(beacon.info())     # the GET /info document
    rnd = check_round(chain, beacon.round(7))   # the GET /public/7 document

LocalBeacon(CHAINED) signs each round over the previous round's signature (round 1 over groupHash), as drand's
mainnet default chain does: round n costs n signatures the first time (cached), so keep chained rounds small.
LocalBeacon(QUICKNET_SCHEME): a G2 key and G1 signatures (RFC 9380 hash to G1), as drand's quicknet.
A signature costs ~0.1-0.2 s in py_ecc; verifying one (check_round), one pairing check, ~0.4 s.
"""
from __future__ import annotations

import hashlib

from py_ecc.bls import G2Basic
from py_ecc.bls.g2_primitives import G1_to_pubkey, G2_to_signature
from py_ecc.bls.hash_to_curve import hash_to_G1
from py_ecc.optimized_bls12_381 import G2, multiply

from zkpot.spec.beacon import CHAINED, DST_G1, QUICKNET_SCHEME, SIG_GROUP, chain_hash

GENESIS = 1_700_000_000   # 2023-11-14T22:13:20Z
PERIOD = 30


class LocalBeacon:
    def __init__(self, scheme: str = "pedersen-bls-unchained", seed: bytes = b"zkpot local beacon",
                 genesis_time: int = GENESIS, period: int = PERIOD, beacon_id: str = "zkpot-local"):
        self.scheme, self.genesis_time, self.period, self.beacon_id = scheme, genesis_time, period, beacon_id
        self.secret = G2Basic.KeyGen(hashlib.sha256(seed).digest())
        self.on_g2 = SIG_GROUP[scheme] == "G2"
        self.public_key = G2Basic.SkToPk(self.secret) if self.on_g2 else G2_to_signature(multiply(G2, self.secret))
        self.group_hash = hashlib.sha256(b"group of " + seed).digest()
        self._signatures: dict[int, bytes] = {}

    @property
    def hash(self) -> str:
        return chain_hash(self.period, self.genesis_time, self.public_key, self.group_hash, self.beacon_id)

    def info(self) -> dict:
        """The chain's GET /info document."""
        return {"public_key": self.public_key.hex(), "period": self.period, "genesis_time": self.genesis_time,
                "hash": self.hash, "groupHash": self.group_hash.hex(), "schemeID": self.scheme,
                "metadata": {"beaconID": self.beacon_id}}

    def previous(self, n: int) -> bytes:
        """What round n chains to (chained scheme): round n-1's signature, groupHash for round 1."""
        return self.group_hash if n == 1 else self.signature(n - 1)

    def sign(self, message: bytes) -> bytes:
        if self.on_g2:
            return G2Basic.Sign(self.secret, message)
        return G1_to_pubkey(multiply(hash_to_G1(message, DST_G1, hashlib.sha256), self.secret))

    def signature(self, n: int) -> bytes:
        if n not in self._signatures:
            for k in range(1, n) if self.scheme == CHAINED else ():   # iteratively: no deep recursion
                if k not in self._signatures:
                    self.signature(k)
            prefix = self.previous(n) if self.scheme == CHAINED else b""
            self._signatures[n] = self.sign(hashlib.sha256(prefix + n.to_bytes(8, "big")).digest())
        return self._signatures[n]

    def round(self, n: int) -> dict:
        """Round n's GET /public/{n} document."""
        sig = self.signature(n)
        doc = {"round": n, "randomness": hashlib.sha256(sig).hexdigest(), "signature": sig.hex()}
        if self.scheme == CHAINED:
            doc["previous_signature"] = self.previous(n).hex()
        return doc


def quicknet_local(**kw) -> LocalBeacon:
    return LocalBeacon(QUICKNET_SCHEME, **kw)
