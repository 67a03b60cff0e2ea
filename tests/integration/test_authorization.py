"""Who may call what, for every route of the app (OWASP API1 object level and API5 function
level authorization), on a real Redis and a real broker.

The routes are enumerated from ``app.routes``: a route added without an entry in
:data:`ROUTES` (or, for the few open ones, :data:`OPEN`) fails
``test_every_route_has_an_authorization_case``. Each protected route is then called

- without credentials, with a forged token, an expired token, an ``alg: none`` token
  and an unknown API key: 401;
- with a user token about another user's data: 403 (reads, tracking, erasure; the
  shared lists, similar items and trending, are nobody's data);
- with a track-only API key, where the route is not tracking: 403;
- admin-only routes with a user token and a track-only key: 403;

and, as the control that the refusals are about the caller and nothing else, the
same request with the owner's (or an admin's) credentials is answered 2xx.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from redis.asyncio import Redis

from recstream.contract.keyspace import Keyspace
from recstream_api.auth import Authenticator, issue_token
from recstream_api.main import create_app
from recstream_api.settings import ApiSettings, AuthSettings
from tests.integration.test_api import (
    ADMIN_KEY,
    PREFIX,
    TRACK_KEY,
    api_settings,
    bearer,
    create_topic,
    event,
    serve,
)
from tests.integration.test_api import SECRET as API_SECRET

pytestmark = pytest.mark.integration

OWNER = "u-owner"
OTHER = "u-other"

Kind = Literal["user_data", "shared", "track", "erase", "admin"]


@dataclass(frozen=True)
class RouteCase:
    """How to call one route about ``user``'s data, and who may."""

    kind: Kind
    request: Callable[[str], dict[str, Any]] = field(repr=False)


def anonymous_token(anonymous_id: str = "anon-authz") -> str:
    """A token of the test API's anonymous key (derived from its JWT secret)."""
    return Authenticator(AuthSettings(jwt_secret=API_SECRET)).anonymous_token(anonymous_id)[0]


def _params(**extra: str) -> Callable[[str], dict[str, Any]]:
    return lambda user: {"params": {"user_id": user, **extra}}


def _json(body: Callable[[str], Any]) -> Callable[[str], dict[str, Any]]:
    return lambda user: {"json": body(user)}


ROUTES: dict[tuple[str, str], RouteCase] = {
    ("POST", f"{PREFIX}/track-interaction"): RouteCase("track", _json(lambda u: event(u))),
    ("GET", f"{PREFIX}/user-profile/behavioral"): RouteCase("user_data", _params()),
    ("GET", f"{PREFIX}/features/implicit-rating"): RouteCase(
        "user_data", _params(product_id="p-1")
    ),
    ("POST", f"{PREFIX}/recommendations"): RouteCase(
        "user_data", _json(lambda u: {"user_id": u, "limit": 5})
    ),
    ("GET", f"{PREFIX}/recommendations/explain"): RouteCase("user_data", _params(product_id="p-1")),
    ("GET", f"{PREFIX}/session/recommendations"): RouteCase("user_data", _params()),
    ("GET", f"{PREFIX}/sequential/next-products"): RouteCase(
        "user_data", _params(product_id="p-1")
    ),
    ("GET", f"{PREFIX}/items/similar"): RouteCase("shared", _params(product_id="p-1")),
    ("GET", f"{PREFIX}/items/trending"): RouteCase("shared", lambda u: {}),
    ("POST", f"{PREFIX}/features/extract-batch"): RouteCase(
        "admin", _json(lambda u: {"user_ids": [u]})
    ),
    ("DELETE", f"{PREFIX}/users/{{user_id}}"): RouteCase("erase", lambda u: {}),
    ("POST", f"{PREFIX}/catalog"): RouteCase(
        "admin", _json(lambda u: {"kind": "product", "product_id": "p-1", "price": 2.5})
    ),
    ("DELETE", f"{PREFIX}/catalog/products/{{product_id}}"): RouteCase("admin", lambda u: {}),
    ("DELETE", f"{PREFIX}/catalog/groups/{{group_id}}"): RouteCase("admin", lambda u: {}),
    ("GET", f"{PREFIX}/rankers"): RouteCase("admin", lambda u: {}),
    ("PUT", f"{PREFIX}/rankers/active"): RouteCase("admin", _json(lambda u: {"version": None})),
    ("GET", f"{PREFIX}/recommendation-outcomes"): RouteCase("admin", lambda u: {}),
    ("POST", f"{PREFIX}/identify"): RouteCase(
        "user_data", _json(lambda u: {"user_id": u, "anonymous_token": anonymous_token()})
    ),
}

