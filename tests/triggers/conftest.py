from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from triggers.services.rules import ruleset_forget


@pytest.fixture(autouse=True)
def _fresh_rules(settings: Any) -> Iterator[None]:
    # Each test has its own database: never reuse the previous test's compiled rules.
    settings.TRIGGER_RULES_CHECK_SECONDS = 0
    ruleset_forget()
    yield
    ruleset_forget()
