"""Stage 2, derive: the step graph, settings and vk from the claims, each compared with the bundle's file,
never taken from it; a frozen backbone (outside the circuit) checked and reported as unproved."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zkpot.circuits import derive, pipeline
from zkpot.spec import protocol as P
from zkpot.spec.artifacts import read_json, sha256_file
from zkpot.spec.errors import CannotCheck, Rejected
from zkpot.spec.weights import LORA, frozen_digest, frozen_weights, load_weights
from zkpot.verifier.read import Bundle, full_srs_of
from zkpot.verifier.report import Report


@dataclass
class Derived:
    """What stage 2 derived from the claims: the files the proofs are checked against."""
    claims: dict
    onnx: Path
    settings: Path
    vk: Path
    logrows: int


def derive_circuit(b: Bundle, what: str, bind: bool, report: Report, say) -> Derived:
    """step.onnx, settings.json and vk.key as the claims give them; the bundle's must be the same."""
    if b.m["versions"].get("ezkl") != P.EZKL_VERSION:
        raise Rejected("circuit", f"made with ezkl {b.m['versions'].get('ezkl')}, this verifier derives with {P.EZKL_VERSION}")
    c = derive.circuit_claims(b.m["run"])
    onnx_name = b.m["circuit"]["onnx"]
    # the frozen parameters (constants of the step graph): the base model's, as the claims name them
    frozen = None
    if not c["frozen"]["names"] and c["frozen"]["sha256"] != frozen_digest({}):
        raise Rejected("frozen", "run.frozen names no parameter, but its sha256 is not that of none")
    if c["frozen"]["names"]:
        frozen = frozen_weights(b.path(b.m["base"]["file"]), b.m, "frozen")
        report.passed.append(("frozen", f"{len(frozen)} frozen parameter(s) ({', '.join(frozen)}): the base model's "
                                        "values are the ones the claims name (sha256)"))
    if c["model"]["name"] == P.ONNX_MODEL:
        check_graph(b, c["model"]["graph"], report)
    if c["model"].get("adapters"):
        check_adapters_start_at_zero(b, c["model"]["adapters"]["layers"], report)
    if c["model"]["name"] in P.DERIVABLE_MODELS:
        say("deriving the circuit from the claims (traced, calibrated and set up once per circuit; cached)")
        onnx = derived("run", "cannot trace the step the manifest describes", derive.derived_onnx, c, frozen)
        if sha256_file(onnx) != b.digests[onnx_name]:
            hint = _torch_hint(b.m)
            raise Rejected("run", f"the run the manifest describes does not trace to the published {onnx_name}{hint}: "
                                  "the proofs are for another circuit")
        report.passed.append(("run", f"{what}: traced from the claims = {onnx_name}"))
    else:
        onnx = b.path(onnx_name)
        report.passed.append(("run", f"{what}: the circuit is {onnx_name} as published"))
        report.unbound.append(f"model {c['model']['name']!r} is the prover's own module, not in the bundle: its "
                              f"architecture, loss and hyperparameters are claims; {onnx_name} is what was proved")
    settings = derived("circuit", "the claims give no circuit ezkl can lay out", derive.derived_settings, c, onnx)
    ours = read_json(settings)
    diff = first_difference(ours, b.settings)
    if diff:
        raise Rejected("circuit", f"settings.json {diff}: the settings are a function of the claims, and these are not theirs")
    logrows = ours["run_args"]["logrows"]
    report.passed.append(("circuit", f"settings.json derived from the claims (public samples within the bounds): "
                                     f"logrows {logrows}, lookup range {ours['run_args']['lookup_range']}"))
    if b.srs["logrows"] < logrows:
        raise Rejected("srs", f"SRS logrows {b.srs['logrows']} is below the circuit's {logrows}")
    vk_name = b.m["circuit"]["vk"]
    if not bind:
        check_vk(b.path(vk_name), logrows, "proofs")
        report.unbound.append(f"{vk_name} is the bundle's own (--trust-bundle-keys): nothing ties the proofs to the claims")
        return Derived(c, onnx, settings, b.path(vk_name), logrows)
    vk = derived("vk", "cannot set up the derived circuit", derive.derived_vk, c, onnx, lambda: full_srs_of(b),
                 b.srs["sha256"])
    if vk.read_bytes() != b.path(vk_name).read_bytes():
        raise Rejected("vk", f"{vk_name} is not the key ezkl's setup gives for the claims' circuit and this SRS: "
                             "the proofs are for another circuit")
    report.passed.append(("vk", f"{vk_name} = setup(derived circuit, SRS), byte for byte"))
    return Derived(c, onnx, settings, vk, logrows)


