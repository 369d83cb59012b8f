"""The ABI, literally: sizes, alignments and every field offset of every struct the
ffi declares, and every request code, written out as numbers and asserted against
``xeclient.uapi.ffi`` and ``xeclient.uapi.requests``.

The numbers are gcc's (x86_64, LP64) over the upstream headers -- ``xe_drm.h`` as
synced from drm-next at f99a05cc0b85 (April 2026), ``drm.h``, ``linux/watch_queue.h``,
``linux/keyctl.h`` -- and, for the series' three structs, the layouts of the
patches (spec sections 1.2, 3, 4).  ``test_abi_gcc.py`` re-derives the same facts
from the C compiler over ``cdefs/``; this file pins them so that a change in
either shows up as a diff of numbers.  Nested members of anonymous structs are
written ``outer.inner``; members of anonymous unions appear at their offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from xeclient.uapi import ffi, requests
from xeclient.uapi.ioc import IOC_DIR, IOC_NR, IOC_READ, IOC_SIZE, IOC_TYPE, IOC_WRITE
from xeclient.uapi.requests import REQUESTS

LP64 = ffi.sizeof("void *") == 8 and ffi.sizeof("size_t") == 8

#: struct -> (sizeof, alignof, {member: (offsetof, sizeof member or None for a flexible array)})
# fmt: off
LAYOUT: dict[str, tuple[int, int, dict[str, tuple[int, int | None]]]] = {
    "struct drm_gem_close": (8, 4, {
        "handle": (0, 4),
        "pad": (4, 4),
    }),
    "struct drm_version": (64, 8, {
        "version_major": (0, 4),
        "version_minor": (4, 4),
        "version_patchlevel": (8, 4),
        "name_len": (16, 8),
        "name": (24, 8),
        "date_len": (32, 8),
        "date": (40, 8),
        "desc_len": (48, 8),
        "desc": (56, 8),
    }),
    "struct drm_xe_device_query": (40, 8, {
        "extensions": (0, 8),
        "query": (8, 4),
        "size": (12, 4),
        "data": (16, 8),
        "reserved": (24, 16),
    }),
    "struct drm_xe_engine": (32, 8, {
        "instance": (0, 8),
        "reserved": (8, 24),
    }),
    "struct drm_xe_engine_class_instance": (8, 2, {
        "engine_class": (0, 2),
        "engine_instance": (2, 2),
        "gt_id": (4, 2),
        "pad": (6, 2),
    }),
    "struct drm_xe_exec": (56, 8, {
        "extensions": (0, 8),
        "exec_queue_id": (8, 4),
        "num_syncs": (12, 4),
        "syncs": (16, 8),
        "address": (24, 8),
        "num_batch_buffer": (32, 2),
        "pad": (34, 6),
        "reserved": (40, 16),
    }),
    "struct drm_xe_exec_queue_create": (48, 8, {
        "extensions": (0, 8),
        "width": (8, 2),
        "num_placements": (10, 2),
        "vm_id": (12, 4),
        "flags": (16, 4),
        "exec_queue_id": (20, 4),
        "instances": (24, 8),
        "reserved": (32, 16),
    }),
    "struct drm_xe_exec_queue_destroy": (24, 8, {
        "exec_queue_id": (0, 4),
        "pad": (4, 4),
        "reserved": (8, 16),
    }),
    "struct drm_xe_exec_queue_get_property": (40, 8, {
        "extensions": (0, 8),
        "exec_queue_id": (8, 4),
        "property": (12, 4),
        "value": (16, 8),
        "reserved": (24, 16),
    }),
    "struct drm_xe_exec_queue_set_property": (40, 8, {
        "extensions": (0, 8),
        "exec_queue_id": (8, 4),
        "property": (12, 4),
        "value": (16, 8),
        "reserved": (24, 16),
    }),
    "struct drm_xe_ext_set_property": (48, 8, {
        "base": (0, 16),
        "property": (16, 4),
        "pad": (20, 4),
        "value": (24, 8),
        "ptr": (24, 8),
        "reserved": (32, 16),
    }),
    "struct drm_xe_gem_create": (56, 8, {
        "extensions": (0, 8),
        "size": (8, 8),
        "placement": (16, 4),
        "flags": (20, 4),
        "vm_id": (24, 4),
        "handle": (28, 4),
        "cpu_caching": (32, 2),
        "pad": (34, 6),
        "reserved": (40, 16),
    }),
    "struct drm_xe_gem_mmap_offset": (40, 8, {
        "extensions": (0, 8),
        "handle": (8, 4),
        "flags": (12, 4),
        "offset": (16, 8),
        "reserved": (24, 16),
    }),
    "struct drm_xe_gt": (96, 8, {
        "type": (0, 2),
        "tile_id": (2, 2),
        "gt_id": (4, 2),
        "pad": (6, 6),
        "reference_clock": (12, 4),
        "near_mem_regions": (16, 8),
        "far_mem_regions": (24, 8),
        "ip_ver_major": (32, 2),
        "ip_ver_minor": (34, 2),
        "ip_ver_rev": (36, 2),
        "pad2": (38, 2),
        "reserved": (40, 56),
    }),
    "struct drm_xe_madvise": (64, 8, {
        "extensions": (0, 8),
        "start": (8, 8),
        "range": (16, 8),
        "vm_id": (24, 4),
        "type": (28, 4),
        "preferred_mem_loc": (32, 16),
        "preferred_mem_loc.devmem_fd": (32, 4),
        "preferred_mem_loc.migration_policy": (36, 2),
        "preferred_mem_loc.region_instance": (38, 2),
        "preferred_mem_loc.reserved": (40, 8),
        "atomic": (32, 16),
        "atomic.val": (32, 4),
        "atomic.pad": (36, 4),
        "atomic.reserved": (40, 8),
        "pat_index": (32, 16),
        "pat_index.val": (32, 4),
        "pat_index.pad": (36, 4),
        "pat_index.reserved": (40, 8),
        "purge_state_val": (32, 16),
        "purge_state_val.val": (32, 4),
        "purge_state_val.pad": (36, 4),
        "purge_state_val.retained_ptr": (40, 8),
        "reserved": (48, 16),
    }),
    "struct drm_xe_mem_range_attr": (64, 8, {
        "extensions": (0, 8),
        "start": (8, 8),
        "end": (16, 8),
        "preferred_mem_loc": (24, 8),
        "preferred_mem_loc.devmem_fd": (24, 4),
        "preferred_mem_loc.migration_policy": (28, 4),
        "atomic": (32, 8),
        "atomic.val": (32, 4),
        "atomic.reserved": (36, 4),
        "pat_index": (40, 8),
        "pat_index.val": (40, 4),
        "pat_index.reserved": (44, 4),
        "reserved": (48, 16),
    }),
    "struct drm_xe_mem_region": (88, 8, {
        "mem_class": (0, 2),
        "instance": (2, 2),
        "min_page_size": (4, 4),
        "total_size": (8, 8),
        "used": (16, 8),
        "cpu_visible_size": (24, 8),
        "cpu_visible_used": (32, 8),
        "reserved": (40, 48),
    }),
    "struct drm_xe_oa_config": (56, 8, {
        "extensions": (0, 8),
        "uuid": (8, 36),
        "n_regs": (44, 4),
        "regs_ptr": (48, 8),
    }),
    "struct drm_xe_oa_stream_info": (40, 8, {
        "extensions": (0, 8),
        "oa_buf_size": (8, 8),
        "reserved": (16, 24),
    }),
    "struct drm_xe_oa_stream_status": (40, 8, {
        "extensions": (0, 8),
        "oa_status": (8, 8),
        "reserved": (16, 24),
    }),
    "struct drm_xe_oa_unit": (72, 8, {
        "extensions": (0, 8),
        "oa_unit_id": (8, 4),
        "oa_unit_type": (12, 4),
        "capabilities": (16, 8),
        "oa_timestamp_freq": (24, 8),
        "gt_id": (32, 2),
        "reserved1": (34, 6),
        "reserved": (40, 24),
        "num_engines": (64, 8),
        "eci": (72, None),
    }),
    "struct drm_xe_observation_param": (32, 8, {
        "extensions": (0, 8),
        "observation_type": (8, 8),
        "observation_op": (16, 8),
        "param": (24, 8),
    }),
    "struct drm_xe_query_config": (8, 8, {
        "num_params": (0, 4),
        "pad": (4, 4),
        "info": (8, None),
    }),
    "struct drm_xe_query_engine_cycles": (40, 8, {
        "eci": (0, 8),
        "clockid": (8, 4),
        "width": (12, 4),
        "engine_cycles": (16, 8),
        "cpu_timestamp": (24, 8),
        "cpu_delta": (32, 8),
    }),
    "struct drm_xe_query_engines": (8, 8, {
        "num_engines": (0, 4),
        "pad": (4, 4),
        "engines": (8, None),
    }),
    "struct drm_xe_query_eu_stall": (80, 8, {
        "extensions": (0, 8),
        "capabilities": (8, 8),
        "record_size": (16, 8),
        "per_xecore_buf_size": (24, 8),
        "reserved": (32, 40),
        "num_sampling_rates": (72, 8),
        "sampling_rates": (80, None),
    }),
    "struct drm_xe_query_gt_list": (8, 8, {
        "num_gt": (0, 4),
        "pad": (4, 4),
        "gt_list": (8, None),
    }),
    "struct drm_xe_query_mem_regions": (8, 8, {
        "num_mem_regions": (0, 4),
        "pad": (4, 4),
        "mem_regions": (8, None),
    }),
    "struct drm_xe_query_oa_units": (16, 8, {
        "extensions": (0, 8),
        "num_oa_units": (8, 4),
        "pad": (12, 4),
        "oa_units": (16, None),
    }),
    "struct drm_xe_query_pxp_status": (8, 4, {
        "status": (0, 4),
        "supported_session_types": (4, 4),
    }),
    "struct drm_xe_query_topology_mask": (8, 4, {
        "gt_id": (0, 2),
        "type": (2, 2),
        "num_bytes": (4, 4),
        "mask": (8, None),
    }),
    "struct drm_xe_query_uc_fw_version": (32, 8, {
        "uc_type": (0, 2),
        "pad": (2, 2),
        "branch_ver": (4, 4),
        "major_ver": (8, 4),
        "minor_ver": (12, 4),
        "patch_ver": (16, 4),
        "pad2": (20, 4),
        "reserved": (24, 8),
    }),
    "struct drm_xe_sync": (48, 8, {
        "extensions": (0, 8),
        "type": (8, 4),
        "flags": (12, 4),
        "handle": (16, 4),
        "addr": (16, 8),
        "timeline_value": (24, 8),
        "reserved": (32, 16),
    }),
    "struct drm_xe_user_extension": (16, 8, {
        "next_extension": (0, 8),
        "name": (8, 4),
        "pad": (12, 4),
    }),
    "struct drm_xe_vm_bind": (136, 8, {
        "extensions": (0, 8),
        "vm_id": (8, 4),
        "exec_queue_id": (12, 4),
        "pad": (16, 4),
        "num_binds": (20, 4),
        "bind": (24, 80),
        "vector_of_binds": (24, 8),
        "pad2": (104, 4),
        "num_syncs": (108, 4),
        "syncs": (112, 8),
        "reserved": (120, 16),
    }),
    "struct drm_xe_vm_bind_op": (80, 8, {
        "extensions": (0, 8),
        "obj": (8, 4),
        "pat_index": (12, 2),
        "pad": (14, 2),
        "obj_offset": (16, 8),
        "userptr": (16, 8),
        "cpu_addr_mirror_offset": (16, 8),
        "range": (24, 8),
        "addr": (32, 8),
        "op": (40, 4),
        "flags": (44, 4),
        "prefetch_mem_region_instance": (48, 4),
        "pad2": (52, 4),
        "reserved": (56, 24),
    }),
    "struct drm_xe_vm_create": (32, 8, {
        "extensions": (0, 8),
        "flags": (8, 4),
        "vm_id": (12, 4),
        "reserved": (16, 16),
    }),
    "struct drm_xe_vm_destroy": (24, 8, {
        "vm_id": (0, 4),
        "pad": (4, 4),
        "reserved": (8, 16),
    }),
    "struct drm_xe_vm_get_property": (56, 8, {
        "extensions": (0, 8),
        "vm_id": (8, 4),
        "property": (12, 4),
        "size": (16, 4),
        "pad": (20, 4),
        "data": (24, 8),
        "value": (24, 8),
        "reserved": (32, 24),
    }),
    "struct drm_xe_vm_query_mem_range_attr": (64, 8, {
        "extensions": (0, 8),
        "vm_id": (8, 4),
        "num_mem_ranges": (12, 4),
        "start": (16, 8),
        "range": (24, 8),
        "sizeof_mem_range_attr": (32, 8),
        "vector_of_mem_attr": (40, 8),
        "reserved": (48, 16),
    }),
    "struct drm_xe_vm_restart": (24, 8, {
        "vm_id": (0, 4),
        "pad": (4, 4),
        "timestamp_ns": (8, 8),
        "reserved": (16, 8),
    }),
    "struct drm_xe_wait_user_fence": (72, 8, {
        "extensions": (0, 8),
        "addr": (8, 8),
        "op": (16, 2),
        "flags": (18, 2),
        "pad": (20, 4),
        "value": (24, 8),
        "mask": (32, 8),
        "timeout": (40, 8),
        "exec_queue_id": (48, 4),
        "pad2": (52, 4),
        "reserved": (56, 16),
    }),
    "struct drm_xe_watch_notification_vm_err": (24, 8, {
        "base": (0, 8),
        "vm_id": (8, 4),
        "error_code": (12, 4),
        "timestamp_ns": (16, 8),
    }),
    "struct drm_xe_watch_queue": (16, 4, {
        "fd": (0, 4),
        "watch_id": (4, 4),
        "flags": (8, 4),
        "pad": (12, 4),
    }),
    "struct key_notification": (16, 4, {
        "watch": (0, 8),
        "key_id": (8, 4),
        "aux": (12, 4),
    }),
    "struct watch_notification": (8, 4, {
        "info": (4, 4),
    }),
    "struct watch_notification_filter": (8, 4, {
        "nr_filters": (0, 4),
        "__reserved": (4, 4),
        "filters": (8, None),
    }),
    "struct watch_notification_removal": (16, 8, {
        "watch": (0, 8),
        "id": (8, 8),
    }),
    "struct watch_notification_type_filter": (44, 4, {
        "type": (0, 4),
        "info_filter": (4, 4),
        "info_mask": (8, 4),
        "subtype_filter": (12, 32),
    }),
    "struct xe_vm_fault": (48, 8, {
        "address": (0, 8),
        "address_precision": (8, 4),
        "access_type": (12, 1),
        "fault_type": (13, 1),
        "fault_level": (14, 1),
        "pad": (15, 1),
        "reserved": (16, 32),
    }),
}
# fmt: on

#: bitfields, which have no offsetof: struct -> {member: (bit shift within its unit, bit width)}
BITFIELDS: dict[str, dict[str, tuple[int, int]]] = {
    "struct watch_notification": {"type": (0, 24), "subtype": (24, 8)},
}

#: spec 1.1, 2, 3: every request code, literally
REQUEST_CODES: dict[str, int] = {
    "DRM_IOCTL_VERSION": 0xC0406400,
    "DRM_IOCTL_GEM_CLOSE": 0x40086409,
    "DRM_IOCTL_XE_DEVICE_QUERY": 0xC0286440,
    "DRM_IOCTL_XE_GEM_CREATE": 0xC0386441,
    "DRM_IOCTL_XE_GEM_MMAP_OFFSET": 0xC0286442,
    "DRM_IOCTL_XE_VM_CREATE": 0xC0206443,
    "DRM_IOCTL_XE_VM_DESTROY": 0x40186444,
    "DRM_IOCTL_XE_VM_BIND": 0x40886445,
    "DRM_IOCTL_XE_EXEC_QUEUE_CREATE": 0xC0306446,
    "DRM_IOCTL_XE_EXEC_QUEUE_DESTROY": 0x40186447,
    "DRM_IOCTL_XE_EXEC_QUEUE_GET_PROPERTY": 0xC0286448,
    "DRM_IOCTL_XE_EXEC": 0x40386449,
    "DRM_IOCTL_XE_WAIT_USER_FENCE": 0xC048644A,
    "DRM_IOCTL_XE_OBSERVATION": 0x4020644B,
    "DRM_IOCTL_XE_MADVISE": 0x4040644C,
    "DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS": 0xC040644D,
    "DRM_IOCTL_XE_EXEC_QUEUE_SET_PROPERTY": 0x4028644E,
    "DRM_IOCTL_XE_VM_GET_PROPERTY": 0xC038644F,
    "DRM_IOCTL_XE_VM_RESTART": 0x40186450,
    "DRM_IOCTL_XE_WATCH_QUEUE": 0x40106451,
    "IOC_WATCH_QUEUE_SET_SIZE": 0x00005760,
    "IOC_WATCH_QUEUE_SET_FILTER": 0x00005761,
    "FIONREAD": 0x0000541B,  # <asm-generic/ioctls.h>, not an _IOC code
}

#: spec 3: the ioctl numbers; 0x0c-0x0f are upstream's, 0x10/0x11 the series'
XE_IOCTL_NRS: dict[str, int] = {
    "DRM_XE_DEVICE_QUERY": 0x00,
    "DRM_XE_GEM_CREATE": 0x01,
    "DRM_XE_GEM_MMAP_OFFSET": 0x02,
    "DRM_XE_VM_CREATE": 0x03,
    "DRM_XE_VM_DESTROY": 0x04,
    "DRM_XE_VM_BIND": 0x05,
    "DRM_XE_EXEC_QUEUE_CREATE": 0x06,
    "DRM_XE_EXEC_QUEUE_DESTROY": 0x07,
    "DRM_XE_EXEC_QUEUE_GET_PROPERTY": 0x08,
    "DRM_XE_EXEC": 0x09,
    "DRM_XE_WAIT_USER_FENCE": 0x0A,
    "DRM_XE_OBSERVATION": 0x0B,
    "DRM_XE_MADVISE": 0x0C,
    "DRM_XE_VM_QUERY_MEM_RANGE_ATTRS": 0x0D,
    "DRM_XE_EXEC_QUEUE_SET_PROPERTY": 0x0E,
    "DRM_XE_VM_GET_PROPERTY": 0x0F,
    "DRM_XE_VM_RESTART": 0x10,
    "DRM_XE_WATCH_QUEUE": 0x11,
}

#: spec 1.2: records as the kernel posts them, byte for byte
RECORD_BYTES = {
    "vm_err": "02 00 00 00 18 05 00 00 01 00 00 00 e4 ff ff ff 08 07 06 05 04 03 02 01",
    "loss": "00 00 00 01 08 00 00 00",
    "removal_short": "00 00 00 00 08 05 00 00",
    "removal_long": "00 00 00 00 10 01 00 00 2a 00 00 00 00 00 00 00",
    "key_linked": "01 00 00 02 10 01 00 00 44 33 22 11 88 77 66 55",
}


def _is_anonymous(ctype: Any) -> bool:
    return ctype.kind in ("struct", "union") and str(ctype.cname).split(" ", 1)[1].startswith("$")


def _members(ctype: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted name, cffi field) for every non-bitfield member, into anonymous aggregates."""
    for name, field in ctype.fields or ():
        if field.bitsize != -1:
            continue
        yield prefix + name, field
        if _is_anonymous(field.type):
            yield from _members(field.type, f"{prefix}{name}.")


