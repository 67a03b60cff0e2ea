"""Request ids and access lines of the API, in process, without Redis or a broker: the
routes used here (unknown paths, the OpenAPI document, a route that fails) need neither."""

from __future__ import annotations

import logging
import logging.config
import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG

from recstream.platform.logs import JsonFormatter, LogfmtFormatter
from recstream_api.errors import install_error_handlers
from recstream_api.main import create_app
from recstream_api.requestlog import RequestLog, accepted_request_id
from recstream_api.settings import ApiSettings
from tests.unit.logcapture import CapturedLog, captured_api_log, saved_logging

HEX_ID = re.compile(r"[0-9a-f]{32}")
UNKNOWN = "/api/behavioral-ml/no-such-route"
ACCESS_KEYS = {
    "ts", "level", "logger", "msg", "service", "instance",
    "request_id", "method", "route", "path", "status", "duration_ms", "client",
}  # fmt: skip


@pytest.fixture(params=["logfmt", "json"])
def log(request: pytest.FixtureRequest) -> Iterator[CapturedLog]:
    with captured_api_log(ApiSettings(log_format=request.param)) as captured:
        yield captured


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(ApiSettings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        yield api


@pytest.mark.parametrize("given", ["abc", "req-1.2_3:x", "A" * 128, "0f" * 16])
def test_a_sane_request_id_is_kept(given: str) -> None:
    assert accepted_request_id(given.encode()) == given


@pytest.mark.parametrize(
    "given",
    [None, b"", b"A" * 129, b"has space", b"semi;colon", b"new\nline", b"caf\xc3\xa9", b"a=b"],
)
def test_any_other_request_id_is_replaced_by_a_new_one(given: bytes | None) -> None:
    replaced = accepted_request_id(given)
    assert HEX_ID.fullmatch(replaced)
    assert accepted_request_id(given) != replaced


async def test_the_access_line_carries_the_id_the_answer_returns(
    client: httpx.AsyncClient, log: CapturedLog
) -> None:
    response = await client.get(f"{UNKNOWN}?user_id=u-1")
    assert response.status_code == 404
    request_id = response.headers["X-Request-ID"]
    assert HEX_ID.fullmatch(request_id)
    assert response.json()["error"]["request_id"] == request_id
    (line,) = log.access()
    assert line["request_id"] == request_id
    assert line["msg"] == f"GET {UNKNOWN} 404"
    assert (line["method"], line["route"], line["path"]) == ("GET", "<unmatched>", UNKNOWN)
    assert str(line["status"]) == "404"
    assert float(line["duration_ms"]) >= 0
    assert set(line) == ACCESS_KEYS  # no subject: nobody authenticated
    assert (line["service"], line["level"]) == ("recstream-api", "INFO")


async def test_json_lines_parse_and_keep_the_types(client: httpx.AsyncClient) -> None:
    with captured_api_log(ApiSettings(log_format="json")) as log:
        await client.get("/api/behavioral-ml/openapi.json")
    (line,) = log.access()  # json.loads of every line succeeded
    assert line["route"] == "/api/behavioral-ml/openapi.json"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)


async def test_a_sane_request_id_from_the_caller_is_echoed(
    client: httpx.AsyncClient, log: CapturedLog
) -> None:
    response = await client.get(UNKNOWN, headers={"X-Request-ID": "trace-42.a"})
    assert response.headers["X-Request-ID"] == "trace-42.a"
    assert response.json()["error"]["request_id"] == "trace-42.a"
    assert [line["request_id"] for line in log.access()] == ["trace-42.a"]


@pytest.mark.parametrize("bad", ["x" * 129, "two words", 'quote"d', "a/b"])
async def test_an_unfit_request_id_from_the_caller_is_replaced(
    client: httpx.AsyncClient, log: CapturedLog, bad: str
) -> None:
    response = await client.get(UNKNOWN, headers={"X-Request-ID": bad})
    request_id = response.headers["X-Request-ID"]
    assert HEX_ID.fullmatch(request_id)
    (line,) = log.access()
    assert line["request_id"] == request_id
    assert bad not in log.stream.getvalue()


