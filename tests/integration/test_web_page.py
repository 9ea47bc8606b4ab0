"""The web page in a real browser (Debian's Chromium, driven by Playwright) against the api
running as docker-compose.yml runs it (`python -m api` on a loopback port), over a fresh database
filled by hand: live tiles, the chart, the query forms, the CSV link, the status panel, and the
feed's reconnect after the api goes away.

Screenshots go to artifacts/screenshots/; UPDATE_DOCS_SCREENSHOT=1 also refreshes
docs/web-page.png (the one README shows).
"""

import csv
import io
import os
import random
import shutil
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg2
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import ARTIFACTS, REPO, Services, free_port, libpq_dsn, wait_until
from tests.integration.api_helpers import TradeRow, migrated, ms_time, rollup_rows, to_ms

pytestmark = pytest.mark.integration


CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ARTIFACTS / "screenshots"
DOCS_SCREENSHOT = REPO / "docs" / "web-page.png"
EIGHT_PLACES = Decimal("0.00000001")


def random_walk(symbol: str, first_id: int, price: str, start_ms: int, end_ms: int, seed: int) -> list[TradeRow]:
    """Trades every 1-7 s with a random-walk price, exact decimals with 8 places as Binance sends."""
    rng = random.Random(seed)
    level = Decimal(price)
    trades: list[TradeRow] = []
    at_ms = start_ms
    while at_ms < end_ms:
        level = (level * (1 + Decimal(rng.randint(-25, 26)) / 10_000)).quantize(Decimal("0.01"))
        quantity = (Decimal(rng.randint(1, 2500)) / 10_000).quantize(EIGHT_PLACES)
        trades.append(
            TradeRow(symbol, first_id + len(trades), level.quantize(EIGHT_PLACES), quantity, at_ms, rng.random() < 0.5)
        )
        at_ms += rng.randint(1000, 7000)
    return trades


def price_in_effect(trades: list[TradeRow], second_ms: int) -> TradeRow:
    """The last trade at or before the end of the second (what /v1/prices/at answers)."""
    return max((t for t in trades if t.trade_time_ms < second_ms + 1000), key=lambda t: (t.trade_time_ms, t.trade_id))


ROLLUP_COLUMNS = (
    "symbol, open_time, open, high, low, close, volume, quote_volume, trade_count,"
    " taker_buy_base_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, price_sum"
)
# Merging one more trade into a rollup row, by the consumer's rules (open and close belong to the
# smallest and largest trade id).
ROLLUP_MERGE = """ON CONFLICT (symbol, open_time) DO UPDATE SET
    open = CASE WHEN EXCLUDED.first_trade_id < r.first_trade_id THEN EXCLUDED.open ELSE r.open END,
    high = GREATEST(r.high, EXCLUDED.high), low = LEAST(r.low, EXCLUDED.low),
    close = CASE WHEN EXCLUDED.last_trade_id > r.last_trade_id THEN EXCLUDED.close ELSE r.close END,
    volume = r.volume + EXCLUDED.volume, quote_volume = r.quote_volume + EXCLUDED.quote_volume,
    trade_count = r.trade_count + EXCLUDED.trade_count,
    taker_buy_base_volume = r.taker_buy_base_volume + EXCLUDED.taker_buy_base_volume,
    taker_buy_quote_volume = r.taker_buy_quote_volume + EXCLUDED.taker_buy_quote_volume,
    first_trade_id = LEAST(r.first_trade_id, EXCLUDED.first_trade_id),
    last_trade_id = GREATEST(r.last_trade_id, EXCLUDED.last_trade_id),
    price_sum = r.price_sum + EXCLUDED.price_sum"""


def insert_trade(owner_url: str, trade: TradeRow) -> None:
    """One trade, its rollups and its symbol's id range, in one transaction, as the consumer stores them."""
    with closing(psycopg2.connect(libpq_dsn(owner_url))) as connection, connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO trades (symbol, trade_id, price, quantity, trade_time, buyer_is_maker, event_time)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                trade.symbol,
                trade.trade_id,
                trade.price,
                trade.quantity,
                ms_time(trade.trade_time_ms),
                trade.buyer_is_maker,
                ms_time(trade.trade_time_ms),
            ),
        )
        for table, unit_ms in (("trade_candles_1s", 1000), ("trade_candles_1m", 60_000)):
            (row,) = rollup_rows([trade], unit_ms)
            # The table name is one of two constants, not input.
            cursor.execute(
                f"INSERT INTO {table} AS r ({ROLLUP_COLUMNS}) VALUES %s {ROLLUP_MERGE}",
                (row,),
            )
        cursor.execute(
            "INSERT INTO stored_id_ranges AS r (kind, symbol, first_id, last_id) VALUES ('trades', %s, %s, %s)"
            " ON CONFLICT (kind, symbol) DO UPDATE SET first_id = least(r.first_id, excluded.first_id),"
            " last_id = greatest(r.last_id, excluded.last_id), updated_at = now()",
            (trade.symbol, trade.trade_id, trade.trade_id),
        )


