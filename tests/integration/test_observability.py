"""Prometheus scraping the whole chain on real parts: fake exchange -> producer -> Kafka -> consumer
-> PostgreSQL -> api (and the replay beside it), each started with its compose command and environment, and Debian's
Prometheus with the repository's scrape configuration and alert rules (hosts mapped to loopback).

Faults are switched on at the fake exchange (a gap, a 429, malformed frames, a dropped
connection) and connections are rolled over quickly, so that every series the dashboard and the
rules ask for exists and, where this run can make it, moves.
"""

import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg2
import pytest
import yaml
from playwright.sync_api import expect, sync_playwright
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import ARTIFACTS, REPO, Services, free_port, libpq_dsn, wait_until
from tests.support.observability import (
    PROMETHEUS_CONFIG,
    dashboard_expressions,
    queried_metric_names,
    rule_expressions,
)
from tests.support.prometheus import Prometheus

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
DOCS_SCREENSHOT = REPO / "docs" / "prometheus-graph.png"
# What the screenshot in README.md shows: the pipeline's flow, its freshness and its lag.
FRESHNESS = "histogram_quantile({q}, sum by (le) (rate(consumer_freshness_seconds_bucket[1m])))"
GRAPHS = (
    "sum by (job) (rate(producer_messages_published_total[1m]))"
    " or sum by (job) (rate(consumer_rows_written_total[1m]))",
    f'label_replace({FRESHNESS.format(q=0.5)}, "q", "p50", "", "")'
    f' or label_replace({FRESHNESS.format(q=0.99)}, "q", "p99", "", "")',
    "sum by (partition) (consumer_lag_messages)",
)

SYMBOLS = ("BTCUSDT", "ETHUSDT")
# Queried series this run cannot move, each for a reason; every other queried counter and
# histogram must grow while the test watches.
STILL_IN_THIS_RUN = {
    "consumer_database_wait_seconds_total": "PostgreSQL stays up",
    "producer_buffer_overflow_messages_total": "Kafka stays up: librdkafka's queue never fills",
    "producer_kafka_delivery_failures_total": "Kafka stays up",
    "producer_ids_given_up_total": "every backfill succeeds",
}


@dataclass
class Observed:
    services: Services
    prometheus: Prometheus
    api_url: str
    fake_rest_url: str
    producer_url: str
    consumer_url: str
    database_url: str
    replay_url: str  # ws://host:port


@pytest.fixture()
def observed(
    stack_env: dict[str, str], database: dict[str, str], services: Services, tmp_path: Path
) -> Iterator[Observed]:
    suffix = uuid.uuid4().hex[:8]
    raw_topic, dlq_topic = f"binance.raw.{suffix}", f"binance.raw.dlq.{suffix}"
    ws_port, rest_port, api_port, producer_port, consumer_port = (free_port() for _ in range(5))
    replay_port, replay_metrics_port = free_port(), free_port()
    services.extra_addresses = {
        "fake-binance:9443": f"127.0.0.1:{ws_port}",
        "fake-binance:8090": f"127.0.0.1:{rest_port}",
    }
    services.variables = {
        "BINANCE_WS_BASE_URL": "ws://fake-binance:9443",
        "BINANCE_REST_BASE_URL": "http://fake-binance:8090",
        "SYMBOLS": ",".join(SYMBOLS),
    }
    services.run_once(
        "init",
        {
            "BOOTSTRAP_DATABASE_URL": database["owner"],
            "BOOTSTRAP_RAW_TOPIC": raw_topic,
            "BOOTSTRAP_DLQ_TOPIC": dlq_topic,
        },
    )
    services.start(
        "fake-binance",
        {
            "FAKE_BINANCE_WS_PORT": str(ws_port),
            "FAKE_BINANCE_REST_PORT": str(rest_port),
            "FAKE_BINANCE_TRADES_PER_SECOND": "20",
        },
    )
    services.start(
        "consumer",
        {
            "CONSUMER_DATABASE_URL": database["owner"],
            "CONSUMER_RAW_TOPIC": raw_topic,
            "CONSUMER_DLQ_TOPIC": dlq_topic,
            "CONSUMER_GROUP_ID": f"test-{suffix}",
            "CONSUMER_METRICS_PORT": str(consumer_port),
            "CONSUMER_STATISTICS_INTERVAL_MS": "1000",
            "CONSUMER_HEALTH_MAX_COMMIT_AGE_S": "3",
        },
    )
    services.start("api", {"API_DATABASE_URL": database["api"], "API_PORT": str(api_port)})
    services.start(
        "replay",
        {
            "REPLAY_DATABASE_URL": database["api"],
            "REPLAY_PORT": str(replay_port),
            "REPLAY_METRICS_PORT": str(replay_metrics_port),
            "REPLAY_END_LINGER_S": "0",
        },
    )
    services.start(
        "producer",
        {
            "PRODUCER_RAW_TOPIC": raw_topic,
            "PRODUCER_METRICS_PORT": str(producer_port),
            # A rollover every 15 s: the rollover counter moves within the test.
            "PRODUCER_CONNECTION_MAX_AGE_S": "15",
            "PRODUCER_ROLLOVER_OVERLAP_S": "1",
            "PRODUCER_GAP_GRACE_S": "0.5",
            "PRODUCER_HEALTH_MAX_DOWN_S": "3",
        },
    )
    # The scrape targets are compose's service names: mapped as compose_local maps the services.
    prometheus = Prometheus(
        tmp_path,
        {
            "producer:9101": f"127.0.0.1:{producer_port}",
            "consumer:9102": f"127.0.0.1:{consumer_port}",
            "api:8000": f"127.0.0.1:{api_port}",
            "replay:9104": f"127.0.0.1:{replay_metrics_port}",
        },
    ).start()
    try:
        yield Observed(
            services,
            prometheus,
            f"http://127.0.0.1:{api_port}",
            f"http://127.0.0.1:{rest_port}",
            f"http://127.0.0.1:{producer_port}",
            f"http://127.0.0.1:{consumer_port}",
            database["owner"],
            f"ws://127.0.0.1:{replay_port}",
        )
    finally:
        prometheus.stop()


