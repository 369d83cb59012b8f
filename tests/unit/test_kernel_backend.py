"""The kernel backend against the OS this test runs on (no Xe device needed)."""

from __future__ import annotations

import array
import errno
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from xeclient.backends import open_backend
from xeclient.backends.kernel import KernelBackend, _render_nodes_sysfs
from xeclient.errors import IoctlError, WatchQueueUnsupportedError, XeError
from xeclient.uapi.constants import O_NOTIFICATION_PIPE
from xeclient.uapi.requests import FIONREAD


def _has_watch_queue() -> bool:
    try:
        r, w = os.pipe2(O_NOTIFICATION_PIPE)
    except OSError:
        return False
    os.close(r)
    os.close(w)
    return True


def test_seam_has_exactly_the_documented_calls() -> None:
    calls = {"render_nodes", "open", "close", "ioctl", "pipe2", "read", "write"}
    kb = KernelBackend()
    for name in calls:
        assert callable(getattr(kb, name))


def test_ioctl_with_buffer_writes_back() -> None:
    kb = KernelBackend()
    r, w = kb.pipe2(os.O_CLOEXEC)
    try:
        kb.write(w, b"12345")
        buf = bytearray(4)
        assert kb.ioctl(r, FIONREAD, buf) == 0
        assert int.from_bytes(buf, "little") == 5
        arr = array.array("i", [0])
        kb.ioctl(r, FIONREAD, memoryview(arr))
        assert arr[0] == 5
    finally:
        kb.close(r)
        kb.close(w)


def test_ioctl_failure_names_the_request_and_keeps_errno() -> None:
    kb = KernelBackend()
    r, w = kb.pipe2(os.O_CLOEXEC)
    try:
        with pytest.raises(IoctlError) as info:
            kb.ioctl(r, 0x40186450, bytearray(24))  # DRM_IOCTL_XE_VM_RESTART on a pipe
        assert info.value.errno == errno.ENOTTY
        assert isinstance(info.value, OSError)
        assert str(info.value).startswith("DRM_IOCTL_XE_VM_RESTART: [Errno 25]")
        assert info.value.request == 0x40186450
    finally:
        kb.close(r)
        kb.close(w)


def test_ioctl_integer_wider_than_c_int_uses_libc_path() -> None:
    kb = KernelBackend()
    r, w = kb.pipe2(os.O_CLOEXEC)
    try:
        with pytest.raises(IoctlError) as info:
            kb.ioctl(r, 0x5761, 0x7FFF_0000_1000)  # SET_FILTER with a pointer-sized int
        assert info.value.errno in (errno.ENOTTY, errno.ENODEV, errno.EFAULT)
    finally:
        kb.close(r)
        kb.close(w)


def test_eintr_is_retried(tmp_path: Path) -> None:
    """A signal during a blocking read must not surface as EINTR (PEP 475 + our loop)."""
    kb = KernelBackend()
    r, w = kb.pipe2(os.O_CLOEXEC)
    fired = []
    old = signal.signal(signal.SIGUSR1, lambda *_: fired.append(1))
    try:
        main = threading.get_ident()

        def poke() -> None:
            time.sleep(0.05)
            signal.pthread_kill(main, signal.SIGUSR1)
            time.sleep(0.05)
            os.write(w, b"x")

        t = threading.Thread(target=poke)
        t.start()
        assert kb.read(r, 1) == b"x"
        t.join()
        assert fired
    finally:
        signal.signal(signal.SIGUSR1, old)
        kb.close(r)
        kb.close(w)


@pytest.mark.skipif(_has_watch_queue(), reason="this kernel has CONFIG_WATCH_QUEUE")
def test_notification_pipe_without_watch_queue_is_explained() -> None:
    with pytest.raises(WatchQueueUnsupportedError) as info:
        KernelBackend().pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC)
    assert info.value.errno == errno.ENOPKG
    assert "CONFIG_WATCH_QUEUE" in str(info.value)


def test_open_missing_node_names_the_path() -> None:
    with pytest.raises(XeError) as info:
        KernelBackend().open("/dev/dri/renderD250", os.O_RDWR)
    assert info.value.errno == errno.ENOENT
    assert "/dev/dri/renderD250" in str(info.value)


def test_sysfs_discovery_keeps_only_xe_render_nodes(tmp_path: Path) -> None:
    drm = tmp_path / "class" / "drm"
    drivers = tmp_path / "bus" / "pci" / "drivers"
    for name, driver in (("renderD128", "xe"), ("renderD129", "i915"), ("card0", "xe"), ("renderD130", None)):
        dev = tmp_path / "devices" / name
        dev.mkdir(parents=True)
        if driver:
            (drivers / driver).mkdir(parents=True, exist_ok=True)
            (dev / "driver").symlink_to(drivers / driver)
        (drm / name).mkdir(parents=True)
        (drm / name / "device").symlink_to(dev)
    assert _render_nodes_sysfs(str(tmp_path)) == ["/dev/dri/renderD128"]
    assert _render_nodes_sysfs(str(tmp_path / "missing")) == []


def test_open_backend_names() -> None:
    assert open_backend("kernel").name == "kernel"
    with pytest.raises(ValueError, match="unknown backend"):
        open_backend("gpu")


def test_auto_falls_back_to_fake_without_device(caplog: pytest.LogCaptureFixture) -> None:
    if KernelBackend().probe() is None:
        pytest.skip("an xe device is present")
    caplog.set_level("INFO", logger="xeclient.backends")
    backend = open_backend("auto")
    try:
        assert backend.name == "fake"
        assert "using the fake backend because" in caplog.text
    finally:
        backend.shutdown()  # type: ignore[attr-defined]
