"""A driver that predates the series: 0x10/0x11 are EINVAL, and xeclient says why."""

from __future__ import annotations

import errno

import pytest

from xeclient import Device, SeriesMissingError, VmCreateFlag
from xeclient.backends.fake import FakeBackend


@pytest.fixture
def old_dev() -> Device:
    dev = Device.open(backend=FakeBackend(series=False))
    dev._owns_backend = True  # shut the private backend down with the device
    yield dev  # type: ignore[misc]
    dev.close()


def test_features_report_no_series(old_dev: Device) -> None:
    f = old_dev.features()
    assert not f.vm_restart and not f.watch_queue and f.notification_pipes


def test_watch_queue_gets_a_sentence_not_a_bare_einval(old_dev: Device) -> None:
    with pytest.raises(SeriesMissingError) as info:
        old_dev.watch()
    assert info.value.errno == errno.EINVAL
    assert "This kernel's xe driver has no DRM_IOCTL_XE_WATCH_QUEUE" in str(info.value)


def test_restart_gets_a_sentence(old_dev: Device) -> None:
    vm = old_dev.create_vm(VmCreateFlag.LR_MODE)
    with pytest.raises(SeriesMissingError, match="no DRM_IOCTL_XE_VM_RESTART"):
        vm.restart()


def test_restartable_flag_unknown_to_old_driver(old_dev: Device) -> None:
    with pytest.raises(OSError) as info:
        old_dev.create_vm(VmCreateFlag.LR_MODE | VmCreateFlag.RESTARTABLE)
    assert info.value.errno == errno.EINVAL
    assert not isinstance(info.value, SeriesMissingError)


def test_series_driver_einval_is_not_misreported(xe_backend: object) -> None:
    dev = Device.open(backend=FakeBackend())
    dev._owns_backend = True
    try:
        vm = dev.create_vm(VmCreateFlag.LR_MODE)  # not restartable: EINVAL from the handler itself
        with pytest.raises(OSError) as info:
            vm.restart()
        assert info.value.errno == errno.EINVAL and not isinstance(info.value, SeriesMissingError)
    finally:
        dev.close()
