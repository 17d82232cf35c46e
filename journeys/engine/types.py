"""What the engine passes between its parts: an enrollment as one round read it, what a step
runner decided for it, the per-call context and the report."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from journeys.flow import Flow

Step = Mapping[str, Any]


@dataclass(frozen=True)
class Row:
    """An active enrollment, locked by the round that read it."""

    pk: int
    journey_id: int
    version_id: int
    contact_id: int
    step_id: str
    sequence: int
    entered_at: dt.datetime
    step_started_at: dt.datetime
    awaiting_event: str
    entry_properties: Mapping[str, Any]
    contact_timezone: str


@dataclass
class Result:
    """What a runner decided for one enrollment at its step.

    move: the step is done; go to `next_step` (None: the journey is complete).
    finish: leave the journey with `status` and `reason` (exited, failed).
    hold: stay at the step until `due_at` (a wait, a send not yet final); `awaiting` sets
    awaiting_event. A hold with `keep` stays in this call (due_at is the call's lease).
    `ledger` is the step's outcome when the ledger gets a row (or `ledger_pk`'s row is
    finished); None writes nothing."""

    row: Row
    kind: Literal["move", "finish", "hold"]
    next_step: str | None = None
    status: str = ""
    reason: str = ""
    due_at: dt.datetime | None = None
    awaiting: str | None = None
    ledger: dict[str, Any] | None = None
    ledger_status: str = "done"
    ledger_pk: int | None = None
    state: str = "waiting"  # how a hold is reported: "waiting", "holding a send"
    keep: bool = False  # a hold that stays in this call (its due_at is the lease)


@dataclass(frozen=True)
class VersionInfo:
    number: int
    journey_slug: str
    flow: Flow


# A network call a runner wants made once the round has committed: returns the action's
# result, raises ActionError (or any error) when it failed.
Call = Callable[[], Mapping[str, Any]]


@dataclass
class Context:
    now: dt.datetime
    lease: dt.datetime
    versions: dict[int, VersionInfo] = field(default_factory=dict)
    # Calls to make after the round commits, by enrollment id.
    calls: dict[int, Call] = field(default_factory=dict)
    # What those calls did: ("done", result) or ("failed", error), by enrollment id.
    call_results: dict[int, tuple[str, Any]] = field(default_factory=dict)


@dataclass
class AdvanceReport:
    """What one call did: `enrollments` it looked at, `steps` it ran (ledger rows finished),
    and where each enrollment ended up (`states`: waiting, holding a send, completed,
    exited, failed, due again)."""

    enrollments: int = 0
    steps: int = 0
    rounds: int = 0
    states: Counter[str] = field(default_factory=Counter)

    def merge(self, other: AdvanceReport) -> None:
        self.enrollments += other.enrollments
        self.steps += other.steps
        self.rounds = max(self.rounds, other.rounds)
        self.states.update(other.states)

    def as_dict(self) -> dict[str, Any]:
        return {
            "enrollments": self.enrollments,
            "steps": self.steps,
            "rounds": self.rounds,
            "states": dict(sorted(self.states.items())),
        }

    def summary(self) -> str:
        states = ", ".join(f"{n} {state}" for state, n in sorted(self.states.items()))
        return f"advanced {self.enrollments} enrollments ({self.steps} steps run)" + (
            f": {states}" if states else ""
        )
