"""The only module that imports durable_rules: it matches fact snapshots against a compiled
ruleset, and nothing else. The database is the state of record.

How durable-rules 2.0.28 is held (docs/triggers.md has the measurements):
- One Host per process, with its timer threads switched off: we use no timers, and those
  threads would call into the C core, which is not thread-safe, outside our lock.
- One lock per process around every call into the C core.
- A ruleset name can be registered once per process: compiled rulesets carry a content hash
  in their name, and swapping to a new version registers the new name and abandons the old.
  Rulesets seen before stay registered, so swapping back costs nothing.
- Each snapshot is asserted as a fact under a fresh session id (sid) with a unique message
  id, and its state is deleted in `finally`: the engine holds at most 1,024 live sids per
  ruleset per process.
- The consequence callbacks only append the rule's name to a list: an exception raised in
  an action is swallowed by durable_rules, so no work (and no I/O) happens in there.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from durable import engine as durable_engine

from triggers.compiler import CATCH_ALL, CompiledRuleset
from triggers.types import Facts

logger = logging.getLogger(__name__)

_LOCK = threading.Lock()


class EngineError(RuntimeError):
    pass


class _QuietHost(durable_engine.Host):
    def _run(self) -> None:
        # The stock host starts two timer threads that poll every ruleset forever; we use
        # no timers, and their calls into the C core would race ours.
        return


class RuleEngine:
    """Matches snapshots; process-wide, see `engine()`."""

    def __init__(self) -> None:
        self._host = _QuietHost()
        self._registered: set[str] = set()
        self._current: CompiledRuleset | None = None
        self._matches: list[str] = []
        self.unhandled = 0  # asserts no rule matched (should stay 0: the catch-all)

    @property
    def current_name(self) -> str | None:
        return self._current.name if self._current else None

    @property
    def registered(self) -> frozenset[str]:
        return frozenset(self._registered)

    def _collector(self, rule_name: str) -> Callable[[Any], None]:
        matches = self._matches

        def collect(closure: Any) -> None:
            matches.append(rule_name)

        return collect

    def _register(self, compiled: CompiledRuleset) -> None:
        if compiled.name in self._registered:
            return
        definition = {
            rule_name: {**rule, "run": self._collector(rule_name)}
            for rule_name, rule in compiled.definition.items()
        }
        self._host.register_rulesets({compiled.name: definition})
        self._registered.add(compiled.name)
        logger.info("registered ruleset %s (%d rules)", compiled.name, len(definition) - 1)

    def use(self, compiled: CompiledRuleset) -> None:
        """Make `compiled` the ruleset `match` uses (registering it when new)."""
        with _LOCK:
            self._register(compiled)
            self._current = compiled

    def match(
        self, snapshots: Iterable[Facts], *, compiled: CompiledRuleset | None = None
    ) -> dict[int, list[str]]:
        """{contact id: [names of the rules that matched]} for each snapshot (by its "cid"),
        in ruleset order. `compiled` overrides the current ruleset (the "why" view)."""
        results: dict[int, list[str]] = {}
        with _LOCK:
            ruleset = compiled or self._current
            if ruleset is None:
                raise EngineError("no ruleset in use: call use() first")
            self._register(ruleset)
            order = {name: index for index, name in enumerate(ruleset.definition)}
            for facts in snapshots:
                results[int(facts["cid"])] = sorted(
                    self._match_one(ruleset.name, facts), key=lambda n: order.get(n, 0)
                )
        return results

    def _match_one(self, ruleset_name: str, facts: Facts) -> list[str]:
        sid = uuid.uuid4().hex
        message = {**facts, "sid": sid, "id": sid}
        self._matches.clear()
        handled = True
        try:
            self._host.assert_fact(ruleset_name, message)
        except durable_engine.MessageNotHandledException:
            handled = False
        finally:
            # Deleting the state of an unhandled message crashes 2.0.28; the catch-all rule
            # makes every message handled, and this guard keeps a bad ruleset from killing
            # the worker (the sid then stays: counted and logged).
            if handled:
                self._host.delete_state(ruleset_name, sid)
        if not handled:
            self.unhandled += 1
            logger.error("ruleset %s had no catch-all match; sid %s kept", ruleset_name, sid)
        found = [name for name in self._matches if name != CATCH_ALL]
        self._matches.clear()
        return list(dict.fromkeys(found))


_ENGINE: RuleEngine | None = None
_ENGINE_INIT = threading.Lock()


def engine() -> RuleEngine:
    """The process-wide engine."""
    global _ENGINE
    with _ENGINE_INIT:
        if _ENGINE is None:
            _ENGINE = RuleEngine()
        return _ENGINE
