"""pytest plugin (entry point ``pytest11``): backend selection and xe fixtures.

Dormant unless used: registering options and fixtures has no side effect; a
backend is opened only when a test asks for ``xe_backend`` (or a fixture built
on it).  Select with ``--xe-backend={auto,kernel,fake}`` or ``XE_BACKEND``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from xeclient.backends import BACKEND_NAMES, Backend, open_backend


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xeclient", "Intel Xe (xeclient)")
    group.addoption(
        "--xe-backend",
        choices=BACKEND_NAMES,
        default=None,
        help="backend for xe fixtures: auto (kernel if an xe node opens, else fake), kernel, fake; env XE_BACKEND",
    )


def _backend_name(config: pytest.Config) -> str:
    return str(config.getoption("--xe-backend") or os.environ.get("XE_BACKEND") or "auto")


@pytest.fixture(scope="session")
def xe_backend(pytestconfig: pytest.Config) -> Iterator[Backend]:
    """The backend every xe fixture of this session uses."""
    backend = open_backend(_backend_name(pytestconfig))
    yield backend
    shutdown = getattr(backend, "shutdown", None)
    if shutdown is not None:
        shutdown()


@pytest.fixture
def xe_node(xe_backend: Backend) -> str:
    """Path of the render node under test."""
    nodes = xe_backend.render_nodes()
    if not nodes:
        pytest.skip("no xe render node")
    return nodes[0]


@pytest.fixture
def xe_file(xe_backend: Backend, xe_node: str) -> Iterator[int]:
    """A fresh DRM file (raw descriptor) on the node under test, closed afterwards."""
    fd = xe_backend.open(xe_node, os.O_RDWR | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        xe_backend.close(fd)
