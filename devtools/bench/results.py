"""One measurement beside its baseline, the table printed at the end and results.json."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO


@dataclass
class Result:
    name: str
    value: float
    unit: str
    baseline: str  # what the baseline is, in words
    baseline_value: float | None
    goal: str
    met: bool | None  # None: the goal does not apply to this setup (e.g. PostgreSQL only)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = None if self.ratio is None else round(self.ratio, 4)
        data["value"] = round(self.value, 4)
        if self.baseline_value is not None:
            data["baseline_value"] = round(self.baseline_value, 4)
        order = ["name", "value", "unit", "baseline", "baseline_value", "ratio", "goal", "met"]
        return {key: data[key] for key in [*order, "detail"]}


class Progress:
    """Progress lines on the terminal: a phase, then counts as they move."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._last = 0.0

    def say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def count(self, what: str, done: int, total: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 1.0 and done < total:
            return
        self._last = now
        percent = 100.0 * done / total if total else 100.0
        self.say(f"  {what}: {done:,}/{total:,} ({percent:.0f}%)")


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Yields a one-item list that holds the elapsed seconds afterwards."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.4f}"


def results_table(results: list[Result]) -> str:
    rows = [("name", "value", "unit", "baseline", "ratio", "goal", "met")]
    for r in results:
        met = "n/a" if r.met is None else ("yes" if r.met else "NO")
        rows.append(
            (
                r.name,
                _fmt(r.value),
                r.unit,
                f"{_fmt(r.baseline_value)} ({r.baseline})",
                "-" if r.ratio is None else f"{r.ratio:.3f}",
                r.goal,
                met,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def results_write(results: list[Result], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([r.as_json() for r in results], indent=2) + "\n")
