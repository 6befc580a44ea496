"""What a manifest says about itself: its shape, its size limits, a self-consistent run description.

These checks only make the manifest safe to derive from: every size is bounded before anything is
read, so a hostile bundle cannot make the verifier allocate or hash without limit. Whether the
described run is the circuit the proofs are for is established by deriving that circuit from the
description (circuits/derive.py, verifier/verify.py), never by reading the prover's files.
"""
from __future__ import annotations

import math
from pathlib import Path

from zkpot.spec.errors import Rejected, need
from zkpot.spec.felts import is_felt
from zkpot.spec.layout import param_count, srs_bytes, step_inputs
from zkpot.spec.protocol import (
    BOUNDS,
    LOSSES,
    CHUNK_KEYS,
    MANIFEST_KEYS,
    MANIFEST_OPTIONAL,
    MAX_BASE,
    MAX_DEPTH,
    MAX_FAN_IN,
    MAX_JSON,
    MAX_ONNX,
    MAX_OWNERS,
    MAX_PARAMS,
    MAX_PROOF,
    MAX_SRS_LOGROWS,
    MAX_STEPS,
    MAX_STEPS_PER_PROOF,
    MAX_TRACE_INPUT,
    MAX_VK,
    ONNX_MODEL,
    SALT_WORDS,
)


