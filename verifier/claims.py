"""What a manifest says, held to what the bundle proves: its shape, its size limits, its run description.

The proofs bind the commitments to the vk, and the vk to step.onnx (by `--rebuild-vk`), but the
manifest's words about the run (model, loss, optimizer and learning rate, batch size, layout) are
only claims until something ties them to step.onnx. `check_run` does: it traces the SGD step the
manifest describes, exactly as `zkpot train` does, and requires the resulting ONNX to be the
published step.onnx byte for byte (ONNX export is deterministic for a given torch version). A
model that is the prover's own module (`file.py:Class`) is not in the bundle, so it cannot be
rebuilt: the verifier then warns that the description is an unchecked claim. The verifier never
imports code a manifest names.

Every size is bounded before anything is read, so a hostile bundle cannot make the verifier
allocate or hash without limit.
"""
from __future__ import annotations

import functools
import json
import math
import tempfile
from pathlib import Path

from .bundle import Rejected

MAX_STEPS = 1 << 22            # epochs x batches: the public schedule is computed step by step
MAX_STEPS_PER_PROOF = 1 << 12
MAX_TRACE_INPUT = 1 << 24      # floats of the traced step's example inputs (state + S batches + salt)
MAX_PARAMS = 1 << 28
MB = 1 << 20
MAX_JSON = 16 * MB
MAX_PROOF = 4 * MB
MAX_ONNX = 256 * MB
MAX_VK = 1024 * MB
MAX_BASE = 2048 * MB
MAX_SRS = 4 + (128 << 26) + 256  # k = 26, the largest ceremony file
SALT_WORDS = 6


FIELD_MODULUS = 0x30644E72E131A029B85045B68181585D2833E84879B9709143E1F593F0000001  # BN254 scalar field


