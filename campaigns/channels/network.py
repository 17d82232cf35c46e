"""What a network failure tells about a message: whether the provider can have received it."""

from __future__ import annotations

from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError


def never_connected(exc: BaseException) -> bool:
    """True when the chain shows the TCP connection was never made (refused, DNS, connect
    timeout): then nothing reached the provider."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(
            current,
            NewConnectionError | ConnectTimeoutError | requests.exceptions.ConnectTimeout,
        ):
            return True
        stack.extend([current.__cause__, current.__context__])
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return False
