"""parse_records() and the event types, from the spec's example bytes (kernel-semantics 1.2)."""

from __future__ import annotations

import copy
import dataclasses
import errno
import pickle
import struct

import pytest

from xeclient.events import (
    Event,
    KeyNotification,
    Loss,
    MalformedRecord,
    Removal,
    Unknown,
    VmError,
    parse_records,
)

# The example records of spec 1.2, byte for byte.
VM_ERR_24 = bytes.fromhex("02000000 18050000 01000000 e4ffffff 0807060504030201")
LOSS = bytes.fromhex("00000001 08000000")
REMOVAL_SHORT = bytes.fromhex("00000000 08050000")
REMOVAL_LONG = bytes.fromhex("00000000 10010000 2a000000 00000000")
KEY_LINKED = bytes.fromhex("01000002 10010000 44332211 88776655")


def record(rtype: int, subtype: int, payload: bytes = b"", watch_id: int = 0, flags: int = 0) -> bytes:
    length = 8 + len(payload)
    return struct.pack("<II", rtype | subtype << 24, flags | watch_id << 8 | length) + payload


def vm_err(vm_id: int, error_code: int, ts: int | None = 0, watch_id: int = 0) -> bytes:
    body = struct.pack("<Ii", vm_id, error_code) + (b"" if ts is None else struct.pack("<Q", ts))
    return record(2, 0, body, watch_id)


def test_vm_err_june_form() -> None:
    [ev] = parse_records(VM_ERR_24)
    assert ev == VmError(vm_id=1, errno=28, timestamp_ns=0x0102030405060708, watch_id=5)
    assert type(ev) is VmError
    assert ev.errno == errno.ENOSPC and ev.error_code == -28
    assert ev.errno_name == "ENOSPC" and ev.is_oom and ev.has_timestamp
    assert "ENOSPC" in str(ev) and "vm 1" in str(ev)


def test_vm_err_march_form_has_no_timestamp() -> None:
    [ev] = parse_records(VM_ERR_24[:4] + b"\x10\x05\x00\x00" + VM_ERR_24[8:16])
    assert ev == VmError(vm_id=1, errno=28, timestamp_ns=0, watch_id=5)
    assert not ev.has_timestamp


@pytest.mark.parametrize(
    ("code", "oom"), [(-errno.ENOMEM, True), (-errno.ENOSPC, True), (-errno.ETIME, False), (-errno.EFAULT, False)]
)
def test_vm_err_errno(code: int, oom: bool) -> None:
    [ev] = parse_records(vm_err(7, code, 123))
    assert isinstance(ev, VmError)
    assert ev.errno == -code and ev.error_code == code and ev.is_oom is oom


def test_loss() -> None:
    [ev] = parse_records(LOSS)
    assert ev == Loss() and type(ev) is Loss
    assert ev.watch_id is None


def test_removal_short_and_long() -> None:
    assert parse_records(REMOVAL_SHORT) == [Removal(watch_id=5, id=0)]
    assert parse_records(REMOVAL_LONG) == [Removal(watch_id=1, id=0x2A)]


def test_key_notification() -> None:
    assert parse_records(KEY_LINKED) == [KeyNotification(subtype=2, key_id=0x11223344, aux=0x55667788, watch_id=1)]


def test_unknown_type_and_subtype_keep_the_raw_record() -> None:
    rec = record(0xABCDEF, 0x12, b"\x01\x02\x03\x04", watch_id=9, flags=0x00010000)
    assert parse_records(rec) == [Unknown(type=0xABCDEF, subtype=0x12, watch_id=9, raw=rec)]
    other_xe = record(2, 1, b"\x00" * 16, watch_id=3)
    assert parse_records(other_xe) == [Unknown(type=2, subtype=1, watch_id=3, raw=other_xe)]
    meta7 = record(0, 7)
    assert parse_records(meta7) == [Unknown(type=0, subtype=7, watch_id=0, raw=meta7)]


def test_known_type_too_short_for_its_layout_is_unknown_and_parsing_goes_on() -> None:
    short_vm = record(2, 0, b"\x01\x00\x00\x00", watch_id=2)  # 12 bytes
    short_key = record(1, 0, b"\x01\x00\x00\x00")
    events = parse_records(short_vm + short_key + LOSS)
    assert events == [Unknown(2, 0, 2, short_vm), Unknown(1, 0, 0, short_key), Loss()]


def test_longer_records_accepted_extra_bytes_ignored() -> None:
    longer = vm_err(4, -12, 99, watch_id=1)[:8] + VM_ERR_24[8:] + b"\xff" * 8
    longer = longer[:4] + struct.pack("<I", 1 << 8 | 32) + longer[8:]
    assert parse_records(longer) == [VmError(1, 28, 0x0102030405060708, 1)]