def is_felt(v) -> bool:
    """A field element as ezkl writes it (64 hex digits, little-endian, reduced): ezkl panics on anything else."""
    if not (isinstance(v, str) and len(v) == 64):
        return False
    try:
        return int.from_bytes(bytes.fromhex(v), "little") < FIELD_MODULUS
    except ValueError:
        return False


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _strs(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise Rejected("manifest", what)


def check_shape(m: dict) -> None:
    """Types and ranges of every manifest field a verifier reads; semantics are the other checks' job."""
    r = m["run"]
    _need(isinstance(r.get("model"), dict) and isinstance(r["model"].get("name"), str)
          and isinstance(r["model"].get("kwargs", {}), dict), "run.model must be {name, kwargs}")
    _need(isinstance(r.get("loss"), str), "run.loss must be a string")
    opt = r.get("optimizer")
    _need(isinstance(opt, dict) and isinstance(opt.get("name"), str)
          and all(_num(opt.get(k)) for k in ("lr", "momentum", "weight_decay")),
          "run.optimizer must be {name, lr, momentum, weight_decay} with finite numbers")
    for k in ("batch_size", "epochs", "steps_per_proof", "num_batches", "scale", "schedule_seed"):
        _need(_int(r.get(k)), f"run.{k} must be an integer")
    for k in ("batch_size", "epochs", "steps_per_proof", "num_batches"):
        _need(r[k] >= 1, f"run.{k} must be at least 1")
    _need(1 <= r["scale"] <= 16, "run.scale must be in 1..16")
    _need(r["steps_per_proof"] <= MAX_STEPS_PER_PROOF, f"run.steps_per_proof above {MAX_STEPS_PER_PROOF}")
    _need(r["epochs"] * r["num_batches"] <= MAX_STEPS, f"run has more than {MAX_STEPS} steps")
    lay = r.get("layout")
    _need(isinstance(lay, dict) and _strs(lay.get("names")) and isinstance(lay.get("shapes"), list)
          and len(lay["shapes"]) == len(lay["names"])
          and all(isinstance(s, list) and all(_int(d) and d >= 0 for d in s) for s in lay["shapes"])
          and all(_int(lay.get(k)) and lay[k] >= 1 for k in ("batch_size", "features", "label_width"))
          and isinstance(lay.get("momentum"), bool), "run.layout malformed")
    _need(sum(math.prod(s) for s in lay["shapes"]) <= MAX_PARAMS, f"run.layout has more than {MAX_PARAMS} parameters")
    b = m["base"]
    _need(isinstance(b.get("file"), str) and is_felt(b.get("commitment")) and isinstance(b.get("salt"), list)
          and len(b["salt"]) == SALT_WORDS and all(is_felt(x) for x in b["salt"]),
          "base must be {file, commitment, salt of 6 field elements}")
    _need(is_felt(m["final"].get("commitment")), "final.commitment must be a field element")
    _need(isinstance(m["dataset"].get("file"), str) and is_felt(m["dataset"].get("root")),
          "dataset must be {file, root (a field element)}")
    _need(all(isinstance(m["circuit"].get(k), str) for k in ("onnx", "settings", "vk")), "circuit must name onnx, settings, vk")
    _need(isinstance(m["srs"].get("file"), str), "srs.file must be a string")
    _need(all(isinstance(k, str) and isinstance(v, str) for k, v in m["versions"].items()), "versions must map names to strings")
    for c, chunk in enumerate(m["chunks"]):
        _need(isinstance(chunk, dict) and isinstance(chunk.get("proof"), str) and isinstance(chunk.get("steps"), list)
              and all(isinstance(s, list) and len(s) == 2 and all(_int(x) for x in s) for s in chunk["steps"]),
              f"chunk {c} must be {{proof, steps: [[epoch, batch], ...]}}")


def size_limit(m: dict, name: str, path: Path | None = None) -> int:
    """The most bytes the verifier will read or hash for a file the manifest names."""
    if name == m["srs"].get("file"):
        if path is not None:  # an SRS has exactly the size its header's k gives
            with open(path, "rb") as f:
                k = int.from_bytes(f.read(4).ljust(4, b"\0"), "little")
            if 1 <= k <= 26:
                return 4 + (128 << k) + 256
        return MAX_SRS
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


def _step_description(r: dict) -> dict:
    return {"model": r["model"], "loss": r["loss"], "optimizer": r["optimizer"], "layout": r["layout"],
            "steps_per_proof": r["steps_per_proof"]}


@functools.lru_cache(maxsize=16)
def _rebuilt_onnx_sha256(description: str) -> str:
    """sha256 of the step ONNX that `zkpot train` exports for this description (deterministic, cached)."""
    import torch

    from circuits.artifacts import sha256_file
    from models import zoo
    from models.step import Layout, Optimizer, export_chunk, make_step

    d = json.loads(description)
    layout = Layout.from_dict(d["layout"])
    with torch.device("meta"):  # the shapes only: the traced step takes the weights as inputs
        module = zoo.BUILTIN[d["model"]["name"]](**d["model"].get("kwargs", {}))
    shapes = [(n, tuple(p.shape)) for n, p in module.named_parameters()]
    if shapes != list(zip(layout.names, layout.shapes)):
        raise Rejected("run", f"model {d['model']} has parameters {shapes}, the layout says "
                              f"{list(zip(layout.names, layout.shapes))}")
    o = d["optimizer"]
    step = make_step(module, d["loss"], layout, Optimizer(lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"]))
    with tempfile.TemporaryDirectory(prefix="zkpot-claims-") as tmp:
        export_chunk(step, layout, d["steps_per_proof"], Path(tmp) / "step.onnx")
        return sha256_file(Path(tmp) / "step.onnx")


def check_run(public: Path, m: dict, batches: list[str], warnings: list[str]) -> str:
    """The manifest's run description is the circuit the proofs are for; returns what was shown."""
    from models.losses import LOSSES
    from models.zoo import BUILTIN

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
    trace_input = (sum(math.prod(s) for s in lay["shapes"]) * (2 if lay["momentum"] else 1) + 2 * SALT_WORDS
                   + r["steps_per_proof"] * (lay["batch_size"] * (lay["features"] + lay["label_width"]) + SALT_WORDS))
    if trace_input > MAX_TRACE_INPUT:
        raise Rejected("run", f"the step takes {trace_input} inputs, more than the {MAX_TRACE_INPUT} this verifier traces")
    what = f"{model['name']}, {r['loss']} loss, sgd lr {opt['lr']}"
    if model["name"] not in BUILTIN:
        warnings.append(f"the model {model['name']!r} is the prover's own module, not in the bundle: its architecture, "
                        "loss and hyperparameters in the manifest are UNCHECKED claims (step.onnx is what was proved)")
        return f"{what}: a custom model, not rebuilt (see warning)"
    onnx_name = m["circuit"]["onnx"]
    try:
        rebuilt = _rebuilt_onnx_sha256(json.dumps(_step_description(r), sort_keys=True))
    except Rejected:
        raise
    except Exception as e:  # torch/ONNX refused the described step: it cannot be the published one
        raise Rejected("run", f"cannot trace the step the manifest describes ({e.__class__.__name__}: "
                              f"{str(e).strip().splitlines()[0][:120] if str(e).strip() else ''})") from None
    if rebuilt != m["files"].get(onnx_name):
        import torch

        ours = torch.__version__
        theirs = m["versions"].get("torch")
        hint = f" (bundle made with torch {theirs}, this verifier has {ours})" if theirs != ours else ""
        raise Rejected("run", f"the run the manifest describes ({what}, batch {r['batch_size']}, "
                              f"{r['steps_per_proof']} step(s) per proof) does not trace to the published "
                              f"{onnx_name}{hint}: the proofs are for another circuit")
    return f"{what}, batch {r['batch_size']}: rebuilt step ONNX = {onnx_name}"
