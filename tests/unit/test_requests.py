"""``xeclient.uapi.requests``: the request table the seam, the errors and the fake share.

The codes themselves are pinned literally in ``test_abi.py``; this file checks the
table's shape: names, structs, directions, and that no two requests collide.
"""

from __future__ import annotations

import pytest

from xeclient.uapi import ffi, requests
from xeclient.uapi.ioc import IOC_DIR, IOC_NR, IOC_READ, IOC_SIZE, IOC_TYPE, IOC_WRITE
from xeclient.uapi.requests import REQUESTS, XE_REQUESTS, Request, request_name

#: spec 3: which xe requests copy back (IOWR) and which only copy in (IOW)
XE_COPIES_BACK = {
    "DEVICE_QUERY": True,
    "GEM_CREATE": True,
    "GEM_MMAP_OFFSET": True,
    "VM_CREATE": True,
    "VM_DESTROY": False,
    "VM_BIND": False,
    "EXEC_QUEUE_CREATE": True,
    "EXEC_QUEUE_DESTROY": False,
    "EXEC_QUEUE_GET_PROPERTY": True,
    "EXEC": False,
    "WAIT_USER_FENCE": True,
    "OBSERVATION": False,
    "MADVISE": False,
    "VM_QUERY_MEM_RANGE_ATTRS": True,
    "EXEC_QUEUE_SET_PROPERTY": False,
    "VM_GET_PROPERTY": True,
    "VM_RESTART": False,
    "WATCH_QUEUE": False,
}


def test_xe_table_is_complete_and_ordered() -> None:
    assert list(XE_REQUESTS) == list(XE_COPIES_BACK)
    assert [IOC_NR(r.code) - 0x40 for r in XE_REQUESTS.values()] == list(range(0x12)), "compact: no holes"


@pytest.mark.parametrize("short", list(XE_COPIES_BACK))
def test_xe_request(short: str) -> None:
    req = XE_REQUESTS[short]
    assert req.name == f"DRM_IOCTL_XE_{short}"
    assert getattr(requests, req.name) == req.code
    assert IOC_TYPE(req.code) == ord("d")
    assert req.struct is not None and IOC_SIZE(req.code) == ffi.sizeof(req.struct)
    expected_dir = IOC_READ | IOC_WRITE if XE_COPIES_BACK[short] else IOC_WRITE
    assert IOC_DIR(req.code) == expected_dir
    assert REQUESTS[req.code] is req


def test_codes_are_unique() -> None:
    # REQUESTS is keyed by code: a collision (the March RFC put WATCH_QUEUE on 0x0f,
    # VM_GET_PROPERTY's number) would silently drop an entry
    names = [r.name for r in REQUESTS.values()]
    assert len(names) == len(set(names)) == 2 + len(XE_REQUESTS) + 3
    assert requests.DRM_IOCTL_XE_WATCH_QUEUE != requests.DRM_IOCTL_XE_VM_GET_PROPERTY


def test_every_struct_is_declared() -> None:
    for req in REQUESTS.values():
        if req.struct is not None:
            assert ffi.sizeof(req.struct) > 0, req.name
        assert req.code == next(code for code, r in REQUESTS.items() if r is req)


def test_by_value_requests_carry_no_struct() -> None:
    assert REQUESTS[requests.IOC_WATCH_QUEUE_SET_SIZE].struct is None
    assert REQUESTS[requests.FIONREAD].struct is None
    assert REQUESTS[requests.IOC_WATCH_QUEUE_SET_FILTER].struct == "struct watch_notification_filter"


def test_request_name() -> None:
    assert request_name(requests.DRM_IOCTL_XE_VM_RESTART) == "DRM_IOCTL_XE_VM_RESTART"
    assert request_name(requests.FIONREAD) == "FIONREAD"
    assert request_name(0x40186499) == "ioctl(0x40186499)"
    assert request_name(0) == "ioctl(0x00000000)"


def test_request_is_frozen() -> None:
    req = Request(0x40186450, "DRM_IOCTL_XE_VM_RESTART", "struct drm_xe_vm_restart")
    assert req.nr == 0x50
    with pytest.raises(AttributeError):  # dataclasses.FrozenInstanceError is one
        req.code = 0  # type: ignore[misc]
    assert req == XE_REQUESTS["VM_RESTART"]
