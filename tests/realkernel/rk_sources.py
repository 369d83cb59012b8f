"""Event sources for the real-kernel tier: live keyrings, and the fake's WatchSource acting as one.

The same test bodies run against both.  A test only talks to an :class:`EventSource`:

* ``backend``: the seam the test builds its pipes and :class:`~xeclient.watch.Watch` on
  (the kernel backend on the live kernel, a :class:`FakeBackend` otherwise);
* ``keyring()`` makes a watchable keyring, ``add_key(ring)`` a user key linked into it;
* ``watch(obj, fd, watch_id)`` / ``unwatch(obj, fd)`` are ``KEYCTL_WATCH_KEY`` with an id / with -1;
* ``update(key)``, ``unlink(ring, key)`` post what the kernel posts for ``KEYCTL_UPDATE`` and
  ``KEYCTL_UNLINK`` (spec §1.10): UPDATED on the key, UNLINKED on the keyring, and once the key's
  last link is gone it is destroyed, which removes its watches (a 16-byte REMOVAL each).

:class:`KeyringSource` makes real syscalls (``add_key``, ``keyctl``) through ctypes.
:class:`FakeSource` models exactly that much of ``security/keys`` on top of the fake backend's
generic posting API (``FakeBackend.watch_source(id)``): a serial per object, the record bytes of
``notify_key()``, and destruction when the last link goes.  Everything else -- queue, filter, loss,
removal, read, errno -- is the fake's own model under test.  One deliberate difference remains:
the live kernel destroys an unlinked key from its garbage collector, tens of milliseconds later;
the fake does it at once.  Tests wait for REMOVAL with a poll timeout, so both pass unchanged.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import struct
from dataclasses import dataclass, field
from typing import Protocol

from xeclient.backends import Backend
from xeclient.backends.fake import FakeBackend
from xeclient.backends.kernel import KernelBackend
from xeclient.errors import XeError
from xeclient.uapi.constants import KeyNotify, WatchType

# --- ABI (spec §1.1, §1.2, §1.10; include/uapi/linux/keyctl.h; x86_64 syscall numbers) ----------
O_NOTIFICATION_PIPE = 0x80
IOC_WATCH_QUEUE_SET_SIZE = 0x5760
IOC_WATCH_QUEUE_SET_FILTER = 0x5761
SYS_ADD_KEY = 248
SYS_KEYCTL = 250
KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_UPDATE = 2
KEYCTL_UNLINK = 9
KEYCTL_WATCH_KEY = 32
KEY_SPEC_SESSION_KEYRING = -3

HEADER = struct.Struct("<II")  # (type | subtype << 24), info
TYPE_FILTER = struct.Struct("<III8I")  # type, info_filter, info_mask, subtype_filter[8]: 44 bytes

SKIP_NO_WATCH_QUEUE = "needs a kernel with CONFIG_WATCH_QUEUE; run tools/realkernel/ci.sh"
SKIP_NO_KEY_NOTIFICATIONS = "needs a kernel with CONFIG_KEY_NOTIFICATIONS; run tools/realkernel/ci.sh"


def key_record(subtype: int, key_id: int, aux: int, watch_id: int) -> bytes:
    """A 16-byte ``key_notification`` as the kernel queues it (spec §1.2)."""
    return HEADER.pack(int(WatchType.KEY_NOTIFY) | subtype << 24, watch_id << 8 | 16) + struct.pack("<II", key_id, aux)


def removal_record(watch_id: int, id: int) -> bytes:
    """A REMOVAL: 16 bytes with ``id`` (a key serial), 8 bytes when ``id`` is 0 (spec §1.9)."""
    if id == 0:
        return HEADER.pack(0, watch_id << 8 | 8)
    return HEADER.pack(0, watch_id << 8 | 16) + struct.pack("<Q", id)


LOSS_RECORD = HEADER.pack(1 << 24, 8)


def filter_blob(entries: list[tuple[int, int, int, int]], *, nr: int | None = None, reserved: int = 0) -> bytearray:
    """``struct watch_notification_filter`` from ``(type, subtype_word0, info_filter, info_mask)``."""
    out = bytearray(HEADER.pack(len(entries) if nr is None else nr, reserved))
    for type_, word0, info_filter, info_mask in entries:
        out += TYPE_FILTER.pack(type_, info_filter, info_mask, word0, 0, 0, 0, 0, 0, 0, 0)
    return out


@dataclass
class KeyObj:
    """A key or keyring, by serial; ``links``: the keyrings it is linked into (fake bookkeeping)."""

    serial: int
    desc: str
    links: set[int] = field(default_factory=set)


class WatchSource(Protocol):
    """What ``FakeBackend.watch_source(id)`` returns (docs/architecture.md)."""

    def add_watch(self, pipe_fd: int, watch_id: int) -> None: ...
    def remove_watch(self, pipe_fd: int) -> None: ...
    def post(self, type: int, subtype: int, payload: bytes = b"") -> None: ...
    def destroy(self) -> None: ...


class EventSource(Protocol):
    name: str
    backend: Backend

    def keyring(self) -> KeyObj: ...
    def add_key(self, ring: KeyObj) -> KeyObj: ...
    def watch(self, obj: KeyObj, fd: int, watch_id: int) -> None: ...
    def unwatch(self, obj: KeyObj, fd: int) -> None: ...
    def update(self, key: KeyObj) -> None: ...
    def unlink(self, ring: KeyObj, key: KeyObj) -> None: ...
    def close(self) -> None: ...


# --- the live kernel ------------------------------------------------------------------------------
class _Libc:
    def __init__(self) -> None:
        self.lib = ctypes.CDLL(None, use_errno=True)
        self.lib.syscall.restype = ctypes.c_long

    def call(self, what: str, nr: int, *args: int | bytes | None) -> int:
        cargs = [ctypes.c_char_p(a) if isinstance(a, bytes) or a is None else ctypes.c_long(a) for a in args]
        ret = int(self.lib.syscall(ctypes.c_long(nr), *cargs))
        if ret < 0:
            err = ctypes.get_errno()
            raise XeError(err, what)
        return ret


_libc: _Libc | None = None
_session_joined = False


def libc() -> _Libc:
    global _libc
    if _libc is None:
        _libc = _Libc()
    return _libc


def keyctl(op: int, *args: int | bytes | None) -> int:
    return libc().call(f"keyctl({op})", SYS_KEYCTL, op, *args)


def live_support() -> str | None:
    """None when this kernel has notification pipes and key notifications, else the skip reason."""
    try:
        r, w = os.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOPKG:
            return SKIP_NO_WATCH_QUEUE
        raise
    try:
        keyctl(KEYCTL_WATCH_KEY, KEY_SPEC_SESSION_KEYRING, r, -1)
    except OSError as exc:
        if exc.errno == errno.EOPNOTSUPP:
            return SKIP_NO_KEY_NOTIFICATIONS
        if exc.errno != errno.EBADSLT:  # not watched: the call exists
            raise
    finally:
        os.close(r)
        os.close(w)
    return None


class KeyringSource:
    """Real keyrings in a fresh session keyring of this process (joined once)."""

    name = "keyring"

    def __init__(self) -> None:
        global _session_joined
        self.backend: Backend = KernelBackend()
        if not _session_joined:
            keyctl(KEYCTL_JOIN_SESSION_KEYRING, None)  # anonymous: nothing shared with the caller
            _session_joined = True
        self._rings: list[KeyObj] = []
        self._n = itertools.count()

    def _add(self, type_: bytes, ring: int, payload: bytes | None) -> KeyObj:
        desc = f"xeclient-rk-{os.getpid()}-{next(self._n)}"
        plen = 0 if payload is None else len(payload)
        serial = libc().call("add_key", SYS_ADD_KEY, type_, desc.encode(), payload, plen, ring)
        return KeyObj(serial, desc)

    def keyring(self) -> KeyObj:
        ring = self._add(b"keyring", KEY_SPEC_SESSION_KEYRING, None)
        self._rings.append(ring)
        return ring

    def add_key(self, ring: KeyObj) -> KeyObj:
        key = self._add(b"user", ring.serial, b"payload")
        key.links.add(ring.serial)
        return key

    def watch(self, obj: KeyObj, fd: int, watch_id: int) -> None:
        keyctl(KEYCTL_WATCH_KEY, obj.serial, fd, watch_id)

    def unwatch(self, obj: KeyObj, fd: int) -> None:
        keyctl(KEYCTL_WATCH_KEY, obj.serial, fd, -1)

    def update(self, key: KeyObj) -> None:
        payload = b"updated"
        keyctl(KEYCTL_UPDATE, key.serial, payload, len(payload))

    def unlink(self, ring: KeyObj, key: KeyObj) -> None:
        keyctl(KEYCTL_UNLINK, key.serial, ring.serial)
        key.links.discard(ring.serial)

    def close(self) -> None:
        """Unlink this test's keyrings from the session keyring: the collector frees them and their keys."""
        for ring in self._rings:
            try:
                keyctl(KEYCTL_UNLINK, ring.serial, KEY_SPEC_SESSION_KEYRING)
            except OSError:
                pass
        self._rings.clear()


