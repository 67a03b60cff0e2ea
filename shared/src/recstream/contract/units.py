"""Time units, in seconds: event times, decay half-lives, TTLs and windows count in them."""

from __future__ import annotations

MINUTE = 60.0
HOUR = 3_600.0
DAY = 86_400.0
