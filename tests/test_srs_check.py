"""`zkpot srs import`: an SRS made by ezkl passes every py_ecc check; an SRS whose points are valid
curve points but not the powers of one secret is rejected, naming the check that caught it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ezkl
import pytest
from py_ecc import optimized_bn128 as bn

from zkpot.spec.artifacts import ArtifactError
from zkpot.spec.errors import Rejected
from zkpot.verifier.srs_check import check_srs

K = 6
N = 1 << K
G, LAG = 4, 4 + 64 * N                 # offsets of g[0] and g_lagrange[0]
H, SH = 4 + 128 * N, 4 + 128 * N + 128  # offsets of h and s·h


def mont(v: int) -> bytes:
    return (v * (1 << 256) % bn.field_modulus).to_bytes(32, "little")


def g1(pt) -> bytes:
    x, y = bn.normalize(pt)
    return mont(x.n) + mont(y.n)


def g2(pt) -> bytes:
    x, y = bn.normalize(pt)
    return mont(x.coeffs[0]) + mont(x.coeffs[1]) + mont(y.coeffs[0]) + mont(y.coeffs[1])


def point(buf: bytes, off: int):
    """Decode a G1 point back (test side), to build compensating corruptions."""
    inv = pow(1 << 256, -1, bn.field_modulus)
    c = [int.from_bytes(buf[off + 32 * j: off + 32 * j + 32], "little") * inv % bn.field_modulus for j in range(2)]
    return bn.FQ(c[0]), bn.FQ(c[1]), bn.FQ.one()


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("srs") / "good.srs"
    ezkl.gen_srs(str(path), K)
    return path.read_bytes()


def write(tmp_path: Path, data: bytes, *patches: tuple[int, bytes]) -> Path:
    buf = bytearray(data)
    for off, b in patches:
        buf[off: off + len(b)] = b
    path = tmp_path / "srs.bin"
    path.write_bytes(bytes(buf))
    return path


def rejected(path: Path, samples: int = 256) -> str:
    with pytest.raises(Rejected) as e:
        check_srs(path, samples)
    return str(e.value)


def test_layout_and_good_srs(good, tmp_path):
    """The layout is ezkl's: k, then g[0] = (1, 2) in Montgomery form, ..., h = py_ecc's G2."""
    assert int.from_bytes(good[:4], "little") == K and len(good) == 4 + 128 * N + 256
    assert good[G: G + 64] == g1(bn.G1) and good[H: H + 128] == g2(bn.G2)
    res = check_srs(write(tmp_path, good))
    assert res["logrows"] == K and res["origin"] == "insecure-dev" and len(res["sha256"]) == 64
    text = "\n".join(res["checks"])
    assert f"all {N - 1} of the {N - 1} pairs" in text and f"all {N} of the {N} points" in text


def test_sampled_check_says_how_many(good, tmp_path):
    res = check_srs(write(tmp_path, good), samples=8)
    assert f"a random sample of 8 of the {N - 1} pairs" in next(c for c in res["checks"] if c.startswith("powers"))


@pytest.mark.parametrize("i", [1, N // 2, N - 1])
def test_one_corrupted_power_is_rejected(good, tmp_path, i):
    """g[i] replaced by 5·G1: a valid curve point, so only the pairing equations catch it."""
    path = write(tmp_path, good, (G + 64 * i, g1(bn.multiply(bn.G1, 5))))
    assert "powers: the sum over all pairs fails" in rejected(path, samples=2)


def test_compensating_corrupted_powers_are_caught_by_the_random_combination(good, tmp_path):
    """g[3] + D and g[9] − D keep both sums, so the deterministic check passes; the random one does not."""
    d = bn.multiply(bn.G1, 12345)
    path = write(tmp_path, good, (G + 64 * 3, g1(bn.add(point(good, G + 64 * 3), d))),
                 (G + 64 * 9, g1(bn.add(point(good, G + 64 * 9), bn.neg(d)))))
    assert "powers: a random linear combination of 63 pairs fails" in rejected(path)


def test_s_g2_that_does_not_match_is_rejected(good, tmp_path):
    path = write(tmp_path, good, (SH, g2(bn.multiply(bn.G2, 7))))
    assert "powers:" in rejected(path)


@pytest.mark.parametrize("patch, message", [
    ((G, g1(bn.multiply(bn.G1, 2))), "g[0] is not the BN254 G1 generator"),
    ((H, g2(bn.multiply(bn.G2, 2))), "h is not the BN254 G2 generator"),
    ((G + 64 * 5 + 32, mont(7)), "g[5] is not on the BN254 G1 curve"),
    ((LAG + 64 * 2, b"\0" * 64), "g_lagrange[2] is the point at infinity"),
    ((SH, b"\xff" * 32), "s·h: coordinate not reduced modulo p"),
])
def test_malformed_points_are_rejected(good, tmp_path, patch, message):
    assert message in rejected(write(tmp_path, good, patch))


def test_one_corrupted_lagrange_point_is_rejected(good, tmp_path):
    """A wrong Lagrange point would make setup commit to another circuit's fixed columns."""
    path = write(tmp_path, good, (LAG + 64 * 7, g1(bn.multiply(bn.G1, 5))))
    assert "lagrange: the Lagrange points do not sum to g[0]" in rejected(path)


