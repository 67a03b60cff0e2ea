"""Readers that map public interaction datasets to contract events.

Pure parsing: each reader takes the file's lines (``open(path)`` works) and
yields :data:`~recstream.contract.events.Event` values in file order, so the replay
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
- **Event JSON Lines**: one contract event (:mod:`recstream.contract.events`) per line.
- **RetailRocket**: the sample's TSV ``timestamp<TAB>user_id<TAB>item_id<TAB>session_id``
  (seconds; every row a ``product_view`` of user ``u<user_id>`` in that session), or
  the Kaggle ``events.csv`` ``timestamp,visitorid,event,itemid,transactionid``
  (milliseconds; ``view`` / ``addtocart`` / ``transaction`` -> ``product_view`` /
  ``add_to_cart`` / ``purchase_completed``; no session id, so sessions follow the
  inactivity gap).
- **OTTO** JSON Lines ``{"session": n, "events": [{"aid", "ts" (ms), "type"}]}``:
  ``clicks`` / ``carts`` / ``orders`` -> ``product_view`` / ``add_to_cart`` /
  ``purchase_completed`` of user ``o<session>`` (an OTTO "session" spans weeks, so
  no ``session_id`` is set and sessions follow the inactivity gap).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from recstream.contract.events import Event, EventError, EventType, decode_event, validate_event

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
RETAILROCKET_SAMPLE_COLUMNS = ("timestamp", "user_id", "item_id", "session_id")
RETAILROCKET_COLUMNS = ("timestamp", "visitorid", "event", "itemid", "transactionid")
DIGINETICA_TYPES = {"view": EventType.PRODUCT_VIEW, "purchase": EventType.PURCHASE_COMPLETED}
RETAILROCKET_TYPES = {
    "view": EventType.PRODUCT_VIEW,
    "addtocart": EventType.ADD_TO_CART,
    "transaction": EventType.PURCHASE_COMPLETED,
}
OTTO_TYPES = {
    "clicks": EventType.PRODUCT_VIEW,
    "carts": EventType.ADD_TO_CART,
    "orders": EventType.PURCHASE_COMPLETED,
}
DatasetFormat = Literal["jsonl", "session-tsv", "diginetica", "retailrocket", "otto"]
FORMATS: tuple[DatasetFormat, ...] = ("jsonl", "session-tsv", "diginetica", "retailrocket", "otto")


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
    ids = _EventIds()
    iterator = iter(rows)
    header = next(iterator, None)
    if header is None or tuple(h.strip() for h in header) != columns:
        raise DatasetError(BadRow(1, f"header {header!r} is not {list(columns)}"))
    for line, row in enumerate(iterator, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            _reject(bad_rows, line, f"{len(row)} fields, expected {len(columns)}")
            continue
        try:
            yield validate_event(to_event(dict(zip(columns, row, strict=True)), ids))
        except ValidationError as exc:
            _reject(bad_rows, line, _validation_reason(exc))
        except (ValueError, OverflowError, OSError) as exc:
            _reject(bad_rows, line, str(exc) or type(exc).__name__)


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


def _reject(bad_rows: list[BadRow] | None, line: int, reason: str) -> None:
    bad = BadRow(line, reason)
    if bad_rows is None:
        raise DatasetError(bad)
    bad_rows.append(bad)


def _validation_reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    location = ".".join(str(part) for part in first["loc"][1:]) or "event"
    return f"{location}: {first['msg']}"


def jsonl_events(lines: Iterable[str], bad_rows: list[BadRow] | None = None) -> Iterator[Event]:
    """Contract events, one JSON object per line (blank lines are skipped)."""
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            yield decode_event(text.encode())
        except EventError as exc:
            _reject(bad_rows, line, f"{exc.reason}: {exc.detail}")


def _retailrocket_sample_event(row: dict[str, str], ids: _EventIds) -> dict[str, Any]:
    user, item, session = row["user_id"].strip(), row["item_id"].strip(), row["session_id"].strip()
    at = _time(row["timestamp"])
    return {
        "event_id": ids.next(f"rr-{session}-{round(at.timestamp() * 1000)}-v-{item}"),
        "event_type": EventType.PRODUCT_VIEW,
        "user_id": f"u{user}",
        "session_id": session,
        "occurred_at": at,
        "product_id": item,
    }


def _retailrocket_event(row: dict[str, str], ids: _EventIds) -> dict[str, Any]:
    kind, user, item = row["event"].strip(), row["visitorid"].strip(), row["itemid"].strip()
    if kind not in RETAILROCKET_TYPES:
        raise ValueError(f"unknown event {kind!r}")
    millis = int(row["timestamp"])
    event: dict[str, Any] = {
        "event_id": ids.next(f"rr-{user}-{millis}-{kind[0]}-{item}"),
        "event_type": RETAILROCKET_TYPES[kind],
        "user_id": f"u{user}",
        "occurred_at": datetime.fromtimestamp(millis / 1000.0, UTC),
        "product_id": item,
    }
    if transaction := row["transactionid"].strip():
        event["properties"] = {"transaction_id": transaction}
    return event


def retailrocket_events(
    lines: Iterable[str], bad_rows: list[BadRow] | None = None
) -> Iterator[Event]:
    """RetailRocket events: the sample's TSV layout or the Kaggle ``events.csv`` layout."""
    iterator = iter(lines)
    first = next(iterator, "")
    rows = [first, *iterator] if first else []
    if "\t" in first:
        tsv = csv.reader(rows, delimiter="\t")
        return _read(tsv, RETAILROCKET_SAMPLE_COLUMNS, _retailrocket_sample_event, bad_rows)
    return _read(csv.reader(rows), RETAILROCKET_COLUMNS, _retailrocket_event, bad_rows)


