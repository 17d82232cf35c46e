"""Time windows: "in the last 7 days" (segments) and "in 24 hours" (triggers) are one idea,
an amount of a unit, stored under the unit's key ("days": 7 or "hours": 24)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Unit = Literal["day", "hour"]
UNIT_KEYS: dict[Unit, str] = {"day": "days", "hour": "hours"}
_UNIT_SECONDS: dict[Unit, int] = {"day": 86400, "hour": 3600}


@dataclass(frozen=True)
class Window:
    amount: int
    unit: Unit = "day"

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Window:
        """The window of stored options, whichever unit they are written in."""
        for unit, key in UNIT_KEYS.items():
            if options.get(key) is not None:
                return cls(int(options[key]), unit)
        raise KeyError("a window needs days or hours")

    @property
    def delta(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.amount * _UNIT_SECONDS[self.unit])

    @property
    def hours(self) -> int:
        return self.amount * _UNIT_SECONDS[self.unit] // 3600

    def start(self, now: dt.datetime) -> dt.datetime:
        """The window's first moment when it ends at `now`."""
        return now - self.delta


def elapsed(now: dt.datetime, then: dt.datetime | None, unit: Unit) -> float | None:
    """How many units lie between `then` and `now` (to four decimals); None when `then` is
    None (it never happened)."""
    if then is None:
        return None
    return round((now - then).total_seconds() / _UNIT_SECONDS[unit], 4)