def _member_size(ftype: Any) -> int | None:
    return None if ftype.kind == "array" and ftype.length is None else int(ffi.sizeof(ftype))


def _ffi_structs() -> set[str]:
    _typedefs, structs, unions = ffi.list_types()
    return {f"struct {s}" for s in structs} | {f"union {u}" for u in unions}


def _record(ctype: str, **fields: Any) -> str:
    p = ffi.new(f"{ctype} *")
    for path, value in fields.items():
        *outer, last = path.split("__")
        target = p
        for name in outer:
            target = getattr(target, name)
        setattr(target, last, value)
    return bytes(ffi.buffer(p)).hex(" ")


def test_table_size() -> None:
    assert len(LAYOUT) >= 35
    assert sum(len(fields) for _size, _align, fields in LAYOUT.values()) >= 290


def test_table_covers_every_struct_of_the_ffi() -> None:
    assert set(LAYOUT) == _ffi_structs()


@pytest.mark.parametrize("struct", sorted(LAYOUT))
def test_layout(struct: str) -> None:
    if struct == "struct drm_version" and not LP64:
        pytest.skip("drm_version holds size_t and pointers: the table is LP64")
    size, align, fields = LAYOUT[struct]
    ctype = ffi.typeof(struct)
    assert (ffi.sizeof(ctype), ffi.alignof(ctype)) == (size, align)
    members = dict(_members(ctype))
    assert list(members) == list(fields), "every member, in declaration order"
    for name, (offset, member_size) in fields.items():
        assert ffi.offsetof(ctype, *name.split(".")) == offset, name
        assert _member_size(members[name].type) == member_size, name