def scrape_jobs() -> set[str]:
    """Every job of the repository's scrape configuration: the fixture starts a service for each."""
    return {job["job_name"] for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]}


def all_targets_up(prometheus: Prometheus) -> bool:
    return prometheus.target_health() == dict.fromkeys(scrape_jobs(), "up")


def play_a_replay(replay_url: str) -> None:
    """One replay of what is stored (the replay's counters move), and one unknown path (refused)."""
    start_ms = int((time.time() - 600) * 1000)
    frames = 0
    with connect(f"{replay_url}/ws/btcusdt@trade?start={start_ms}&speed=0", max_size=None) as ws:
        try:
            for _frame in ws:
                frames += 1
        except ConnectionClosedOK:
            pass
        assert ws.close_code == 1000, ws.close_reason
    assert frames > 0, "the replay sent no stored trade"
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{replay_url}/nowhere").close()
    assert refused.value.response.status_code == 404


def fake_fault(fake_rest_url: str, path: str, body: Mapping[str, object]) -> None:
    assert httpx.post(f"{fake_rest_url}{path}", json=body, timeout=5).status_code == 200, path


def cause_faults(prometheus: Prometheus, fake_rest_url: str, since: float) -> None:
    # The gap alone first, until a live frame has shown it: a connection dropped before that
    # would have the reconnect's REST resync fetch the skipped ids, and no gap would be seen.
    fake_fault(fake_rest_url, "/fake/gap", {"trades": 3})
    wait_until(lambda: grown(prometheus, "producer_ids_missed_total", since), 60, "the gap to be seen")
    for path, body in (
        ("/fake/rate-limit", {"status": 429, "count": 1, "retry_after_s": 1}),
        ("/fake/malformed", {"count": 2, "mode": "garbage"}),
        ("/fake/drop-connections", {"mode": "close"}),
    ):
        fake_fault(fake_rest_url, path, body)


def grown(prometheus: Prometheus, name: str, since: float) -> bool:
    """The series' total is larger now than at `since` (a series born since counts from 0)."""
    before = prometheus.scalar(f"sum({name})", at=since) or 0.0
    now = prometheus.scalar(f"sum({name})")
    return now is not None and now > before


def test_every_queried_series_exists_and_moves(observed: Observed) -> None:
    prometheus = observed.prometheus
    wait_until(lambda: all_targets_up(prometheus), 60, "Prometheus to scrape every service")
    wait_until(lambda: (prometheus.scalar("sum(consumer_rows_written_total)") or 0) > 0, 60, "rows stored")
    started = time.time()
    cause_faults(prometheus, observed.fake_rest_url, started)
    play_a_replay(observed.replay_url)
    for path in ("/v1/prices/latest", "/v1/symbols", "/v1/prices/latest?symbol=BTCUSDT"):
        httpx.get(f"{observed.api_url}{path}", timeout=10)

    queried = queried_metric_names()
    must_move = {name for name in queried if name.endswith(("_total", "_bucket")) and name not in STILL_IN_THIS_RUN}
    # A rollover every 15 s, and the faults' effects (backfill after the gap's grace, a 429 retried).
    still: list[str] = []

    def all_moved() -> bool:
        still[:] = sorted(name for name in must_move if not grown(prometheus, name, started))
        return not still

    try:
        wait_until(all_moved, 90, "every series to move")
    except AssertionError as error:
        raise AssertionError(f"{error}: still not moved: {', '.join(still)}") from None
    time.sleep(2)  # a few more scrapes after the faults, for the last assertions below
    for name in sorted(queried):
        assert prometheus.query(name), f"{name}: no series in Prometheus"
    for name in sorted(must_move):
        assert grown(prometheus, name, started), f"{name}: did not move"
    assert prometheus.query('producer_rest_requests_total{status="429"}'), "the 429 was not counted"
    assert prometheus.query('consumer_dead_letters_total{reason!=""}'), "no dead letter counted"
    assert all_targets_up(prometheus)


