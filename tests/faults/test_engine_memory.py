"""Thousands of contacts through the rules engine in one process: no crash (durable_rules
allows 1,024 live sessions per ruleset), and memory stays flat."""

from __future__ import annotations

import gc
import os
from pathlib import Path

from tests.triggers.helpers import rule_data
from triggers.compiler import ruleset_compile
from triggers.engine import RuleEngine


def _rss_mb() -> float:
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_20000_contacts_through_the_engine_in_one_process_no_crash_memory_flat() -> None:
    rule = rule_data("engine-memory-probe")
    rule["conditions"] = [{"id": "dormancy", "days": 60}]
    compiled = ruleset_compile([rule])
    engine = RuleEngine()
    engine.use(compiled)
    snapshots = [{"cid": cid, "inactive_days": cid % 120} for cid in range(1, 20_001)]
    engine.match(snapshots[:2000])  # warm-up
    gc.collect()
    start = _rss_mb()
    matched = 0
    readings = []
    for offset in range(0, len(snapshots), 2000):
        matched += sum(
            1 for names in engine.match(snapshots[offset : offset + 2000]).values() if names
        )
        gc.collect()
        readings.append(_rss_mb())
    growth = readings[-1] - start
    print(
        f"20,000 contacts through the engine: {matched} matched, RSS {start:.1f} -> "
        f"{readings[-1]:.1f} MB ({growth:+.1f} MB), unhandled {engine.unhandled}"
    )
    assert matched == sum(1 for s in snapshots if s["inactive_days"] >= 60)
    assert engine.unhandled == 0
    assert growth < 10
