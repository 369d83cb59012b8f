"""The dispatcher's safety net never fires: random argument bytes get errno answers, never a Python exception."""

from __future__ import annotations

import os
import random
import struct

from xeclient.backends.fake import FakeBackend
from xeclient.uapi.requests import DRM_IOCTL_GEM_CLOSE, DRM_IOCTL_VERSION, XE_REQUESTS

WAIT_USER_FENCE = XE_REQUESTS["WAIT_USER_FENCE"].code


def test_random_arguments_never_raise():
    rng = random.Random(1234)
    codes = [DRM_IOCTL_VERSION, DRM_IOCTL_GEM_CLOSE, *(r.code for r in XE_REQUESTS.values())]
    with FakeBackend(vram=16 << 20) as b:
        fd = b.open(b.render_nodes()[0], os.O_RDWR)
        for code in codes:
            size = (code >> 16) & 0x3FFF
            for _ in range(40):
                buf = bytearray(rng.getrandbits(8) for _ in range(size))
                if rng.random() < 0.5:  # mostly-zero structs get past the first checks
                    for i in range(size):
                        if rng.random() < 0.8:
                            buf[i] = 0
                if code == WAIT_USER_FENCE:
                    struct.pack_into("<q", buf, 40, 0)  # never wait
                try:
                    b.ioctl(fd, code, buf)
                except OSError:
                    pass
        assert b.settle(5.0)
        assert b.device.bugs == 0