def test_flexible_arrays_grow_the_struct() -> None:
    # spec 1.2: watch_notification_filter is 8 + 44 * n
    p = ffi.new("struct watch_notification_filter *", {"nr_filters": 3, "filters": 3})
    assert ffi.sizeof(p[0]) == 8 + 44 * 3
    q = ffi.new("struct drm_xe_query_mem_regions *", {"mem_regions": 2})
    assert ffi.sizeof(q[0]) == 8 + 88 * 2
    c = ffi.new("struct drm_xe_query_config *", {"info": 5})
    assert ffi.sizeof(c[0]) == 48  # spec 5.6: the CONFIG query's size


@pytest.mark.parametrize("struct", sorted(BITFIELDS))
def test_bitfields(struct: str) -> None:
    found = {name: (f.bitshift, f.bitsize) for name, f in ffi.typeof(struct).fields if f.bitsize != -1}
    assert found == BITFIELDS[struct]


def test_bitfield_bytes() -> None:
    # spec 1.2: type in bits 0-23 (bytes 0-2), subtype in bits 24-31 (byte 3), info at 4
    got = _record("struct watch_notification", type=0xABCDEF, subtype=0x12, info=0x11223344)
    assert got == "ef cd ab 12 44 33 22 11"


def test_record_vm_err() -> None:
    got = _record(
        "struct drm_xe_watch_notification_vm_err",
        base__type=2,
        base__subtype=0,
        base__info=24 | 5 << 8,
        vm_id=1,
        error_code=-28,  # -ENOSPC
        timestamp_ns=0x0102030405060708,
    )
    assert got == RECORD_BYTES["vm_err"]


