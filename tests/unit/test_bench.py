"""``xeclient bench``: the quick run produces every figure's every key, and the JSON parses.

No timing target is asserted here: targets live in the benchmark output (PASS/MISS),
because a shared 2-core machine makes any threshold flaky.  What is checked is the
shape: every figure runs on the fake, every key is present with a value or a
SKIP that says why, and the text and JSON renderings work.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from xeclient.bench import FIGURES, figure_keys, format_report, run_bench
from xeclient.bench import _ctools as ctools
from xeclient.bench._common import Row, Target, latency_stats, percentile
from xeclient.cli import main

STATUSES = {"PASS", "MISS", "SKIP", "info"}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cache = tmp_path_factory.mktemp("bench-cache")
    return run_bench("fake", quick=True, cache_dir=str(cache))


def test_quick_run_has_every_figure_and_key(quick_report: dict[str, Any]) -> None:
    assert list(quick_report["figures"]) == list(FIGURES)
    for name, fig in quick_report["figures"].items():
        assert fig["error"] is None, f"{name}: {fig['error']}"
        missing = set(figure_keys(name)) - set(fig["rows"])
        assert not missing, f"{name} lacks {sorted(missing)}"
        for key, row in fig["rows"].items():
            assert row["status"] in STATUSES, (name, key, row)
            if row["value"] is None:
                assert row["status"] == "SKIP" and row["note"], f"{name}.{key} has no value and says not why"
            else:
                assert math.isfinite(row["value"]), (name, key, row)


def test_quick_run_measures_the_listener_on_the_fake(quick_report: dict[str, Any]) -> None:
    """On the fake nothing but the C floor may be skipped (and only without a compiler).

    The loss point is a measurement, not a given: a burst sweep that never overflowed says so.
    """
    figs = quick_report["figures"]
    for name, fig in figs.items():
        for key, row in fig["rows"].items():
            if row["status"] == "SKIP":
                allowed = key.startswith("floor_") or key == "c_fionread_ns" or key == "loss_burst"
                assert allowed, f"{name}.{key} skipped: {row['note']}"
    throughput = figs["throughput"]
    assert throughput["rows"]["loss_exact"]["value"] == float(len(throughput["params"]["bursts"])), throughput["notes"]
    assert figs["restart"]["rows"]["incidents"]["value"] >= 1


def test_quick_report_is_json_and_renders(quick_report: dict[str, Any]) -> None:
    again = json.loads(json.dumps(quick_report))
    assert again["backend"] == "fake" and again["quick"] is True
    assert set(again["summary"]) == {"pass", "miss", "skip", "misses"}
    text = format_report(quick_report)
    for fig in quick_report["figures"].values():
        assert fig["title"] in text
    assert "PASS" in text or "MISS" in text


def test_cli_json_only(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["bench", "--quick", "--json", "--only", "binding"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["figures"]) == ["binding"]
    assert set(figure_keys("binding")) <= set(report["figures"]["binding"]["rows"])


def test_cli_table(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["bench", "--quick", "--only", "idle"]) == 0
    out = capsys.readouterr().out
    assert "4. Idle cost" in out and "stop()" in out


def test_no_compiler_skips_the_floor_with_a_note(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ctools, "compiler", lambda: None)
    with pytest.raises(ctools.CToolUnavailable, match="no C compiler"):
        ctools.build("floor_reader", str(tmp_path))
    report = run_bench("fake", quick=True, only=["binding"], cache_dir=str(tmp_path))
    rows = report["figures"]["binding"]["rows"]
    assert rows["c_fionread_ns"]["status"] == "SKIP"
    assert "no C compiler" in rows["c_fionread_ns"]["note"]
    assert rows["kernel_fionread_ns"]["value"] is not None
    assert rows["kernel_fionread_ns"]["status"] == "SKIP"  # no floor, so the "above C" target cannot be judged


def test_build_is_cached(tmp_path: Path) -> None:
    if ctools.compiler() is None:
        pytest.skip("no C compiler here")
    first = ctools.build("ioctl_loop", str(tmp_path))
    mtime = Path(first).stat().st_mtime_ns
    assert ctools.build("ioctl_loop", str(tmp_path)) == first
    assert Path(first).stat().st_mtime_ns == mtime


def test_unknown_figure_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown figure"):
        run_bench("fake", quick=True, only=["nope"])


def test_statistics_and_targets() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    stats = latency_stats([1000 * i for i in range(1, 101)])
    assert stats["p50"] == pytest.approx(50.5) and stats["max"] == 100.0 and stats["n"] == 100
    both = Target("<= 3x floor and <= 50", max=50.0, max_ratio=3.0)
    assert Row("a", "a", 40.0, "us", floor=20.0, target=both).finish().status == "PASS"
    assert Row("b", "b", 70.0, "us", floor=30.0, target=both).finish().status == "MISS"
    assert Row("c", "c", 40.0, "us", floor=10.0, target=both).finish().status == "MISS"
    above = Target("<= C + 1500", max_above=1500.0)
    row = Row("d", "d", 2000.0, "ns", floor=600.0, ratio_kind="+", target=above).finish()
    assert row.status == "PASS" and row.ratio == 1400.0
    assert Row("e", "e", 2000.0, "ns", ratio_kind="+", target=above).finish().status == "SKIP"
    assert Row("f", "f", None, "ns", target=Target("x", max=1.0)).finish().status == "SKIP"