def test_every_dashboard_query_and_rule_evaluates(observed: Observed) -> None:
    prometheus = observed.prometheus
    wait_until(lambda: all_targets_up(prometheus), 60, "Prometheus to scrape every service")
    wait_until(lambda: (prometheus.scalar("sum(consumer_rows_written_total)") or 0) > 0, 60, "rows stored")
    for expression in dashboard_expressions().values():
        prometheus.query(expression)  # raises unless Prometheus answers "success"
    freshness = "histogram_quantile(0.99, sum by (le) (rate(consumer_freshness_seconds_bucket[1m])))"
    wait_until(lambda: prometheus.scalar(freshness) is not None, 30, "freshness observed")
    wait_until(lambda: len(prometheus.rules()) == len(rule_expressions()), 30, "the alert rules to load")
    evaluated = lambda: all(rule.get("lastEvaluation", "").startswith("2") for rule in prometheus.rules())  # noqa: E731
    wait_until(evaluated, 30, "every rule evaluated")
    for rule in prometheus.rules():
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"


def test_health_turns_unhealthy_when_connections_stay_down(observed: Observed) -> None:
    url = f"{observed.producer_url}/health"
    wait_until(lambda: httpx.get(url, timeout=5).status_code == 200, 60, "a healthy producer")
    observed.services.stop("fake-binance")
    # PRODUCER_HEALTH_MAX_DOWN_S is 3 s here: reported once the reconnects have failed that long.
    answer = wait_until(
        lambda: (r := httpx.get(url, timeout=5)).status_code == 503 and r,
        90,
        "the producer to report itself unhealthy",
    )
    assert isinstance(answer, httpx.Response)
    assert "no WebSocket connection open" in answer.json()["problems"][0]


def test_consumer_unhealthy_while_it_cannot_commit(observed: Observed) -> None:
    url = f"{observed.consumer_url}/health"
    wait_until(lambda: (observed.prometheus.scalar("sum(consumer_rows_written_total)") or 0) > 0, 60, "rows stored")
    assert httpx.get(url, timeout=5).status_code == 200
    # A lock the consumer's writes wait behind: messages keep arriving, nothing is committed.
    with psycopg2.connect(libpq_dsn(observed.database_url)) as connection, connection.cursor() as cursor:
        cursor.execute("LOCK TABLE trades IN ACCESS EXCLUSIVE MODE")
        answer = wait_until(
            lambda: (r := httpx.get(url, timeout=5)).status_code == 503 and r, 60, "the consumer to say it is unhealthy"
        )
        assert isinstance(answer, httpx.Response)
        assert answer.json()["problems"], answer.json()
        connection.rollback()
    wait_until(lambda: httpx.get(url, timeout=5).status_code == 200, 60, "the consumer to be healthy again")


def test_prometheus_graph_page_draws_the_pipeline(observed: Observed) -> None:
    # A failure, not a skip: a machine without the browser must not pass.
    assert CHROMIUM.exists(), "Debian's chromium is missing: bash scripts/setup.sh chromium"
    prometheus = observed.prometheus
    wait_until(lambda: all_targets_up(prometheus), 60, "Prometheus to scrape every service")
    wait_until(lambda: (prometheus.scalar("sum(consumer_rows_written_total)") or 0) > 0, 60, "rows stored")
    time.sleep(30)  # half a minute of lines to draw
    query = {}
    for index, expression in enumerate(GRAPHS):
        query.update({f"g{index}.expr": expression, f"g{index}.tab": "0", f"g{index}.range_input": "2m"})
    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.goto(f"{prometheus.url}/graph?{urlencode(query)}")
            legends = page.locator(".rickshaw_legend")
            expect(legends).to_have_count(len(GRAPHS), timeout=20_000)
            for index in range(len(GRAPHS)):
                expect(legends.nth(index).locator(".line").first).to_be_visible(timeout=20_000)
            expect(legends.nth(0)).to_contain_text('job="producer"')
            expect(legends.nth(0)).to_contain_text('job="consumer"')
            expect(legends.nth(1)).to_contain_text('q="p99"')
            shot = shots / "prometheus-graph.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(shot, DOCS_SCREENSHOT)
