"""Shared fixtures. ``engine``: the forward and gradient tests that take it run under every
engine family: ``"fast"`` (the default choice: the layered fast path where the network allows
it, else the general compiled engine), ``"general"`` (the compiled event queue) and
``"reference"`` (the readable Python engine), each against the same independent check."""

import pytest

ENGINES = ("fast", "general", "reference")


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param
