"""Notification records -> typed events: :func:`parse_records` and the :class:`Event` types.

``parse_records(data)`` is pure and backend-free: it turns the bytes of one or
more ``read()`` calls on a notification pipe into immutable events, in order.
It never raises on bad input and always terminates: a record whose length
field is below 8, or that runs past the end of ``data``, becomes one
:class:`MalformedRecord` carrying the rest of the buffer, and parsing of that
buffer stops there (the igt reference listener stops at the same points).

Record layouts (little-endian; spec 1.2).  Every record starts with ``struct
watch_notification``: a u32 holding ``type`` in bits 0-23 and ``subtype`` in
bits 24-31, then ``info``, whose bits 0-6 are the record length in bytes and
bits 8-15 the watch_id of the subscription that delivered it.

=============================  =====  =========================================
record                         bytes  event
=============================  =====  =========================================
type 2 (DRM_XE_NOTIFY) sub 0   24     :class:`VmError` (vm_id @8, error_code
                                      s32 @12, timestamp_ns u64 @16)
same, March 2026 RFC           16     :class:`VmError` with ``timestamp_ns=0``
type 0 (META) sub 1            8      :class:`Loss` (records were dropped)
type 0 (META) sub 0            8/16   :class:`Removal` (``id`` 0 / u64 @8)
type 1 (KEY_NOTIFY)            16     :class:`KeyNotification` (key_id, aux)
anything else                  any    :class:`Unknown` (raw bytes kept)
=============================  =====  =========================================

A record of a known type that is too short for its layout (a 12-byte VM_ERR,
say) is well framed, so it becomes :class:`Unknown` and parsing continues.
Longer records than the layout are accepted and the extra bytes ignored, so a
future kernel may append fields.

Speed: one precompiled :class:`struct.Struct` per layout and a constructor that
fills the slots directly, because frozen-dataclass ``__init__`` costs a
``object.__setattr__`` per field.  About 1 us per record on a slow core.
"""

from __future__ import annotations

import errno as _errno
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .uapi.constants import (
    WATCH_INFO_ID,
    WATCH_INFO_ID__SHIFT,
    WATCH_INFO_LENGTH,
    WATCH_NOTIFICATION_SIZE,
    KeyNotify,
    WatchMeta,
    WatchType,
    XeWatchEvent,
)

__all__ = [
    "Event",
    "KeyNotification",
    "Loss",
    "MalformedRecord",
    "Removal",
    "Unknown",
    "VmError",
    "parse_records",
]

#: The VM_ERR record of the June 2026 series (with ``timestamp_ns``) and of the March RFC.
VM_ERR_SIZE = 24
VM_ERR_MARCH_SIZE = 16
REMOVAL_LONG_SIZE = 16
KEY_NOTIFICATION_SIZE = 16


class Event:
    """Base of every event :func:`parse_records` returns.

    ``watch_id`` is the subscription that delivered the record (bits 8-15 of
    ``info``), or ``None`` for events that concern the whole pipe (:class:`Loss`,
    :class:`MalformedRecord`).  Events are immutable, hashable and compare by value.
    """

    __slots__ = ()

    #: Short stable name of the event kind ("vm_error", "loss", ...), used in JSON and stats.
    kind: ClassVar[str] = "event"

    if TYPE_CHECKING:  # a property here would become the dataclass fields' default

        @property
        def watch_id(self) -> int | None: ...

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict: ``{"event": kind, field: value, ...}``; bytes as hex."""
        out: dict[str, Any] = {"event": self.kind}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = value.hex() if isinstance(value, bytes) else value
        return out


@dataclass(frozen=True, slots=True)
class VmError(Event):
    """DRM_XE_WATCH_EVENT_VM_ERR: the rebind worker of VM ``vm_id`` failed.

    ``errno`` is positive (28 for ENOSPC); the record's raw, negative
    ``error_code`` is :attr:`error_code`.  ``timestamp_ns`` is CLOCK_MONOTONIC
    (``time.monotonic_ns()``) when the kernel posted the event; it is **0 when
    the record has none** (the 16-byte March RFC form) -- the value
    ``DRM_IOCTL_XE_VM_RESTART`` itself takes as "no timestamp", so
    ``vm.restart(timestamp_ns=event.timestamp_ns)`` is always right.

    The kernel posts VM_ERR for every worker error, fatal ones included
    (ETIME, EFAULT: the VM is then banned); only ENOMEM/ENOSPC on a RESTARTABLE
    VM leave it paused and restartable (:attr:`is_oom`).
    """

    kind: ClassVar[str] = "vm_error"

    vm_id: int
    errno: int
    timestamp_ns: int
    watch_id: int

    @property
    def error_code(self) -> int:
        """The record's ``error_code`` as posted: a negative errno (-28)."""
        return -self.errno

    @property
    def has_timestamp(self) -> bool:
        return self.timestamp_ns != 0

    @property
    def errno_name(self) -> str:
        """``"ENOSPC"``, or ``"E<n>"`` for a number errno does not name."""
        return _errno.errorcode.get(self.errno, f"E{self.errno}")

    @property
    def is_oom(self) -> bool:
        """ENOMEM or ENOSPC: the errors after which a RESTARTABLE VM is paused, not banned."""
        return self.errno in (_errno.ENOMEM, _errno.ENOSPC)

    def __str__(self) -> str:
        try:
            text = os.strerror(self.errno)
        except ValueError:  # pragma: no cover - strerror of huge numbers
            text = "unknown error"
        ts = f" t={self.timestamp_ns / 1e9:.6f}s" if self.timestamp_ns else ""
        return f"VM_ERR vm {self.vm_id}: {self.errno_name} ({text}) watch {self.watch_id}{ts}"