def insert_pipeline_status(owner_url: str, now: datetime) -> None:
    """Lag of 12 over three partitions; three dead letters, two of them in the last 24 hours."""
    with closing(psycopg2.connect(libpq_dsn(owner_url))) as connection, connection, connection.cursor() as cursor:
        for partition, (next_offset, high_watermark) in enumerate([(100, 105), (200, 207), (50, 50)]):
            cursor.execute(
                "INSERT INTO consumer_lag (group_id, topic, partition, next_offset, high_watermark, lag, updated_at)"
                " VALUES ('binance-consumer', 'binance.raw', %s, %s, %s, %s, %s)",
                (partition, next_offset, high_watermark, high_watermark - next_offset, now - timedelta(seconds=3)),
            )
        for offset, reason, recorded_at in [
            (7, "invalid_json", now - timedelta(hours=30)),
            (8, "invalid_json", now - timedelta(minutes=5)),
            (9, "schema_violation", now - timedelta(minutes=1)),
        ]:
            cursor.execute(
                "INSERT INTO dead_letters (source_topic, source_partition, source_offset, reason, detail, stream,"
                " recorded_at) VALUES ('binance.raw', 0, %s, %s, 'test', 'btcusdt@trade', %s)",
                (offset, reason, recorded_at),
            )


@dataclass
class WebApi:
    url: str
    owner_url: str
    services: Services
    overrides: dict[str, str]
    trades: dict[str, list[TradeRow]]

    def start(self) -> None:
        self.services.start("api", self.overrides)
        with httpx.Client(base_url=self.url, timeout=2) as client:
            wait_until(lambda: client.get("/health").status_code == 200, 30, "the api to answer")

    def kill(self) -> None:
        """The api dies without a goodbye (SIGKILL): open streams just break."""
        process = self.services.processes.pop("api")
        process.kill()
        process.wait(timeout=10)

    def detail(self, path: str, params: dict[str, str]) -> str:
        response = httpx.get(self.url + path, params=params, timeout=5)
        assert 400 <= response.status_code < 500, response.text
        detail: str = response.json()["detail"]
        return detail


def tiny_walk(symbol: str, first_id: int, start_ms: int, end_ms: int, seed: int) -> list[TradeRow]:
    """Trades every 1-7 s of a coin priced around a millionth (0.00000099), in steps of 1e-8."""
    rng = random.Random(seed)
    steps = 99
    trades: list[TradeRow] = []
    at_ms = start_ms
    while at_ms < end_ms:
        steps = max(1, steps + rng.randint(-3, 3))
        quantity = Decimal(rng.randint(1, 90_000_000)).quantize(EIGHT_PLACES)
        trades.append(
            TradeRow(symbol, first_id + len(trades), Decimal(f"0.{steps:08d}"), quantity, at_ms, rng.random() < 0.5)
        )
        at_ms += rng.randint(1000, 7000)
    return trades


