"""tests/realkernel: notification pipes against a live kernel, and the same bodies against the fake.

The ``source`` fixture is parametrized over event sources:

* ``keyring`` (marked ``realkernel``): real keyrings, ``KEYCTL_WATCH_KEY`` and the running
  kernel's notification pipes.  It runs in the QEMU guest of ``tools/realkernel`` (``bash
  tools/realkernel/ci.sh``), which sets ``XECLIENT_REALKERNEL=1``; anywhere else it is skipped
  with the reason.
* ``fake``: the fake backend's notification pipes fed by ``FakeBackend.watch_source()``; runs
  everywhere, in the ordinary suite.

A test that passes on one and fails on the other has found a difference between the fake model
and the kernel.  Modules whose every test needs the kernel (discovery) mark themselves
``realkernel`` and skip the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from rk_sources import SKIP_NO_WATCH_QUEUE, EventSource, FakeSource, KeyringSource, live_support

_probe: list[str | None] = []


def live_skip_reason() -> str | None:
    """Why the live kernel cannot run these tests here (None: it can); probed once."""
    if os.environ.get("XECLIENT_REALKERNEL") != "1":
        return SKIP_NO_WATCH_QUEUE
    if not _probe:
        _probe.append(live_support())
    return _probe[0]


@pytest.fixture(params=[pytest.param("keyring", marks=pytest.mark.realkernel), "fake"])
def source(request: pytest.FixtureRequest) -> Iterator[EventSource]:
    src: EventSource
    if request.param == "keyring":
        reason = live_skip_reason()
        if reason:
            pytest.skip(reason)
        src = KeyringSource()
    else:
        src = FakeSource()
    try:
        yield src
    finally:
        src.close()
