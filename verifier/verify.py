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

from .bundle import Rejected, check_files, load_manifest, path_in
from .schedule import schedule

EZKL_VERSION = "22.3.0"
N_INSTANCES = 4  # H(state_in), H(batch), H(salt_out), H(state_out)
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


def _instances(proof_path: Path, t: int) -> list[str]:
    try:
        p = read_json(proof_path, max_bytes=MAX_PROOF)
        inst = p["instances"]
    except (ArtifactError, KeyError, TypeError) as e:
        raise Rejected("proofs", f"unreadable proof ({e})", t) from None
    if not (isinstance(inst, list) and len(inst) == 1 and isinstance(inst[0], list) and len(inst[0]) == N_INSTANCES
            and all(isinstance(h, str) for h in inst[0])):
        raise Rejected("proofs", f"expected {N_INSTANCES} public hashes, found {inst!r:.80}", t)
    return inst[0]


def check_circuit(settings: dict, m: dict) -> None:
    ra = settings.get("run_args", {})
    hashed = {"Hashed": {"hash_is_public": True, "outlets": []}}
    if ra.get("input_visibility") != hashed or ra.get("output_visibility") != hashed or ra.get("param_visibility") != "Fixed":
        raise Rejected("circuit", "settings must hash inputs and outputs and fix params (anything else exposes or frees values)")
    scale = m["run"].get("scale")
    if settings.get("model_input_scales") != [scale] * 3 or settings.get("model_output_scales") != [scale]:
        raise Rejected("circuit", f"input/output scales differ from the run's scale {scale}: states would not chain")
    if settings.get("version") != EZKL_VERSION or m["versions"].get("ezkl") != EZKL_VERSION:
        raise Rejected("circuit", f"made with ezkl {settings.get('version')}/{m['versions'].get('ezkl')}, this verifier uses {EZKL_VERSION}")


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
    values = flat.tolist() * (2 if layout["momentum"] else 1)
    if layout["momentum"]:
        values[len(values) // 2:] = [0.0] * (len(values) // 2)
    salt = m["base"].get("salt")
    if not (isinstance(salt, list) and all(isinstance(s, str) for s in salt)):
        raise Rejected("base", "published base salt malformed")
    try:
        felts = [ezkl.float_to_felt(v, scale) for v in values] + salt
        return ezkl.poseidon_hash(felts)[0]
    except Exception as e:
        raise Rejected("base", f"cannot hash the base state ({e})") from None


def verify_bundle(public: Path, on_proof=lambda t, n: None) -> Report:
    public, report, start = Path(public), Report(), time.perf_counter()

    def fail(check, msg, step=None):
        report.failures.append(Rejected(check, msg, step))

    try:
        m = load_manifest(public)
        check_files(public, m)
        report.passed.append(("files", f"{len(m['files'])} files match their sha256"))
        settings = read_json(path_in(public, m["circuit"]["settings"]))
        check_circuit(settings, m)
        report.passed.append(("circuit", f"hashed inputs/outputs, fixed params, scale {m['run']['scale']}, "
                                         f"logrows {settings['run_args']['logrows']}, ezkl {EZKL_VERSION}"))
        srs_file = path_in(public, m["srs"]["file"])
        ident = srs_mod.identify(srs_file)
        if ident["logrows"] < settings["run_args"]["logrows"]:
            raise Rejected("srs", f"SRS logrows {ident['logrows']} is below the circuit's {settings['run_args']['logrows']}")
        if m["insecure_dev_srs"] != (ident["origin"] != srs_mod.CEREMONY):
            raise Rejected("srs", f"manifest claims insecure_dev_srs={m['insecure_dev_srs']}, the file's hash says {ident['origin']}")
        report.manifest = m
        dataset = read_json(path_in(public, m["dataset"]["file"]))
        batches = dataset.get("batch_commitments") if isinstance(dataset, dict) else None
        if not isinstance(batches, list) or not batches or not all(isinstance(b, str) for b in batches):
            raise Rejected("schedule", "dataset.json has no batch commitments")
        expected = schedule(len(batches), int(m["run"]["epochs"]), int(m["run"]["schedule_seed"]))
        base = base_commitment(public, m)
    except Rejected as e:
        report.failures.append(e)
        report.seconds = time.perf_counter() - start
        return report
    except (ArtifactError, KeyError, TypeError, ValueError) as e:
        report.failures.append(Rejected("manifest", f"malformed bundle ({e.__class__.__name__}: {e})"))
        report.seconds = time.perf_counter() - start
        return report

    if ident["origin"] == srs_mod.CEREMONY:
        report.passed.append(("srs", f"public ceremony SRS, logrows {ident['logrows']}"))
    else:
        report.warnings.append(f"INSECURE DEV SRS (sha256 {ident['sha256'][:16]}…, logrows {ident['logrows']}): "
                               "whoever made it could forge every proof in this bundle")

    vk = path_in(public, m["circuit"]["vk"])
    instances = []
    for t, step in enumerate(m["steps"]):
        try:
            proof = path_in(public, step["proof"])
            instances.append(_instances(proof, t))
            if not pipeline.verify(proof, path_in(public, m["circuit"]["settings"]), vk, srs_file):
                fail("proofs", "proof does not verify against the vk", t)
        except Rejected as e:
            report.failures.append(e)
            instances.append([None] * N_INSTANCES)
        on_proof(t + 1, len(m["steps"]))
    if not any(f.check == "proofs" for f in report.failures):
        report.passed.append(("proofs", f"{len(instances)} step proofs verify against the vk"))

    # base: the first state is the public base model
    if m["base"].get("commitment") != base:
        fail("base", "published base weights and salt do not hash to the manifest's base commitment")
    elif instances and instances[0][0] != base:
        fail("base", "first proof does not start from the base model", 0)
    else:
        report.passed.append(("base", "step 0 starts from the public base weights"))

    # chain: every state is the previous step's output
    broken = [t for t in range(1, len(instances)) if instances[t][0] != instances[t - 1][3]]
    for t in broken:
        fail("chain", f"H(state_in) is not step {t - 1}'s H(state_out)", t)
    if not broken:
        report.passed.append(("chain", f"{max(len(instances) - 1, 0)} links, output to input"))

    # final: the last state is the announced model
    if not instances or instances[-1][3] != m["final"].get("commitment"):
        fail("final", "last H(state_out) is not the announced final commitment", len(instances) - 1)
    else:
        report.passed.append(("final", f"run ends at {m['final']['commitment'][:16]}…"))

    # schedule: committed batches, each once per epoch, in the public order
    before = len(report.failures)
    if len(set(batches)) != len(batches):
        fail("schedule", "the dataset commits to the same batch twice")
    if ezkl.poseidon_hash(batches)[0] != m["dataset"].get("root"):
        fail("schedule", "batch commitments do not hash to the dataset root")
    claimed = [(s.get("epoch"), s.get("batch")) for s in m["steps"]]
    if claimed != expected:
        fail("schedule", f"{len(claimed)} steps in the manifest, the public seed gives {len(expected)} "
                         "(epochs x batches) in another order" if len(claimed) != len(expected)
             else "manifest order differs from the order the public seed gives")
    for t, (e, b) in enumerate(expected[: len(instances)]):
        if instances[t][1] != batches[b]:
            fail("schedule", f"uses a batch other than committed batch {b} (epoch {e})", t)
    if len(report.failures) == before:
        report.passed.append(("schedule", f"{m['run']['epochs']} epochs x {len(batches)} committed batches, public order"))

    report.seconds = time.perf_counter() - start
    return report