@pytest.fixture()
def web_api(database: dict[str, str], services: Services, request: pytest.FixtureRequest) -> Iterator[WebApi]:
    """The api over two majors' trades of the last 90 minutes; parametrized "tiny" (indirect), over
    one coin priced in millionths instead."""
    store = migrated(database)
    now_ms = to_ms(datetime.now(UTC))
    start_ms = now_ms - 90 * 60_000
    hole_start_ms = (now_ms - 40 * 60_000) // 60_000 * 60_000
    hole_ms = (hole_start_ms, hole_start_ms + 10 * 60_000)
    if getattr(request, "param", None) == "tiny":
        trades = {"PEPEUSDT": tiny_walk("PEPEUSDT", 1_000_000, start_ms, now_ms - 1000, seed=3)}
    elif getattr(request, "param", None) == "hole":
        # Ten minutes the store knows it lacks: no trades stored there, and a coverage hole.
        walk = random_walk("BTCUSDT", 5_409_000_000, "84512.34", start_ms, now_ms - 1000, seed=1)
        trades = {"BTCUSDT": [t for t in walk if not hole_ms[0] <= t.trade_time_ms < hole_ms[1]]}
        store.coverage([("BTCUSDT", "trade", "hole", *hole_ms, "producer down; REST answered 418")])
    else:
        trades = {
            "BTCUSDT": random_walk("BTCUSDT", 5_409_000_000, "84512.34", start_ms, now_ms - 1000, seed=1),
            "ETHUSDT": random_walk("ETHUSDT", 2_100_000_000, "2611.82", start_ms, now_ms - 1000, seed=2),
        }
    store.trades([trade for symbol_trades in trades.values() for trade in symbol_trades])
    insert_pipeline_status(database["owner"], ms_time(now_ms))
    port = free_port()
    api = WebApi(
        f"http://127.0.0.1:{port}",
        database["owner"],
        services,
        {"API_DATABASE_URL": database["api"], "API_PORT": str(port), "API_DB_SSL": "disable"},
        trades,
    )
    api.start()
    yield api


