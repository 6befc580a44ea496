"""Fixtures for the adversarial suite: a third real run whose circuit differs only in its learning rate."""
from __future__ import annotations

import pytest

from tests.conftest import make_run


@pytest.fixture(scope="session")
def run_lr(tmp_path_factory):
    """Same data, model and schedule as run_a, but lr = 0.25: another circuit, another vk (about a minute)."""
    return make_run(tmp_path_factory.mktemp("run_lr"), lr=0.25)
