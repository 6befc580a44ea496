"""Verify a public bundle with public files alone: one call, in the stages a reader follows top to bottom.

    1 read      the manifest, every file it names hashed once (files, manifest), and the bundle's
                SRS verifier part bound to the full SRS the manifest names, which this machine hashed (srs)
    2 derive    from the claims: the step graph (run), the settings (circuit), the vk (vk), and for a
                folded run the aggregation vk; each compared with the bundle's file, never taken from it
    3 prove     every proof verified against the derived keys (proofs, or fold + pairing)
    4 commit    base, chain, final, schedule: the proofs' public hashes against the claims; owners: the
                data owners' signed roots against the batch commitments (verifier/owners.py)
    5 vouch     (--package, --publisher) the keys someone published and signed
    6 model     (check-model) a model file is the run's final state (given its opening) or its base
    7 predict   (--inference) an inference proof is of the run's final model (verifier/inference.py)

The verdict (verifier/protocol.py) is VALID only if every claim the report shows is bound; a check
the caller opted out of, or a model description that cannot be derived, gives UNBOUND; a machine
that cannot finish gives CANNOT CHECK HERE; any failed check gives INVALID.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import ezkl

from circuits import derive, pipeline, srs as srs_mod
from circuits.artifacts import ArtifactError, read_json

from . import claims, protocol as P
from .bundle import check_files, load_manifest, path_in
from .errors import BadInput, CannotCheck, Rejected
from .fold_tree import logrows_for, plan
from .model_check import base_commitment, check_release, frozen_digest, frozen_weights
from .schedule import schedule


class Timed(list):
    """A list that stamps each item with the seconds since it was made (a check's time in `verify --json`)."""

    def __init__(self):
        super().__init__()
        self.start, self.at = time.perf_counter(), []

    def append(self, item) -> None:
        super().append(item)
        self.at.append(round(time.perf_counter() - self.start, 3))


@dataclass
class Report:
    manifest: dict | None = None
    passed: list[tuple[str, str]] = field(default_factory=Timed)
    failures: list[Rejected] = field(default_factory=Timed)
    warnings: list[str] = field(default_factory=list)
    unbound: list[str] = field(default_factory=list)   # claims shown but not derived
    cannot_check: str | None = None
    prediction: list[list[float]] | None = None   # stage 7: the proved prediction
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        if self.failures:
            return P.INVALID
        if self.cannot_check is not None or self.manifest is None:
            return P.CANNOT_CHECK
        return P.UNBOUND if self.unbound else P.VALID

    @property
    def ok(self) -> bool:
        return self.verdict == P.VALID

    def to_json(self) -> dict:
        """The report as `zkpot verify --json` prints it (schema P.REPORT_FORMAT, docs/verify-json.md)."""
        from importlib.metadata import version

        checks = [{"check": c, "result": "pass", "detail": d, "chunk": None, "at_seconds": t}
                  for (c, d), t in zip(self.passed, self.passed.at)]
        checks += [{"check": f.check, "result": "fail", "detail": f.args[0], "chunk": f.chunk, "at_seconds": t}
                   for f, t in zip(self.failures, self.failures.at)]
        return {"format": P.REPORT_FORMAT, "verdict": self.verdict, "exit_code": P.EXIT[self.verdict],
                "checks": sorted(checks, key=lambda c: c["at_seconds"]), "unbound": list(self.unbound),
                "warnings": list(self.warnings), "cannot_check": self.cannot_check, "prediction": self.prediction,
                "seconds": round(self.seconds, 3),
                "claims": None if self.manifest is None else {k: self.manifest.get(k) for k in P.REPORT_CLAIMS},
                "versions": {tool: version(tool) for tool in ("zkpot", "ezkl", "py_ecc")}}


@dataclass
class Bundle:
    """What stage 1 read: the manifest, the digests of the files checked, and the parsed small files."""
    public: Path
    m: dict
    digests: dict[str, str]
    settings: dict
    srs: dict            # sha256, logrows, origin
    batches: list[str]

    def path(self, name: str) -> Path:
        return path_in(self.public, name)


@dataclass
class Derived:
    """What stage 2 derived from the claims: the files the proofs are checked against."""
    claims: dict
    onnx: Path
    settings: Path
    vk: Path
    logrows: int


def verify_bundle(public: Path, allow_insecure_dev_srs: bool = False, deep: bool = False, bind: bool = True,
                  package: Path | None = None, publishers: list[bytes] = (), model: Path | None = None,
                  opening: Path | None = None, srs: Path | None = None, inference: Path | None = None,
                  input_opening: Path | None = None, on_proof=lambda c, n: None, say=lambda message: None,
                  owners: list[bytes] | None = None) -> Report:
    """Every check on a bundle; see the module docstring. `bind=False` (the CLI's --trust-bundle-keys)
    checks the proofs against the bundle's own vk(s): the verdict is then at best UNBOUND. `model`
    (with the final `opening`, or alone for the base model): is this file the state the run proved?
    `srs`: a full SRS file (hashed here, and remembered by this machine from then on); without it, the
    bundle's SRS must be one this machine has hashed before (circuits/srs.py: see). `inference`: a
    directory `zkpot infer` wrote (with `input_opening`, the hidden inputs' opening): its prediction is
    the run's final model's. `owners`: the data owners' keys the caller trusts (--owner), for a run on
    several owners' data."""
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
        from .inference import read_opening

        read_opening(input_opening)
    try:
        b = read_bundle(public, deep, report)                                # 1
        b.srs = bind_srs(b, srs, report)
        check_srs_origin(b, allow_insecure_dev_srs, report)
        what = claims.check_run(b.m, b.batches)
        check_backbone(b, report)
        d = derive_circuit(b, what, bind, report, say)                      # 2
        instances = verify_proofs(b, d, deep, bind, report, on_proof, say)  # 3
        base = base_commitment(b.path(b.m["base"]["file"]), b.m)
        check_claims(b.m, instances, b.batches, base, expected_chunks(b.m, len(b.batches)), report)  # 4
        check_data_owners(b, owners, report)
        if package is not None:                                             # 5
            vouch(b, package, list(publishers), report)
        if model is not None:                                               # 6
            report.passed.append(("model", check_release(b.m, model, opening, b.path(b.m["base"]["file"]))))
        if inference is not None:                                           # 7
            from .inference import check_inference

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


def check_backbone(b: Bundle, report: Report) -> None:
    """A frozen backbone outside the circuit: the graph in the bundle is the one the claims name, and
    its output width is the circuit's input width. That the committed features are its output on
    the private rows is not proved: reported, so the verdict cannot be VALID."""
    claim = b.m["run"].get("backbone")
    if claim is None:
        return
    from models.backbone import BackboneError, describe

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


# --- 1 read -------------------------------------------------------------------------------------

def read_bundle(public: Path, deep: bool, report: Report) -> Bundle:
    """Manifest shape, file hashes (once each), settings, SRS identity and batch commitments.
    A folded run verified from its run proof reads (and hashes) no chunk proof."""
    m = load_manifest(public)
    used = None
    if "fold" in m and not deep:
        top = run_node(m)
        used = [m["circuit"][k] for k in ("onnx", "settings", "vk")]
        used += [m["srs"]["file"], m["base"]["file"], m["dataset"]["file"], top["proof"], top["vk"]]
        used += [node["vk"] for level in m["fold"]["levels"] for node in level]
        used += [P.BACKBONE] if m["run"].get("backbone") is not None else []
    digests = check_files(public, m, used)
    report.passed.append(("files", f"{'every' if used is None else 'every non-chunk'} file matches its sha256 "
                                   f"({len(digests)} files)"))
    settings = _read(public, m["circuit"]["settings"], "circuit")
    dataset = _read(public, m["dataset"]["file"], "schedule")
    batches = dataset.get("batch_commitments") if isinstance(dataset, dict) else None
    if not isinstance(batches, list) or not batches or not all(claims.is_felt(x) for x in batches):
        raise Rejected("schedule", "dataset.json has no batch commitments")
    if dataset.get("root") != m["dataset"]["root"]:
        raise Rejected("schedule", "dataset.json's root is not the one the manifest announces")
    report.manifest = m
    return Bundle(public, m, digests, settings, {}, batches)


def _read(public: Path, name: str, check: str):
    """A JSON file of the bundle, size-bounded; unreadable is a failure of the check that needs it."""
    try:
        return read_json(path_in(public, name), max_bytes=P.MAX_JSON)
    except ArtifactError as e:
        raise Rejected(check, str(e)) from None


def bind_srs(b: Bundle, given: str | None, report: Report) -> dict:
    """The SRS the manifest names, by sha256, and the bundle's kzg.srs its verifier part (k=1): bound by
    the verifier part this machine cut from a full file with that sha256 (`given` now, or before)."""
    name, digest = b.m["srs"]["file"], b.m["srs"].get("sha256")
    try:
        k = srs_mod.logrows_of(b.path(name))
        known = srs_mod.seen(digest)
    except ArtifactError as e:
        raise Rejected("srs", str(e)) from None
    if k != srs_mod.VERIFIER_K:
        raise Rejected("srs", f"{name} has logrows {k}: a bundle carries the SRS's verifier part (logrows "
                              f"{srs_mod.VERIFIER_K}, 516 bytes), not the full file")
    if given is not None and given != digest:
        raise BadInput(f"the --srs file is not the SRS the bundle names (sha256 {str(digest)[:16]}…)")
    if known is None:
        raise CannotCheck(f"this machine has never hashed the SRS the bundle names (sha256 {digest[:16]}…, "
                          f"logrows {b.m['srs'].get('logrows')}): pass its full file once with --srs FILE "
                          "(a ceremony file, or the prover's dev SRS)")
    ident, part = known
    if part != b.path(name).read_bytes():
        raise Rejected("srs", f"{name} is not the verifier part (g[0], g[1], h, s·h) of the SRS the manifest "
                              f"names (sha256 {digest[:16]}…)")
    claims.check_srs_claim(b.m, ident)
    if b.m["insecure_dev_srs"] != (ident["origin"] != srs_mod.CEREMONY):
        raise Rejected("srs", f"manifest claims insecure_dev_srs={b.m['insecure_dev_srs']}, the SRS's hash says {ident['origin']}")
    origin = "a public ceremony file" if ident["origin"] == srs_mod.CEREMONY else "an INSECURE dev SRS"
    report.passed.append(("srs", f"{name} is the verifier part of the SRS with sha256 {digest[:16]}… (logrows "
                                 f"{ident['logrows']}, {origin}), cut here from the full file"))
    return ident


def full_srs(b: Bundle) -> Path:
    """The full SRS the bundle names, for a derivation not cached yet (a setup reads all 2^k points)."""
    path = srs_mod.full_file(b.srs["sha256"])
    if path is None:
        raise CannotCheck(f"deriving the keys needs the full SRS (sha256 {b.srs['sha256'][:16]}…) once; "
                          "the file this machine hashed is gone or changed: pass it with --srs FILE")
    return path


def check_srs_origin(b: Bundle, allow_insecure_dev_srs: bool, report: Report) -> None:
    ident = b.srs
    if ident["origin"] == srs_mod.CEREMONY:
        return
    report.warnings.append(f"INSECURE DEV SRS (sha256 {ident['sha256'][:16]}…, logrows {ident['logrows']}): "
                           "whoever made it could forge every proof in this bundle")
    if not allow_insecure_dev_srs:
        raise Rejected("srs", "the SRS is not a public ceremony file; pass --allow-insecure-dev-srs to check the rest anyway")


# --- 2 derive -----------------------------------------------------------------------------------

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
    if c["model"]["name"] in P.BUILTIN_MODELS:
        say("deriving the circuit from the claims (traced, calibrated and set up once per circuit; cached)")
        onnx = _derive("run", "cannot trace the step the manifest describes", derive.derived_onnx, c, frozen)
        if sha256(onnx) != b.digests[onnx_name]:
            hint = _torch_hint(b.m)
            raise Rejected("run", f"the run the manifest describes does not trace to the published {onnx_name}{hint}: "
                                  "the proofs are for another circuit")
        report.passed.append(("run", f"{what}: traced from the claims = {onnx_name}"))
    else:
        onnx = b.path(onnx_name)
        report.passed.append(("run", f"{what}: the circuit is {onnx_name} as published"))
        report.unbound.append(f"model {c['model']['name']!r} is the prover's own module, not in the bundle: its "
                              f"architecture, loss and hyperparameters are claims; {onnx_name} is what was proved")
    settings = _derive("circuit", "the claims give no circuit ezkl can lay out", derive.derived_settings, c, onnx)
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
    vk = _derive("vk", "cannot set up the derived circuit", derive.derived_vk, c, onnx, lambda: full_srs(b),
                 b.srs["sha256"])
    if vk.read_bytes() != b.path(vk_name).read_bytes():
        raise Rejected("vk", f"{vk_name} is not the key ezkl's setup gives for the claims' circuit and this SRS: "
                             "the proofs are for another circuit")
    report.passed.append(("vk", f"{vk_name} = setup(derived circuit, SRS), byte for byte"))
    return Derived(c, onnx, settings, vk, logrows)


def _derive(check: str, what: str, fn, *args) -> Path:
    """A derivation step; the claims failing to give a circuit is a rejection at `check`."""
    try:
        return fn(*args)
    except (Rejected, CannotCheck):
        raise
    except pipeline.CircuitError as e:
        raise Rejected(check, f"{what}: {e}") from None
    except Exception as e:  # torch/ONNX refused the described step: it cannot be the published one
        text = str(e).strip()
        raise Rejected(check, f"{what} ({e.__class__.__name__}: {text.splitlines()[0][:120] if text else ''})") from None


def sha256(path: Path) -> str:
    from circuits.artifacts import sha256_file

    return sha256_file(path)


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


# --- 3 prove ------------------------------------------------------------------------------------

def verify_proofs(b: Bundle, d: Derived, deep: bool, bind: bool, report: Report, on_proof, say) -> list[list[str]]:
    """The proofs' public hashes, once every proof is verified against the derived keys. A folded run
    is checked from its run proof when its aggregation vk can be derived here; otherwise from its
    chunk proofs, and the report says so."""
    if "fold" in b.m:
        check_tree(b.m)
        try:
            leaves = verify_fold(b, d, bind, report, say)
        except CannotCheck as e:
            if not all(b.path(c["proof"]).is_file() for c in b.m["chunks"]):
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
    S = b.m["run"]["steps_per_proof"]
    names = [c["proof"] for c in b.m["chunks"]]
    b.digests.update(check_files(b.public, b.m, [n for n in names if n not in b.digests]))
    check_vk(d.vk, d.logrows, "proofs")
    srs_file, instances = b.path(b.m["srs"]["file"]), []
    for c, name in enumerate(names):
        try:
            proof = b.path(name)
            instances.append(_instances(proof, c, S + 3))
            if not pipeline.verify(proof, d.settings, d.vk, srs_file):
                report.failures.append(Rejected("proofs", "proof does not verify against the vk", c))
        except Rejected as e:
            report.failures.append(e)
            instances.append([None] * (S + 3))
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
        if len(levels) > 1:
            raise CannotCheck(f"the fold has {len(levels)} levels; deriving aggregation vks above level 1 "
                              "(a level-1 aggregate as the sample, ~19 GB) is not implemented")
        from .rebuild import derived_aggregation_vk

        fan_in, tree_fan_in = len(top["children"]), int(b.m["fold"]["fan_in"])
        vk = derived_aggregation_vk(d.claims, d.onnx, lambda: full_srs(b), b.srs["sha256"], fan_in,
                                    logrows_for(tree_fan_in), say)
        if vk.read_bytes() != b.path(top["vk"]).read_bytes():
            raise Rejected("vk", f"{top['vk']} is not the aggregation key of the claims' circuit (fan-in {fan_in}, "
                                 f"logrows {logrows_for(tree_fan_in)}): the run proof folds proofs of another circuit")
        report.passed.append(("vk", f"{top['vk']} = setup_aggregate(derived circuit, SRS), byte for byte"))
    else:
        report.unbound.append(f"{top['vk']} is the bundle's own (--trust-bundle-keys)")
    check_vk(vk, int(top["logrows"]), "fold")
    if not pipeline.verify_aggr(b.path(top["proof"]), vk, int(top["logrows"]), srs_file):
        raise Rejected("fold", "the run proof does not verify against the aggregation vk")
    try:
        instances = read_json(b.path(top["proof"]), max_bytes=P.MAX_PROOF)["instances"]
        assert isinstance(instances, list) and len(instances) == 1 and all(isinstance(h, str) for h in instances[0])
    except (ArtifactError, KeyError, TypeError, AssertionError):
        raise Rejected("fold", "run proof instances malformed") from None
    leaves, accs = unfold(instances[0], levels, int(b.m["run"]["steps_per_proof"]))
    from . import decider  # (py_ecc: imported by folded runs only)

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
    if set(logrows) != {logrows_for(int(fold["fan_in"]))}:
        raise Rejected("fold", f"a fold node claims logrows other than the fan-in-{fold['fan_in']} tree's "
                               f"({logrows_for(int(fold['fan_in']))})")


def unfold(instances: list[str], levels: list, S: int) -> tuple[list[list[str]], list[list[str]]]:
    """Split the run proof's instances into chunk instances and every accumulator in the tree.

    A node's instances are its accumulator (16) then each child's instances in order; a chunk
    proof's are H(state_in), H(batch_1..S), H(salt_out), H(state_out).
    """
    from .decider import ACC_INSTANCES

    leaves, accs = [], []

    def walk(pos: int, depth: int, index: int) -> int:
        if depth == 0:
            leaves.append(instances[pos : pos + S + 3])
            return pos + S + 3
        accs.append(instances[pos : pos + ACC_INSTANCES])
        pos += ACC_INSTANCES
        for child in levels[depth - 1][index]["children"]:
            pos = walk(pos, depth - 1, child)
        return pos

    end = walk(0, len(levels), 0)
    if end != len(instances) or any(len(x) != S + 3 for x in leaves):
        raise Rejected("fold", f"run proof has {len(instances)} instances, the tree needs {end}")
    return leaves, accs


def _instances(proof_path: Path, c: int, n: int) -> list[str]:
    """A chunk proof's public hashes: H(state_in), H(batch_1..S), H(salt_out), H(state_out)."""
    try:
        p = read_json(proof_path, max_bytes=P.MAX_PROOF)
        inst = p["instances"]
    except (ArtifactError, KeyError, TypeError) as e:
        raise Rejected("proofs", f"unreadable proof ({e})", c) from None
    if not (isinstance(inst, list) and len(inst) == 1 and isinstance(inst[0], list) and len(inst[0]) == n
            and all(isinstance(h, str) for h in inst[0])):
        raise Rejected("proofs", f"expected {n} public hashes, found {inst!r:.80}", c)
    return inst[0]


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



# --- 4 commit -----------------------------------------------------------------------------------

def expected_chunks(m: dict, num_batches: int) -> list[list[tuple[int, int]]]:
    S = int(m["run"]["steps_per_proof"])
    order = schedule(num_batches, int(m["run"]["epochs"]), int(m["run"]["schedule_seed"]))
    if S < 1 or len(order) % S:
        raise Rejected("schedule", f"{len(order)} steps cannot be cut into proofs of {S} steps")
    return [order[c * S : (c + 1) * S] for c in range(len(order) // S)]


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


def check_data_owners(b: Bundle, named: list[bytes] | None, report: Report) -> None:
    """The owners' signed statements against the batch commitments (verifier/owners.py)."""
    from .owners import check_owners

    passed, warning = check_owners(b.m, b.batches, named)
    if passed:
        report.passed.append(("owners", passed))
    if warning:
        report.warnings.append(warning)


# --- 5 vouch ------------------------------------------------------------------------------------

def vouch(b: Bundle, package: Path, publishers: list[bytes], report: Report) -> None:
    """The bundle uses the package's circuit, SRS and base model; the package is signed by exactly `publishers`."""
    from .package import check_package

    summary, signed_by = check_package(package, b.public, b.m, publishers)
    report.passed.append(("package", summary))
    if signed_by:
        report.passed.append(("publisher", signed_by))
    else:
        report.warnings.append("the package is unsigned: it ties the bundle to its files, not to a publisher")
