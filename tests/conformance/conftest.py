"""tests/conformance: the contract, one body for every backend.

Every test here runs on the backend the session selected (``--xe-backend``,
``XE_BACKEND``, default auto: a real Xe device when one opens, else the fake)
through the plugin's fixtures -- ``xe_backend``, ``xe_file``, ``xe_client``,
``restartable_vm``, ``busy_vm``, ``xe_watch``, ``xe_listener``,
``memory_pressure`` -- and judges both backends with the same assertions.

Rules for tests in this directory:

- no control surface of the fake (``evict``, ``inject``, ``settle``,
  ``watch_source``) and no ``fake_only`` marker: steps that only the fake can
  do directly go through ``trigger_rebind(vm)`` (fake: evict; hardware: a userptr
  invalidation) and ``inject_enospc()`` (fake: the fault attribute; hardware: the
  debugfs attribute, skipped with the reason where it does not exist);
- wait for events with timeouts (``Watch.poll(timeout=...)``), never by
  sleeping a fixed time, so the same test holds on hardware.

On the fake, each test is also checked for bugs in the model itself: the
workqueue must settle after the test and the fake's dispatcher safety net must
not have caught any Python exception (``XeDevice.bugs``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from xeclient.backends import Backend


@pytest.fixture(autouse=True)
def _conformance_rules(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("fake_only"):
        pytest.fail(
            "conformance tests run unchanged on hardware: use trigger_rebind/inject_enospc instead of "
            "the fake's control surface, or move the test to tests/fake",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _fake_model_healthy(xe_backend: Backend) -> Iterator[None]:
    """On the fake: after the test its workers settle and its safety net caught nothing."""
    device = getattr(xe_backend, "device", None) if xe_backend.name == "fake" else None
    bugs_before = getattr(device, "bugs", 0)
    yield
    if device is None:
        return
    settle = getattr(xe_backend, "settle", None)
    if settle is not None and not settle(5.0):
        pytest.fail("the fake's workqueue did not settle within 5 s after the test", pytrace=False)
    bugs = getattr(device, "bugs", 0) - bugs_before
    if bugs:
        pytest.fail(
            f"the fake driver's safety net caught {bugs} Python exception(s) during this test (see the log)",
            pytrace=False,
        )
