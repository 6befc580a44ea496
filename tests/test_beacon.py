"""spec/beacon.py: drand rounds verified offline (real League of Entropy rounds, a local beacon), and the DP challenge.

Real vectors, as published (their sources next to each); every randomness is recomputed, never read:
- the mainnet default chain's /info, rounds 1337 and 72785 (noislabs/drand-verify README: its example's round 1337
  with the randomness it prints, and its JS example's round 72785), round 1 with its randomness (drand-client's
  JS tests; drand-verify's tests use its signature);
- the unchained testnet chain (drand/tlock-js src/drand/defaults.ts) and its round 223344 (drand-verify README);
- quicknet's /info (tlock-js defaults) and its round 657413 with its randomness (mcdcam/python-drand-verify README).
Pairing checks (~0.4 s each in py_ecc) are counted in each test's docstring: about 20 in all.
"""
from __future__ import annotations

import hashlib
import itertools

import pytest

from tests.beacon_local import LocalBeacon
from zkpot.spec import beacon as B
from zkpot.spec.errors import Rejected

MAINNET_INFO = {   # GET https://api.drand.sh/info (the default chain)
    "public_key": "868f005eb8e6e4ca0a47c8a77ceaa5309a47978a7c71bc5cce96366b5d7a569937c529eeda66c7293784a9402801af31",
    "period": 30, "genesis_time": 1595431050,
    "hash": "8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce",
    "groupHash": "176f93498eac9ca337150b46d21dd58673ea4e3581185f869672e59fa4cb390a",
    "schemeID": "pedersen-bls-chained", "metadata": {"beaconID": "default"}}
ROUND_1337 = {   # GET https://api.drand.sh/public/1337, without its randomness (set below, from sha256(signature))
    "round": 1337,
    "previous_signature": "80d95247ddf1bb3acf5738497a5f10406be283144603f63d714bb1a44ff6b93285ae2697fffeb50c68862bd9fbecd4b2"
                          "04b1798d2686b4ac5d573615031d9d67e6168bde9a7adf1161430a498ca701a25c216aee3e38ffd5290369034fa050a2",
    "signature": "945b08dcb30e24da281ccf14a646f0630ceec515af5c5895e18cc1b19edd65d156b71c776a369af3487f1bc6af106250"
                 "0b059e01095cc0eedce91713977d7735cac675554edfa0d0481bb991ed93d333d08286192c05bf6b65d20f23a37fc7bb"}
RANDOMNESS_1337 = "2660664f8d4bc401194d80d81da20a1e79480f65b8e2d205aecbd143b5bfb0d3"   # as drand-verify prints it
ROUND_1 = {   # GET https://drand.cloudflare.com/public/1 (drand-verify's and drand-client's tests): chained to groupHash
    "round": 1, "previous_signature": MAINNET_INFO["groupHash"],
    "signature": "8d61d9100567de44682506aea1a7a6fa6e5491cd27a0a0ed349ef6910ac5ac20ff7bc3e09d7c046566c9f7f3c6f3b101"
                 "04990e7cb424998203d8f7de586fb7fa5f60045417a432684f85093b06ca91c769f0e7ca19268375e659c2a2352b4655"}
RANDOMNESS_1 = "101297f1ca7dc44ef6088d94ad5fb7ba03455dc33d53ddb412bbc4564ed986ec"
ROUND_72785 = {
    "round": 72785,
    "previous_signature": "a609e19a03c2fcc559e8dae14900aaefe517cb55c840f6e69bc8e4f66c8d18e8a609685d9917efbfb0c37f058c2de88f"
                          "13d297c7e19e0ab24813079efe57a182554ff054c7638153f9b26a60e7111f71a0ff63d9571704905d3ca6df0b031747",
    "signature": "82f5d3d2de4db19d40a6980e8aa37842a0e55d1df06bd68bddc8d60002e8e959eb9cfa368b3c1b77d18f02a54fe047b8"
                 "0f0989315f83b12a74fd8679c4f12aae86eaf6ab5690b34f1fddd50ee3cc6f6cdf59e95526d5a5d82aaa84fa6f181e42"}