@dataclass(frozen=True, slots=True)
class Loss(Event):
    """WATCH_META_LOSS_NOTIFICATION: the queue was full and one or more records were dropped.

    One Loss stands for one run of drops (the kernel merges repeated losses into
    one flag), so it carries no count.  It concerns the whole pipe, every
    subscription on it: ``watch_id`` is None.
    """

    kind: ClassVar[str] = "loss"

    @property
    def watch_id(self) -> None:
        return None

    def __str__(self) -> str:
        return "LOSS records were dropped (the notification queue was full)"


@dataclass(frozen=True, slots=True)
class Removal(Event):
    """WATCH_META_REMOVAL_NOTIFICATION: the watch ``watch_id`` was removed.

    xe posts the 8-byte form (``id`` 0) when the DRM file is finally freed;
    keys post the 16-byte form with ``id`` = the key serial.
    """

    kind: ClassVar[str] = "removal"

    watch_id: int
    id: int = 0

    def __str__(self) -> str:
        extra = f" id {self.id}" if self.id else ""
        return f"REMOVAL watch {self.watch_id}{extra}"


@dataclass(frozen=True, slots=True)
class KeyNotification(Event):
    """WATCH_TYPE_KEY_NOTIFY (type 1): a keyring event (``subtype`` is a :class:`KeyNotify`)."""

    kind: ClassVar[str] = "key"

    subtype: int
    key_id: int
    aux: int
    watch_id: int

    def __str__(self) -> str:
        name = KeyNotify(self.subtype).name if self.subtype in KeyNotify._value2member_map_ else str(self.subtype)
        return f"KEY {name} key {self.key_id} aux {self.aux} watch {self.watch_id}"


@dataclass(frozen=True, slots=True)
class Unknown(Event):
    """A well-framed record this parser has no layout for; ``raw`` is the whole record."""

    kind: ClassVar[str] = "unknown"

    type: int
    subtype: int
    watch_id: int
    raw: bytes

    def __str__(self) -> str:
        return f"UNKNOWN type {self.type} subtype {self.subtype} watch {self.watch_id} ({len(self.raw)} bytes)"


@dataclass(frozen=True, slots=True)
class MalformedRecord(Event):
    """Bytes that do not frame as a record: parsing of that buffer stopped here.

    ``raw`` is everything from ``offset`` to the end of the buffer; ``reason``
    says what was wrong (short header, length below 8, record past the end).
    """

    kind: ClassVar[str] = "malformed"

    @property
    def watch_id(self) -> None:
        return None

    raw: bytes
    reason: str
    offset: int = 0

    def __str__(self) -> str:
        return f"MALFORMED at byte {self.offset}: {self.reason} ({len(self.raw)} bytes)"


# --- fast constructors ------------------------------------------------------------------
_E = TypeVar("_E", bound=Event)


