"""Where a run's files live. Everything under private/ stays with the model owner; public/ is the bundle."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zkpot.spec import protocol as P


@dataclass(frozen=True)
class RunDir:
    root: Path

    # shared
    @property
    def config(self) -> Path: return self.root / "config.json"
    # private: data, weights, salts, witnesses, proving key
    @property
    def private(self) -> Path: return self.root / "private"
    @property
    def master_key(self) -> Path: return self.private / "master.key"
    @property
    def data(self) -> Path: return self.private / "data.npz"
    @property
    def partition(self) -> Path: return self.private / "partition.json"
    @property
    def owner_batches(self) -> Path: return self.private / "owner_batches.json"  # data owners' batch vectors
    @property
    def owners(self) -> Path: return self.private / "owners.json"  # data owners' signed statements (public)
    @property
    def compiled(self) -> Path: return self.private / "step.ezkl"
    @property
    def srs(self) -> Path: return self.private / P.SRS  # the full SRS (public, but 2^k points: kept here)
    @property
    def pk(self) -> Path: return self.private / "pk.key"
    @property
    def final_model(self) -> Path: return self.private / "final_model.safetensors"
    @property
    def final_merged(self) -> Path: return self.private / "final_model_merged.safetensors"  # adapters merged (W + BA)
    @property
    def float_model(self) -> Path: return self.private / "float_model.safetensors"  # the float run, for comparison
    @property
    def final_opening(self) -> Path: return self.private / "final_opening.json"
    @property
    def report(self) -> Path: return self.private / "train_report.json"
    @property
    def scaling(self) -> Path: return self.private / "scaling.json"  # the training rows' standardisation
    def chunk_input(self, c: int) -> Path: return self.private / "inputs" / f"chunk_{c:05d}.json"
    def witness(self, c: int) -> Path: return self.private / "witnesses" / f"chunk_{c:05d}.json"
    # public bundle
    @property
    def public(self) -> Path: return self.root / "public"
    @property
    def onnx(self) -> Path: return self.public / P.STEP_ONNX
    @property
    def settings(self) -> Path: return self.public / P.SETTINGS
    @property
    def vk(self) -> Path: return self.public / P.VK
    @property
    def verifier_srs(self) -> Path: return self.public / P.SRS  # its verifier part (k=1)
    @property
    def base_model(self) -> Path: return self.public / P.BASE_MODEL
    @property
    def dataset(self) -> Path: return self.public / P.DATASET
    @property
    def manifest(self) -> Path: return self.public / P.MANIFEST
    def proof(self, c: int) -> Path: return self.public / proof_name(c)
    @property
    def noise_root(self) -> Path: return self.root / "noise_root.json"  # (DP-SGD) what witnesses attest
    @property
    def beacon(self) -> Path: return self.root / "beacon.json"  # (DP-SGD) the drand chain, round, attestations


def proof_name(c: int) -> str:
    """Chunk c's proof, relative to the bundle: one proof covers steps_per_proof SGD steps."""
    return f"proofs/chunk_{c:05d}.json"