def test_compensating_lagrange_points_are_caught_by_the_pairing_check(good, tmp_path):
    """L[2] + D and L[4] − D keep the sum and the alternating sum; the pairing check catches them."""
    d = bn.multiply(bn.G1, 777)
    path = write(tmp_path, good, (LAG + 64 * 2, g1(bn.add(point(good, LAG + 64 * 2), d))),
                 (LAG + 64 * 4, g1(bn.add(point(good, LAG + 64 * 4), bn.neg(d)))))
    assert "lagrange: a random combination of 64 points fails" in rejected(path)


@pytest.mark.parametrize("data", [b"", b"\x06\0\0\0" + b"\0" * 100, b"\x63\0\0\0" + b"\0" * 100])
def test_not_an_srs_file(tmp_path, data):
    (tmp_path / "x.srs").write_bytes(data)
    with pytest.raises(ArtifactError):
        check_srs(tmp_path / "x.srs")


def test_truncated_srs(good, tmp_path):
    (tmp_path / "x.srs").write_bytes(good[:-1])
    with pytest.raises(ArtifactError, match="has exactly"):
        check_srs(tmp_path / "x.srs")


def zkpot(*args, cache: Path):
    env = {**os.environ, "ZKPOT_CACHE": str(cache)}
    r = subprocess.run([sys.executable, "-m", "zkpot.cli", *map(str, args)], capture_output=True, text=True, env=env)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r


def test_cli_srs_dev_then_import(tmp_path):
    r = zkpot("srs", "dev", "--logrows", 5, "--out", tmp_path / "dev.srs", cache=tmp_path / "cache")
    assert r.returncode == 0 and "insecure-dev" in r.stdout, r.stderr
    r = zkpot("srs", "import", tmp_path / "dev.srs", "--record", tmp_path / "rec.json", cache=tmp_path / "cache")
    assert r.returncode == 0 and "pass" in r.stdout and "insecure-dev" in r.stdout, r.stderr
    assert "random linear combination" in (tmp_path / "rec.json").read_text()


def test_cli_srs_import_rejects_in_one_line(good, tmp_path):
    path = write(tmp_path, good, (SH, g2(bn.multiply(bn.G2, 7))))
    r = zkpot("srs", "import", path, cache=tmp_path / "cache")
    assert r.returncode == 1 and "rejected: srs: powers" in r.stderr and len(r.stderr.strip().splitlines()) <= 3, r.stderr
    r = zkpot("srs", "import", tmp_path / "missing.srs", cache=tmp_path / "cache")
    assert r.returncode == 2 and "SRS file not found" in r.stderr