def _maker(cls: type[_E]) -> Callable[..., _E]:
    """A constructor that fills the slots directly (no frozen ``__setattr__`` detour)."""
    setters = tuple(getattr(cls, f.name).__set__ for f in fields(cls))  # type: ignore[arg-type]
    new = object.__new__
    if len(setters) == 4:
        s0, s1, s2, s3 = setters

        def make4(a: object, b: object, c: object, d: object) -> _E:
            obj = new(cls)
            s0(obj, a)
            s1(obj, b)
            s2(obj, c)
            s3(obj, d)
            return obj

        return make4
    if len(setters) == 2:
        t0, t1 = setters

        def make2(a: object, b: object) -> _E:
            obj = new(cls)
            t0(obj, a)
            t1(obj, b)
            return obj

        return make2
    raise AssertionError(cls)  # pragma: no cover


_new_vm_error = _maker(VmError)
_new_removal = _maker(Removal)
_new_key = _maker(KeyNotification)
_new_unknown = _maker(Unknown)
#: Loss has no fields: one shared instance.
_LOSS = Loss()

_HEADER = struct.Struct("<II")
_VM_ERR = struct.Struct("<IiQ")  # at offset 8
_VM_ERR_MARCH = struct.Struct("<Ii")  # at offset 8
_U64 = struct.Struct("<Q")
_KEY = struct.Struct("<II")

_TYPE_META = int(WatchType.META)
_TYPE_KEY = int(WatchType.KEY_NOTIFY)
_TYPE_XE = int(WatchType.DRM_XE_NOTIFY)
_SUB_VM_ERR = int(XeWatchEvent.VM_ERR)
_SUB_LOSS = int(WatchMeta.LOSS_NOTIFICATION)
_SUB_REMOVAL = int(WatchMeta.REMOVAL_NOTIFICATION)


def parse_records(data: bytes | bytearray | memoryview) -> list[Event]:
    """Parse notification records back to back in ``data`` (whole ``read()`` results).

    Returns the events in order.  Never raises for any input and always
    terminates: a framing error yields one final :class:`MalformedRecord`.
    """
    out: list[Event] = []
    append = out.append
    header = _HEADER.unpack_from
    end = len(data)
    pos = 0
    while pos < end:
        if end - pos < WATCH_NOTIFICATION_SIZE:
            append(MalformedRecord(bytes(data[pos:]), f"{end - pos} trailing bytes, shorter than a record header", pos))
            break
        word, info = header(data, pos)
        length = info & WATCH_INFO_LENGTH
        if length < WATCH_NOTIFICATION_SIZE:
            append(MalformedRecord(bytes(data[pos:]), f"record length {length} is below 8", pos))
            break
        nxt = pos + length
        if nxt > end:
            append(
                MalformedRecord(
                    bytes(data[pos:]), f"record of {length} bytes runs past the end ({end - pos} left)", pos
                )
            )
            break
        rtype = word & 0xFFFFFF
        sub = word >> 24
        watch_id = (info & WATCH_INFO_ID) >> WATCH_INFO_ID__SHIFT
        if rtype == _TYPE_XE and sub == _SUB_VM_ERR and length >= VM_ERR_MARCH_SIZE:
            if length >= VM_ERR_SIZE:
                vm_id, code, ts = _VM_ERR.unpack_from(data, pos + 8)
            else:
                vm_id, code = _VM_ERR_MARCH.unpack_from(data, pos + 8)
                ts = 0
            append(_new_vm_error(vm_id, -code, ts, watch_id))
        elif rtype == _TYPE_META and sub == _SUB_LOSS:
            append(_LOSS)
        elif rtype == _TYPE_META and sub == _SUB_REMOVAL:
            rid = _U64.unpack_from(data, pos + 8)[0] if length >= REMOVAL_LONG_SIZE else 0
            append(_new_removal(watch_id, rid))
        elif rtype == _TYPE_KEY and length >= KEY_NOTIFICATION_SIZE:
            key_id, aux = _KEY.unpack_from(data, pos + 8)
            append(_new_key(sub, key_id, aux, watch_id))
        else:
            append(_new_unknown(rtype, sub, watch_id, bytes(data[pos:nxt])))
        pos = nxt
    return out
