"""tests/fake: the fake backend's own behaviour (control surface, memory model).

Two kinds of test live here:

- tests that build a fake of their own with the ``fake_backend`` fixture (a fresh,
  isolated ``FakeBackend`` per test, shut down afterwards; pick a preset with
  ``@pytest.mark.parametrize("fake_backend", ["mtl"], indirect=True)``).  They run
  whatever ``--xe-backend`` says, even on a lab machine;
- tests that use the session backend (``xe_backend``, ``xe_client``, ...) and its
  control surface.  Those are marked ``fake_only`` here automatically, so on the
  kernel backend they are skipped with the reason instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from xeclient import Device
from xeclient.backends.fake import FakeBackend
from xeclient.pytest_plugin import XE_FIXTURES

_HERE = __file__.rsplit("/", 1)[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.path).startswith(_HERE + "/") and XE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.fake_only)


@pytest.fixture
def fake_backend(request: pytest.FixtureRequest) -> Iterator[FakeBackend]:
    """A fresh fake kernel with one device (``request.param``: a preset name, default bmg)."""
    backend = FakeBackend(getattr(request, "param", None))
    try:
        yield backend
    finally:
        backend.shutdown(close_pipes=True)  # the test is over: nothing reads its pipes any more


@pytest.fixture
def fake_client(fake_backend: FakeBackend) -> Iterator[Device]:
    """A typed :class:`Device` (one DRM file) on ``fake_backend``."""
    with Device.open(backend=fake_backend) as device:
        yield device
