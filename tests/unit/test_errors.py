from __future__ import annotations

import errno
import pickle

from xeclient.errors import (
    IoctlError,
    NoDeviceError,
    SeriesMissingError,
    WatchQueueUnsupportedError,
    XeError,
    format_args,
)


def test_message_names_the_call() -> None:
    exc = IoctlError(errno.EALREADY, "DRM_IOCTL_XE_VM_RESTART(vm_id=3)")
    assert str(exc) == "DRM_IOCTL_XE_VM_RESTART(vm_id=3): [Errno 114] Operation already in progress"
    assert isinstance(exc, OSError) and exc.errno == errno.EALREADY


def test_hint_is_appended() -> None:
    exc = SeriesMissingError(
        errno.EINVAL, "DRM_IOCTL_XE_WATCH_QUEUE(fd=5)", "This kernel's xe driver has no DRM_IOCTL_XE_WATCH_QUEUE"
    )
    assert str(exc).endswith("[Errno 22] Invalid argument. This kernel's xe driver has no DRM_IOCTL_XE_WATCH_QUEUE")
    assert isinstance(exc, IoctlError)


def test_pickles_round_trip() -> None:
    for exc in (
        XeError(errno.ENOENT, "open(/x)"),
        IoctlError(errno.EBUSY, "X", request=7),
        WatchQueueUnsupportedError(),
    ):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc) and back.errno == exc.errno


def test_no_device_error_reads_as_a_sentence() -> None:
    exc = NoDeviceError("No Xe device: no render node is bound to the xe driver")
    assert str(exc) == "No Xe device: no render node is bound to the xe driver"
    assert exc.errno == errno.ENODEV


def test_format_args_hex_for_masks() -> None:
    assert format_args(vm_id=3, flags=18) == "vm_id=3, flags=0x12"
