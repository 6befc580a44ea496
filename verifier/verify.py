"""Verify a public bundle: proofs, chain, base, final, schedule, files. Public files only.

What each check establishes:
  files     every file is the one the manifest names (sha256)
  circuit   settings expose only hashes (inputs/outputs hashed, params fixed), at one scale, ezkl 22.3.0
  srs       origin judged from the file's hash: a public ceremony file, or insecure
  proofs    every step proof verifies against the vk (ezkl.verify)
  base      the public base weights and salt hash to the first proof's H(state_in)
  chain     H(state_out) of step t equals H(state_in) of step t+1
  final     the last H(state_out) is the announced final commitment
  schedule  step t uses the batch the public seed assigns it; each epoch uses every committed batch once
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import ezkl
import torch
from safetensors.torch import load_file

from circuits import pipeline, srs as srs_mod
from circuits.artifacts import ArtifactError, read_json

from . import claims, decider
from .fold_tree import logrows_for, plan
from .bundle import Rejected, check_files, load_manifest, path_in
from .schedule import schedule

EZKL_VERSION = "22.3.0"
MAX_PROOF = 4 << 20


@dataclass
class Report:
    manifest: dict | None = None
    passed: list[tuple[str, str]] = field(default_factory=list)
    failures: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and self.manifest is not None


def _instances(proof_path: Path, c: int, n: int) -> list[str]:
    """A chunk proof's public hashes: H(state_in), H(batch_1..S), H(salt_out), H(state_out)."""
    try:
        p = read_json(proof_path, max_bytes=MAX_PROOF)
        inst = p["instances"]
    except (ArtifactError, KeyError, TypeError) as e:
        raise Rejected("proofs", f"unreadable proof ({e})", c) from None
    if not (isinstance(inst, list) and len(inst) == 1 and isinstance(inst[0], list) and len(inst[0]) == n
            and all(isinstance(h, str) for h in inst[0])):
        raise Rejected("proofs", f"expected {n} public hashes, found {inst!r:.80}", c)
    return inst[0]


def check_circuit(settings: dict, m: dict) -> None:
    ra = settings.get("run_args", {})
    hashed = {"Hashed": {"hash_is_public": True, "outlets": []}}
    if ra.get("input_visibility") != hashed or ra.get("output_visibility") != hashed or ra.get("param_visibility") != "Fixed":
        raise Rejected("circuit", "settings must hash inputs and outputs and fix params (anything else exposes or frees values)")
    scale, S = m["run"].get("scale"), m["run"].get("steps_per_proof")
    if settings.get("model_input_scales") != [scale] * (S + 2) or settings.get("model_output_scales") != [scale]:
        raise Rejected("circuit", f"circuit inputs/outputs are not {S} steps at the run's scale {scale}: states would not chain")
    if settings.get("version") != EZKL_VERSION or m["versions"].get("ezkl") != EZKL_VERSION:
        raise Rejected("circuit", f"made with ezkl {settings.get('version')}/{m['versions'].get('ezkl')}, this verifier uses {EZKL_VERSION}")


_PIPELINE_ARGS = pipeline.run_args(0)
_SIZES = ("total_assignments", "num_rows", "total_const_size", "total_dynamic_col_size",
          "total_shuffle_col_size", "max_dynamic_input_len", "num_dynamic_lookups", "num_shuffles")
MAX_TABLES = 64
MAX_COLUMNS = 64  # per variable; honest circuits use 1 to 3 (the 10k MLP at batch 32: 2.2 columns at logrows 20)