def _otto_line(session: Any, events: Any, ids: _EventIds) -> Iterator[dict[str, Any]]:
    if not isinstance(session, int) or not isinstance(events, list):
        raise ValueError("expected {'session': int, 'events': [...]}")
    for raw in events:
        if not isinstance(raw, dict) or raw.get("type") not in OTTO_TYPES:
            raise ValueError(f"bad event {raw!r:.80}")
        kind, aid, millis = raw["type"], raw.get("aid"), raw.get("ts")
        if not isinstance(aid, int) or not isinstance(millis, int):
            raise ValueError(f"bad aid or ts in {raw!r:.80}")
        yield {
            "event_id": ids.next(f"ot-{session}-{millis}-{kind[0]}-{aid}"),
            "event_type": OTTO_TYPES[kind],
            "user_id": f"o{session}",
            "occurred_at": datetime.fromtimestamp(millis / 1000.0, UTC),
            "product_id": str(aid),
        }


def otto_events(lines: Iterable[str], bad_rows: list[BadRow] | None = None) -> Iterator[Event]:
    """OTTO sessions (one JSON object per line, many events each) as events."""
    ids = _EventIds()
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = orjson.loads(text)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            parsed = [
                validate_event(e)
                for e in _otto_line(record.get("session"), record.get("events"), ids)
            ]
        except orjson.JSONDecodeError as exc:
            _reject(bad_rows, line, f"invalid JSON: {exc}")
            continue
        except ValidationError as exc:
            _reject(bad_rows, line, _validation_reason(exc))
            continue
        except (ValueError, OverflowError, OSError) as exc:
            _reject(bad_rows, line, str(exc) or type(exc).__name__)
            continue
        yield from parsed


def detect_format(first_line: str) -> DatasetFormat:
    """The layout of a file from its first line (a header, or the first JSON record)."""
    text = first_line.strip()
    if text.startswith("{"):
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise DatasetError(BadRow(1, f"invalid JSON: {exc}")) from exc
        return "otto" if isinstance(record, dict) and "events" in record else "jsonl"
    header = tuple(h.strip() for h in (text.split("\t") if "\t" in text else text.split(",")))
    layouts: dict[tuple[str, ...], DatasetFormat] = {
        SESSION_TSV_COLUMNS: "session-tsv",
        DIGINETICA_COLUMNS: "diginetica",
        RETAILROCKET_SAMPLE_COLUMNS: "retailrocket",
        RETAILROCKET_COLUMNS: "retailrocket",
    }
    if header in layouts:
        return layouts[header]
    raise DatasetError(BadRow(1, f"unknown layout: header {list(header)!r}"))


READERS: dict[DatasetFormat, Callable[[Iterable[str], list[BadRow] | None], Iterator[Event]]] = {
    "jsonl": jsonl_events,
    "session-tsv": session_tsv_events,
    "diginetica": diginetica_events,
    "retailrocket": retailrocket_events,
    "otto": otto_events,
}


def read_events(
    lines: Iterable[str], fmt: DatasetFormat, bad_rows: list[BadRow] | None = None
) -> Iterator[Event]:
    """The events of a file in the given layout, in file order."""
    return READERS[fmt](lines, bad_rows)