def test_record_loss() -> None:
    assert _record("struct watch_notification", type=0, subtype=1, info=8) == RECORD_BYTES["loss"]


def test_record_removal_short() -> None:
    assert _record("struct watch_notification", type=0, subtype=0, info=8 | 5 << 8) == RECORD_BYTES["removal_short"]


def test_record_removal_long() -> None:
    got = _record(
        "struct watch_notification_removal", watch__type=0, watch__subtype=0, watch__info=16 | 1 << 8, id=0x2A
    )
    assert got == RECORD_BYTES["removal_long"]


def test_record_key_linked() -> None:
    got = _record(
        "struct key_notification",
        watch__type=1,
        watch__subtype=2,
        watch__info=16 | 1 << 8,
        key_id=0x11223344,
        aux=0x55667788,
    )
    assert got == RECORD_BYTES["key_linked"]


@pytest.mark.parametrize("name", sorted(REQUEST_CODES))
def test_request_code(name: str) -> None:
    if name == "DRM_IOCTL_VERSION" and not LP64:
        pytest.skip("drm_version's size is LP64's here")
    code = REQUEST_CODES[name]
    assert getattr(requests, name) == code
    assert REQUESTS[code].name == name
    assert requests.request_name(code) == name


def test_request_table_is_exactly_these() -> None:
    assert {r.name: code for code, r in REQUESTS.items()} == REQUEST_CODES