def check_sizes(settings: dict) -> None:
    """Bound every settings field ezkl sizes the constraint system from, before ezkl reads them.

    ezkl.verify configures the circuit from settings.json before it reads the vk or the proof:
    total_assignments nudged by 2^32 makes it lay out ~400k advice columns: CI's settings fuzzer
    was killed after 12 minutes on that one input. zkpot's pipeline compiles at num_inner_cols 1,
    and calibrate picks logrows (up to 20) so that each region, table and range fits one column
    of 2^logrows rows, or a few when the circuit outgrows 2^20: more than MAX_COLUMNS is not a
    circuit anyone could have proved, and is refused here in one line.
    """
    ra = settings["run_args"]
    if ra["logrows"] < 1:  # (the SRS bounds it from above)
        raise Rejected("circuit", f"settings logrows {ra['logrows']} must be positive")
    capacity = MAX_COLUMNS << ra["logrows"]  # what MAX_COLUMNS columns of 2^logrows rows hold

    def count(value, name: str, limit: int) -> int:
        if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit):
            raise Rejected("circuit", f"settings {name}={value!r:.40} is outside 0..{limit}: not a circuit zkpot makes")
        return value

    def span(pair, name: str) -> None:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in pair)):
            raise Rejected("circuit", f"settings {name} is not a range [lo, hi]")
        count(pair[1] - pair[0], f"{name} span", capacity)

    try:
        for key in ("num_inner_cols", "decomp_base", "decomp_legs", "bounded_log_lookup"):
            if ra.get(key) != getattr(_PIPELINE_ARGS, key):
                raise Rejected("circuit", f"settings {key}={ra.get(key)!r:.40}: zkpot compiles with {getattr(_PIPELINE_ARGS, key)}")
        for key in _SIZES:
            count(settings.get(key), key, capacity)
        count(settings["einsum_params"]["total_einsum_col_size"], "total_einsum_col_size", capacity)
        for eq in settings["einsum_params"]["equations"]:
            for axis, size in eq[1].items():
                count(size, f"einsum axis {axis}", capacity)
        count(settings["module_sizes"]["poseidon"][0], "poseidon rows", capacity)
        if settings["module_sizes"]["polycommit"] != [] or settings.get("model_instance_shapes") != []:
            raise Rejected("circuit", "settings commit or expose values other than Poseidon hashes")
        span(ra["lookup_range"], "lookup_range")
        checks, lookups = settings["required_range_checks"], settings["required_lookups"]
        count(len(checks) + len(lookups), "number of lookup tables and range checks", MAX_TABLES)
        for r in checks:
            span(r, "range check")
    except (KeyError, TypeError, AttributeError, IndexError):
        raise Rejected("circuit", "settings.json lacks the sizes ezkl lays the circuit out from") from None


def check_vk(vk: Path, logrows: int, check: str) -> int:
    """The vk's domain must be the circuit's: halo2 encodes a VerifyingKey as version, k, ... (one
    byte each), and ezkl sizes the domain from that k before it checks anything: a vk claiming
    k=24 for a logrows-15 circuit costs 97 s and 20 GB per verify (found by the vk fuzzer)."""
    try:
        with open(vk, "rb") as f:
            head = f.read(2)
    except OSError as e:
        raise Rejected(check, f"cannot read {Path(vk).name} ({e.strerror})") from None
    if len(head) < 2 or head[1] != logrows:
        raise Rejected(check, f"{Path(vk).name} is for a domain of 2^{head[1] if len(head) == 2 else '?'} rows, "
                              f"the circuit has 2^{logrows}")
    return logrows


def base_commitment(public: Path, m: dict) -> str:
    """Recompute H(state_0) from the public base weights and the published salt."""
    layout, scale = m["run"]["layout"], m["run"]["scale"]
    try:
        weights = load_file(str(path_in(public, m["base"]["file"])))
        flat = torch.cat([weights[n].reshape(-1).float() for n in layout["names"]])
        shapes_ok = [tuple(weights[n].shape) for n in layout["names"]] == [tuple(s) for s in layout["shapes"]]
    except Exception as e:
        raise Rejected("base", f"base model unreadable or not matching the layout ({e.__class__.__name__})") from None
    if not shapes_ok or len(weights) != len(layout["names"]):
        raise Rejected("base", "base model parameters do not match the circuit's layout")
    if not torch.isfinite(flat).all():  # ezkl quantizes NaN to 0: another file would hash the same
        raise Rejected("base", "base model has NaN or infinite weights")
    values = flat.tolist() + ([0.0] * len(flat) if layout["momentum"] else [])
    salt = m["base"].get("salt")
    if not (isinstance(salt, list) and all(isinstance(s, str) for s in salt)):
        raise Rejected("base", "published base salt malformed")
    try:
        return ezkl.poseidon_hash([ezkl.float_to_felt(v, scale) for v in values] + salt)[0]
    except Exception as e:
        raise Rejected("base", f"cannot hash the base state ({e})") from None


