"""One retry policy for applying the log: jittered exponential backoff within a budget."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from recstream.store.port import StoreUnavailableError, WatermarkConflictError


class ApplyError(RuntimeError):
    """Base of the errors of applying the log to a store."""


class BatchNotAppliedError(ApplyError):
    """A batch could not be applied within the retry budget (or the applier was stopped).

    Nothing of it was committed; it must be read again.
    """


# What another writer or an outage causes: worth waiting out. A refused continuity
# (StateLostError) is not among them: it needs a rebuild, not a wait.
TRANSIENT: tuple[type[BaseException], ...] = (
    StoreUnavailableError,
    WatermarkConflictError,
    OSError,
    TimeoutError,
)

# (the error, the attempt number from 1, the delay before the next attempt)
RetryHook = Callable[[BaseException, int, float], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with "equal jitter" (half fixed, half random), within a budget."""

    initial_delay: float = 0.1
    max_delay: float = 5.0
    budget: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.max_delay, self.initial_delay * (2.0**attempt))
        return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


class Retrier:
    """One walk of :class:`RetryPolicy` over one piece of work: call :meth:`wait` after each
    transient failure; it sleeps, or raises :class:`BatchNotAppliedError` when the budget
    would run out or ``stopping`` is set."""

    def __init__(
        self,
        policy: RetryPolicy,
        rng: random.Random,
        *,
        what: str,
        stopping: asyncio.Event | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        self._policy = policy
        self._rng = rng
        self._what = what
        self._stopping = stopping
        self._on_retry = on_retry
        self._deadline = time.monotonic() + policy.budget
        self.attempts = 0

    async def wait(self, exc: BaseException, step: str) -> None:
        delay = self._policy.delay(self.attempts, self._rng)
        self.attempts += 1
        if time.monotonic() + delay > self._deadline or self._stopped():
            raise BatchNotAppliedError(f"{step} of {self._what} failed: {exc}") from exc
        if self._on_retry is not None:
            self._on_retry(exc, self.attempts, delay)
        if self._stopping is None:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        if self._stopped():
            raise BatchNotAppliedError(f"stopping while {step} of {self._what} waits") from exc

    def _stopped(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()