# --- the fake -------------------------------------------------------------------------------------
class FakeSource:
    """The fake backend, with ``watch_source(serial)`` objects standing in for keys and keyrings."""

    name = "fake"
    _serials = itertools.count(0x1A2B_0001)

    def __init__(self) -> None:
        self.fake = FakeBackend()
        self.backend: Backend = self.fake
        self._sources: dict[int, WatchSource] = {}
        self._n = itertools.count()

    def _new(self) -> KeyObj:
        serial = next(self._serials)
        self._sources[serial] = self.fake.watch_source(serial)
        return KeyObj(serial, f"fake-{next(self._n)}")

    def _src(self, obj: KeyObj) -> WatchSource:
        return self._sources[obj.serial]

    def _post(self, obj: KeyObj, subtype: int, key_id: int, aux: int) -> None:
        self._src(obj).post(int(WatchType.KEY_NOTIFY), subtype, struct.pack("<II", key_id, aux))

    def keyring(self) -> KeyObj:
        return self._new()

    def add_key(self, ring: KeyObj) -> KeyObj:
        key = self._new()
        key.links.add(ring.serial)
        self._post(ring, KeyNotify.LINKED, ring.serial, key.serial)  # notify_key(keyring, LINKED, key)
        return key

    def watch(self, obj: KeyObj, fd: int, watch_id: int) -> None:
        self._src(obj).add_watch(fd, watch_id)

    def unwatch(self, obj: KeyObj, fd: int) -> None:
        self._src(obj).remove_watch(fd)

    def update(self, key: KeyObj) -> None:
        self._post(key, KeyNotify.UPDATED, key.serial, 0)

    def unlink(self, ring: KeyObj, key: KeyObj) -> None:
        self._post(ring, KeyNotify.UNLINKED, ring.serial, key.serial)
        key.links.discard(ring.serial)
        if not key.links:  # last link gone: the key is destroyed and its watches removed
            self._src(key).destroy()

    def close(self) -> None:
        self.fake.shutdown()