def _read(public: Path, name: str, check: str):
    """A JSON file of the bundle, size-bounded; unreadable is a failure of the check that needs it."""
    try:
        return read_json(path_in(public, name), max_bytes=claims.MAX_JSON)
    except ArtifactError as e:
        raise Rejected(check, str(e)) from None


def load_public(public: Path, deep: bool = True) -> tuple[dict, dict, dict, list[str]]:
    """Manifest, settings, SRS identity and batch commitments, each checked for shape and hash.

    A folded run verified without --deep reads (and hashes) no chunk proof.
    """
    m = load_manifest(public)
    used = None
    if "fold" in m and not deep:
        top = run_node(m)
        used = [m["circuit"]["settings"], m["srs"]["file"], m["base"]["file"], m["dataset"]["file"], top["proof"], top["vk"]]
    check_files(public, m, used)
    settings = _read(public, m["circuit"]["settings"], "circuit")
    if not (isinstance(settings, dict) and isinstance(settings.get("run_args"), dict)
            and isinstance(settings["run_args"].get("logrows"), int)):
        raise Rejected("circuit", "settings.json has no run_args.logrows")
    check_circuit(settings, m)
    try:
        ident = srs_mod.identify(path_in(public, m["srs"]["file"]))
    except ArtifactError as e:
        raise Rejected("srs", str(e)) from None
    claims.check_srs_claim(m, ident)
    if ident["logrows"] < settings["run_args"]["logrows"]:
        raise Rejected("srs", f"SRS logrows {ident['logrows']} is below the circuit's {settings['run_args']['logrows']}")
    check_sizes(settings)  # (logrows is now bounded by the SRS file; ezkl may read the rest)
    if m["insecure_dev_srs"] != (ident["origin"] != srs_mod.CEREMONY):
        raise Rejected("srs", f"manifest claims insecure_dev_srs={m['insecure_dev_srs']}, the file's hash says {ident['origin']}")
    dataset = _read(public, m["dataset"]["file"], "schedule")
    batches = dataset.get("batch_commitments") if isinstance(dataset, dict) else None
    if not isinstance(batches, list) or not batches or not all(claims.is_felt(b) for b in batches):
        raise Rejected("schedule", "dataset.json has no batch commitments")
    if dataset.get("root") != m["dataset"]["root"]:
        raise Rejected("schedule", "dataset.json's root is not the one the manifest announces")
    return m, settings, ident, batches