def _hex64(v) -> bool:
    return isinstance(v, str) and len(v) == 64 and all(ch in "0123456789abcdef" for ch in v)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _strs(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def check_shape(m: dict) -> None:
    """Types and ranges of every manifest field a verifier reads, and no field the format does not define;
    semantics are the other checks' job."""
    for section, keys in MANIFEST_KEYS.items():
        doc = m
        for part in filter(None, section.split(".")):
            doc = doc.get(part) if isinstance(doc, dict) else None
        need("manifest", isinstance(doc, dict), f"{section} must be an object")
        extra = sorted(set(doc) - set(keys) - set(MANIFEST_OPTIONAL.get(section, ())), key=str)
        missing = sorted(set(keys) - set(doc))
        need("manifest", not extra, f"{section or 'the manifest'}: field {extra[:1]} is not one the format defines")
        need("manifest", not missing, f"{section or 'the manifest'}: field {missing[:1]} is missing")
    r = m["run"]
    need("manifest", isinstance(r.get("model"), dict) and isinstance(r["model"].get("name"), str)
          and isinstance(r["model"].get("kwargs", {}), dict), "run.model must be {name, kwargs}")
    ad = r["model"].get("adapters")
    need("manifest", ad is None or (isinstance(ad, dict) and set(ad) == {"rank", "layers"} and _int(ad["rank"])
                         and 1 <= ad["rank"] <= 64 and _strs(ad["layers"]) and ad["layers"]),
          "run.model.adapters must be {rank: 1..64, layers: [Linear layer names]}")
    graph = r["model"].get("graph")
    need("manifest", (graph is None) == (r["model"]["name"] != ONNX_MODEL) and (graph is None or _hex64(graph)),
         "run.model.graph must be the sha256 of its ONNX graph (64 hex digits) for model onnx, and absent otherwise")
    extra = sorted(set(r["model"]) - {"name", "kwargs", "adapters", "graph"}, key=str)
    need("manifest", not extra, f"run.model: field {extra[:1]} is not one the format defines")
    need("manifest", isinstance(r.get("loss"), str), "run.loss must be a string")
    opt = r.get("optimizer")
    need("manifest", isinstance(opt, dict) and isinstance(opt.get("name"), str)
          and all(_num(opt.get(k)) for k in ("lr", "momentum", "weight_decay")),
          "run.optimizer must be {name, lr, momentum, weight_decay} with finite numbers")
    for k in ("batch_size", "epochs", "steps_per_proof", "num_batches", "scale", "schedule_seed"):
        need("manifest", _int(r.get(k)), f"run.{k} must be an integer")
    for k in ("batch_size", "epochs", "steps_per_proof", "num_batches"):
        need("manifest", r[k] >= 1, f"run.{k} must be at least 1")
    need("manifest", 1 <= r["scale"] <= 16, "run.scale must be in 1..16")
    need("manifest", r["steps_per_proof"] <= MAX_STEPS_PER_PROOF, f"run.steps_per_proof above {MAX_STEPS_PER_PROOF}")
    need("manifest", r["epochs"] * r["num_batches"] <= MAX_STEPS, f"run has more than {MAX_STEPS} steps")
    need("manifest", isinstance(r.get("bounds"), dict) and set(r["bounds"]) == set(BOUNDS)
          and all(_num(v) and 0 < v <= 1e4 for v in r["bounds"].values()),
          f"run.bounds must give {', '.join(BOUNDS)} as numbers in (0, 10000]")
    lay = r.get("layout")
    need("manifest", isinstance(lay, dict) and _strs(lay.get("names")) and isinstance(lay.get("shapes"), list)
          and len(lay["shapes"]) == len(lay["names"])
          and all(isinstance(s, list) and all(_int(d) and d >= 0 for d in s) for s in lay["shapes"])
          and all(_int(lay.get(k)) and lay[k] >= 1 for k in ("batch_size", "features", "label_width"))
          and isinstance(lay.get("momentum"), bool), "run.layout malformed")
    need("manifest", param_count(lay["shapes"]) <= MAX_PARAMS, f"run.layout has more than {MAX_PARAMS} parameters")
    fr = r.get("frozen")
    need("manifest", isinstance(fr, dict) and set(fr) == {"names", "sha256"} and _strs(fr["names"])
          and len(set(fr["names"])) == len(fr["names"]) and not set(fr["names"]) & set(lay["names"])
          and _hex64(fr["sha256"]),
          "run.frozen must be {names: distinct parameter names outside the layout, sha256: 64 hex digits}")
    bb = r.get("backbone", "absent")
    need("manifest", bb is None or (isinstance(bb, dict) and set(bb) == {"sha256", "inputs", "outputs"}
                         and isinstance(bb["sha256"], str) and _int(bb["inputs"]) and _int(bb["outputs"])),
          "run.backbone must be null or {sha256, inputs, outputs}")
    if "dp" in r:  # a DP-SGD run (spec/dp.py), its challenge from a beacon round
        from zkpot.spec import dp

        dp.check_shape(r["dp"])
    beacon = m.get("beacon")
    need("manifest", ("dp" in r) == (beacon is not None), "a DP-SGD run (run.dp) has a beacon section, and only it")
    need("manifest", beacon is None or (isinstance(beacon, dict) and set(beacon) == {"chain", "round", "attestations"}
                                        and all(isinstance(beacon[k], dict) for k in ("chain", "round"))
                                        and isinstance(beacon["attestations"], list)),
         "beacon must be {chain, round, attestations}: a drand chain's info, the round the challenges come from, "
         "and witnesses' statements that the noise was committed before it")
    if beacon is not None:
        from zkpot.spec.attestation import MAX_ATTESTATIONS, check_shape as check_attestation_shape

        need("manifest", len(beacon["attestations"]) <= MAX_ATTESTATIONS, f"beacon.attestations: at most {MAX_ATTESTATIONS}")
        for i, doc in enumerate(beacon["attestations"]):
            check_attestation_shape(doc, f"beacon.attestations[{i}]", "manifest")
    b = m["base"]
    need("manifest", isinstance(b.get("file"), str) and is_felt(b.get("commitment")) and isinstance(b.get("salt"), list)
          and len(b["salt"]) == SALT_WORDS and all(is_felt(x) for x in b["salt"]),
          "base must be {file, commitment, salt of 6 field elements}")
    need("manifest", is_felt(m["final"].get("commitment")), "final.commitment must be a field element")
    need("manifest", isinstance(m["dataset"].get("file"), str) and is_felt(m["dataset"].get("root")),
          "dataset must be {file, root (a field element)}")
    owners = m["dataset"].get("owners")
    if owners is not None:  # several data owners (verifier/owners.py)
        from zkpot.spec.owners import check_owner_shape

        need("manifest", isinstance(owners, list) and 1 <= len(owners) <= MAX_OWNERS,
              f"dataset.owners must be a list of 1..{MAX_OWNERS} owner statements")
        for i, doc in enumerate(owners):
            check_owner_shape(doc, f"dataset.owners[{i}]", "manifest")
    need("manifest", all(isinstance(m["circuit"].get(k), str) for k in ("onnx", "settings", "vk")), "circuit must name onnx, settings, vk")
    need("manifest", isinstance(m["srs"].get("file"), str), "srs.file must be a string")
    need("manifest", all(isinstance(k, str) and isinstance(v, str) for k, v in m["versions"].items()), "versions must map names to strings")
    fold = m.get("fold")
    if fold is not None:  # the run proof's tree (its exact shape is the plan's: verifier/prove.py check_tree)
        need("manifest", isinstance(fold, dict) and set(fold) == {"fan_in", "levels"} and _int(fold["fan_in"])
             and 1 <= fold["fan_in"] <= MAX_FAN_IN and isinstance(fold["levels"], list)
             and all(isinstance(level, list) and level and all(
                 isinstance(n, dict) and set(n) == {"proof", "children", "logrows", "vk"} and isinstance(n["proof"], str)
                 and isinstance(n["vk"], str) and _int(n["logrows"]) and isinstance(n["children"], list)
                 and all(_int(c) for c in n["children"]) for n in level) for level in fold["levels"]),
             f"fold must be {{fan_in: 1..{MAX_FAN_IN}, levels: [[{{proof, children, logrows, vk}}, ...], ...]}}")
    for c, chunk in enumerate(m["chunks"]):
        need("manifest", not isinstance(chunk, dict) or set(chunk) <= set(CHUNK_KEYS),
             f"chunk {c}: field {sorted(set(chunk) - set(CHUNK_KEYS), key=str)[:1] if isinstance(chunk, dict) else ''} "
             "is not one the format defines")
        need("manifest", isinstance(chunk, dict) and isinstance(chunk.get("proof"), str)
             and isinstance(chunk.get("steps"), list)
              and all(isinstance(s, list) and len(s) == 2 and all(_int(x) for x in s) for s in chunk["steps"]),
              f"chunk {c} must be {{proof, steps: [[epoch, batch], ...]}}")


def size_limit(m: dict, name: str, path: Path | None = None) -> int:
    """The most bytes the verifier will read or hash for a file the manifest names."""
    if name == m["srs"].get("file"):
        if path is not None:  # an SRS has exactly the size its header's k gives
            with open(path, "rb") as f:
                k = int.from_bytes(f.read(4).ljust(4, b"\0"), "little")
            if 1 <= k <= MAX_SRS_LOGROWS:
                return srs_bytes(k)
        return srs_bytes(MAX_SRS_LOGROWS)
    if name == m["circuit"].get("vk") or name.endswith(".vk"):
        return MAX_VK
    if name == m["circuit"].get("onnx"):
        return MAX_ONNX
    if name == m["base"].get("file"):
        return MAX_BASE
    if name.endswith(".json"):
        return MAX_PROOF if name.startswith(("proofs/", "fold/")) else MAX_JSON
    return MAX_VK


def check_srs_claim(m: dict, ident: dict) -> None:
    """The manifest's description of its SRS (shown by `zkpot inspect`) must be what the file is."""
    claimed = {k: m["srs"].get(k) for k in ("sha256", "logrows", "origin")}
    actual = {k: ident[k] for k in ("sha256", "logrows", "origin")}
    if claimed != actual:
        bad = sorted(k for k in actual if claimed[k] != actual[k])
        raise Rejected("srs", f"manifest describes the SRS as {', '.join(f'{k}={claimed[k]!r}' for k in bad)}; "
                              f"the file is {', '.join(f'{k}={actual[k]!r}' for k in bad)}")


def check_run(m: dict, batches: list[str]) -> str:
    """The run description is self-consistent and within what this verifier derives; returns it in words.
    (That it is the circuit the proofs are for is the derivation's job: verifier/verify.py.)"""
    r, lay = m["run"], m["run"]["layout"]
    model, opt = r["model"], r["optimizer"]
    kwargs = model.get("kwargs", {})
    if r["num_batches"] != len(batches):
        raise Rejected("run", f"manifest says {r['num_batches']} batches, dataset.json commits to {len(batches)}")
    if r["batch_size"] != lay["batch_size"]:
        raise Rejected("run", f"batch size {r['batch_size']} but the layout's is {lay['batch_size']}")
    if r["loss"] not in LOSSES or opt["name"] != "sgd":
        raise Rejected("run", f"unknown loss {r['loss']!r} or optimizer {opt['name']!r}")
    if (opt["momentum"] != 0) != lay["momentum"]:
        raise Rejected("run", f"momentum {opt['momentum']} but the layout {'has' if lay['momentum'] else 'has no'} velocity")
    if kwargs.get("in_features") != lay["features"] or kwargs.get("out_features") != lay["label_width"]:
        raise Rejected("run", f"model takes {kwargs.get('in_features')} features to {kwargs.get('out_features')} "
                              f"outputs, the layout says {lay['features']} to {lay['label_width']}")
    hidden = kwargs.get("hidden", [])
    if model["name"] == "mlp" and not (isinstance(hidden, list) and 1 <= len(hidden) <= MAX_DEPTH
                                       and all(_int(w) and 1 <= w <= MAX_PARAMS for w in hidden)):
        raise Rejected("run", f"mlp.hidden must list 1..{MAX_DEPTH} layer widths")
    widths = [lay["features"], *(hidden if model["name"] == "mlp" else []), lay["label_width"]]
    if sum((a + 1) * b for a, b in zip(widths, widths[1:])) > MAX_PARAMS:  # (before any model is built)
        raise Rejected("run", f"the model the claims describe has more than {MAX_PARAMS} parameters")
    trace_input = step_inputs(lay, r["steps_per_proof"], "dp" in r)
    if trace_input > MAX_TRACE_INPUT:
        raise Rejected("run", f"the step takes {trace_input} inputs, more than the {MAX_TRACE_INPUT} this verifier traces")
    b = r["bounds"]
    ad = model.get("adapters")
    trains = (f" with rank-{ad['rank']} adapters on {', '.join(ad['layers'])}" if ad else "") + (
        f", trains {', '.join(lay['names'])} (frozen: {', '.join(r['frozen']['names'])})" if r["frozen"]["names"] else "")
    return (f"{model['name']}{trains}, {r['loss']} loss, sgd lr {opt['lr']} (momentum {opt['momentum']}, weight decay "
            f"{opt['weight_decay']}), batch {r['batch_size']}, {r['steps_per_proof']} step(s) per proof, scale "
            f"{r['scale']}; each step clips its features to +-{b['features']} and every weight it returns to "
            f"+-{b['weights']} (proved)"
            + (f"; DP-SGD: each example's gradient clipped to L2 norm {r['dp']['clip']}, Gaussian noise of std "
               f"{r['dp']['noise']} x {r['dp']['clip']} on the sum (proved)" if "dp" in r else ""))
