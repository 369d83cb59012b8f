"""Closing a device that owns its fake backend while a listener runs on it."""

from __future__ import annotations

import os

from xeclient import Device, Listener
from xeclient.backends.fake import FakeBackend
from xeclient.events import Removal
from xeclient.listener import EndReason


def test_closing_owning_device_ends_listener_with_removal_not_error() -> None:
    dev = Device.open(backend="fake")
    seen: list[object] = []
    listener = Listener(dev, seen.append)
    listener.start()
    dev.close()  # shuts the private fake down: DRM files are destroyed, pipes stay
    assert listener.join(timeout=5)
    assert listener.ended_reason == EndReason.REMOVED
    assert any(isinstance(e, Removal) for e in seen)
    listener.destroy()  # closes its own watch: no EBADF, no leak


def test_shutdown_keeps_pipes_unless_asked() -> None:
    backend = FakeBackend()
    rfd, wfd = backend.pipe2(0x80 | os.O_CLOEXEC | os.O_NONBLOCK)
    backend.shutdown()
    assert backend.lookup(rfd) is not None  # still a notification pipe for its holder
    os.fstat(rfd)
    backend.shutdown(close_pipes=True)
    assert backend.lookup(rfd) is None and backend.lookup(wfd) is None
