"""What a verification can end in besides VALID: a named check failed, or this machine cannot finish."""
from __future__ import annotations


class Rejected(Exception):
    """The bundle fails a check; `check` names it, `chunk` the proof it concerns (if any)."""

    def __init__(self, check: str, message: str, chunk: int | None = None):
        super().__init__(message)
        self.check, self.chunk = check, chunk

    def __str__(self):
        where = f"chunk {self.chunk}: " if self.chunk is not None else ""
        return f"{self.check}: {where}{self.args[0]}"


class CannotCheck(Exception):
    """A check this machine cannot run (memory, a missing tool): says nothing about the bundle."""


class BadInput(ValueError):
    """The caller's own input (a file given on the command line), not the bundle, is wrong: exit 2."""


def need(check: str, ok: bool, what: str) -> None:
    """The one validator of hostile documents: Rejected(check, what) unless ok."""
    if not ok:
        raise Rejected(check, what)


def need_document(doc, fields: dict, fmt: str, check: str, name: str) -> None:
    """A JSON document's header: an object, each of `fields` of its type, and the format this reader reads."""
    need(check, isinstance(doc, dict), f"{name} is not a JSON object")
    for key, typ in fields.items():
        need(check, isinstance(doc.get(key), typ), f"{name}: field {key!r} missing or not a {typ.__name__}")
    need(check, doc["format"] == fmt, f"{name}: format {doc['format']!r}, this verifier reads {fmt!r}")
