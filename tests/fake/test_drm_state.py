"""Spec 2 rows that need a device state: wedged -> ECANCELED first, unplugged -> ENODEV."""

from __future__ import annotations

import errno
import os

from conformance import rawabi as abi
from conformance.rawabi import call


def test_wedged_cancels_every_cmd_first(fake_backend):
    fd = fake_backend.open(fake_backend.render_nodes()[0], os.O_RDWR)
    fake_backend.device.wedged = True
    assert call(fake_backend, fd, 0x00005760, 1) == errno.ECANCELED  # before the type check
    assert call(fake_backend, fd, abi.DRM_IOCTL_VERSION, abi.drm_version()) == errno.ECANCELED
    fake_backend.device.wedged = False
    assert call(fake_backend, fd, abi.DRM_IOCTL_VERSION, abi.drm_version()) == 0


def test_unplugged_is_enodev_before_type(fake_backend):
    fd = fake_backend.open(fake_backend.render_nodes()[0], os.O_RDWR)
    fake_backend.device.unplugged = True
    assert call(fake_backend, fd, 0x00005760, 1) == errno.ENODEV
    assert call(fake_backend, fd, abi.VM_CREATE, abi.vm_create()) == errno.ENODEV


def test_drm_read_write(fake_backend):
    fd = fake_backend.open(fake_backend.render_nodes()[0], os.O_RDWR)
    for fn, arg in ((fake_backend.read, 64), (fake_backend.write, b"x")):
        try:
            fn(fd, arg)
        except OSError as exc:
            assert exc.errno in (errno.EAGAIN, errno.EINVAL)
        else:
            raise AssertionError("expected an error")