@pytest.fixture(scope="module", autouse=True)
def fresh_screenshots() -> None:
    """A run's screenshots, none of an earlier run's."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old_screenshot in SCREENSHOTS.glob("*.png"):
        old_screenshot.unlink()


@pytest.fixture()
def page(web_api: WebApi) -> Iterator[Page]:
    # A failure, not a skip: a machine without the browser must not pass the page's tests.
    assert CHROMIUM.exists(), "Debian's chromium is missing: bash scripts/setup.sh chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
        context.set_default_timeout(10_000)
        try:
            yield context.new_page()
        finally:
            # Before the api stops: an open event stream would hold its graceful shutdown.
            context.close()
            browser.close()


def screenshot(page: Page, name: str) -> Path:
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_the_page_shows_live_prices_candles_answers_and_status(web_api: WebApi, page: Page) -> None:
    started = time.monotonic()
    p = page
    btc, eth = web_api.trades["BTCUSDT"], web_api.trades["ETHUSDT"]
    tile = {symbol: p.locator(f'.tile[data-symbol="{symbol}"]') for symbol in ("BTCUSDT", "ETHUSDT")}

    # The chart asks for a range (start=...) once symbols are known; catch that answer.
    with p.expect_response(lambda r: "/v1/candles?" in r.url and "start=" in r.url) as candles_answer:
        p.goto(web_api.url + "/")
    expect(p.locator("#connection")).to_have_attribute("data-state", "live")
    expect(tile["BTCUSDT"].locator(".price")).to_have_text(str(btc[-1].price))
    expect(tile["ETHUSDT"].locator(".price")).to_have_text(str(eth[-1].price))
    expect(tile["BTCUSDT"]).to_have_attribute("data-trade-id", str(btc[-1].trade_id))

    # The chart: 1-minute candles of the last hour, as the api answered them, drawn on canvases.
    answer = candles_answer.value
    assert answer.status == 200
    assert "interval=1m" in answer.url and "symbol=BTCUSDT" in answer.url
    candles = answer.json()["candles"]
    assert 59 <= len(candles) <= 60
    chart_card = p.locator("#chart-card")
    expect(chart_card).to_have_attribute("data-candles", str(len(candles)))
    expect(p.locator("#chart-caption")).to_have_text(f"{len(candles)} candles")
    assert p.locator("#chart canvas").count() >= 2
    canvas_box = p.locator("#chart canvas").first.bounding_box()
    assert canvas_box is not None and canvas_box["width"] > 300 and canvas_box["height"] > 200
    # The newest candle's close is the newest trade's price (the legend shows the api's strings).
    assert candles[-1]["close"] == str(btc[-1].price)
    expect(p.locator("#chart-ohlc")).to_contain_text(f"C {btc[-1].price}")

    # Another interval and range: the page asks again and shows what it got.
    with p.expect_response(lambda r: "/v1/candles?" in r.url and "interval=5m" in r.url) as five_minutes:
        p.select_option("#chart-range", "21600")
        p.select_option("#chart-interval", "5m")
    expect(chart_card).to_have_attribute("data-loading", "false")
    expect(chart_card).to_have_attribute("data-candles", str(len(five_minutes.value.json()["candles"])))
    assert 18 <= len(five_minutes.value.json()["candles"]) <= 19  # 90 minutes of trades
    screenshot(p, "01-loaded.png")

    # Live: a trade inserted while the page is open reaches its tile without a reload.
    newest = btc[-1]
    fresh = TradeRow(
        "BTCUSDT",
        newest.trade_id + 1,
        newest.price + Decimal("12.34"),
        Decimal("0.50000000"),
        to_ms(datetime.now(UTC)),
        False,
    )
    insert_trade(web_api.owner_url, fresh)
    expect(tile["BTCUSDT"].locator(".price")).to_have_text(str(fresh.price))
    expect(tile["BTCUSDT"]).to_have_attribute("data-direction", "up")
    expect(tile["BTCUSDT"].locator(".detail")).to_contain_text(f"trade {fresh.trade_id}")
    expect(tile["ETHUSDT"].locator(".price")).to_have_text(str(eth[-1].price))
    # ... and the chart's newest candle, without losing the zoom: its close is the new price.
    expect(p.locator("#chart-ohlc")).to_contain_text(f"C {fresh.price}")

    # Price at a second: the last trade at or before its end, exactly; then the api's error text.
    second_ms = btc[len(btc) // 2].trade_time_ms // 1000 * 1000 + 1000
    expected = price_in_effect(btc, second_ms)
    form = p.locator("#price-at-form")
    form.locator("[name=symbol]").select_option("BTCUSDT")
    form.locator("[name=timestamp]").fill(ms_time(second_ms).strftime("%Y-%m-%dT%H:%M:%S"))
    form.locator("button").click()
    expect(p.locator('#price-at-result dd[data-field="price"]')).to_have_text(str(expected.price))
    expect(p.locator('#price-at-result dd[data-field="trade"]')).to_contain_text(str(expected.trade_id))

    # A minute's high and low, from the trades inserted; then an error.
    minute_ms = eth[len(eth) // 3].trade_time_ms // 60_000 * 60_000
    in_minute = [t.price for t in eth if minute_ms <= t.trade_time_ms < minute_ms + 60_000]
    form = p.locator("#minmax-form")
    form.locator("[name=symbol]").select_option("ETHUSDT")
    form.locator("[name=minute]").fill(ms_time(minute_ms).strftime("%Y-%m-%dT%H:%M"))
    form.locator("button").click()
    expect(p.locator('#minmax-result dd[data-field="high"]')).to_have_text(str(max(in_minute)))
    expect(p.locator('#minmax-result dd[data-field="low"]')).to_have_text(str(min(in_minute)))
    expect(p.locator('#minmax-result dd[data-field="trades"]')).to_have_text(str(len(in_minute)))

    # The CSV link: the chosen range, downloaded, holds exactly that range's trades.
    start, end = (
        ms_time(btc[10].trade_time_ms // 60_000 * 60_000),
        ms_time(btc[10].trade_time_ms // 60_000 * 60_000 + 600_000),
    )
    form = p.locator("#export-form")
    form.locator("[name=symbol]").select_option("BTCUSDT")
    form.locator("[name=start]").fill(start.strftime("%Y-%m-%dT%H:%M"))
    form.locator("[name=end]").fill(end.strftime("%Y-%m-%dT%H:%M"))
    link = p.locator("#csv-link")
    expected_href = f"/v1/trades?symbol=BTCUSDT&start={start:%Y-%m-%dT%H%%3A%M}&end={end:%Y-%m-%dT%H%%3A%M}&format=csv"
    expect(link).to_have_attribute("href", expected_href)
    with p.expect_download() as download:
        link.click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    in_range = [t for t in btc if to_ms(start) <= t.trade_time_ms < to_ms(end)]
    assert [(int(r["trade_id"]), r["price"]) for r in rows] == [(t.trade_id, str(t.price)) for t in in_range]

    # The status panel: the lag and dead letters inserted, and each symbol's newest trade.
    expect(p.locator("#status-lag-total")).to_have_text("12")
    expect(p.locator("#status-dlq-total")).to_have_text("3")
    expect(p.locator("#status-dlq-24h")).to_have_text("2")
    expect(p.locator("#status-dlq tbody tr")).to_have_count(2)
    expect(p.locator("#status-dlq tbody")).to_contain_text("schema_violation")
    expect(p.locator("#status-lag tbody tr")).to_have_count(3)
    expect(p.locator("#status-symbols tbody tr")).to_have_count(2)
    p.locator("#chart-interval").select_option("1m")
    p.locator("#chart-range").select_option("3600")
    expect(chart_card).to_have_attribute("data-loading", "false")
    shot = screenshot(p, "02-answers-and-status.png")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(shot, DOCS_SCREENSHOT)

    # Bad input: each form shows the api's own error text (what the api answers, word for word).
    form = p.locator("#price-at-form")
    form.locator("[name=timestamp]").fill("yesterday")
    form.locator("button").click()
    error_text = web_api.detail("/v1/prices/at", {"symbol": "BTCUSDT", "timestamp": "yesterday"})
    expect(p.locator("#price-at-error")).to_have_text(error_text)
    expect(p.locator("#price-at-result")).to_be_hidden()
    form = p.locator("#minmax-form")
    form.locator("[name=minute]").fill("1969-12-31T23:59")
    form.locator("button").click()
    error_text = web_api.detail("/v1/prices/minmax", {"symbol": "ETHUSDT", "minute": "1969-12-31T23:59"})
    expect(p.locator("#minmax-error")).to_have_text(error_text)
    form = p.locator("#export-form")
    form.locator("[name=end]").fill(start.strftime("%Y-%m-%dT%H:%M"))
    link.click()
    same = f"{start:%Y-%m-%dT%H:%M}"
    error_text = web_api.detail(
        "/v1/trades", {"symbol": "BTCUSDT", "start": same, "end": same, "format": "json", "limit": "1"}
    )
    expect(p.locator("#export-error")).to_have_text(error_text)
    screenshot(p, "03-errors.png")

    # The api goes away: the page says so at once, and reconnects by itself when it is back.
    web_api.kill()
    expect(p.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    expect(p.locator("#tiles")).to_have_class("tiles offline")
    screenshot(p, "04-disconnected.png")
    web_api.start()
    expect(p.locator("#connection")).to_have_attribute("data-state", "live", timeout=20_000)
    later = TradeRow(
        "BTCUSDT", fresh.trade_id + 1, fresh.price - Decimal("0.01"), Decimal("0.1"), to_ms(datetime.now(UTC)), True
    )
    insert_trade(web_api.owner_url, later)
    expect(tile["BTCUSDT"].locator(".price")).to_have_text(str(later.price))
    expect(tile["BTCUSDT"]).to_have_attribute("data-direction", "down")
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("web_api", ["hole"], indirect=True)
def test_the_chart_shades_a_known_hole_and_draws_no_candle_in_it(web_api: WebApi, page: Page) -> None:
    with page.expect_response(lambda r: "/v1/candles?" in r.url and "start=" in r.url) as candles_answer:
        page.goto(web_api.url + "/")
    answer = candles_answer.value.json()
    (hole,) = answer["holes"]
    assert hole["detail"] == "producer down; REST answered 418"
    inside = [c for c in answer["candles"] if hole["start"] <= c["open_time"] < hole["end"]]
    assert inside == [], "no candle is invented inside the hole"
    chart_card = page.locator("#chart-card")
    expect(chart_card).to_have_attribute("data-candles", str(len(answer["candles"])))
    expect(chart_card).to_have_attribute("data-holes", "1")
    # One shaded bar per minute of the hole (it is whole minutes long).
    expect(chart_card).to_have_attribute("data-hole-bars", "10")
    expect(page.locator("#chart-caption")).to_contain_text("1 known hole (shaded)")
    expect(page.locator("#chart-caption")).to_contain_text("producer down; REST answered 418")
    screenshot(page, "06-known-hole.png")


@pytest.mark.parametrize("web_api", ["tiny"], indirect=True)
def test_the_chart_axis_shows_a_tiny_price_to_its_last_digit(web_api: WebApi, page: Page) -> None:
    """Prices in millionths (0.00000099) are drawn with their 8 decimals on the price axis and in
    the crosshair's label (both the series' price format), not as 0.00."""
    (symbol,) = web_api.trades
    with page.expect_response(lambda r: "/v1/candles?" in r.url and "start=" in r.url) as candles_answer:
        page.goto(web_api.url + "/")
    candles = candles_answer.value.json()["candles"]
    newest_close = candles[-1]["close"]
    assert newest_close == f"{web_api.trades[symbol][-1].price:f}" and newest_close.startswith("0.000000")
    chart_card = page.locator("#chart-card")
    expect(chart_card).to_have_attribute("data-candles", str(len(candles)))
    # The axis is a canvas: the page records the label the axis gives the newest close.
    expect(chart_card).to_have_attribute("data-axis-close", newest_close)
    expect(page.locator("#chart-ohlc")).to_contain_text(f"C {newest_close}")
    screenshot(page, "05-tiny-prices.png")
