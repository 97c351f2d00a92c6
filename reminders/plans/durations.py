"""Short human durations in plan files: "30m", "12h", "2d", "1w"."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: object) -> timedelta:
    """Parse "90m", "12h", "2d" or "1w" (or a timedelta) into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            amount, unit = match.groups()
            return timedelta(**{_UNITS[unit]: int(amount)})
    raise ValueError('expected a duration such as "30m", "12h", "2d" or "1w"')
