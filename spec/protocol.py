"""The bundle format, as constants: what a prover writes and a verifier reads. Read it as the spec.

A bundle is a directory with a manifest (FORMAT) naming every file by sha256. The circuit is a
pure function of the manifest's claims (CIRCUIT_CLAIMS): the verifier traces the SGD step from
them, derives the ezkl settings (rows by calibrating on public samples drawn from the declared
bounds, CALIBRATION_*; lookup tables from the clamps, spec/lookups.py), compiles, and sets up the vk with the bundle's SRS; the bundle's own
step.onnx, settings.json and vk.key must be exactly those. Each proof exposes
H(state_in), H(batch_1..S), H(salt_out), H(state_out), Poseidon hashes of values salted with
SALT_WORDS words of SALT_BITS random bits.
"""
from __future__ import annotations

# --- format and tools --------------------------------------------------------------------------
FORMAT = "zkpot/bundle-2"   # 2: run.frozen, run.backbone, run.model.adapters (fine-tuning)
PACKAGE_FORMAT = "zkpot/vk-package-1"
EZKL_VERSION = "22.3.0"
FIELD_MODULUS = 0x30644E72E131A029B85045B68181585D2833E84879B9709143E1F593F0000001  # BN254 scalar field

# --- file names inside a bundle ----------------------------------------------------------------
MANIFEST = "manifest.json"
STEP_ONNX, SETTINGS, VK, SRS = "step.onnx", "settings.json", "vk.key", "kzg.srs"
# kzg.srs is the SRS's verifier part: the k=1 SRS (g[0], g[1], their Lagrange basis, h, s·h; 516 bytes)
# cut from the full SRS the manifest names by sha256 and logrows (circuits/srs.py: verifier_srs)
SRS_IDENTITY = ("sha256", "logrows", "origin")
BASE_MODEL, DATASET = "base_model.safetensors", "dataset.json"
BASE_GRAPH = "base_model.onnx"   # (an ONNX model's run) the forward graph, its initializers the base weights
BACKBONE = "backbone.onnx"   # (optional) a frozen ONNX graph run on the rows before training, outside the circuit:
# manifest run.backbone = {sha256, inputs, outputs}; its features are the committed data (not proved: reported)

# --- the manifest's sections: exactly these keys (optional ones in MANIFEST_OPTIONAL); nothing else is accepted,
# so nothing unchecked can be echoed beside a verdict ---------------------------------------------------------
MANIFEST_KEYS = {
    "": ("format", "insecure_dev_srs", "run", "base", "final", "dataset", "chunks", "circuit", "srs", "versions", "files"),
    "run": ("model", "loss", "optimizer", "batch_size", "epochs", "steps_per_proof", "num_batches", "scale",
            "schedule_seed", "bounds", "layout", "frozen", "backbone"),
    "run.optimizer": ("name", "lr", "momentum", "weight_decay"),
    "run.layout": ("names", "shapes", "batch_size", "features", "label_width", "momentum"),
    "base": ("file", "commitment", "salt"), "final": ("commitment",), "dataset": ("file", "root"),
    "circuit": ("onnx", "settings", "vk"), "srs": ("file", "sha256", "logrows", "origin"),
}
MANIFEST_OPTIONAL = {"": ("fold", "beacon"), "run": ("dp",), "dataset": ("owners",)}
CHUNK_KEYS = ("proof", "steps")

# --- commitments -------------------------------------------------------------------------------
SALT_WORDS = 6   # field elements per salt
SALT_BITS = 24   # random bits per word: 6 x 24 = 144 bits, each word well inside ezkl's input range check

# --- the circuit as a function of the claims ---------------------------------------------------
# manifest.run fields the circuit depends on; nothing else (no data, no weights) enters settings.json
CIRCUIT_CLAIMS = ("model", "loss", "optimizer", "layout", "steps_per_proof", "scale", "bounds", "frozen")
DP_CIRCUIT_CLAIMS = ("clip", "noise")   # of run.dp (a DP-SGD run: spec/dp.py): the circuit's; run.dp.delta is the accountant's
# run.layout lists the parameters that train (the committed state); run.frozen = {names, sha256}: every
# other parameter of the model, a constant of the step graph with the base model's value; sha256 over
# each one's [name, shape] as JSON then its float32 values little-endian (spec/weights.py)
BUILTIN_MODELS = ("logreg", "mlp")   # models/zoo.py
ONNX_MODEL = "onnx"
DERIVABLE_MODELS = BUILTIN_MODELS + (ONNX_MODEL,)   # the descriptions a verifier can trace itself: run.model "onnx"
# names its graph by sha256 (run.model.graph); the bundle carries it as BASE_GRAPH (models/onnx_graph.py)
LOSSES = ("bce", "ce", "mse")          # models/losses.py
BOUNDS = ("features", "weights")      # declared: |x| <= features after standardisation (clipped), |w| <= weights
DEFAULT_BOUNDS = {"features": 4.0, "weights": 2.0}
CALIBRATION_SAMPLES = 8               # public samples, uniform within the bounds, seeded by the claims' hash
CALIBRATION_MARGIN = 1                # ezkl's lookup_safety_margin: the samples size the rows only; the lookup
# table is the one the clamps give (spec/lookups.py), exact whatever the private values
MAX_LOGROWS = 20
# ezkl range checks: (base, legs), each covering +-base^legs >= 2^26 (a 24-bit salt word, and any value a
# bounded run makes, with room). Tried in this order; a smaller base is kept only if it lowers logrows
# (its lookup table of `base` rows was what set the circuit's height), since more legs cost rows.
DECOMPOSITIONS = ((16384, 2), (8192, 2), (4096, 3), (2048, 3), (1024, 3))
# (A cached derivation is named by a hash of the code that makes it, these rules included: spec/cache.py
# code_hash; there is no version number of the rules to bump.)