def expected_chunks(m: dict, num_batches: int) -> list[list[tuple[int, int]]]:
    S = int(m["run"]["steps_per_proof"])
    order = schedule(num_batches, int(m["run"]["epochs"]), int(m["run"]["schedule_seed"]))
    if S < 1 or len(order) % S:
        raise Rejected("schedule", f"{len(order)} steps cannot be cut into proofs of {S} steps")
    return [order[c * S : (c + 1) * S] for c in range(len(order) // S)]


def run_node(m: dict) -> dict:
    """The top of the fold tree: the one proof that covers the whole run."""
    try:
        top = m["fold"]["levels"][-1]
        if len(top) != 1 or not isinstance(top[0], dict):
            raise Rejected("fold", "the top level of the fold tree must be a single proof")
        return top[0]
    except (KeyError, IndexError, TypeError):
        raise Rejected("fold", "fold tree malformed") from None


def check_tree(m: dict) -> None:
    """The recorded tree is exactly the one the fan-in gives: each level folds the one below, in order."""
    fold = m["fold"]
    try:
        expected = plan(len(m["chunks"]), int(fold["fan_in"]))
        recorded = [[node["children"] for node in level] for level in fold["levels"]]
        logrows = [node["logrows"] for level in fold["levels"] for node in level]
    except (KeyError, TypeError, ValueError):
        raise Rejected("fold", "fold tree malformed") from None
    if recorded != expected:
        raise Rejected("fold", f"tree {recorded} is not the fan-in-{fold['fan_in']} tree over {len(m['chunks'])} chunks")
    if logrows != [logrows_for(len(g)) for level in expected for g in level]:
        raise Rejected("fold", "a fold node claims logrows other than its fan-in needs")


def unfold(instances: list[str], levels: list, S: int) -> tuple[list[list[str]], list[list[str]]]:
    """Split the run proof's instances into chunk instances and every accumulator in the tree.

    A node's instances are its accumulator (16) then each child's instances in order; a chunk
    proof's are H(state_in), H(batch_1..S), H(salt_out), H(state_out).
    """
    leaves, accs = [], []

    def walk(pos: int, depth: int, index: int) -> int:
        if depth == 0:
            leaves.append(instances[pos : pos + S + 3])
            return pos + S + 3
        accs.append(instances[pos : pos + decider.ACC_INSTANCES])
        pos += decider.ACC_INSTANCES
        for child in levels[depth - 1][index]["children"]:
            pos = walk(pos, depth - 1, child)
        return pos

    end = walk(0, len(levels), 0)
    if end != len(instances) or any(len(x) != S + 3 for x in leaves):
        raise Rejected("fold", f"run proof has {len(instances)} instances, the tree needs {end}")
    return leaves, accs


def verify_fold(public: Path, m: dict, report: Report) -> list[list[str]] | None:
    """verify_aggr on the run proof, then the decider pairing on every accumulator it carries."""
    check_tree(m)
    top = run_node(m)
    srs_file = path_in(public, m["srs"]["file"])
    proof = path_in(public, top["proof"])
    check_vk(path_in(public, top["vk"]), int(top["logrows"]), "fold")
    if not pipeline.verify_aggr(proof, path_in(public, top["vk"]), int(top["logrows"]), srs_file):
        raise Rejected("fold", "the run proof does not verify against the aggregation vk")
    try:
        instances = read_json(proof, max_bytes=MAX_PROOF)["instances"]
        assert isinstance(instances, list) and len(instances) == 1 and all(isinstance(h, str) for h in instances[0])
    except (ArtifactError, KeyError, TypeError, AssertionError):
        raise Rejected("fold", "run proof instances malformed") from None
    leaves, accs = unfold(instances[0], m["fold"]["levels"], int(m["run"]["steps_per_proof"]))
    try:
        g2, s_g2 = decider.srs_g2(srs_file)
    except (decider.DeciderError, OSError) as e:
        raise Rejected("pairing", f"cannot read the SRS's G2 points ({e})") from None
    for i, acc in enumerate(accs):
        try:
            ok = decider.decide(acc, g2, s_g2)
        except decider.DeciderError as e:
            raise Rejected("pairing", f"accumulator {i}: {e}") from None
        if not ok:
            raise Rejected("pairing", f"accumulator {i} of {len(accs)} fails e(lhs, [1]_2) = e(rhs, [s]_2): "
                                      "a folded proof is invalid, or the SRS is not the one the proofs were made with")
    levels = len(m["fold"]["levels"])
    report.passed.append(("fold", f"run proof (level {levels} of {levels}, fan-in {m['fold']['fan_in']}) verifies "
                                  f"with ezkl.verify_aggr, covering {len(leaves)} chunk proofs"))
    report.passed.append(("pairing", f"{len(accs)} KZG accumulator(s) pass e(lhs, [1]_2) = e(rhs, [s]_2) (py_ecc)"))
    return leaves


def verify_bundle(public: Path, allow_insecure_dev_srs: bool = False, deep: bool = False,
                  on_proof=lambda c, n: None) -> Report:
    """Every check on a bundle. A dev SRS is refused unless explicitly allowed, and flagged either way.

    A folded bundle is verified from its run proof alone; `deep` also verifies every chunk proof.
    """
    public, report, start = Path(public), Report(), time.perf_counter()

    def fail(check, msg, chunk=None):
        report.failures.append(Rejected(check, msg, chunk))

    try:
        m, settings, ident, batches = load_public(public, deep)
        folded = "fold" in m
        read = "every" if (deep or not folded) else "the run proof's"
        report.passed.append(("files", f"{read} file the verifier reads matches its sha256"))
        report.passed.append(("circuit", f"hashed inputs/outputs, fixed params, {m['run']['steps_per_proof']} step(s) "
                                         f"per proof, scale {m['run']['scale']}, logrows {settings['run_args']['logrows']}"))
        expected = expected_chunks(m, len(batches))
        base = base_commitment(public, m)
        report.passed.append(("run", claims.check_run(public, m, batches, report.warnings)))
        report.manifest = m
    except Rejected as e:
        report.failures.append(e)
    except (ArtifactError, KeyError, TypeError, ValueError, AttributeError) as e:
        report.failures.append(Rejected("manifest", f"malformed bundle ({e.__class__.__name__}: {e})"))
    if report.failures:
        report.seconds = time.perf_counter() - start
        return report

    if ident["origin"] == srs_mod.CEREMONY:
        report.passed.append(("srs", f"public ceremony SRS, logrows {ident['logrows']}"))
    else:
        report.warnings.append(f"INSECURE DEV SRS (sha256 {ident['sha256'][:16]}…, logrows {ident['logrows']}): "
                               "whoever made it could forge every proof in this bundle")
        if not allow_insecure_dev_srs:
            fail("srs", "the SRS is not a public ceremony file; pass --allow-insecure-dev-srs to check the rest anyway")
            report.seconds = time.perf_counter() - start
            return report

    if folded:
        try:
            leaves = verify_fold(public, m, report)
        except Rejected as e:
            report.failures.append(e)
            report.seconds = time.perf_counter() - start
            return report
        if not deep:
            check_claims(m, leaves, batches, base, expected, report)
            report.seconds = time.perf_counter() - start
            return report

    S = m["run"]["steps_per_proof"]
    settings_file, vk = path_in(public, m["circuit"]["settings"]), path_in(public, m["circuit"]["vk"])
    srs_file = path_in(public, m["srs"]["file"])
    try:
        check_vk(vk, settings["run_args"]["logrows"], "proofs")
    except Rejected as e:
        report.failures.append(e)
        report.seconds = time.perf_counter() - start
        return report
    instances = []
    for c, chunk in enumerate(m["chunks"]):
        try:
            proof = path_in(public, chunk["proof"])
            instances.append(_instances(proof, c, S + 3))
            if not pipeline.verify(proof, settings_file, vk, srs_file):
                fail("proofs", "proof does not verify against the vk", c)
        except Rejected as e:
            report.failures.append(e)
            instances.append([None] * (S + 3))
        on_proof(c + 1, len(m["chunks"]))
    if not any(f.check == "proofs" for f in report.failures):
        report.passed.append(("proofs", f"{len(instances)} proofs of {S} step(s) verify against the vk"))
    if folded and instances != leaves:
        fail("fold", "the run proof's chunk instances differ from the chunk proofs in the bundle")
    check_claims(m, instances, batches, base, expected, report)
    report.seconds = time.perf_counter() - start
    return report


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
            if instances[c][1 + i] != batches[b]:
                fail("schedule", f"step {i} uses a batch other than committed batch {b} (epoch {e})", c)
    if len(report.failures) == before:
        report.passed.append(("schedule", f"{m['run']['epochs']} epochs x {len(batches)} committed batches, public order"))
