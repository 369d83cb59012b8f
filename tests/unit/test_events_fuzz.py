"""Hypothesis fuzz of parse_records(): any bytes give only events, framed consistently."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from xeclient.events import Event, Loss, MalformedRecord, Removal, Unknown, VmError, parse_records


def _frame_lengths(data: bytes) -> tuple[list[int], int | None]:
    """An independent reference framer: record lengths, and where framing fails (or None)."""
    pos, lengths = 0, list[int]()
    while pos < len(data):
        if len(data) - pos < 8:
            return lengths, pos
        length = struct.unpack_from("<I", data, pos + 4)[0] & 0x7F
        if length < 8 or pos + length > len(data):
            return lengths, pos
        lengths.append(length)
        pos += length
    return lengths, None


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_only_events_consistently_framed(data: bytes) -> None:
    events = parse_records(data)
    assert all(isinstance(e, Event) for e in events)
    lengths, bad_at = _frame_lengths(data)
    malformed = [e for e in events if isinstance(e, MalformedRecord)]
    if bad_at is None:
        assert not malformed
        assert len(events) == len(lengths)
    else:
        assert len(malformed) == 1 and events[-1] is malformed[0]
        assert len(events) == len(lengths) + 1
        # the lengths consumed before it and its raw bytes add up to the whole buffer
        assert malformed[0].offset == sum(lengths) == bad_at
        assert malformed[0].offset + len(malformed[0].raw) == len(data)
    for ev, length in zip(events, lengths, strict=False):
        if isinstance(ev, Unknown):
            assert len(ev.raw) == length
        assert ev.watch_id is None or 0 <= ev.watch_id <= 255


_watch_id = st.integers(0, 255)


@st.composite
def _record(draw: st.DrawFn) -> tuple[bytes, type[Event]]:
    kind = draw(st.sampled_from(["vm24", "vm16", "loss", "removal8", "removal16", "other"]))
    wid = draw(_watch_id)
    if kind == "vm24":
        body = struct.pack(
            "<IiQ",
            draw(st.integers(0, 2**32 - 1)),
            draw(st.integers(-(2**31), 2**31 - 1)),
            draw(st.integers(0, 2**64 - 1)),
        )
        return struct.pack("<II", 2, wid << 8 | 24) + body, VmError
    if kind == "vm16":
        body = struct.pack("<Ii", draw(st.integers(0, 2**32 - 1)), draw(st.integers(-(2**31), 2**31 - 1)))
        return struct.pack("<II", 2, wid << 8 | 16) + body, VmError
    if kind == "loss":
        return struct.pack("<II", 1 << 24, 8), Loss
    if kind == "removal8":
        return struct.pack("<II", 0, wid << 8 | 8), Removal
    if kind == "removal16":
        return struct.pack("<II", 0, wid << 8 | 16) + struct.pack("<Q", draw(st.integers(0, 2**64 - 1))), Removal
    rtype = draw(st.integers(3, 0xFFFFFF))
    payload = draw(st.binary(max_size=119))
    return struct.pack("<II", rtype | draw(st.integers(0, 255)) << 24, wid << 8 | (8 + len(payload))) + payload, Unknown


@settings(max_examples=300, deadline=None)
@given(st.lists(_record(), max_size=40), st.binary(max_size=7))
def test_valid_records_then_garbage_tail(records: list[tuple[bytes, type[Event]]], tail: bytes) -> None:
    data = b"".join(r for r, _ in records) + tail
    events = parse_records(data)
    assert [type(e) for e in events[: len(records)]] == [t for _, t in records]
    if tail:
        assert len(events) == len(records) + 1
        assert isinstance(events[-1], MalformedRecord) and events[-1].raw == tail
    else:
        assert len(events) == len(records)
    for ev, (raw, _) in zip(events, records, strict=False):
        if isinstance(ev, VmError):
            vm_id, code = struct.unpack_from("<Ii", raw, 8)
            assert (ev.vm_id, ev.error_code) == (vm_id, code)
            assert ev.timestamp_ns == (struct.unpack_from("<Q", raw, 16)[0] if len(raw) == 24 else 0)
            assert ev.watch_id == raw[5]
