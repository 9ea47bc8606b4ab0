"""What the dashboard and the alert rules ask Prometheus, and what the services export.

The PromQL here is read only to find the metric names it names: strings, label matchers, ranges
and grouping clauses are removed, and what remains that is not a function, an aggregation or a
keyword is a metric name.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import REPO

OBSERVABILITY = REPO / "observability"
PROMETHEUS_DIR = OBSERVABILITY / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES_FILE = PROMETHEUS_DIR / "rules" / "pipeline.yml"
RULES_TEST_FILE = PROMETHEUS_DIR / "tests" / "pipeline.test.yml"
DASHBOARD_FILE = OBSERVABILITY / "grafana" / "dashboards" / "pipeline.json"
# Series Prometheus makes itself for every target.
PROMETHEUS_OWN = frozenset({"up"})

_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expression: str) -> set[str]:
    text = _GROUPING.sub(" ", _RANGE.sub(" ", _MATCHERS.sub(" ", _STRING.sub('""', expression))))
    names = set()
    for match in _NAME.finditer(text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group() not in _KEYWORDS:
            names.add(match.group())
    return names


def dashboard_expressions(path: Path = DASHBOARD_FILE) -> dict[str, str]:
    """'<panel title> / <refId>' -> expression, for every query of every panel."""
    dashboard = json.loads(path.read_text())
    return {
        f"{panel['title']} / {target['refId']}": target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    }


def rule_expressions(path: Path = RULES_FILE) -> dict[str, str]:
    """Alert (or recording rule) name -> expression."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return {rule.get("alert") or rule["record"]: rule["expr"] for group in groups for rule in group["rules"]}


def queried_metric_names() -> set[str]:
    expressions = [*dashboard_expressions().values(), *rule_expressions().values()]
    return set().union(*(metric_names(expression) for expression in expressions))


def sample_names(exposition: str) -> set[str]:
    """Every series name a scrape of this exposition text can show, samples or not yet."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def exported_names(expositions: Iterable[str]) -> set[str]:
    return set().union(*(sample_names(text) for text in expositions))


def service_expositions() -> list[str]:
    """What each service's /metrics would show, from the services' own metric objects, no I/O
    beyond a refused connection: producer, consumer, api (requests, and the store's freshness), replay."""
    from api.metrics import ApiMetrics, store_exposition
    from consumer.metrics import ConsumerMetrics
    from producer.app import Ingest
    from producer.backfill import Backfiller, BinanceRest
    from producer.binance_ws import Shard
    from producer.gaps import GapTracker
    from producer.limits import AttemptBudget, WeightBudget
    from producer.metrics import ProducerCollector
    from producer.publisher import RawPublisher
    from producer.settings import ProducerSettings
    from replay.metrics import ReplayMetrics

    settings = ProducerSettings(symbols=["BTCUSDT"])
    publisher = RawPublisher("127.0.0.1:1", "binance.raw", 10)
    tracker = GapTracker(2.0)
    backfiller = Backfiller(BinanceRest("http://127.0.0.1:1", 1.0), publisher, tracker, WeightBudget(6000, 0.5))
    ingest = Ingest(publisher, tracker, set())
    shards = [Shard(0, ["btcusdt@trade"], settings, ingest.on_frame, AttemptBudget(300), ingest.on_dropped)]
    producer = CollectorRegistry(auto_describe=False)
    producer.register(ProducerCollector(settings, publisher, ingest, shards, backfiller))

    api = CollectorRegistry()
    ApiMetrics(api, lambda: 0.0)
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    store = asyncio.run(store_exposition(engine))
    return [
        generate_latest(producer).decode(),
        generate_latest(ConsumerMetrics(CollectorRegistry()).registry).decode(),
        generate_latest(api).decode(),
        store.decode(),
        generate_latest(ReplayMetrics().registry).decode(),
    ]
