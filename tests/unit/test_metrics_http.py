"""/metrics and /health on a service's metrics port (schemas/metrics_http.py), over real HTTP."""

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from schemas.metrics_http import Health, MetricsServer, start_metrics_server


@pytest.fixture()
def served() -> Iterator[tuple[str, list[Health]]]:
    registry = CollectorRegistry()
    Counter("demo_things", "things", registry=registry).inc(3)
    state = [Health()]
    server = MetricsServer("127.0.0.1", 0, registry, lambda: state[0]).start()
    yield f"http://127.0.0.1:{server.port}", state
    server.stop()


def test_metrics_are_prometheus_text(served: tuple[str, list[Health]]) -> None:
    url, _ = served
    answer = httpx.get(f"{url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert "demo_things_total 3.0" in answer.text


def test_health_is_200_or_503_with_the_reasons(served: tuple[str, list[Health]]) -> None:
    url, state = served
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    state[0] = Health(["no WebSocket connection open for 90 s (limit 60 s)"], {"connections_open": 0})
    answer = httpx.get(f"{url}/health")
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "unhealthy",
        "problems": ["no WebSocket connection open for 90 s (limit 60 s)"],
        "connections_open": 0,
    }


def test_other_paths_are_404(served: tuple[str, list[Health]]) -> None:
    url, _ = served
    assert httpx.get(f"{url}/nope").status_code == 404


def test_a_port_in_use_is_reported_not_raised(served: tuple[str, list[Health]]) -> None:
    url, _ = served
    port = int(url.rsplit(":", 1)[1])
    assert start_metrics_server("127.0.0.1", port, CollectorRegistry(), Health) is None
