"""Readers that map public interaction datasets to contract events.

Pure parsing: each reader takes the file's lines (``open(path)`` works) and
yields :data:`~recstream.events.Event` values in file order, so the replay
command, the offline evaluation and the tests feed the same events to the
same fold. A row that cannot be mapped is a :class:`BadRow` with its line
number: collected into ``bad_rows`` when a list is given, otherwise raised
as :class:`DatasetError`.

Event ids are deterministic: ``<source>-<session>-<time in ms>-<kind>-<item>``
with ``-2``, ``-3``, ... appended to a repeated row, so reading a file twice
gives the same ids and a replay of it is deduplicated, not double-counted.

Formats:

- **Diginetica** (CIKM Cup 2016) CSV
  ``session_id,user_id,timestamp,event,item_id,ordernumber,category_id``;
  ``view`` -> ``product_view``, ``purchase`` -> ``purchase_completed``
  (order number in ``properties["order_number"]``); ``category`` is the
  category id; the user is ``u<user_id>`` when present, else ``s<session_id>``
  (anonymous sessions); ``session_id`` is the session id.
- **Session TSV** ``SessionId<TAB>ItemId<TAB>Time`` (YooChoose as prepared by
  session-rec): every row a ``product_view``, the user is ``s<SessionId>``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from recstream.events import Event, EventType, validate_event

DIGINETICA_COLUMNS = (
    "session_id",
    "user_id",
    "timestamp",
    "event",
    "item_id",
    "ordernumber",
    "category_id",
)
SESSION_TSV_COLUMNS = ("SessionId", "ItemId", "Time")
DIGINETICA_TYPES = {"view": EventType.PRODUCT_VIEW, "purchase": EventType.PURCHASE_COMPLETED}


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int  # 1-based line number in the file, the header being line 1
    reason: str


class DatasetError(ValueError):
    """A row (or the header) of a dataset file cannot be mapped to an event."""

    def __init__(self, bad: BadRow) -> None:
        super().__init__(f"line {bad.line}: {bad.reason}")
        self.bad = bad


class _EventIds:
    """Deterministic ids: the row's identity, plus a counter for repeated rows."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def next(self, base: str) -> str:
        count = self._seen.get(base, 0) + 1
        self._seen[base] = count
        return base if count == 1 else f"{base}-{count}"


def _time(raw: str) -> datetime:
    return datetime.fromtimestamp(float(raw), UTC)


def _read(
    rows: Iterable[list[str]],
    columns: tuple[str, ...],
    to_event: Callable[[dict[str, str], _EventIds], dict[str, Any]],
    bad_rows: list[BadRow] | None,
) -> Iterator[Event]:
    def reject(line: int, reason: str) -> None:
        bad = BadRow(line, reason)
        if bad_rows is None:
            raise DatasetError(bad)
        bad_rows.append(bad)

    ids = _EventIds()
    iterator = iter(rows)
    header = next(iterator, None)
    if header is None or tuple(h.strip() for h in header) != columns:
        raise DatasetError(BadRow(1, f"header {header!r} is not {list(columns)}"))
    for line, row in enumerate(iterator, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            reject(line, f"{len(row)} fields, expected {len(columns)}")
            continue
        try:
            yield validate_event(to_event(dict(zip(columns, row, strict=True)), ids))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            location = ".".join(str(part) for part in first["loc"][1:]) or "event"
            reject(line, f"{location}: {first['msg']}")
        except (ValueError, OverflowError, OSError) as exc:
            reject(line, str(exc) or type(exc).__name__)


def _diginetica_event(row: dict[str, str], ids: _EventIds) -> dict[str, Any]:
    kind = row["event"].strip()
    if kind not in DIGINETICA_TYPES:
        raise ValueError(f"unknown event {kind!r}")
    session, user, item = row["session_id"].strip(), row["user_id"].strip(), row["item_id"].strip()
    if not session or not item:
        raise ValueError("session_id and item_id are required")
    at = _time(row["timestamp"])
    event: dict[str, Any] = {
        "event_id": ids.next(f"dg-{session}-{round(at.timestamp() * 1000)}-{kind[0]}-{item}"),
        "event_type": DIGINETICA_TYPES[kind],
        "user_id": f"u{user}" if user else f"s{session}",
        "session_id": session,
        "occurred_at": at,
        "product_id": item,
    }
    if category := row["category_id"].strip():
        event["category"] = category
    if kind == "purchase" and (order := row["ordernumber"].strip()):
        event["properties"] = {"order_number": order}
    return event


def _session_tsv_event(source: str) -> Callable[[dict[str, str], _EventIds], dict[str, Any]]:
    def to_event(row: dict[str, str], ids: _EventIds) -> dict[str, Any]:
        session, item = row["SessionId"].strip(), row["ItemId"].strip()
        at = _time(row["Time"])
        return {
            "event_id": ids.next(f"{source}-{session}-{round(at.timestamp() * 1000)}-v-{item}"),
            "event_type": EventType.PRODUCT_VIEW,
            "user_id": f"s{session}",
            "session_id": session,
            "occurred_at": at,
            "product_id": item,
        }

    return to_event


def diginetica_events(
    lines: Iterable[str], bad_rows: list[BadRow] | None = None
) -> Iterator[Event]:
    """The Diginetica ``events.csv`` (views joined with purchases and categories) as events."""
    return _read(csv.reader(lines), DIGINETICA_COLUMNS, _diginetica_event, bad_rows)


def session_tsv_events(
    lines: Iterable[str], bad_rows: list[BadRow] | None = None, *, source: str = "yc"
) -> Iterator[Event]:
    """A ``SessionId<TAB>ItemId<TAB>Time`` file (YooChoose 100k) as product views."""
    rows = csv.reader(lines, delimiter="\t")
    return _read(rows, SESSION_TSV_COLUMNS, _session_tsv_event(source), bad_rows)