# --- inference proofs (zkpot infer): the run's final model on new inputs, its weights still hidden ---
INFERENCE_FORMAT = "zkpot/inference-1"
INFERENCE, INFERENCE_PROOF = "inference.json", "proof.json"   # OUT/public/: what a third party verifies
INPUT_OPENING = "input_opening.json"   # OUT/private/: a hidden input's values and salt, for the input's owner only
# The inference circuit is a function of the run's CIRCUIT_CLAIMS and inference = {rows} (circuits/derive.py):
#   prediction = model(state, inputs)    state as the run commits it (so H(state) is its final commitment),
#                                        inputs = [rows x features | SALT_WORDS salt] (so H(inputs) hides them)
# instances: H(state), H(inputs), then the prediction's rows x outputs values ("public"), at the claimed scale
INPUT_VISIBILITIES = ("public", "hidden")   # public: inference.json lists the inputs and salt; hidden: neither
MAX_INFERENCE_ROWS = 1024

# --- size limits (bytes or counts) a hostile bundle cannot exceed -------------------------------
MB = 1 << 20
MAX_MANIFEST = 16 * MB
MAX_JSON = 16 * MB
MAX_PROOF = 4 * MB
MAX_ONNX = 256 * MB
MAX_VK = 1024 * MB
MAX_BASE = 2048 * MB
MAX_SRS_LOGROWS = 26                  # the largest ceremony file (spec/layout.py: srs_bytes)
MAX_STEPS = 1 << 22                   # epochs x batches: the public schedule is computed step by step
MAX_STEPS_PER_PROOF = 1 << 12
MAX_TRACE_INPUT = 1 << 24             # floats of the traced step's example inputs
MAX_PARAMS = 1 << 28
MAX_DEPTH = 64                        # hidden layers of a built-in mlp
MAX_FAN_IN = 32                       # proofs one aggregation folds (logrows 21 + log2: 26 at most, the largest SRS)

# --- verdicts: what `zkpot verify` says, and its exit code --------------------------------------
VALID = "VALID"               # every claim in the report is bound to the proofs
INVALID = "INVALID"           # a check failed
BAD_INPUT = "BAD INPUT"       # not a bundle, or a bad option
INTERNAL = "INTERNAL ERROR"
CANNOT_CHECK = "CANNOT CHECK HERE"   # this machine lacks the memory or a tool to finish: not a verdict on the bundle
UNBOUND = "PROOFS VERIFY, CLAIMS NOT BOUND"  # the proofs hold, but some claim was not derived (opt-out, custom model)
DEV_SRS_VALID = "VALID ON AN INSECURE DEV SRS"  # every claim bound, on an SRS whose maker could forge any proof
# (--allow-insecure-dev-srs): its own exit code, so that a script reading only the code never takes it for VALID
EXIT = {VALID: 0, INVALID: 1, BAD_INPUT: 2, INTERNAL: 3, CANNOT_CHECK: 4, UNBOUND: 5, DEV_SRS_VALID: 6}
# `zkpot verify --json`: one JSON object on stdout (docs/verify-json.md), whatever the verdict
REPORT_FORMAT = "zkpot/verify-report-1"
REPORT_CLAIMS = ("run", "base", "final", "dataset", "srs", "insecure_dev_srs")   # manifest sections echoed as "claims"

# --- data owners (a clean room: several owners' batches in one run) ----------------------------
# manifest dataset.owners (optional): one OWNER doc per owner, in batch order. Owner i signed a statement
# over its own batches; its num_batches commitments are the next consecutive slice of dataset.json's
# batch_commitments, and Poseidon of that slice is its signed root.
OWNER_FORMAT = "zkpot/data-owner-1"
OWNER_DOMAIN = b"zkpot/owner-statement-1 sha256:"   # signed: OWNER_DOMAIN || sha256(canonical JSON of the statement)
OWNER_STATEMENT = ("format", "name", "root", "num_batches", "batch_size", "features", "label_width", "scale")
OWNER_DOC = ("statement", "public_key", "proof_of_possession", "signature", "scheme")
OWNER_LAYOUT = ("batch_size", "features", "label_width", "scale")  # must equal the run's
MAX_OWNERS = 64         # each costs a proof-of-possession and a signature check (~1 s in py_ecc)
MAX_OWNER_NAME = 64
