"""What a verification says: each check passed or failed with its time, warnings, and the verdict they give.

The verdict (spec/protocol.py) is VALID only if every claim the report shows is bound (on an insecure
dev SRS the caller allowed, VALID ON AN INSECURE DEV SRS); a check the caller opted out of, or a model
description that cannot be derived, gives UNBOUND; a machine that cannot finish gives CANNOT CHECK
HERE; any failed check gives INVALID.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from zkpot.spec import protocol as P
from zkpot.spec.errors import Rejected


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
    insecure_srs: bool = False   # the SRS is a dev SRS (allowed by the caller, else a failure)
    cannot_check: str | None = None
    prediction: list[list[float]] | None = None   # stage 7: the proved prediction
    privacy: dict | None = None   # (DP-SGD) epsilon, delta, C, SIGMA and the accountant, derived from the claims
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        if self.failures:
            return P.INVALID
        if self.cannot_check is not None or self.manifest is None:
            return P.CANNOT_CHECK
        if self.unbound:
            return P.UNBOUND
        return P.DEV_SRS_VALID if self.insecure_srs else P.VALID

    @property
    def ok(self) -> bool:
        """Every claim is bound: VALID, or VALID on a dev SRS where the caller allowed one (the verdict tells)."""
        return self.verdict in (P.VALID, P.DEV_SRS_VALID)

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
                "privacy": self.privacy, "seconds": round(self.seconds, 3),
                "claims": None if self.manifest is None else {k: self.manifest.get(k) for k in P.REPORT_CLAIMS},
                "versions": {tool: version(tool) for tool in ("zkpot", "ezkl", "py_ecc")}}