# Open on purpose: reachability, the API description, Prometheus (cluster network only).
OPEN = {
    ("GET", f"{PREFIX}/health"),
    ("GET", f"{PREFIX}/ready"),
    ("GET", f"{PREFIX}/openapi.json"),
    ("GET", f"{PREFIX}/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/metrics"),
    ("POST", f"{PREFIX}/anonymous"),  # a token for a shopper who has not signed in
}
# The live demo exists only in dev mode (it mints tokens for demo-* users).
DEV_ONLY_OPEN = {
    ("GET", "/demo"),
    ("GET", "/demo/recstream.js"),
    ("GET", "/demo/catalog.json"),
    ("POST", "/demo/token"),
    ("GET", "/demo/outcomes"),  # the outcome counters, which hold nobody's data
    ("MOUNT", "/demo/static/{path}"),
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route of ``app``; mounts as ("MOUNT", path)."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        path = route.path_format or route.path
        methods = route.methods
        if methods is None:
            found.add(("MOUNT", path))
            continue
        found |= {(method, path) for method in methods if method != "HEAD"}
    return found


def _prod(settings: ApiSettings) -> ApiSettings:
    return settings.model_copy(update={"environment": "prod"})


def test_every_route_has_an_authorization_case() -> None:
    auth = AuthSettings(jwt_secret="a-secret-of-the-authorization-test-0123456789")
    prod = app_routes(create_app(ApiSettings(environment="prod", auth=auth)))
    missing = prod - ROUTES.keys() - OPEN
    assert not missing, f"routes without an authorization case: {sorted(missing)}"
    assert not ROUTES.keys() - prod, "stale cases"
    dev = app_routes(create_app(ApiSettings(environment="dev", auth=auth)))
    assert dev - prod == DEV_ONLY_OPEN


def test_every_documented_operation_has_a_case() -> None:
    auth = AuthSettings(jwt_secret="a-secret-of-the-authorization-test-0123456789")
    document = create_app(ApiSettings(environment="prod", auth=auth)).openapi()
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert operations <= ROUTES.keys() | OPEN
    protected = {op for op in operations if op in ROUTES}
    for method, path in protected:
        security = document["paths"][path][method.lower()].get("security")
        assert security, f"{method} {path} documents no security scheme"


# --- the calls ----------------------------------------------------------------------------


@pytest.fixture
def settings(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str, redis_client: Redis
) -> ApiSettings:
    return _prod(api_settings(redis_url, kafka_bootstrap, keyspace, topic_name))


@pytest.fixture
async def api(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    await create_topic(settings.kafka.bootstrap_servers, settings.kafka.interactions_topic)
    async with serve(settings) as client:
        yield client


async def call(
    api: httpx.AsyncClient,
    route: tuple[str, str],
    user: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    method, template = route
    url = template.replace("{user_id}", user).replace("{product_id}", "p-1")
    url = url.replace("{group_id}", "g-1")
    return await api.request(method, url, headers=headers or {}, **ROUTES[route].request(user))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_admin_token(user: str) -> str:
    claims = {"sub": user, "exp": 2**40, "roles": ["admin"]}
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def refused_credentials(settings: ApiSettings, user: str) -> dict[str, dict[str, str]]:
    stranger = settings.model_copy(update={"auth": AuthSettings(jwt_secret="x" * 48)})
    expired = issue_token(
        settings,
        user,
        admin=True,
        ttl=timedelta(minutes=1),
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    return {
        "none": {},
        "garbage token": {"Authorization": "Bearer not.a.token"},
        "foreign signature": {"Authorization": f"Bearer {issue_token(stranger, user, admin=True)}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "alg none": {"Authorization": f"Bearer {unsigned_admin_token(user)}"},
        "unknown api key": {"X-API-Key": "not-a-configured-key"},
        "basic auth": {"Authorization": "Basic dXNlcjpwYXNz"},
    }


def assert_status(response: httpx.Response, status: int, what: str) -> None:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    if status >= 400:
        assert "error" in response.json(), what


def assert_allowed(response: httpx.Response, what: str) -> None:
    assert 200 <= response.status_code < 300, f"{what}: {response.status_code} {response.text}"


ALL_ROUTES = sorted(ROUTES)


@pytest.mark.parametrize("route", ALL_ROUTES, ids=[f"{m} {p}" for m, p in ALL_ROUTES])
async def test_route_refuses_missing_and_invalid_credentials(
    api: httpx.AsyncClient, settings: ApiSettings, route: tuple[str, str]
) -> None:
    for what, headers in refused_credentials(settings, OWNER).items():
        response = await call(api, route, OWNER, headers)
        assert_status(response, 401, f"{route} with {what}")
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert_allowed(await call(api, route, OWNER, _owner_or_admin(settings, route)), "control")


def _owner_or_admin(settings: ApiSettings, route: tuple[str, str]) -> dict[str, str]:
    if ROUTES[route].kind == "admin":
        return bearer(settings, "ops", admin=True)
    return bearer(settings, OWNER)


USER_ROUTES = sorted(r for r, case in ROUTES.items() if case.kind not in ("admin", "shared"))


@pytest.mark.parametrize("route", USER_ROUTES, ids=[f"{m} {p}" for m, p in USER_ROUTES])
async def test_a_user_cannot_reach_another_users_data(
    api: httpx.AsyncClient, settings: ApiSettings, route: tuple[str, str]
) -> None:
    response = await call(api, route, OWNER, bearer(settings, OTHER))
    assert_status(response, 403, f"{OTHER} on {OWNER}'s {route}")
    assert response.json()["error"]["code"] == "forbidden"
    # the same request by the owner, and by an admin, goes through
    assert_allowed(await call(api, route, OWNER, bearer(settings, OWNER)), "owner")
    assert_allowed(await call(api, route, OTHER, bearer(settings, "ops", admin=True)), "admin")
    assert_allowed(await call(api, route, OWNER, {"X-API-Key": ADMIN_KEY}), "admin key")


@pytest.mark.parametrize("route", ALL_ROUTES, ids=[f"{m} {p}" for m, p in ALL_ROUTES])
async def test_a_track_only_key_can_only_track(
    api: httpx.AsyncClient, settings: ApiSettings, route: tuple[str, str]
) -> None:
    response = await call(api, route, OWNER, {"X-API-Key": TRACK_KEY})
    if ROUTES[route].kind == "track":
        assert_allowed(response, "a track key tracks for any user")
    else:
        assert_status(response, 403, f"track key on {route}")


@pytest.mark.parametrize("route", ALL_ROUTES, ids=[f"{m} {p}" for m, p in ALL_ROUTES])
async def test_an_anonymous_shopper_reaches_only_shared_lists_and_its_own_data(
    api: httpx.AsyncClient, route: tuple[str, str]
) -> None:
    shopper = {"Authorization": f"Bearer {anonymous_token('anon-shopper')}"}
    response = await call(api, route, OWNER, shopper)
    if ROUTES[route].kind == "shared":
        assert_allowed(response, "shared lists")
    else:
        assert_status(response, 403, f"an anonymous shopper on {OWNER}'s {route}")
    own = await call(api, route, "anon-shopper", shopper)
    if route[1].endswith("/identify"):  # with the signed-in user's credential only
        assert_status(own, 403, "identify with an anonymous token")
    elif ROUTES[route].kind in ("user_data", "erase") or route[1].endswith("/track-interaction"):
        assert_allowed(own, "its own data")


ADMIN_ROUTES = sorted(r for r, case in ROUTES.items() if case.kind == "admin")


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=[f"{m} {p}" for m, p in ADMIN_ROUTES])
async def test_admin_only_routes_refuse_users(
    api: httpx.AsyncClient, settings: ApiSettings, route: tuple[str, str]
) -> None:
    for what, headers in {
        "user token": bearer(settings, OWNER),
        "track key": {"X-API-Key": TRACK_KEY},
    }.items():
        response = await call(api, route, OWNER, headers)
        assert_status(response, 403, f"{what} on {route}")
    assert_allowed(await call(api, route, OWNER, {"X-API-Key": ADMIN_KEY}), "admin key")
    assert_allowed(await call(api, route, OWNER, bearer(settings, "ops", admin=True)), "admin")


async def test_a_user_token_tracks_only_its_own_events_even_in_a_batch(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    url = f"{PREFIX}/track-interaction"
    mixed = {"events": [event(OWNER), event(OTHER)]}
    response = await api.post(url, json=mixed, headers=bearer(settings, OWNER))
    assert_status(response, 403, "a batch with another user's event")
    assert response.json()["error"]["details"] == {"user_ids": [OTHER]}


async def test_a_path_id_is_not_a_way_around_the_check(
    api: httpx.AsyncClient, settings: ApiSettings
) -> None:
    """Encoded, padded or case-changed ids name another user (or no valid one), never the caller."""
    for target in (f"{OWNER}%20", OWNER.upper(), f"%2e%2e%2f{OWNER}", f"{OWNER}%00"):
        response = await api.delete(f"{PREFIX}/users/{target}", headers=bearer(settings, OTHER))
        assert response.status_code in {403, 404, 422}, (target, response.text)
    profile = await api.get(
        f"{PREFIX}/user-profile/behavioral",
        params={"user_id": f" {OWNER}"},
        headers=bearer(settings, OTHER),
    )
    assert profile.status_code in {403, 422}