def check_graph(b: Bundle, digest: str, report: Report) -> None:
    """An ONNX model's run: the bundle's base_model.onnx is the graph the claims name (by sha256, in canonical
    form, every op one zkpot maps), registered here for the derivation; base_model.safetensors holds exactly
    its initializers, so the base commitment is of the published model's own weights."""
    from zkpot.models import onnx_graph

    if b.digests.get(P.BASE_GRAPH) != digest:
        raise Rejected("graph", f"{P.BASE_GRAPH} is not the graph the claims name (run.model.graph {digest[:16]}…)")
    try:
        if onnx_graph.register(b.path(P.BASE_GRAPH), external=False) != digest:
            raise Rejected("graph", f"{P.BASE_GRAPH} is not in canonical form (its external data inline, serialized once)")
        module = onnx_graph.load_module(digest)
    except onnx_graph.GraphError as e:
        raise Rejected("graph", str(e)) from None
    graph = {n: p.detach().numpy() for n, p in module.named_parameters()}
    base = load_weights(b.path(b.m["base"]["file"]), "base")
    adapters = b.m["run"]["model"].get("adapters") or {"layers": []}
    fresh = {layer + suffix for layer in adapters["layers"] for suffix in LORA}   # new, beside the graph's
    if set(base) != set(graph) | fresh:
        raise Rejected("base", f"{b.m['base']['file']} holds {sorted(base)[:4]}…, the graph's initializers "
                               f"(and adapters) are {sorted(set(graph) | fresh)[:4]}…")
    wrong = [n for n in graph if base[n].shape != graph[n].shape or base[n].astype("<f4").tobytes() != graph[n].astype("<f4").tobytes()]
    if wrong:
        raise Rejected("base", f"{b.m['base']['file']}: {', '.join(wrong[:3])} differ from the graph's initializers: the "
                               f"base commitment is not of the published model")
    report.passed.append(("graph", f"{P.BASE_GRAPH} (sha256 {digest[:16]}…, {len(module.nodes)} nodes) is the graph "
                                   f"the claims name; {b.m['base']['file']} holds its {len(graph)} initializers"))


def check_adapters_start_at_zero(b: Bundle, layers: list[str], report: Report) -> None:
    """Every adapter's B is zero in the published base model: the adapted model starts as the base's own W (from
    B != 0 it would start at W + B A, another model, and every step could be proved from there)."""
    base = load_weights(b.path(b.m["base"]["file"]), "base")
    for layer in layers:
        name = f"{layer}.lora_b"
        if name not in base:
            raise Rejected("base", f"{b.m['base']['file']} has no {name}: the claims name an adapter on {layer}")
        if base[name].any():
            raise Rejected("base", f"{b.m['base']['file']}: adapter {name} is not zero: the run does not start from "
                                   "the base model (an adapter starts at B = 0)")
    report.passed.append(("base", f"{len(layers)} adapter(s) start at B = 0: the run starts from the base model"))


def derived(check: str, what: str, fn, *args, traced: bool = True):
    """A derivation step, the one way its failure becomes a verdict: ezkl refusing the claims' circuit is
    a rejection at `check`; so is torch or ONNX refusing to trace it (`traced`: a step traced from the
    claims), since the described step then cannot be the published one."""
    try:
        return fn(*args)
    except (Rejected, CannotCheck):
        raise
    except pipeline.CircuitError as e:
        raise Rejected(check, f"{what}: {e}") from None
    except Exception as e:
        if not traced:
            raise
        text = str(e).strip()
        raise Rejected(check, f"{what} ({e.__class__.__name__}: {text.splitlines()[0][:120] if text else ''})") from None


def _torch_hint(m: dict) -> str:
    from importlib.metadata import version

    theirs, ours = m["versions"].get("torch"), version("torch")
    return f" (bundle made with torch {theirs}, this verifier has {ours})" if theirs != ours else ""


def first_difference(ours, theirs, where: str = "") -> str | None:
    """Where two JSON values first differ, in words ("field run_args.logrows is 16, the claims give 15")."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(set(ours) | set(theirs), key=str):
            if key not in theirs:
                return f"lacks field {where}{key}"
            if key not in ours:
                return f"has a field {where}{key} the claims do not give"
            diff = first_difference(ours[key], theirs[key], f"{where}{key}.")
            if diff:
                return diff
        return None
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for i, (a, c) in enumerate(zip(ours, theirs)):
            diff = first_difference(a, c, f"{where}{i}.")
            if diff:
                return diff
        return None
    if type(ours) is not type(theirs) or ours != theirs:
        return f"field {where.rstrip('.') or '(root)'} is {str(theirs)[:60]}, the claims give {str(ours)[:60]}"
    return None


def check_backbone(b: Bundle, report: Report) -> None:
    """A frozen backbone outside the circuit: the graph in the bundle is the one the claims name, and
    its output width is the circuit's input width. That the committed features are its output on
    the private rows is not proved: reported, so the verdict cannot be VALID."""
    claim = b.m["run"].get("backbone")
    if claim is None:
        return
    from zkpot.models.backbone import BackboneError, describe

    try:
        ours = describe(b.path(P.BACKBONE))
    except BackboneError as e:
        raise Rejected("backbone", str(e)) from None
    if ours != claim:
        raise Rejected("backbone", f"{P.BACKBONE} is {ours}, the manifest claims {claim}")
    if ours["outputs"] != b.m["run"]["layout"]["features"]:
        raise Rejected("backbone", f"{P.BACKBONE} gives {ours['outputs']} features, the circuit takes "
                                   f"{b.m['run']['layout']['features']}")
    report.passed.append(("backbone", f"{P.BACKBONE} (sha256 {ours['sha256'][:16]}…) maps {ours['inputs']} columns to "
                                      f"the circuit's {ours['outputs']} features"))
    report.unbound.append(f"the committed features are the owner's claim to be {P.BACKBONE}'s output on the private "
                          "rows: the proofs cover the training on the committed features, not the backbone's run")


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
