"""The learned ranker this process serves: loaded from the registry, swapped without a
restart, the hand-tuned blend whenever no model can serve.

:class:`RankerHolder` reads the active version through :class:`RankerSource` (the Redis
:class:`~recstream.store.rankers.RankerRegistry` in the server; an in-memory one in the
unit tests) when the app starts and then every ``ranker.poll_seconds``:

- a new active version is read, parsed and checked in a worker thread (a LightGBM model
  of a few hundred kilobytes takes milliseconds to load), then swapped in with one
  assignment: a request that already took the old model finishes with it, the next one
  gets the new one;
- no active version: the blend serves (``current`` is None);
- an artifact that does not load (not an artifact, features this build does not compute,
  a model text LightGBM refuses, published under another version than it names): the
  blend serves, and that version is remembered as broken, so it is not fetched and
  parsed again on every poll; activating another version (or deactivating and activating
  it again) tries again;
- an active version whose artifact is not published, or a Redis error while reading the
  artifact: the blend serves, and the next poll tries again (both can heal by
  themselves);
- a Redis error while reading the active version keeps the model being served: a
  transient outage must not change the ranking of every request.

Each swap and each failure is logged once (``logger=recstream_api.rankers``, with the
``ranker`` field), counted in ``recstream_api_ranker_load_failures_total{reason}`` and
shown in ``GET /health`` (:attr:`RankerHolder.status`).

The admin routes list, activate and deactivate models through :class:`RankerCatalog`
(:func:`ranker_listing`, :func:`choose_ranker`): a version is activated only when its
artifact loads here, and the process that served the request follows at once; the other
replicas within one poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.exceptions import RedisError

from recstream.scoring.learned import ArtifactError, LearnedRanker, RankerArtifact
from recstream.store.port import StoreUnavailableError
from recstream_api.exceptions import InvalidRequestError, NotFoundError
from recstream_api.metrics import ApiMetrics

log = logging.getLogger(__name__)

BLEND = "blend"
# what a registry raises when Redis cannot answer
UNREACHABLE = (RedisError, OSError, TimeoutError)


class RankerSource(Protocol):
    """Where the active model comes from (``RankerRegistry`` satisfies it)."""

    async def active_version(self) -> str | None: ...

    async def artifact(self, version: str) -> bytes | None: ...


class RankerCatalog(RankerSource, Protocol):
    """What the admin routes need of the registry as well (``RankerRegistry`` again)."""

    async def versions(self) -> list[str]: ...

    async def activate(self, version: str) -> None: ...

    async def deactivate(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RankerStatus:
    enabled: bool
    serving: str  # the model version this process ranks with, or "blend"
    error: str | None  # the last failure, while it holds (cleared by a poll that succeeds)
    failed_version: str | None  # the active version that did not load, if it is still active
    checked_at: float | None  # epoch seconds of the last poll that read the registry


def load_ranker(version: str, data: bytes) -> LearnedRanker:
    """The model of an artifact published as ``version``; :class:`ArtifactError` when it
    cannot serve. Blocking (parses the JSON, builds the LightGBM booster)."""
    artifact = RankerArtifact.from_bytes(data)
    if artifact.version != version:
        raise ArtifactError(
            f"published as {version!r}, but the artifact names version {artifact.version!r}"
        )
    return LearnedRanker(artifact)


# How long stopping the poll may take (the API's shutdown waits for it).
STOP_SECONDS = 5.0


class RankerHolder:
    """The active model of one process (``current``), kept in step with the registry."""

    def __init__(
        self,
        source: RankerSource,
        *,
        poll_seconds: float,
        enabled: bool = True,
        metrics: ApiMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._poll_seconds = poll_seconds
        self._enabled = enabled
        self._metrics = metrics
        self._clock = clock
        self._ranker: LearnedRanker | None = None
        self._version: str | None = None  # the registry's name of the model served
        self._failed: str | None = None  # the active version that did not load
        self._load_error: str | None = None  # why the active version is not served
        self._poll_error: str | None = None  # why the registry could not be read
        self._checked_at: float | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        if metrics is not None:
            metrics.serving_ranker(BLEND)

    @property
    def current(self) -> LearnedRanker | None:
        """The model to rank with now; None: the blend."""
        return self._ranker

    @property
    def serving(self) -> str:
        return self._version if self._ranker is not None and self._version else BLEND

    @property
    def status(self) -> RankerStatus:
        return RankerStatus(
            enabled=self._enabled,
            serving=self.serving,
            error=self._poll_error or self._load_error,
            failed_version=self._failed,
            checked_at=self._checked_at,
        )

    async def start(self) -> None:
        """Load the active model (so the first request is ranked by it), then poll."""
        if not self._enabled:
            return
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="ranker-poll")

    async def stop(self) -> None:
        """End the poll, within ``STOP_SECONDS`` even when a client call in flight swallowed
        the cancellation (the loop then ends at its next turn instead)."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=STOP_SECONDS)
            self._task = None

    async def _poll(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._poll_seconds)
                return  # stopping
            try:
                await self.refresh()
            except Exception:  # the poll must outlive any surprise; the next one tries again
                log.exception("ranker poll failed unexpectedly", extra={"ranker": self.serving})

    async def refresh(self, *, retry_failed: bool = False) -> None:
        """Read the active version once and follow it (see the module's rules);
        ``retry_failed`` loads a version that failed before again (it was republished)."""
        if not self._enabled:
            return
        async with self._lock:
            if retry_failed:
                self._failed = None
            try:
                version = await self._source.active_version()
            except UNREACHABLE as exc:
                self._poll_failed(exc)
                return
            if self._poll_error is not None:
                log.info("ranker registry readable again", extra={"ranker": self.serving})
                self._poll_error = None
            self._checked_at = self._clock()
            if version is None:
                self._failed = self._load_error = None
                if self._ranker is not None:
                    log.info("ranker deactivated: the blend serves", extra={"ranker": BLEND})
                    self._serve(None, None)
                return
            if (version == self._version and self._ranker is not None) or version == self._failed:
                return
            await self._load(version)

    async def _load(self, version: str) -> None:
        try:
            data = await self._source.artifact(version)
        except UNREACHABLE as exc:
            self._load_failed("redis", version, f"its artifact cannot be read: {exc!r}")
            return
        if data is None:
            self._load_failed("missing", version, "it is active but not published")
            return
        try:
            ranker = await asyncio.to_thread(load_ranker, version, data)
        except ArtifactError as exc:
            self._load_failed("invalid", version, str(exc))
            self._failed = version  # not fetched again while it stays the active version
            return
        previous = self.serving
        self._failed = self._load_error = None
        self._serve(ranker, version)
        log.info(
            "ranker swapped: %s -> %s",
            previous,
            version,
            extra={"ranker": version, "previous": previous},
        )

    def _serve(self, ranker: LearnedRanker | None, version: str | None) -> None:
        self._ranker = ranker  # one assignment: a request sees the old model or the new one
        self._version = version if ranker is not None else None
        if self._metrics is not None:
            created = ranker.artifact.created_at if ranker is not None else ""
            self._metrics.serving_ranker(self.serving, created)

    def _load_failed(self, reason: str, version: str, detail: str) -> None:
        """The blend serves; the failure is counted, and logged when it is news."""
        previous = self.serving
        self._serve(None, None)
        if self._metrics is not None:
            self._metrics.ranker_load_failed(reason)
        message = f"model {version} not loaded: {detail}"
        if message != self._load_error:
            log.warning(
                "%s; the blend serves (was %s)",
                message,
                previous,
                extra={"ranker": version, "reason": reason},
            )
        self._load_error = message

    def _poll_failed(self, exc: BaseException) -> None:
        """The model being served stays; the failure is counted, and logged when it is news."""
        if self._metrics is not None:
            self._metrics.ranker_load_failed("redis")
        message = f"the ranker registry cannot be read: {exc!r}"
        if message != self._poll_error:
            log.warning(
                "%s; still serving %s",
                message,
                self.serving,
                extra={"ranker": self.serving, "reason": "redis"},
            )
        self._poll_error = message


