"""fault_inject.FaultAttr: the kernel's should_fail() knobs (probability, interval, times, space)."""

from __future__ import annotations

import pytest

from xeclient.backends.fake.fault_inject import FaultAttr, FaultRegistry


def fires(attr: FaultAttr, n: int, size: int = 0) -> list[bool]:
    return [attr.should_fail(size) for _ in range(n)]


def test_fresh_attribute_never_fires():
    assert fires(FaultRegistry()["rebind_enospc"], 10) == [False] * 10


def test_times_counts_failures():
    assert fires(FaultAttr("a", probability=100, times=2), 4) == [True, True, False, False]


def test_times_unlimited():
    assert all(fires(FaultAttr("a", probability=100, times=-1), 50))


def test_interval_every_nth():
    assert fires(FaultAttr("a", probability=100, times=-1, interval=3), 6) == [False, False, True, False, False, True]


def test_space_budget_consumed_first():
    attr = FaultAttr("a", probability=100, times=-1, space=10)
    assert fires(attr, 3, size=4) == [False, False, True]


def test_probability_percent():
    attr = FaultAttr("a", probability=30, times=-1)
    hits = sum(fires(attr, 2000))
    assert 450 < hits < 750
    assert fires(FaultAttr("b", probability=0, times=-1), 10) == [False] * 10


def test_registry_inject_and_errors():
    reg = FaultRegistry()
    assert reg.names() == ["rebind_enospc"]
    reg.inject("rebind_enospc", probability=100, times=1)
    assert reg.should_fail("rebind_enospc") and not reg.should_fail("rebind_enospc")
    with pytest.raises(KeyError):
        reg.inject("nope")
    for kw in ({"probability": 101}, {"times": -2}, {"interval": 0}, {"space": -1}):
        with pytest.raises(ValueError):
            reg.inject("rebind_enospc", **kw)
