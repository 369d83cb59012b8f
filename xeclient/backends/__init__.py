"""Backends behind the syscall seam, and :func:`open_backend` to pick one.

``"kernel"`` forwards to the OS and drives a real Xe render node; ``"fake"`` is a
pure-Python model of the xe driver on real descriptors; ``"auto"`` picks the
kernel when an xe render node can be opened and the fake otherwise, and logs
which and why.  ``None`` reads the ``XE_BACKEND`` environment variable
(default ``auto``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .base import Backend, IoctlArg

if TYPE_CHECKING:
    from .fake import FakeBackend
    from .kernel import KernelBackend

__all__ = ["Backend", "IoctlArg", "open_backend", "BACKEND_NAMES"]

BACKEND_NAMES = ("auto", "kernel", "fake")


def open_backend(name: str | None = None, **options: Any) -> Backend:
    """Return a backend by name: ``"kernel"``, ``"fake"`` or ``"auto"``.

    ``options`` go to the fake (``preset=``, ``vram=``); they are ignored by the
    kernel backend, and by ``"auto"`` when it picks the kernel.
    """
    name = (name or os.environ.get("XE_BACKEND") or "auto").strip().lower()
    if name == "kernel":
        return _kernel()
    if name == "fake":
        return _fake(**options)
    if name != "auto":
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKEND_NAMES)}")
    import logging

    log = logging.getLogger("xeclient.backends")
    kernel = _kernel()
    reason = kernel.probe()
    if reason is None:
        log.info("backend auto: using the kernel backend (%s)", ", ".join(kernel.render_nodes()))
        return kernel
    log.info("backend auto: using the fake backend because %s", reason)
    return _fake(**options)


def _kernel() -> KernelBackend:
    from .kernel import KernelBackend

    return KernelBackend()


def _fake(**options: Any) -> FakeBackend:
    from .fake import FakeBackend

    return FakeBackend(**options)
