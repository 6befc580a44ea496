"""Stage 3, prove: every proof verified against the derived keys: the chunk proofs, or a folded run's run
proof (verify_aggr against the derived aggregation vk) and the decider's pairing on every accumulator."""
from __future__ import annotations

from zkpot.circuits import pipeline
from zkpot.spec.bundle import path_in
from zkpot.spec.errors import CannotCheck, Rejected
from zkpot.spec.fold_plan import ACC_INSTANCES, check_recorded, logrows_for, plan
from zkpot.spec.layout import chunk_instances
from zkpot.spec.proofs import read_instances
from zkpot.verifier.derive import Derived, check_vk
from zkpot.verifier.read import Bundle, full_srs_of, run_node
from zkpot.verifier.report import Report


def verify_proofs(b: Bundle, d: Derived, deep: bool, bind: bool, report: Report, on_proof, say) -> list[list[str]]:
    """The proofs' public hashes, once every proof is verified against the derived keys. A folded run
    is checked from its run proof when its aggregation vk can be derived here; otherwise from its
    chunk proofs, and the report says so."""
    if "fold" in b.m:
        check_tree(b.m)
        try:
            leaves = verify_fold(b, d, bind, report, say)
        except CannotCheck as e:
            if not all(path_in(b.source, c["proof"]).is_file() for c in b.m["chunks"]):
                raise
            report.warnings.append(f"the run proof was not used ({e}); every chunk proof was verified instead")
        else:
            if not deep:
                return leaves
            instances = verify_chunks(b, d, report, on_proof)
            if instances != leaves:
                report.failures.append(Rejected("fold", "the run proof's chunk instances differ from the chunk proofs in the bundle"))
            return instances
    return verify_chunks(b, d, report, on_proof)


def verify_chunks(b: Bundle, d: Derived, report: Report, on_proof) -> list[list[str]]:
    S, width = b.m["run"]["steps_per_proof"], chunk_instances(b.m["run"]["steps_per_proof"], "dp" in b.m["run"])
    names = [c["proof"] for c in b.m["chunks"]]
    b.check(names)
    check_vk(d.vk, d.logrows, "proofs")
    srs_file, instances = b.path(b.m["srs"]["file"]), []
    for c, name in enumerate(names):
        try:
            proof = b.path(name)
            instances.append(read_instances(proof, "proofs", width, c))
            if not pipeline.verify(proof, d.settings, d.vk, srs_file):
                report.failures.append(Rejected("proofs", "proof does not verify against the vk", c))
        except Rejected as e:
            report.failures.append(e)
            instances.append([None] * width)
        on_proof(c + 1, len(names))
    if not any(f.check == "proofs" for f in report.failures):
        report.passed.append(("proofs", f"{len(instances)} proofs of {S} step(s) verify against the derived vk"))
    return instances


def verify_fold(b: Bundle, d: Derived, bind: bool, report: Report, say) -> list[list[str]]:
    """verify_aggr on the run proof against the derived aggregation vk, then the decider pairing on
    every accumulator it carries. CannotCheck where the aggregation vk cannot be derived here."""
    top, levels = run_node(b.m), b.m["fold"]["levels"]
    srs_file, vk = b.path(b.m["srs"]["file"]), b.path(top["vk"])
    if bind:
        from zkpot.verifier.rebuild import derived_run_vk

        logrows = logrows_for(int(b.m["fold"]["fan_in"]))
        vk = derived_run_vk(d.claims, d.onnx, lambda: full_srs_of(b), b.srs["sha256"], plan(len(b.m["chunks"]),
                            int(b.m["fold"]["fan_in"])), logrows, say)
        if vk.read_bytes() != b.path(top["vk"]).read_bytes():
            raise Rejected("vk", f"{top['vk']} is not the aggregation key the claims' circuit derives "
                                 f"({len(levels)} level(s), fan-in {b.m['fold']['fan_in']}, logrows {logrows}): the run proof "
                                 "folds proofs of another circuit")
        report.passed.append(("vk", f"{top['vk']} = setup_aggregate over the derived circuit's samples "
                                    f"({len(levels)} level(s)), byte for byte"))
    else:
        report.unbound.append(f"{top['vk']} is the bundle's own (--trust-bundle-keys)")
    check_vk(vk, int(top["logrows"]), "fold")
    if not pipeline.verify_aggr(b.path(top["proof"]), vk, int(top["logrows"]), srs_file):
        raise Rejected("fold", "the run proof does not verify against the aggregation vk")
    instances = read_instances(b.path(top["proof"]), "fold")
    leaves, accs = unfold(instances, levels, chunk_instances(int(b.m["run"]["steps_per_proof"]), "dp" in b.m["run"]))
    from zkpot.verifier import decider  # (py_ecc: imported by folded runs only)

    try:
        g2, s_g2 = decider.srs_g2(srs_file)
    except (decider.DeciderError, OSError) as e:
        raise Rejected("pairing", f"cannot read the SRS's G2 points ({e})") from None
    try:
        bad = decider.decide_all(accs, g2, s_g2)
    except decider.DeciderError as e:
        raise Rejected("pairing", str(e)) from None
    if bad is not None:
        raise Rejected("pairing", f"accumulator {bad} of {len(accs)} fails e(lhs, [1]_2) = e(rhs, [s]_2): "
                                  "a folded proof is invalid, or the SRS is not the one the proofs were made with")
    report.passed.append(("fold", f"run proof ({len(levels)} level(s), fan-in {b.m['fold']['fan_in']}) verifies "
                                  f"with ezkl.verify_aggr, covering {len(leaves)} chunk proofs"))
    report.passed.append(("pairing", f"{len(accs)} KZG accumulator(s) pass e(lhs, [1]_2) = e(rhs, [s]_2), "
                                     "in one random linear combination (py_ecc)"))
    return leaves


def check_tree(m: dict) -> None:
    """The recorded tree is exactly the one the fan-in gives: each level folds the one below, in order."""
    try:
        check_recorded(m["fold"], len(m["chunks"]))
    except ValueError as e:
        raise Rejected("fold", str(e)) from None


def unfold(instances: list[str], levels: list, width: int) -> tuple[list[list[str]], list[list[str]]]:
    """Split the run proof's instances into chunk instances and every accumulator in the tree.

    A node's instances are its accumulator (16) then each child's instances in order; a chunk
    proof's are its `width` hashes (spec/layout.chunk_instances).
    """
    leaves, accs = [], []

    def walk(pos: int, depth: int, index: int) -> int:
        if depth == 0:
            leaves.append(instances[pos : pos + width])
            return pos + width
        accs.append(instances[pos : pos + ACC_INSTANCES])
        pos += ACC_INSTANCES
        for child in levels[depth - 1][index]["children"]:
            pos = walk(pos, depth - 1, child)
        return pos

    end = walk(0, len(levels), 0)
    if end != len(instances) or any(len(x) != width for x in leaves):
        raise Rejected("fold", f"run proof has {len(instances)} instances, the tree needs {end}")
    return leaves, accs