@dataclass(frozen=True, slots=True)
class RankerListing:
    versions: list[str]  # published, sorted
    active: str | None  # the registry's active version; None: the blend
    status: RankerStatus  # what this process serves


async def ranker_listing(registry: RankerCatalog, holder: RankerHolder) -> RankerListing:
    try:
        versions = await registry.versions()
        active = await registry.active_version()
    except UNREACHABLE as exc:
        raise StoreUnavailableError(f"the ranker registry cannot be read: {exc!r}") from exc
    return RankerListing(versions, active, holder.status)


async def activate_ranker(
    registry: RankerCatalog, holder: RankerHolder, version: str
) -> RankerListing:
    """Serve ``version``: :class:`NotFoundError` when it is not published,
    :class:`InvalidRequestError` when its artifact cannot serve (the active version is
    left as it was)."""
    try:
        data = await registry.artifact(version)
        if data is None:
            published = await registry.versions()
            raise NotFoundError(
                f"no published ranker model {version!r} (publish it with `recstream model "
                f"publish`); published: {', '.join(published) or 'none'}",
                details={"version": version, "published": published},
            )
        try:
            await asyncio.to_thread(load_ranker, version, data)
        except ArtifactError as exc:
            raise InvalidRequestError(
                f"model {version} cannot serve: {exc}", details={"version": version}
            ) from exc
        try:
            await registry.activate(version)
        except KeyError as exc:  # removed meanwhile
            raise NotFoundError(f"no published ranker model {version!r}") from exc
    except UNREACHABLE as exc:
        raise StoreUnavailableError(f"the ranker registry cannot be written: {exc!r}") from exc
    await holder.refresh(retry_failed=True)
    return await ranker_listing(registry, holder)


async def deactivate_ranker(registry: RankerCatalog, holder: RankerHolder) -> RankerListing:
    """Serve the blend (every replica within one poll)."""
    try:
        await registry.deactivate()
    except UNREACHABLE as exc:
        raise StoreUnavailableError(f"the ranker registry cannot be written: {exc!r}") from exc
    await holder.refresh()
    return await ranker_listing(registry, holder)


async def choose_ranker(
    registry: RankerCatalog, holder: RankerHolder, version: str | None
) -> RankerListing:
    """Serve ``version``, or the blend when it is None."""
    if version is None:
        return await deactivate_ranker(registry, holder)
    return await activate_ranker(registry, holder, version)
