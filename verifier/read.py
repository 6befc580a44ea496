"""Stage 1, read: the manifest, every file it names hashed once (and copied, as read, into a private
directory that every later stage reads instead: a second read of the prover's file system could differ),
and the bundle's SRS bound to a full SRS this machine hashed. Nothing read here is trusted beyond its
hash: stage 2 derives what it is checked against."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zkpot.circuits import srs as srs_mod
from zkpot.spec import claims
from zkpot.spec import protocol as P
from zkpot.spec.artifacts import ArtifactError, read_json
from zkpot.spec.bundle import check_files, load_manifest, path_in
from zkpot.spec.errors import BadInput, CannotCheck, Rejected
from zkpot.spec.felts import is_felt
from zkpot.verifier.report import Report


@dataclass
class Bundle:
    """What stage 1 read: the manifest, the digests of the files checked, and the parsed small files.
    `public` is the private copy of the files as they were hashed; `source` the directory given."""
    public: Path
    m: dict
    digests: dict[str, str]
    settings: dict
    srs: dict            # sha256, logrows, origin
    batches: list[str]
    source: Path

    def path(self, name: str) -> Path:
        return path_in(self.public, name)

    def check(self, names: list[str]) -> None:
        """Hash (and copy) files of the bundle not read yet."""
        self.digests.update(check_files(self.source, self.m, [n for n in names if n not in self.digests], self.public))


def read_bundle(public: Path, deep: bool, report: Report, copy: Path) -> Bundle:
    """Manifest shape, file hashes (once each, into the private directory `copy`), settings, SRS identity
    and batch commitments. A folded run verified from its run proof reads (and hashes) no chunk proof."""
    m = load_manifest(public)
    used = None
    if "fold" in m and not deep:
        top = run_node(m)
        used = [m["circuit"][k] for k in ("onnx", "settings", "vk")]
        used += [m["srs"]["file"], m["base"]["file"], m["dataset"]["file"], top["proof"], top["vk"]]
        used += [node["vk"] for level in m["fold"]["levels"] for node in level]
        used += [P.BACKBONE] if m["run"].get("backbone") is not None else []
        used += [P.BASE_GRAPH] if m["run"]["model"]["name"] == P.ONNX_MODEL else []
    digests = check_files(public, m, used, copy)
    report.passed.append(("files", f"{'every' if used is None else 'every non-chunk'} file matches its sha256 "
                                   f"({len(digests)} files)"))
    settings = _read(copy, m["circuit"]["settings"], "circuit")
    dataset = _read(copy, m["dataset"]["file"], "schedule")
    batches = dataset.get("batch_commitments") if isinstance(dataset, dict) else None
    if not isinstance(batches, list) or not batches or not all(is_felt(x) for x in batches):
        raise Rejected("schedule", "dataset.json has no batch commitments")
    if dataset.get("root") != m["dataset"]["root"]:
        raise Rejected("schedule", "dataset.json's root is not the one the manifest announces")
    report.manifest = m
    return Bundle(copy, m, digests, settings, {}, batches, public)


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


def full_srs_of(b: Bundle) -> Path:
    """The full SRS the bundle names, for a derivation not cached yet (a setup reads all 2^k points)."""
    try:
        return srs_mod.full_srs(b.srs["sha256"], purpose="deriving the keys")
    except ArtifactError as e:
        raise CannotCheck(str(e)) from None


def check_srs_origin(b: Bundle, allow_insecure_dev_srs: bool, report: Report) -> None:
    ident = b.srs
    if ident["origin"] == srs_mod.CEREMONY:
        return
    report.insecure_srs = True
    report.warnings.append(f"INSECURE DEV SRS (sha256 {ident['sha256'][:16]}…, logrows {ident['logrows']}): "
                           "whoever made it could forge every proof in this bundle")
    if not allow_insecure_dev_srs:
        raise Rejected("srs", "the SRS is not a public ceremony file; pass --allow-insecure-dev-srs to check the rest anyway")


def run_node(m: dict) -> dict:
    """The top of the fold tree: the one proof that covers the whole run."""
    try:
        top = m["fold"]["levels"][-1]
        if len(top) != 1 or not isinstance(top[0], dict):
            raise Rejected("fold", "the top level of the fold tree must be a single proof")
        return top[0]
    except (KeyError, IndexError, TypeError):
        raise Rejected("fold", "fold tree malformed") from None
