"""Stage 4, commit: the proofs' public hashes against the claims (base, chain, final, schedule), and the
data owners' signed roots against the batch commitments (verifier/owners.py)."""
from __future__ import annotations

import ezkl

from zkpot.spec.errors import Rejected
from zkpot.spec.layout import batch_at
from zkpot.verifier.owners import check_owners
from zkpot.verifier.read import Bundle
from zkpot.verifier.report import Report


def check_claims(m: dict, instances: list[list[str]], batches: list[str], base: str,
                 expected: list[list[tuple[int, int]]], report: Report) -> None:
    """Base, chain, final and schedule, on the proofs' public hashes alone."""

    def fail(check, msg, chunk=None):
        report.failures.append(Rejected(check, msg, chunk))

    # base: the first state is the public base model
    if m["base"].get("commitment") != base:
        fail("base", "published base weights and salt do not hash to the manifest's base commitment")
    elif not instances or instances[0][0] != base:
        fail("base", "first proof does not start from the base model", 0)
    else:
        report.passed.append(("base", "the first proof starts from the public base weights"))

    # chain: every state is the previous proof's output
    broken = [c for c in range(1, len(instances)) if instances[c][0] != instances[c - 1][-1]]
    for c in broken:
        fail("chain", f"H(state_in) is not chunk {c - 1}'s H(state_out)", c)
    if not broken:
        report.passed.append(("chain", f"{max(len(instances) - 1, 0)} links, output to input"))

    # final: the last state is the announced model
    if not instances or instances[-1][-1] != m["final"].get("commitment"):
        fail("final", "last H(state_out) is not the announced final commitment", len(instances) - 1)
    else:
        report.passed.append(("final", f"run ends at {m['final']['commitment'][:16]}…"))

    # schedule: committed batches, each once per epoch, in the public order
    before = len(report.failures)
    if len(set(batches)) != len(batches):
        fail("schedule", "the dataset commits to the same batch twice")
    if ezkl.poseidon_hash(batches)[0] != m["dataset"].get("root"):
        fail("schedule", "batch commitments do not hash to the dataset root")
    claimed = [[tuple(s) for s in c.get("steps", [])] for c in m["chunks"]]
    if len(claimed) != len(expected):
        fail("schedule", f"{len(claimed)} proofs in the manifest, the public schedule needs {len(expected)}")
    elif claimed != expected:
        fail("schedule", "manifest order differs from the order the public seed gives")
    for c, steps in enumerate(expected[: len(instances)]):
        for i, (e, b) in enumerate(steps):
            if instances[c][batch_at(i, "dp" in m["run"])] != batches[b]:
                fail("schedule", f"step {i} uses a batch other than committed batch {b} (epoch {e})", c)
    if len(report.failures) == before:
        report.passed.append(("schedule", f"{m['run']['epochs']} epochs x {len(batches)} committed batches, public order"))


def check_data_owners(b: Bundle, named: list[bytes] | None, report: Report) -> None:
    """The owners' signed statements against the batch commitments (verifier/owners.py)."""
    passed, warning = check_owners(b.m, b.batches, named)
    if passed:
        report.passed.append(("owners", passed))
    if warning:
        report.warnings.append(warning)