def test_records_back_to_back_in_order() -> None:
    data = VM_ERR_24 + LOSS + REMOVAL_SHORT + KEY_LINKED + REMOVAL_LONG + vm_err(2, -12, None, 7)
    assert [type(e) for e in parse_records(data)] == [VmError, Loss, Removal, KeyNotification, Removal, VmError]
    assert parse_records(data)[-1] == VmError(2, 12, 0, 7)


def test_empty() -> None:
    assert parse_records(b"") == []


@pytest.mark.parametrize("tail", [b"\x02", b"\x02\x00\x00\x00\x18\x05\x00"])
def test_truncated_header_is_malformed(tail: bytes) -> None:
    events = parse_records(LOSS + tail)
    assert events[0] == Loss()
    bad = events[1]
    assert isinstance(bad, MalformedRecord) and bad.raw == tail and bad.offset == 8 and "header" in bad.reason
    assert len(events) == 2


@pytest.mark.parametrize("length", [0, 1, 7])
def test_length_below_8_stops_parsing(length: int) -> None:
    bad = struct.pack("<II", 2, length)
    events = parse_records(LOSS + bad + LOSS)
    assert events[0] == Loss()
    assert isinstance(events[1], MalformedRecord) and events[1].raw == bad + LOSS and "below 8" in events[1].reason
    assert len(events) == 2


def test_record_past_the_end_stops_parsing() -> None:
    events = parse_records(VM_ERR_24[:20])
    assert len(events) == 1 and isinstance(events[0], MalformedRecord)
    assert events[0].raw == VM_ERR_24[:20] and "past the end" in events[0].reason


def test_length_uses_only_7_bits() -> None:
    # bit 7 of info is not part of the length (spec 1.11: info_mask 0x80 is legal)
    rec = LOSS[:4] + struct.pack("<I", 0x80 | 8)
    assert parse_records(rec) == [Loss()]


def test_accepts_bytearray_and_memoryview() -> None:
    assert parse_records(bytearray(VM_ERR_24)) == parse_records(memoryview(VM_ERR_24)) == parse_records(VM_ERR_24)
    [bad] = parse_records(memoryview(b"\x01\x02"))
    assert isinstance(bad, MalformedRecord) and type(bad.raw) is bytes


def test_events_are_frozen_slotted_hashable_and_picklable() -> None:
    events = parse_records(VM_ERR_24 + LOSS + REMOVAL_LONG + KEY_LINKED + record(9, 9) + b"\x00")
    assert all(isinstance(e, Event) for e in events)
    for ev in events:
        assert not hasattr(ev, "__dict__")
        # FrozenInstanceError for fields; Python < 3.12 raises TypeError for a non-field
        # name on a frozen slotted dataclass (its __setattr__ calls super() on the pre-slots class)
        with pytest.raises((dataclasses.FrozenInstanceError, AttributeError, TypeError)):
            ev.watch_id = 3  # type: ignore[misc]
        with pytest.raises((dataclasses.FrozenInstanceError, AttributeError, TypeError)):
            ev.extra = 1  # type: ignore[attr-defined]
        assert pickle.loads(pickle.dumps(ev)) == ev
        assert copy.deepcopy(ev) == ev
        assert hash(ev) == hash(copy.copy(ev))
    assert len(set(events)) == len(events)
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[0].vm_id = 2  # type: ignore[attr-defined]


def test_fast_constructor_matches_the_dataclass_constructor() -> None:
    [ev] = parse_records(VM_ERR_24)
    built = VmError(1, 28, 0x0102030405060708, 5)
    assert ev == built and repr(ev) == repr(built) and hash(ev) == hash(built)
    assert VmError(1, 28, 5, 0) != Removal(1, 28)  # type: ignore[comparison-overlap]


def test_as_dict() -> None:
    [vm, loss, bad] = parse_records(VM_ERR_24 + LOSS + b"\x01")
    assert vm.as_dict() == {
        "event": "vm_error",
        "vm_id": 1,
        "errno": 28,
        "timestamp_ns": 0x0102030405060708,
        "watch_id": 5,
    }
    assert loss.as_dict() == {"event": "loss"}
    assert bad.as_dict() == {"event": "malformed", "raw": "01", "reason": bad.reason, "offset": 32}  # type: ignore[attr-defined]


def test_watch_id_attribute_on_every_event() -> None:
    events = parse_records(VM_ERR_24 + LOSS + REMOVAL_SHORT + KEY_LINKED + record(5, 0, watch_id=4) + b"\x00")
    assert [e.watch_id for e in events] == [5, None, 5, 1, 4, None]


def test_parse_speed_is_reasonable() -> None:
    """Loose guard (the benchmark is elsewhere): 20,000 records parse in well under a second."""
    import time

    data = (VM_ERR_24 + REMOVAL_LONG + LOSS) * 6667
    t0 = time.perf_counter()
    events = parse_records(data)
    assert len(events) == 20001
    assert time.perf_counter() - t0 < 1.0
