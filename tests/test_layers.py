"""The package structure, checked: the layer order of pyproject.toml's import-linter contracts (spec at the
bottom; models, circuits; prover and verifier siblings that never import each other; cli on top; no
cycles), shown to hold on the code and to fail on planted violations; and zkpot's installed names beside a
user's own `models` package."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ["__init__.py", "cli.py", "spec", "models", "circuits", "prover", "verifier"]


def lint(root: Path | None) -> subprocess.CompletedProcess:
    """lint-imports with the project's contracts (pyproject.toml) on the installed `zkpot`, or on the one
    found first on PYTHONPATH=root."""
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | ({"PYTHONPATH": str(root)} if root else {})
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)


def test_the_layer_contracts_hold():
    r = lint(None)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert r.stdout.count("KEPT") == 3 and "BROKEN" not in r.stdout, r.stdout


def lint_copy(plant: tuple[str, str], base: Path) -> subprocess.CompletedProcess:
    """The package copied to base/zkpot, with one line appended to one module (`plant`), linted."""
    pkg = base / "zkpot"
    for name in PACKAGE:
        src = ROOT / name
        (shutil.copytree(src, pkg / name, ignore=shutil.ignore_patterns("__pycache__")) if src.is_dir()
         else (pkg.mkdir(exist_ok=True), shutil.copy(src, pkg / name)))
    module, line = plant
    with open(pkg / module, "a") as f:
        f.write(f"\n{line}\n")
    return lint(base)


@pytest.mark.parametrize("module,line,broken", [
    ("verifier/verify.py", "from zkpot.prover.run import RunDir", "layers"),          # siblings
    ("prover/prove.py", "from zkpot.verifier.report import Report", "layers"),
    ("circuits/derive.py", "import zkpot.verifier.read", "layers"),                   # a lower layer looking up
    ("models/step.py", "import zkpot.circuits.pipeline", "layers"),
    ("spec/claims.py", "import zkpot.models.zoo", "layers"),
    ("spec/layout.py", "import torch", "the spec layer imports neither"),            # spec stays tool-free
    ("spec/schedule.py", "import ezkl", "the spec layer imports neither"),
    ("spec/errors.py", "import zkpot.spec.schedule", "no import cycles"),              # schedule imports errors
    ("verifier/read.py", "import zkpot.verifier.verify", "no import cycles"),
])
def test_a_planted_violation_is_caught(tmp_path, module, line, broken):
    r = lint_copy((module, line), tmp_path)
    assert r.returncode == 1, r.stdout[-3000:]
    assert any(ln.startswith(broken) and ln.endswith("BROKEN") for ln in r.stdout.splitlines()), r.stdout[-3000:]


def test_a_users_models_package_and_zkpots_coexist(tmp_path):
    """ML projects often have a `models/` package: zkpot installs as `zkpot.*`, so neither shadows the other,
    and a --model file.py:Class importing its own `models` package loads beside zkpot's."""
    proj = tmp_path / "proj"
    (proj / "models").mkdir(parents=True)
    (proj / "models" / "__init__.py").write_text("OWNER = 'the user'\n")
    (proj / "models" / "blocks.py").write_text("import torch\nclass Head(torch.nn.Linear):\n    pass\n")
    (proj / "net.py").write_text(textwrap.dedent("""\
        import torch
        from models.blocks import Head
        class Net(torch.nn.Module):
            def __init__(self, in_features, out_features):
                super().__init__()
                self.head = Head(in_features, out_features)
            def forward(self, x):
                return self.head(x)
        """))
    code = textwrap.dedent(f"""\
        import models
        import zkpot.models.zoo as zoo
        from zkpot.verifier.verify import verify_bundle
        assert models.OWNER == 'the user', models.__file__
        assert zoo.__file__.startswith({str(ROOT)!r}), zoo.__file__
        net = zoo.build({{"name": {str(proj / 'net.py') + ':Net'!r}, "kwargs": {{"in_features": 3, "out_features": 1}}}})
        assert type(net.head).__module__ == 'models.blocks'
        print('ok')
        """)
    r = subprocess.run([sys.executable, "-c", code], cwd=proj, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_every_cache_namespace_is_documented_and_used():
    """One page names every namespace (docs/cache.md); the code asks for no other (cache.entry refuses one)."""
    import re

    from zkpot.spec.cache import NAMESPACES

    page = (ROOT / "docs" / "cache.md").read_text()
    used = {m for f in ROOT.glob("*/*.py") for m in re.findall(r'cache\.entry\("([a-z-]+)"', f.read_text())}
    assert used == set(NAMESPACES), used ^ set(NAMESPACES)
    assert all(f"| `{n}` |" in page for n in NAMESPACES)


def test_the_cache_page_is_the_namespace_table_and_the_verifier_reads_no_prover_key():
    """docs/cache.md's table is spec/cache.py's NAMESPACES row for row, word for word. The verifier derives
    every aggregation vk itself (verifier/rebuild.py), so `aggregation` is the prover's alone, and the
    `circuits` entry names the files that derivation caches beside the step's."""
    from zkpot.spec.cache import NAMESPACES

    page = (ROOT / "docs" / "cache.md").read_text()
    rows = [ln for ln in page.splitlines() if ln.startswith("| `")]
    assert rows == [f"| `{n}` | {' | '.join(row)} |" for n, row in NAMESPACES.items()], "\n".join(rows)
    assert NAMESPACES["aggregation"][2:] == ("prover/fold.py", "prover/fold.py"), NAMESPACES["aggregation"]
    assert not [f.name for f in (ROOT / "verifier").glob("*.py") if 'entry("aggregation"' in f.read_text()]
    assert "prover-made file a verifier may read" not in page
    for name in ("aggregation-vk-<shape id>-<logrows>-<srs>.vk", "aggregation-json-<shape id>-<logrows>-<srs>.json",
                 "aggregation-sample-c-<srs>.json"):
        assert f"`{name}`" in NAMESPACES["circuits"][0], name