@pytest.mark.parametrize(
    "code", sorted(c for c in REQUEST_CODES.values() if IOC_TYPE(c) == ord("d")), ids=lambda c: f"{c:#010x}"
)
def test_drm_request_fields(code: int) -> None:
    # direction and size agree with the struct a request carries
    req = REQUESTS[code]
    assert req.struct is not None
    assert IOC_SIZE(code) == ffi.sizeof(req.struct)
    assert IOC_DIR(code) & IOC_WRITE, "every DRM request here copies in"
    assert req.nr == IOC_NR(code)


def test_watch_queue_requests_are_by_value() -> None:
    for name in ("IOC_WATCH_QUEUE_SET_SIZE", "IOC_WATCH_QUEUE_SET_FILTER"):
        code = REQUEST_CODES[name]
        assert (IOC_DIR(code), IOC_TYPE(code), IOC_SIZE(code)) == (0, ord("W"), 0)
    assert not IOC_DIR(REQUEST_CODES["DRM_IOCTL_GEM_CLOSE"]) & IOC_READ


def test_xe_ioctl_numbers() -> None:
    lib = ffi.dlopen(None)
    assert {name: getattr(lib, name) for name in XE_IOCTL_NRS} == XE_IOCTL_NRS
    for name, nr in XE_IOCTL_NRS.items():
        code = REQUEST_CODES["DRM_IOCTL_XE_" + name.removeprefix("DRM_XE_")]
        assert IOC_NR(code) == 0x40 + nr


def test_unknown_request_name() -> None:
    assert requests.request_name(0xDEADBEEF) == "ioctl(0xdeadbeef)"