TESTNET_UNCHAINED_INFO = {
    "public_key": "8200fc249deb0148eb918d6e213980c5d01acd7fc251900d9260136da3b54836ce125172399ddc69c4e3e11429b62c11",
    "period": 3, "genesis_time": 1651677099,
    "hash": "7672797f548f3f4748ac4bf3352fc6c6b6468c9ad40ad456a397545c6e2df5bf",
    "groupHash": "65083634d852ae169e21b6ce5f0410be9ed4cc679b9970236f7875cff667e13d",
    "schemeID": "pedersen-bls-unchained", "metadata": {"beaconID": "testnet-unchained-3s"}}
ROUND_223344 = {
    "round": 223344,
    "signature": "94f6b85df7cce7237e8e7df66d794ddad092de5d8bb6a791b97e905aa89852e506ac36a792eba7021e22eebf34891f89"
                 "14bf9a8dd9233ea0a4c5ca00ef8404999f899073dd2eade61fe54077fee8168f83dcb61a758b6883b38904054e64a433"}
QUICKNET_INFO = {
    "public_key": "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d10645"
                  "10d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a",
    "period": 3, "genesis_time": 1692803367,
    "hash": "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971",
    "groupHash": "f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e",
    "schemeID": "bls-unchained-g1-rfc9380", "metadata": {"beaconID": "quicknet"}}
ROUND_657413 = {
    "round": 657413,
    "signature": "b713718a38ae728dfd477991af2822e08d2f305e47718cef9f7848ce4050e7be41076862b98fad56e91a6b85b89cd97b"}
RANDOMNESS_657413 = "fc1873a13f3545aeade8401532ef5519920652eee6b0d2b19ca12643b87b3587"


def with_randomness(doc: dict) -> dict:
    return {**doc, "randomness": hashlib.sha256(bytes.fromhex(doc["signature"])).hexdigest()}


def rehashed(info: dict) -> dict:
    """info with its hash recomputed: a self-consistent chain info (the hash check cannot catch the change)."""
    h = B.chain_hash(info["period"], info["genesis_time"], bytes.fromhex(info["public_key"]),
                     bytes.fromhex(info["groupHash"]), info["metadata"]["beaconID"])
    return {**info, "hash": h}


