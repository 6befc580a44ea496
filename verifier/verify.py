"""Verify a public bundle with public files alone: one call, its stages one module each, read top to bottom.

    1 read      read.py     the manifest, every file it names hashed once into a private copy (files, manifest), and the bundle's
                            SRS verifier part bound to the full SRS the manifest names, which this machine hashed (srs)
    2 derive    derive.py   from the claims: the step graph (run), the settings (circuit), the vk (vk); for a
                rebuild.py  folded run the aggregation vk; each compared with the bundle's file, never taken from it
    3 prove     prove.py    every proof verified against the derived keys (proofs, or fold + pairing: decider.py)
    4 commit    commit.py   base, chain, final, schedule: the proofs' public hashes against the claims; owners:
                owners.py   the data owners' signed roots against the batch commitments; (DP-SGD) beacon,
                dp.py       noise, challenge: every step's noise committed and its challenge derived; epsilon
    5 vouch     vouch.py    (--package, --publisher) the keys someone published and signed
    6 model     model_check.py  (check-model) a model file is the run's final state (given its opening) or its base
    7 predict   inference.py    (--inference) an inference proof is of the run's final model

Every check raises or records a Rejected naming itself (spec/errors.py); report.py turns them into the verdict
(spec/protocol.py): VALID only if every claim the report shows is bound; a check the caller opted out of, or a
model description that cannot be derived, gives UNBOUND; a machine that cannot finish gives CANNOT CHECK HERE;
any failed check gives INVALID.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from zkpot.circuits import srs as srs_mod
from zkpot.spec import cache, claims
from zkpot.spec import protocol as P
from zkpot.spec.artifacts import ArtifactError
from zkpot.spec.errors import BadInput, CannotCheck, Rejected
from zkpot.spec.schedule import expected_chunks
from zkpot.verifier.commit import check_claims, check_data_owners
from zkpot.verifier.derive import check_backbone, derive_circuit
from zkpot.verifier.dp import check_dp
from zkpot.verifier.inference import check_inference, read_opening
from zkpot.verifier.model_check import base_commitment, check_release
from zkpot.verifier.prove import verify_proofs
from zkpot.verifier.read import bind_srs, check_srs_origin, read_bundle
from zkpot.verifier.report import Report
from zkpot.verifier.vouch import vouch


def verify_bundle(public: Path, allow_insecure_dev_srs: bool = False, deep: bool = False, bind: bool = True,
                  package: Path | None = None, publishers: list[bytes] = (), model: Path | None = None,
                  opening: Path | None = None, srs: Path | None = None, inference: Path | None = None,
                  input_opening: Path | None = None, on_proof=lambda c, n: None, say=lambda message: None,
                  owners: list[bytes] | None = None, beacons: list[str] = (), witnesses: list[bytes] = ()) -> Report:
    """Every check on a bundle; see the module docstring. `bind=False` (the CLI's --trust-bundle-keys)
    checks the proofs against the bundle's own vk(s): the verdict is then at best UNBOUND. `model`
    (with the final `opening`, or alone for the base model): is this file the state the run proved?
    `srs`: a full SRS file (hashed here, and remembered by this machine from then on); without it, the
    bundle's SRS must be one this machine has hashed before (circuits/srs.py: see). `inference`: a
    directory `zkpot infer` wrote (with `input_opening`, the hidden inputs' opening): its prediction is
    the run's final model's. `owners`: the data owners' keys the caller trusts (--owner), for a run on
    several owners' data. `beacons`: drand chain hashes the caller trusts besides drand's mainnet chains (--beacon),
    for a DP-SGD run's challenges; `witnesses`: keys (--witness) whose attestation that the noise was committed
    before the beacon round the caller trusts."""
    public, report, start = Path(public), Report(), time.perf_counter()
    if not (public / P.MANIFEST).is_file():  # the caller's path, not a bundle's content: bad input
        raise BadInput(f"{public}: not a bundle directory (no {P.MANIFEST})")
    if srs is not None:
        if srs_mod.logrows_of(srs) == srs_mod.VERIFIER_K:  # (a file that is not an SRS raises here: bad input)
            raise BadInput(f"{srs} is an SRS's verifier part (logrows {srs_mod.VERIFIER_K}), as a bundle carries; "
                           "--srs takes the full file")
        say(f"hashing {Path(srs).name} (the full SRS; remembered by its sha256 from now on)")
        srs = srs_mod.see(srs)["sha256"]
    if input_opening is not None:  # the caller's own file: read before any long work
        read_opening(input_opening)
    cache.root()  # (a cache others can write is refused before any work: spec/cache.py)
    with tempfile.TemporaryDirectory(prefix="zkpot-verify-") as copy:  # each file as it was hashed (read.py)
        copy = Path(copy)
        try:
            b = read_bundle(public, deep, report, copy)                          # 1
            b.srs = bind_srs(b, srs, report)
            check_srs_origin(b, allow_insecure_dev_srs, report)
            what = claims.check_run(b.m, b.batches)
            check_backbone(b, report)
            d = derive_circuit(b, what, bind, report, say)                      # 2
            instances = verify_proofs(b, d, deep, bind, report, on_proof, say)  # 3
            base = base_commitment(b.path(b.m["base"]["file"]), b.m)
            expected = expected_chunks(b.m, len(b.batches))
            check_claims(b.m, instances, b.batches, base, expected, report)  # 4
            check_dp(b.m, instances, expected, report, list(beacons), list(witnesses))
            check_data_owners(b, owners, report)
            if package is not None:                                             # 5
                vouch(b, package, list(publishers), report)
            if model is not None:                                               # 6
                report.passed.append(("model", check_release(b.m, model, opening, b.path(b.m["base"]["file"]))))
            if inference is not None:                                           # 7
                report.prediction = check_inference(b, inference, input_opening, report, say)
        except Rejected as e:
            report.failures.append(e)
        except BadInput:
            raise
        except CannotCheck as e:
            report.cannot_check = str(e)
        except (ArtifactError, KeyError, TypeError, ValueError, AttributeError) as e:
            report.failures.append(Rejected("manifest", f"malformed bundle ({e.__class__.__name__}: {e})"))
    report.seconds = time.perf_counter() - start
    return report
