"""Stage 4, DP-SGD: the beacon round, every step's noise commitment and challenge, and the epsilon the claims give.

    beacon     the chain is one the verifier trusts (drand's mainnet chains, or one named with --beacon), and
               the round's signature verifies under its key (spec/beacon.py); its randomness is derived
    noise      every step's noise commitment (a proof instance) is its own: no two steps commit to the same noise
    challenge  every step's H(challenge) is the hash of the r this verifier derives from the round's randomness
               and the root of all the noise commitments (spec/dp.challenge): the trainer cannot choose r
    order      a witness the verifier names (--witness) signed that root while the round before this one was
               the latest (spec/attestation.py): the noise was fixed before r existed, so the trainer could not
               even try several commitments; without such a witness the order is not bound (UNBOUND)
    epsilon    derived from the claims alone (spec/accountant.py): the manifest carries no epsilon to read

The circuit itself (clipping at C, noise SIGMA * C * z from frac(v + r), the update) is derived from the claims
like any step (verifier/derive.py): a circuit without noise, or with another C, is another vk.
"""
from __future__ import annotations

import ezkl

from zkpot.spec import accountant, beacon
from zkpot.spec import dp as dp_spec
from zkpot.spec.errors import Rejected
from zkpot.spec.layout import challenge_at, noise_at, param_count
from zkpot.verifier.report import Report

TRUSTED_CHAINS = (beacon.MAINNET_DEFAULT, beacon.QUICKNET)


def check_dp(m: dict, instances: list[list[str]], expected: list[list[tuple[int, int]]], report: Report,
             chains: list[str] = (), witnesses: list[bytes] = ()) -> None:
    """The DP checks of the module docstring, for a run with run.dp; records passes, raises Rejected."""
    r = m["run"]
    if "dp" not in r:
        return
    rnd = check_beacon(m["beacon"], chains)
    report.passed.append(("beacon", f"drand round {rnd.round} of chain {rnd.chain[:16]}…: its signature verifies, "
                                    "its randomness is derived"))
    steps = [(c, i) for c, chunk in enumerate(expected[: len(instances)]) for i in range(len(chunk))]
    commitments = [instances[c][noise_at(i)] for c, i in steps]
    if None in commitments or len(steps) != sum(len(c) for c in expected):
        raise Rejected("noise", "a proof's instances are missing: the noise commitments cannot be read")
    first = {}
    for t, h in enumerate(commitments):
        if h in first:
            raise Rejected("noise", f"steps {first[h]} and {t} commit to the same noise: every step draws its own",
                           steps[t][0])
        first[h] = t
    report.passed.append(("noise", f"{len(commitments)} steps, each with its own committed noise"))
    root = beacon.commitment_root(commitments)
    n, scale = param_count(r["layout"]["shapes"]), r["scale"]
    for t, (c, i) in enumerate(steps):
        if ezkl.poseidon_hash(dp_spec.challenge(rnd.randomness, root, t, n, scale))[0] != instances[c][challenge_at(i)]:
            raise Rejected("challenge", f"step {t}'s challenge is not the one drand round {rnd.round} and the noise "
                                        "commitments give", c)
    report.passed.append(("challenge", f"every step's challenge r derived from round {rnd.round}'s randomness and the "
                                       "root of the noise commitments: u = frac(v + r) is uniform whatever v was"))
    check_order(m["beacon"]["attestations"], root, rnd, list(witnesses), report)
    report.privacy = privacy(r)
    report.warnings.append("epsilon holds for the noise the circuit adds and ezkl's rescalings after it rounded to "
                           "nearest, as zkpot's prover does: ezkl lets a prover round each of those either way, a "
                           "covert channel of up to one bit per rescaled value that no proof excludes (docs/dp.md)")
    p = report.privacy
    report.passed.append(("epsilon", f"epsilon {p['epsilon']:.4g} at delta {p['delta']:g} (C {p['clip']}, SIGMA "
                                     f"{p['noise']}, {p['epochs']} epoch(s), each example in one batch per epoch; "
                                     f"{p['accountant']}): derived from the claims"))


def check_order(attestations: list[dict], root: bytes, rnd: beacon.Round, witnesses: list[bytes],
                report: Report) -> None:
    """Every attestation in the bundle is a witness's signature on this run's root and chain, made while the round
    before the challenges' was the latest; the order is bound when one of them is by a witness the verifier named."""
    from zkpot.spec.attestation import check_attestation
    from zkpot.spec.signature import short

    signers = [check_attestation(doc, f"attestation {i}", "order", root.hex(), rnd.chain, rnd.round)
               for i, doc in enumerate(attestations)]
    for pk in witnesses:
        if pk not in signers:
            raise Rejected("order", f"witness {short(pk)} you named attested no noise root of this run")
    if witnesses:
        report.passed.append(("order", f"the noise was committed before round {rnd.round}: attested by "
                                       f"{', '.join(short(pk) for pk in witnesses)} while round {rnd.round - 1} was the latest"))
        return
    report.unbound.append(f"order: no witness you named (--witness) attests that the noise was committed before round "
                          f"{rnd.round} ({len(attestations)} attestation(s) by keys you did not name): a trainer who saw "
                          "the round first could have tried many commitments and kept the noise it liked (docs/dp.md)")


def check_beacon(doc: dict, chains: list[str]) -> beacon.Round:
    """The manifest's beacon section: a trusted chain, and a round that verifies under it."""
    chain = beacon.check_chain_info(doc["chain"])
    if chain.hash not in TRUSTED_CHAINS and chain.hash not in chains:
        raise Rejected("beacon", f"chain {chain.hash[:16]}… is neither a drand mainnet chain nor one named with "
                                 "--beacon: anyone holding its key could choose the challenges")
    return beacon.check_round(chain, doc["round"])


def privacy(run: dict) -> dict:
    """epsilon at the claimed delta, from the claims alone: the exact noise the circuit adds (spec/dp_noise.py),
    the sensitivity its clipping proves (spec/dp.sensitivity_quanta), the epochs (no subsampling amplification:
    a fixed partition, each example once per epoch)."""
    dp, n, scale = run["dp"], param_count(run["layout"]["shapes"]), run["scale"]
    sensitivity = dp_spec.sensitivity_quanta(dp["clip"], n, scale)
    got = accountant.epsilon(scale, dp["noise"], dp["clip"], sensitivity, n, run["epochs"], dp["delta"])
    return {"epsilon": got["epsilon"], "delta": dp["delta"], "clip": dp["clip"], "noise": dp["noise"],
            "epochs": run["epochs"], "sensitivity_quanta": sensitivity,
            "accountant": got["accountant"], "delta_tails": got["delta_tails"], "order": got["order"]}
