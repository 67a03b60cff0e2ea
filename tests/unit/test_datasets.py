"""Dataset readers: every layout maps to contract events; bad rows carry their line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recstream.contract.events import EventType, encode_event
from recstream.offline.datasets import (
    BadRow,
    DatasetError,
    detect_format,
    diginetica_events,
    jsonl_events,
    otto_events,
    read_events,
    retailrocket_events,
    session_tsv_events,
)

from .eventgen import make_event


def test_session_tsv_rows_become_views_of_a_session_user() -> None:
    lines = ["SessionId\tItemId\tTime\n", "7\t100\t1396860669.277\n", "7\t100\t1396860669.277\n"]
    first, repeat = list(session_tsv_events(lines))
    assert first.event_type is EventType.PRODUCT_VIEW
    assert (first.user_id, first.session_id, first.product_id) == ("s7", "7", "100")
    assert first.occurred_at.timestamp() == pytest.approx(1396860669.277)
    assert first.event_id == "yc-7-1396860669277-v-100"
    assert repeat.event_id == "yc-7-1396860669277-v-100-2"  # a repeated row keeps its own id


def test_diginetica_maps_purchases_categories_and_anonymous_sessions() -> None:
    lines = [
        "session_id,user_id,timestamp,event,item_id,ordernumber,category_id\n",
        "1,,1462752075.848,view,9654,,1010\n",
        "2,55,1462752100,purchase,9654,777,1010\n",
    ]
    view, purchase = list(diginetica_events(lines))
    assert (view.user_id, view.category, view.event_type) == ("s1", "1010", EventType.PRODUCT_VIEW)
    assert purchase.user_id == "u55"
    assert purchase.event_type is EventType.PURCHASE_COMPLETED
    assert purchase.properties == {"order_number": "777"}


def test_jsonl_reads_contract_events_and_reports_bad_lines() -> None:
    good = make_event("e1", EventType.ADD_TO_CART, "u1", product_id="p9", price=12.5)
    lines = [
        json.dumps(good) + "\n",
        "\n",
        "{not json\n",
        json.dumps({**good, "event_type": "product_view", "product_id": None}) + "\n",
        json.dumps({**good, "event_type": "teleport"}) + "\n",
    ]
    bad: list[BadRow] = []
    events = list(jsonl_events(lines, bad))
    assert [e.event_id for e in events] == ["e1"]
    assert events[0].price == 12.5
    assert [(b.line, b.reason.split(":")[0]) for b in bad] == [
        (3, "invalid_json"),
        (4, "schema_violation"),
        (5, "unknown_event_type"),
    ]


def test_jsonl_round_trips_encoded_events() -> None:
    events = list(jsonl_events([json.dumps(make_event("e1", EventType.PRODUCT_VIEW))]))
    again = list(jsonl_events([encode_event(events[0]).decode()]))
    assert again == events


def test_retailrocket_sample_layout() -> None:
    lines = [
        "timestamp\tuser_id\titem_id\tsession_id\n",
        "1442004589\t0\t285930\t0\n",
        "oops\t0\t1\t0\n",
        "1442004759\t0\t357564\n",
    ]
    bad: list[BadRow] = []
    (event,) = list(retailrocket_events(lines, bad))
    assert (event.user_id, event.session_id, event.product_id) == ("u0", "0", "285930")
    assert event.occurred_at.timestamp() == 1442004589
    assert [b.line for b in bad] == [3, 4]
    assert "3 fields" in bad[1].reason


def test_retailrocket_kaggle_layout_maps_event_types_in_milliseconds() -> None:
    lines = [
        "timestamp,visitorid,event,itemid,transactionid\n",
        "1433221332117,257597,view,355908,\n",
        "1433221332118,257597,addtocart,355908,\n",
        "1433221332119,257597,transaction,355908,4000\n",
        "1433221332120,257597,wink,355908,\n",
    ]
    bad: list[BadRow] = []
    events = list(retailrocket_events(lines, bad))
    assert [e.event_type for e in events] == [
        EventType.PRODUCT_VIEW,
        EventType.ADD_TO_CART,
        EventType.PURCHASE_COMPLETED,
    ]
    assert events[0].session_id is None  # sessions follow the inactivity gap
    assert events[0].occurred_at.timestamp() == pytest.approx(1433221332.117)
    assert events[2].properties == {"transaction_id": "4000"}
    assert bad == [BadRow(5, "unknown event 'wink'")]


def test_otto_sessions_expand_to_typed_events() -> None:
    record = {
        "session": 4,
        "events": [
            {"aid": 11, "ts": 1659304800025, "type": "clicks"},
            {"aid": 12, "ts": 1659304900000, "type": "carts"},
            {"aid": 12, "ts": 1659305000000, "type": "orders"},
        ],
    }
    lines = [
        json.dumps(record),
        json.dumps({"session": 5, "events": [{"aid": 1, "ts": 1, "type": "likes"}]}),
        "[1, 2]",
    ]
    bad: list[BadRow] = []
    events = list(otto_events(lines, bad))
    assert [(e.user_id, e.product_id, e.event_type) for e in events] == [
        ("o4", "11", EventType.PRODUCT_VIEW),
        ("o4", "12", EventType.ADD_TO_CART),
        ("o4", "12", EventType.PURCHASE_COMPLETED),
    ]
    assert all(e.session_id is None for e in events)
    assert [b.line for b in bad] == [2, 3]


def test_bad_rows_raise_without_a_list() -> None:
    with pytest.raises(DatasetError, match="line 2"):
        list(session_tsv_events(["SessionId\tItemId\tTime\n", "1\t2\tnot-a-time\n"]))
    with pytest.raises(DatasetError, match="line 1: header"):
        list(session_tsv_events(["Session\tItem\tTime\n"]))


@pytest.mark.parametrize(
    ("first_line", "expected"),
    [
        ("SessionId\tItemId\tTime\n", "session-tsv"),
        ("session_id,user_id,timestamp,event,item_id,ordernumber,category_id\n", "diginetica"),
        ("timestamp\tuser_id\titem_id\tsession_id\n", "retailrocket"),
        ("timestamp,visitorid,event,itemid,transactionid\n", "retailrocket"),
        ('{"session":0,"events":[]}\n', "otto"),
        ('{"event_id":"e1","event_type":"product_view"}\n', "jsonl"),
    ],
)
def test_detect_format(first_line: str, expected: str) -> None:
    assert detect_format(first_line) == expected


def test_detect_format_rejects_an_unknown_layout() -> None:
    with pytest.raises(DatasetError, match="unknown layout"):
        detect_format("a,b,c\n")


@pytest.mark.parametrize(
    ("path", "events"),
    [
        ("yoochoose-100k/yoochoose-clicks-100k_train_full.txt", 70_278),
        ("yoochoose-100k/yoochoose-clicks-100k_test.txt", 13_568),
        ("retailrocket-sample/sample_retailrocket.csv", 10_080),
        ("diginetica-sample/events.csv", 12_647),
        ("otto-sample/train.jsonl", 862),
    ],
)
def test_every_shared_dataset_reads_without_bad_rows(
    datasets: Path, path: str, events: int
) -> None:
    file = datasets / path
    with file.open(encoding="utf-8") as handle:
        fmt = detect_format(handle.readline())
    bad: list[BadRow] = []
    with file.open(encoding="utf-8", newline="") as handle:
        read = list(read_events(handle, fmt, bad))
    assert bad == []
    assert len(read) == events
    assert len({e.event_id for e in read}) == events  # ids are unique, so replays dedupe
