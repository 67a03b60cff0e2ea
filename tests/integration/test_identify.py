"""Anonymous shoppers and ``POST /identify``, on a real broker, Redis and consumer.

A shopper browses with an anonymous token, then signs in: their behaviour moves to the
known user once (a retried merge, and a merge whose first attempt died after publishing,
count it once), the anonymous id is erased, and what the live consumer built equals the
batch core applied to the whole log after the same erasures, key by key.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from recstream.apply.batch import RawRecord, apply_batch
from recstream.apply.operations import restore_erasures
from recstream.contract.erasures import decode_notice
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.model.identify import MERGED_FROM, merged_events
from recstream.store.redis import RedisStore
from recstream_api.auth import Authenticator
from recstream_api.tracking import to_records

from .conftest import consumer_settings, read_topic, running_consumer, wait_until
from .test_api import ADMIN_KEY, PREFIX, TRACK_KEY, api_settings, bearer, serve
from .test_api_recommend import action, view
from .test_erasure_log import forget
from .test_replay import assert_same_state, dump

pytestmark = pytest.mark.integration

USER = "u-signs-in"
PARTITIONS = 3


def anonymous_events(anonymous_id: str) -> list[dict[str, Any]]:
    return [
        view("a-1", anonymous_id, 30, "p-A", category="kitchen", session_id="s-anon"),
        view("a-2", anonymous_id, 29, "p-B", category="kitchen", session_id="s-anon"),
        action("a-3", "add_to_cart", anonymous_id, 28, product_id="p-B", session_id="s-anon"),
        view("a-4", anonymous_id, 27, "p-C", category="garden", session_id="s-anon"),
    ]


def other_events() -> list[dict[str, Any]]:
    return [
        view("u-1", USER, 600, "p-Z", category="kitchen"),
        view("u-2", USER, 599, "p-A", category="kitchen"),
        view("o-1", "u-other", 50, "p-A", category="kitchen"),
        view("o-2", "u-other", 49, "p-B", category="kitchen"),
    ]


async def track(
    http: httpx.AsyncClient, events: list[dict[str, Any]], headers: Any
) -> dict[str, int]:
    """Track ``events``; where the last one went in the log (partition, offset)."""
    response = await http.post(
        f"{PREFIX}/track-interaction", json={"events": events}, headers=headers
    )
    assert response.status_code == 202, response.text
    assert not response.json()["rejected"]
    last = response.json()["events"][-1]
    return {"partition": last["partition"], "offset": last["offset"]}


async def total_events(store: RedisStore, user: str) -> int | None:
    state = await store.get_user(user)
    return None if state is None else state.total_events


async def oracle_of_the_log(
    store: RedisStore, kafka_bootstrap: str, topic: str, count: int, core: CoreConfig
) -> None:
    """The batch core applied to every record of the log after the erasure log."""
    erasures = await read_topic(kafka_bootstrap, f"{topic}.erasures", 1)
    notices = [decode_notice(r.key, r.value) for r in erasures]
    await restore_erasures(store, notices, core)
    by_partition: dict[int, list[RawRecord]] = defaultdict(list)
    for r in await read_topic(kafka_bootstrap, topic, count):
        by_partition[r.partition].append(
            RawRecord(topic, r.partition, r.offset, r.timestamp, r.key, r.value)
        )
    for records in by_partition.values():
        await apply_batch(store, sorted(records, key=lambda r: r.offset), core)


async def test_a_shopper_who_signs_in_keeps_their_behaviour_once(
    kafka_bootstrap: str, redis_url: str, redis_client: Redis, keyspace: Keyspace, topic_name: str
) -> None:
    core = CoreConfig()
    settings = consumer_settings(
        redis_url=redis_url, kafka_bootstrap=kafka_bootstrap, keyspace=keyspace,
        topic=topic_name, partitions=PARTITIONS, erasure_sync_seconds=0.5,
    )  # fmt: skip
    # no impression records: lists shown to the anonymous id after its last event would
    # come back on a rebuild as a state with no behaviour (docs/identity.md)
    api = api_settings(
        redis_url, kafka_bootstrap, keyspace, topic_name, impressions={"enabled": False}
    )
    store = RedisStore(redis_client, keyspace)
    oracle = Keyspace(prefix=f"{keyspace.prefix}o")
    async with running_consumer(settings) as (_, task), serve(api) as http:
        minted = await http.post(f"{PREFIX}/anonymous")
        assert minted.status_code == 200, minted.text
        anonymous_id, token = minted.json()["anonymous_id"], minted.json()["token"]
        shopper = {"Authorization": f"Bearer {token}"}
        await track(http, anonymous_events(anonymous_id), shopper)
        await track(http, other_events(), {"X-API-Key": ADMIN_KEY})

        async def applied() -> bool:
            return (await total_events(store, anonymous_id), await total_events(store, USER)) == (
                4,
                2,
            )

        await wait_until(applied, 10.0, "the anonymous and the user's events", watch=[task])
        profile = await http.get(f"{PREFIX}/user-profile/behavioral", headers=shopper)
        assert profile.status_code == 200, profile.text
        assert profile.json()["user_id"] == anonymous_id

        # the first attempt of a merge that died after publishing the user's copies
        state = await store.get_user(anonymous_id)
        assert state is not None
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for record in to_records(merged_events(state, USER)):
                await producer.send_and_wait(topic_name, record.value, key=record.key)
        finally:
            await producer.stop()

        # one more view just before signing in: identify waits until it is applied
        just_before = view("a-5", anonymous_id, 26, "p-A", session_id="s-anon")
        after = await track(http, [just_before], shopper)
        signed_in = bearer(api, USER)
        merged = await http.post(
            f"{PREFIX}/identify",
            json={"anonymous_token": token, "after": after},
            headers=signed_in,
        )
        assert merged.status_code == 200, merged.text
        body = merged.json()
        assert (body["user_id"], body["anonymous_id"], body["merged_events"]) == (
            USER,
            anonymous_id,
            5,
        )
        assert await store.get_user(anonymous_id) is None

        async def moved() -> bool:
            return await total_events(store, USER) == 7

        await wait_until(moved, 10.0, "the merged events applied to the user", watch=[task])
        again = await http.post(
            f"{PREFIX}/identify", json={"anonymous_token": token}, headers=signed_in
        )
        assert again.status_code == 200, again.text
        assert again.json()["merged_events"] == 0

        # the anonymous id acts again: a new anonymous history, not the user's
        await track(http, [view("a-6", anonymous_id, -1, "p-D")], shopper)

        async def restarted() -> bool:
            return await total_events(store, anonymous_id) == 1

        await wait_until(restarted, 10.0, "the anonymous id's later event", watch=[task])
        user = await store.get_user(USER)
        assert user is not None
        assert user.total_events == 7, "the first attempt's copies counted once"
        assert user.items["p:p-B"].events == 2
        assert user.counts == {"product_view": 6, "add_to_cart": 1}
        assert {e.session_id for e in user.history} >= {"s-anon"}
    assert not task.exception()

    merged_copies = 4 + 5  # the dead attempt's and identify's (four with the same ids)
    count = len(anonymous_events("")) + len(other_events()) + 2 + merged_copies
    records = await read_topic(kafka_bootstrap, topic_name, count)
    copies = [r for r in records if MERGED_FROM.encode() in r.value]
    assert len(copies) == merged_copies
    assert {r.key for r in copies} == {USER.encode()}
    try:
        await oracle_of_the_log(
            RedisStore(redis_client, oracle), kafka_bootstrap, topic_name, count, core
        )
        live, expected = await dump(redis_client, keyspace), await dump(redis_client, oracle)
        live.pop(":erasures:log", None)
        # the erasure record counts what the live erasure removed; the restored one, nothing
        assert live.pop(":erasures").keys() == expected.pop(":erasures").keys() == {anonymous_id}
        # a shard the anonymous events touched live (then the erasure took them back)
        # keeps its partition's watermark; the rebuild never applied them there
        anonymous_partition = live[f":v2:{{u:{anonymous_id}}}:state"]["wm"].split(":")[0]
        for key in [k for k in live if ":wm:" in k]:
            if anonymous_partition not in expected.get(key, {}):
                live[key].pop(anonymous_partition, None)
            if not live[key]:
                del live[key]
        assert_same_state(live, expected, topic_name)
    finally:
        await forget(redis_client, oracle)


async def test_a_merge_in_progress_holds_the_anonymous_id_against_other_users(
    kafka_bootstrap: str, redis_url: str, redis_client: Redis, keyspace: Keyspace, topic_name: str
) -> None:
    api = api_settings(redis_url, kafka_bootstrap, keyspace, topic_name)
    store = RedisStore(redis_client, keyspace)
    async with serve(api) as http:
        minted = (await http.post(f"{PREFIX}/anonymous")).json()
        token, anonymous_id = minted["token"], minted["anonymous_id"]
        assert await store.claim_merge(anonymous_id, "u-first", 60.0) == "u-first"
        url = f"{PREFIX}/identify"
        second = await http.post(url, json={"anonymous_token": token}, headers=bearer(api, USER))
        assert second.status_code == 409, second.text
        assert second.json()["error"]["code"] == "conflict"
        assert "u-first" not in second.text, "nobody learns who else signed in"
        first = await http.post(
            url, json={"anonymous_token": token}, headers=bearer(api, "u-first")
        )
        assert first.status_code == 200, first.text
        assert await redis_client.exists(keyspace.merge_claim(anonymous_id)) == 0, "released"
        later = await http.post(url, json={"anonymous_token": token}, headers=bearer(api, USER))
        assert later.status_code == 200, later.text


async def test_who_may_merge_whom(
    kafka_bootstrap: str, redis_url: str, keyspace: Keyspace, topic_name: str
) -> None:
    api = api_settings(redis_url, kafka_bootstrap, keyspace, topic_name, identify_wait_seconds=0.2)
    async with serve(api) as http:
        token = (await http.post(f"{PREFIX}/anonymous")).json()["token"]
        shopper = {"Authorization": f"Bearer {token}"}
        url = f"{PREFIX}/identify"
        long_ago = datetime.now(UTC) - timedelta(days=3)
        expired = Authenticator(api.auth).anonymous_token("anon-old", long_ago)[0]
        cases: list[tuple[dict[str, Any], Any, int, str]] = [
            ({"anonymous_token": token}, shopper, 403, "signed-in user's credential"),
            ({"anonymous_id": "anon-x"}, bearer(api, USER), 403, "proves the anonymous id"),
            ({"anonymous_token": token, "user_id": "u-else"}, bearer(api, USER), 403, "themselves"),
            ({"anonymous_token": "not-a-token"}, bearer(api, USER), 422, "not a valid JWT"),
            ({"anonymous_token": expired}, bearer(api, USER), 422, "anonymous_token: invalid "
             "token: the token has expired"),
            ({"anonymous_token": bearer(api, "u-2")["Authorization"][7:]}, bearer(api, USER), 422,
             "not an anonymous token"),
            ({"anonymous_id": "u-2", "user_id": USER}, {"X-API-Key": ADMIN_KEY}, 422,
             "not an anonymous id"),
            ({"anonymous_id": "anon-x"}, {"X-API-Key": ADMIN_KEY}, 422, "user_id is required"),
            ({"anonymous_id": "anon-x", "user_id": USER}, {"X-API-Key": TRACK_KEY}, 403,
             "scope 'identify'"),
            ({"anonymous_id": "anon-x", "user_id": "bad id!"}, {"X-API-Key": ADMIN_KEY}, 422,
             "user_id is not a valid id"),
            ({}, bearer(api, USER), 422, "one of anonymous_token and anonymous_id"),
            # no consumer runs here: the event identify should wait for is never applied
            ({"anonymous_token": token, "after": {"partition": 0, "offset": 7}},
             bearer(api, USER), 503, "consumer_behind"),
        ]  # fmt: skip
        for body, headers, status, message in cases:
            response = await http.post(url, json=body, headers=headers)
            assert response.status_code == status, (body, response.text)
            assert message in response.text, (body, response.text)
        # a renewed anonymous token keeps its id; a signed-in user gets none
        renewed = await http.post(f"{PREFIX}/anonymous", headers=shopper)
        assert renewed.status_code == 200, renewed.text
        first = (await http.post(f"{PREFIX}/anonymous")).json()
        assert renewed.json()["anonymous_id"] != first["anonymous_id"]
        again = await http.post(
            f"{PREFIX}/anonymous", headers={"Authorization": f"Bearer {first['token']}"}
        )
        assert again.json()["anonymous_id"] == first["anonymous_id"]
        refused = await http.post(f"{PREFIX}/anonymous", headers=bearer(api, USER))
        assert refused.status_code == 422, refused.text