async def test_every_request_gets_its_own_id(client: httpx.AsyncClient, log: CapturedLog) -> None:
    ids = {(await client.get(UNKNOWN)).headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
    assert {line["request_id"] for line in log.access()} == ids


def failing_app() -> FastAPI:
    """A route that logs, one that fails, with the API's error handlers and request log."""
    app = FastAPI()
    install_error_handlers(app)
    logger = logging.getLogger("recstream_api.views")

    @app.get("/work")
    async def work() -> dict[str, str]:
        logger.info("working")
        return {"ok": "yes"}

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("boom")

    app.add_middleware(RequestLog, routes=app.router.routes)
    return app


async def test_lines_logged_while_serving_carry_the_request_id_and_others_do_not(
    log: CapturedLog,
) -> None:
    transport = httpx.ASGITransport(app=failing_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as app:
        response = await app.get("/work", headers={"X-Request-ID": "r-1"})
    logging.getLogger("recstream_api.views").info("between requests")
    working, access, between = log.api_records()
    assert response.headers["X-Request-ID"] == "r-1"
    assert (working["msg"], working["request_id"]) == ("working", "r-1")
    assert (access["msg"], access["request_id"]) == ("GET /work 200", "r-1")
    assert between["msg"] == "between requests"
    assert "request_id" not in between


async def test_an_unhandled_error_answers_500_with_the_request_id(log: CapturedLog) -> None:
    transport = httpx.ASGITransport(app=failing_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as app:
        response = await app.get("/fail", headers={"X-Request-ID": "r-500"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "r-500"
    assert response.json()["error"] == {
        "code": "internal_error",
        "message": "internal server error",
        "details": None,
        "request_id": "r-500",
    }
    access, unhandled = log.api_records()
    assert (access["route"], str(access["status"]), access["request_id"]) == (
        "/fail",
        "500",
        "r-500",
    )
    assert unhandled["msg"] == "unhandled error on GET /fail"
    assert unhandled["request_id"] == "r-500"
    assert "RuntimeError: boom" in unhandled["exc"]


def test_uvicorn_lines_use_the_same_format_and_its_access_log_is_off() -> None:
    with saved_logging():
        logging.config.dictConfig(LOGGING_CONFIG)  # uvicorn does this before the factory runs
        with captured_api_log(ApiSettings(log_format="json")) as log:
            logging.getLogger("uvicorn.error").info("Started server process [%d]", 7)
            logging.getLogger("uvicorn").warning("shutting down")
            # uvicorn writes its access line only when this logger has a handler
            assert not logging.getLogger("uvicorn.access").hasHandlers()
    started, stopping = log.records()
    assert (started["logger"], started["msg"]) == ("uvicorn.error", "Started server process [7]")
    assert (stopping["logger"], stopping["level"]) == ("uvicorn", "WARNING")
    assert started["service"] == "recstream-api"


def test_the_log_level_setting_filters_lines() -> None:
    with captured_api_log(ApiSettings(log_level="WARNING")) as log:
        logging.getLogger("uvicorn.error").info("hidden")
        logging.getLogger("recstream_api.errors").warning("shown")
    assert [line["msg"] for line in log.records()] == ["shown"]


def root_formatter() -> logging.Formatter | None:
    handlers = logging.getLogger().handlers
    return handlers[-1].formatter if handlers else None


def test_create_app_sets_up_logging_only_for_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECSTREAM_LOG_FORMAT", "json")
    with captured_api_log(ApiSettings()):  # restores the root logger afterwards
        logging.getLogger().handlers[-1].setFormatter(logging.Formatter())
        create_app(ApiSettings())
        assert type(root_formatter()) is logging.Formatter  # left alone
        create_app()
        assert isinstance(root_formatter(), JsonFormatter)
        create_app(ApiSettings(log_format="logfmt"), configure_logs=True)
        assert isinstance(root_formatter(), LogfmtFormatter)
