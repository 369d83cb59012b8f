"""Device presets and the device-dependent rows of spec 5.1 (rows 2, 3, 6) and 5.5 (64K)."""

from __future__ import annotations

import errno
import os

import pytest
from conformance import rawabi as abi
from conformance.rawabi import RawClient, u32

from xeclient.backends.fake import FakeBackend


def client(backend: FakeBackend) -> RawClient:
    fd = backend.open(backend.render_nodes()[0], os.O_RDWR | os.O_CLOEXEC)
    return RawClient(backend, fd)


@pytest.mark.parametrize("fake_backend", ["dg2"], indirect=True)
def test_dg2_workaround_ors_scratch_page(fake_backend):
    c = client(fake_backend)
    a = abi.vm_create(abi.LR_MODE)
    assert c.call(abi.VM_CREATE, a) == 0
    assert u32(a, 8) == abi.LR_MODE | abi.SCRATCH_PAGE


@pytest.mark.parametrize("fake_backend", ["dg2"], indirect=True)
def test_row3_fault_mode_without_usm(fake_backend):
    c = client(fake_backend)
    a = abi.vm_create(abi.LR_MODE | abi.FAULT_MODE)
    assert c.call(abi.VM_CREATE, a) == errno.EINVAL
    # row 3 comes before row 4: the reserved field does not change the answer, the WA already ran
    a = abi.vm_create(abi.FAULT_MODE, reserved=(1, 0))
    assert c.call(abi.VM_CREATE, a) == errno.EINVAL
    assert u32(a, 8) == abi.FAULT_MODE | abi.SCRATCH_PAGE


def test_bmg_no_workaround(fake_backend):
    c = client(fake_backend)
    a = abi.vm_create(abi.LR_MODE)
    assert c.call(abi.VM_CREATE, a) == 0
    assert u32(a, 8) == abi.LR_MODE


def test_row6_scratch_with_fault_needs_scratch(fake_backend):
    c = client(fake_backend)
    assert c.call(abi.VM_CREATE, abi.vm_create(abi.SCRATCH_PAGE | abi.LR_MODE | abi.FAULT_MODE)) == errno.EINVAL
    with FakeBackend(needs_scratch=True) as other:
        c2 = client(other)
        assert c2.call(abi.VM_CREATE, abi.vm_create(abi.SCRATCH_PAGE | abi.LR_MODE | abi.FAULT_MODE)) == 0


@pytest.mark.parametrize("fake_backend", ["mtl"], indirect=True)
def test_integrated_has_no_vram(fake_backend):
    c = client(fake_backend)
    assert len(c.mem_regions()) == 1
    assert not c.config()[1] & abi.HAS_VRAM
    assert c.call(abi.GEM_CREATE, abi.gem_create(4096, 2, abi.WC)) == errno.EINVAL
    assert c.call(abi.GEM_CREATE, abi.gem_create(4096, 1, abi.WB, flags=abi.NEEDS_VISIBLE_VRAM)) == errno.EINVAL
    assert fake_backend.device.vram_used() == 0


@pytest.mark.parametrize("fake_backend", ["dg2"], indirect=True)
def test_dg2_64k(fake_backend):
    c = client(fake_backend)
    assert c.config()[2] == 65536
    assert c.mem_regions()[1]["min_page_size"] == 65536
    assert c.call(abi.GEM_CREATE, abi.gem_create(4096, 2, abi.WC)) == errno.EINVAL  # BO creation: 64K size
    h = c.bo(65536, 2, abi.WC)
    vm = c.vm()
    assert c.bind(vm, h, 0x101000, 65536, pat_index=abi.PAT_WC) == errno.EINVAL  # addr not 64K aligned
    assert c.bind(vm, h, 0x110000, 65536, pat_index=abi.PAT_WC) == 0


def test_vram_override_and_bad_options():
    with FakeBackend("discrete", vram=64 << 20) as b:
        assert client(b).mem_regions()[1]["total_size"] == 64 << 20
    with pytest.raises(ValueError):
        FakeBackend("nope")
    with pytest.raises(ValueError):
        FakeBackend("integrated", vram=1 << 20)
    with pytest.raises(TypeError):
        FakeBackend(bogus=1)