def flip(hex_text: str, bit: int = 0) -> str:
    """hex_text with one bit changed (bit 0: the lowest bit of the last byte)."""
    raw = bytearray(bytes.fromhex(hex_text))
    raw[-1 - bit // 8] ^= 1 << (bit % 8)
    return raw.hex()


def rejected(check: str, fn, *args, **kw) -> Rejected:
    with pytest.raises(Rejected) as e:
        fn(*args, **kw)
    assert e.value.check == check, f"expected {check}, got {e.value}"
    return e.value


@pytest.fixture(scope="module")
def mainnet() -> B.Chain:
    return B.check_chain_info(MAINNET_INFO, pinned=B.MAINNET_DEFAULT)


@pytest.fixture(scope="module")
def beacons() -> dict[str, LocalBeacon]:
    return {s: LocalBeacon(s) for s in B.SIG_GROUP}


# --- drand's formats, against real chains ----------------------------------------------------------

def test_py_ecc_g2basic_is_drands_scheme():
    from py_ecc.bls import G2Basic
    assert G2Basic.DST == B.DST_G2 == b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_"


def test_real_chain_infos_hash_as_drand_hashes_them():
    """Three real chains' hashes recomputed from their info (default and other beacon IDs, G1 and G2 keys). 0 pairings."""
    for info in (MAINNET_INFO, TESTNET_UNCHAINED_INFO, QUICKNET_INFO):
        chain = B.check_chain_info(info, pinned=info["hash"])
        assert chain.hash == info["hash"] and chain.scheme == info["schemeID"]
    assert B.chain_hash(30, 1595431050, bytes.fromhex(MAINNET_INFO["public_key"]),
                        bytes.fromhex(MAINNET_INFO["groupHash"]), "") == B.MAINNET_DEFAULT   # "" = "default"
    rejected("beacon-chain", B.check_chain_info, QUICKNET_INFO, pinned=B.MAINNET_DEFAULT)


def test_a_real_mainnet_round_verifies_and_one_bit_changed_does_not(mainnet):
    """Rounds 1, 1337 and 72785 of the mainnet default chain; a bit of the signature, of the previous signature, the
    round number. 6 pairings."""
    r = B.check_round(mainnet, with_randomness(ROUND_1337))
    assert r.randomness.hex() == RANDOMNESS_1337 and r.round == 1337 and r.chain == B.MAINNET_DEFAULT
    assert B.check_round(mainnet, with_randomness(ROUND_72785)).round == 72785
    assert B.check_round(mainnet, with_randomness(ROUND_1)).randomness.hex() == RANDOMNESS_1
    for key, bit in (("signature", 5), ("previous_signature", 0)):
        changed = with_randomness({**ROUND_1337, key: flip(ROUND_1337[key], bit)})
        rejected("beacon-signature", B.check_round, mainnet, changed)
    rejected("beacon-signature", B.check_round, mainnet, with_randomness({**ROUND_1337, "round": 1338}))   # same signature


def test_real_unchained_and_quicknet_rounds_verify():
    """pedersen-bls-unchained (testnet) and quicknet (G1 signatures, py_ecc's RFC 9380 hash to G1); a bit of each
    signature changed. 4 pairings at most."""
    testnet, quicknet = B.check_chain_info(TESTNET_UNCHAINED_INFO), B.check_chain_info(QUICKNET_INFO, pinned=B.QUICKNET)
    assert B.check_round(testnet, with_randomness(ROUND_223344)).round == 223344
    assert B.check_round(quicknet, with_randomness(ROUND_657413)).randomness.hex() == RANDOMNESS_657413
    for chain, doc in ((testnet, ROUND_223344), (quicknet, ROUND_657413)):
        changed = with_randomness({**doc, "signature": flip(doc["signature"], 9)})
        rejected("beacon-signature", B.check_round, chain, changed)


# --- hostile chain info: every field --------------------------------------------------------------

INFO_CHANGES = {   # field -> values it must not take (each rejected at beacon-chain)
    "public_key": [MAINNET_INFO["public_key"].upper(), MAINNET_INFO["public_key"][:-2], "0x" + MAINNET_INFO["public_key"],
                   flip(MAINNET_INFO["public_key"]), 7],
    "period": [31, 0, -30, 30.0, "30", True, 1 << 32],
    "genesis_time": [1595431051, -1, 1595431050.0, "1595431050", None],
    "hash": [flip(MAINNET_INFO["hash"]), MAINNET_INFO["hash"].upper(), MAINNET_INFO["hash"][:-2]],
    "groupHash": [flip(MAINNET_INFO["groupHash"]), MAINNET_INFO["groupHash"] + "00", 0],
    "schemeID": ["pedersen-bls-unchained", "bls-unchained-g1-rfc9380", "bls-unchained-on-g1", "bls-bn254-unchained-on-g1",
                 "", None],
    "metadata": [{"beaconID": "quicknet"}, {"beaconID": "default", "x": 1}, {}, {"beaconID": 0}, "default",
                 {"beaconID": "d\u00e9fault"}],
}


def test_every_field_of_chain_info_changed_is_rejected():
    """Each field of the mainnet info changed, removed, and an extra field: all at beacon-chain. 0 pairings."""
    assert set(INFO_CHANGES) == set(B.INFO_KEYS)
    for key, values in INFO_CHANGES.items():
        for v in values:
            rejected("beacon-chain", B.check_chain_info, {**MAINNET_INFO, key: v})
        rejected("beacon-chain", B.check_chain_info, {k: w for k, w in MAINNET_INFO.items() if k != key})
    rejected("beacon-chain", B.check_chain_info, {**MAINNET_INFO, "extra": 1})
    for hostile in (None, [], "info", [MAINNET_INFO]):
        rejected("beacon-chain", B.check_chain_info, hostile)
    # self-consistent changes (hash recomputed) are another chain: refused once pinned, or by its known scheme
    for key, v in (("period", 31), ("genesis_time", 1), ("groupHash", "00" * 32), ("metadata", {"beaconID": "x"})):
        other = rehashed({**MAINNET_INFO, key: v})
        assert B.check_chain_info(other).hash != B.MAINNET_DEFAULT
        rejected("beacon-chain", B.check_chain_info, other, pinned=B.MAINNET_DEFAULT)
    rejected("beacon-chain", B.check_chain_info, {**MAINNET_INFO, "schemeID": "pedersen-bls-unchained"})
    # keys that are no point of the subgroup: the identity, an x off the curve (hash consistent: the key check fails)
    for bad in ("c0" + "00" * 47, "80" + "00" * 47, "9f" + "ff" * 47):
        rejected("beacon-chain", B.check_chain_info, rehashed({**MAINNET_INFO, "public_key": bad}))
    rejected("beacon-chain", B.check_chain_info, rehashed({**QUICKNET_INFO, "public_key": "c0" + "00" * 95}))
    e = rejected("beacon-chain", B.check_chain_info, rehashed({**MAINNET_INFO, "public_key": off_subgroup_g1().hex()}))
    assert "subgroup" in str(e)


def off_subgroup_g1() -> bytes:
    """A point of the curve E(Fq) outside its prime-order subgroup (almost every point is: the cofactor is ~2^126)."""
    from py_ecc.bls.g2_primitives import G1_to_pubkey, subgroup_check
    from py_ecc.optimized_bls12_381 import FQ, field_modulus as q
    for x in itertools.count(1):
        y = pow((x ** 3 + 4) % q, (q + 1) // 4, q)   # q = 3 mod 4: the square root, if there is one
        if y * y % q == (x ** 3 + 4) % q and not subgroup_check((FQ(x), FQ(y), FQ(1))):
            return G1_to_pubkey((FQ(x), FQ(y), FQ(1)))


def test_unsupported_schemes_are_refused_in_one_line():
    e = rejected("beacon-chain", B.check_chain_info, {**MAINNET_INFO, "schemeID": "bls-unchained-on-g1"})
    assert "not supported" in str(e) and "\n" not in str(e)


# --- hostile rounds: every field ------------------------------------------------------------------

def test_every_field_of_a_round_changed_is_rejected(mainnet):
    """Each field of real round 1337 changed (at the check that owns it), removed, and an extra field. 2 pairings:
    previous_signature changed, signature changed with its randomness recomputed (round: the test above)."""
    good = with_randomness(ROUND_1337)
    assert set(good) == set(B.ROUND_KEYS[True])
    shape = {"round": [0, -1, 1 << 64, 1337.0, "1337", True, None],
             "signature": [good["signature"].upper(), good["signature"][:-2], good["signature"] + "00", "", 1],
             "previous_signature": [good["previous_signature"][:-2], good["previous_signature"].upper(), "00" * 32, None],
             "randomness": [good["randomness"].upper(), good["randomness"][:-2], 0]}
    assert set(shape) == set(good)
    for key, values in shape.items():
        for v in values:
            rejected("beacon-round", B.check_round, mainnet, {**good, key: v})
        rejected("beacon-round", B.check_round, mainnet, {k: w for k, w in good.items() if k != key})
    rejected("beacon-round", B.check_round, mainnet, {**good, "extra": 0})
    for hostile in (None, [], "round"):
        rejected("beacon-round", B.check_round, mainnet, hostile)
    # randomness that is not sha256(signature): rejected before any pairing, whatever the signature
    rejected("beacon-randomness", B.check_round, mainnet, {**good, "randomness": flip(good["randomness"])})
    rejected("beacon-randomness", B.check_round, mainnet, {**good, "randomness": hashlib.sha256(b"").hexdigest()})
    rejected("beacon-randomness", B.check_round, mainnet, {**good, "signature": flip(good["signature"], 3)})
    rejected("beacon-signature", B.check_round, mainnet, with_randomness({**good, "signature": flip(good["signature"], 3)}))
    rejected("beacon-signature", B.check_round, mainnet,
             {**good, "previous_signature": flip(good["previous_signature"], 77)})


# --- the local beacon -----------------------------------------------------------------------------

def test_the_local_beacon_signs_as_drand_does_in_each_scheme(beacons):
    """A round of each scheme verifies; another round number with the same signature does not. 6 pairings."""
    for scheme, beacon in beacons.items():
        chain = B.check_chain_info(beacon.info(), pinned=beacon.hash)
        assert chain.scheme == scheme and chain.beacon_id == "zkpot-local"
        doc = beacon.round(3)
        assert B.check_round(chain, doc).randomness == hashlib.sha256(beacon.signature(3)).digest()
        replayed = {**doc, "round": 4}   # round 3's signature (and randomness) presented as round 4's
        rejected("beacon-signature", B.check_round, chain, replayed)


def test_another_key_does_not_verify_the_round(beacons):
    """The same round signed by another seed's key: its own chain verifies it, the first chain does not. 2 pairings."""
    mine, other = beacons[B.UNCHAINED], LocalBeacon(B.UNCHAINED, seed=b"someone else")
    assert mine.hash != other.hash and mine.info()["public_key"] != other.info()["public_key"]
    chain, other_chain = B.check_chain_info(mine.info()), B.check_chain_info(other.info())
    assert B.check_round(other_chain, other.round(5)).round == 5
    rejected("beacon-signature", B.check_round, chain, other.round(5))
    # the other key under my chain's hash: not the chain's hash any more
    rejected("beacon-chain", B.check_chain_info, {**mine.info(), "public_key": other.info()["public_key"]})


def test_chained_rounds_need_the_true_previous_signature(beacons):
    """Round 3 of the chained beacon with round 1's signature as its previous one; round 1 chains to groupHash.
    2 pairings."""
    beacon = beacons[B.CHAINED]
    chain = B.check_chain_info(beacon.info())
    wrong = {**beacon.round(3), "previous_signature": beacon.signature(1).hex()}
    rejected("beacon-signature", B.check_round, chain, wrong)
    first = beacon.round(1)
    assert first["previous_signature"] == beacon.info()["groupHash"]
    assert B.check_round(chain, first).previous_signature == chain.group_hash
    rejected("beacon-round", B.check_round, chain, {**first, "previous_signature": flip(first["previous_signature"])})
    rejected("beacon-round", B.check_round, chain, {**first, "previous_signature": beacon.signature(2).hex()})


def test_the_scheme_decides_the_round_document_and_the_message(beacons):
    """schemeID is not in drand's chain hash: relabelling a chain keeps its hash, yet no round of it verifies under
    the other label (another message is signed). 1 pairing."""
    unchained = beacons[B.UNCHAINED]
    relabelled = B.check_chain_info({**unchained.info(), "schemeID": B.CHAINED})
    assert relabelled.hash == unchained.hash
    doc = unchained.round(2)
    rejected("beacon-round", B.check_round, relabelled, doc)   # no previous_signature
    extra = {**doc, "previous_signature": "00" * 96}
    rejected("beacon-round", B.check_round, B.check_chain_info(unchained.info()), extra)
    rejected("beacon-signature", B.check_round, relabelled, {**doc, "previous_signature": unchained.signature(1).hex()})
    # a G2-signature chain relabelled quicknet: its 48-byte key is refused before any round
    rejected("beacon-chain", B.check_chain_info, {**unchained.info(), "schemeID": B.QUICKNET_SCHEME})


def test_round_times(mainnet):
    """Round 1 at genesis, one round per period; round_at is round_time's inverse on [round_time(r), round_time(r+1))."""
    assert B.round_time(mainnet, 1) == 1595431050
    assert B.round_time(mainnet, 1337) == 1595431050 + 1336 * 30
    for r in (1, 2, 1337, 72785, 10 ** 7):
        t = B.round_time(mainnet, r)
        assert B.round_at(mainnet, t) == r and B.round_at(mainnet, t + 29) == r and B.round_at(mainnet, t + 29.999) == r
        assert B.round_at(mainnet, t - 1) == r - 1 and B.round_at(mainnet, t + 30) == r + 1
    assert B.round_at(mainnet, 0) == 0 and B.round_at(mainnet, 1595431049.5) == 0
    for bad in (0, -1, 1.0, True):
        with pytest.raises(ValueError):
            B.round_time(mainnet, bad)


# --- the challenge --------------------------------------------------------------------------------

R = hashlib.sha256(b"randomness").digest()
ROOT = hashlib.sha256(b"root").digest()


def felt(i: int) -> str:
    return i.to_bytes(32, "little").hex()


def test_commitment_root_is_a_function_of_the_values_in_order():
    hashes = [felt(i * 7919 + 1) for i in range(6)]
    root = B.commitment_root(hashes)
    assert len(root) == 32 and root == B.commitment_root(list(hashes))
    assert B.commitment_root([h.upper() for h in hashes]) == root   # the same values
    others = {B.commitment_root(hashes[::-1]), B.commitment_root(hashes[:-1]), B.commitment_root(hashes + [felt(0)])}
    for i in range(len(hashes)):
        changed = felt(int.from_bytes(bytes.fromhex(hashes[i]), "little") ^ 1)
        others.add(B.commitment_root(hashes[:i] + [changed] + hashes[i + 1:]))
    assert root not in others and len(others) == 3 + len(hashes)
    assert B.commitment_root([felt(1)]) != hashlib.sha256(bytes.fromhex(felt(1))).digest()   # domain-separated
    for bad in ([], None, [1], ["0x" + felt(1)[2:]], [felt(1)[:-2]], ["ff" * 32], (felt(1),)):
        rejected("beacon-challenge", B.commitment_root, bad)


def test_challenge_words_are_deterministic_in_range_and_change_with_every_input():
    words = B.challenge_words(R, ROOT, 3, 64, 8)
    assert words == B.challenge_words(R, ROOT, 3, 64, 8) and len(words) == 64
    assert all(0 <= w < 256 for w in words)
    assert B.challenge_words(R, ROOT, 3, 0, 8) == []
    variants = [B.challenge_words(bytes([R[0] ^ 1]) + R[1:], ROOT, 3, 64, 8),
                B.challenge_words(R, ROOT[:-1] + bytes([ROOT[-1] ^ 0x80]), 3, 64, 8),
                B.challenge_words(R, ROOT, 4, 64, 8),
                B.challenge_words(R, ROOT, 3, 65, 8)[:64],   # no challenge is a prefix of a longer one's
                B.challenge_words(R, ROOT, 3, 64, 9),
                B.challenge_words(ROOT, R, 3, 64, 8)]        # randomness and root are not interchangeable
    for v in variants:
        assert sum(a == b for a, b in zip(v, words)) < 8   # ~64/256 equal by chance
    for bits in (1, 12, 24):
        ws = B.challenge_words(R, ROOT, 0, 2000, bits)
        assert all(0 <= w < 1 << bits for w in ws) and max(ws) >= (1 << bits) * 0.99 - 1
        assert 0.4 < sum(w >> (bits - 1) for w in ws) / len(ws) < 0.6   # the top bit is used
    for args in ((R[:31], ROOT, 0, 1, 8), (R, ROOT + b"\0", 0, 1, 8), (R, ROOT, -1, 1, 8), (R, ROOT, 0, -1, 8),
                 (R, ROOT, 0, 1, 0), (R, ROOT, 0, 1, 25), (R, ROOT, 0, 1, True), (R.hex(), ROOT, 0, 1, 8)):
        with pytest.raises(ValueError):
            B.challenge_words(*args)


def chi_square(counts: list[int], n: int) -> float:
    expected = n / len(counts)
    return sum((c - expected) ** 2 / expected for c in counts)


def test_challenge_words_are_uniform_and_independent():
    """Chi-square over 256 cells (255 degrees of freedom: mean 255, sd 22.6), bounds at 5 sd: single words of 8
    bits over many steps, and pairs of consecutive 4-bit words (independence)."""
    n_steps, per_step = 200, 256
    counts = [0] * 256
    for step in range(n_steps):
        for w in B.challenge_words(R, ROOT, step, per_step, 8):
            counts[w] += 1
    assert 142 < chi_square(counts, n_steps * per_step) < 368
    pairs = [0] * 256
    ws = B.challenge_words(R, ROOT, 0, 2 * 51200, 4)
    for a, b in zip(ws[::2], ws[1::2]):
        pairs[a * 16 + b] += 1
    assert 142 < chi_square(pairs, 51200) < 368
    top = [0] * 256   # the high bits of 24-bit words
    for w in B.challenge_words(ROOT, R, 9, 51200, 24):
        top[w >> 16] += 1
    assert 142 < chi_square(top, 51200) < 368
