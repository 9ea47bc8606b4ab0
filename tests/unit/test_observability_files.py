"""The Prometheus and Grafana files in observability/: valid, tested, and asking only for what exists."""

import json
import shutil
import subprocess
from pathlib import Path

import compose_local  # scripts/ is on the path: tests/conftest.py
import pytest
import yaml

from tests.support.observability import (
    DASHBOARD_FILE,
    PROMETHEUS_CONFIG,
    PROMETHEUS_OWN,
    RULES_FILE,
    RULES_TEST_FILE,
    dashboard_expressions,
    exported_names,
    metric_names,
    queried_metric_names,
    rule_expressions,
    service_expositions,
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    # scripts/setup.sh installs Debian's prometheus package, which brings promtool.
    path = shutil.which("promtool")
    assert path is not None, "promtool is missing: bash scripts/setup.sh prometheus"
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=60)


def test_alert_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_fire_as_their_tests_expect() -> None:
    result = promtool("test", "rules", str(RULES_TEST_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_passes_promtool_check() -> None:
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses rule expressions: each query becomes a recording rule of a throwaway file.
    rules = [
        {"record": f"dashboard:query_{index}", "expr": expression}
        for index, expression in enumerate(dashboard_expressions().values())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_panels_have_unique_ids_and_the_provisioned_data_source() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    provisioned = yaml.safe_load((DASHBOARD_FILE.parents[1] / "provisioning/datasources/prometheus.yml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert all(target["datasource"]["uid"] == uid for target in panel["targets"]), panel["title"]


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("sum by (le) (rate(a_bucket[5m]))", {"a_bucket"}),
        ('increase(b_total{status=~"429|418"}[5m]) > 0', {"b_total"}),
        ("(sum(rate(c_total[5m])) or vector(0)) == 0 and on (job) d", {"c_total", "d"}),
        ("histogram_quantile(0.99, sum by (route, le) (rate(e_bucket[1m]))) > 1e3", {"e_bucket"}),
        ("deriv(f[5m:1m]) offset 5m unless g", {"f", "g"}),
    ],
    ids=["by", "matcher", "or-on", "number", "subquery-offset"],
)
def test_metric_names_are_read_from_promql(expression: str, names: set[str]) -> None:
    assert metric_names(expression) == names


def test_every_queried_metric_is_exported_by_a_service() -> None:
    exported = exported_names(service_expositions()) | PROMETHEUS_OWN
    queried = queried_metric_names()
    assert queried, "no metric names found in the dashboard and the rules"
    assert queried - exported == set(), f"queried but exported by no service: {sorted(queried - exported)}"


def test_every_rule_and_panel_asks_for_at_least_one_metric() -> None:
    for name, expression in {**dashboard_expressions(), **rule_expressions()}.items():
        assert metric_names(expression), name


def test_local_prometheus_config_maps_compose_names_to_loopback() -> None:
    config = compose_local.prometheus_config({"consumer:9102": "127.0.0.1:40000"})
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {
        "producer": ["127.0.0.1:9101"],
        "consumer": ["127.0.0.1:40000"],
        "api": ["127.0.0.1:8000"],
        "replay": ["127.0.0.1:9104"],
    }
    assert config["rule_files"] == [str(RULES_FILE.parent / "*.yml")]


def test_compose_publishes_the_metrics_ports_the_services_listen_on() -> None:
    services = compose_local.load_compose()
    for name, prefix in (("producer", "PRODUCER_"), ("consumer", "CONSUMER_"), ("replay", "REPLAY_")):
        environment = services[name]["environment"]
        assert isinstance(environment, dict)
        port = environment[f"{prefix}METRICS_PORT"]
        assert any(str(mapping).endswith(f":{port}") for mapping in services[name]["ports"]), name  # type: ignore[attr-defined]
        target = f"{name}:{port}"
        scraped = [
            t
            for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
            for t in job["static_configs"][0]["targets"]
        ]
        assert target in scraped, f"Prometheus does not scrape {target}"
        assert f"{port}/health" in " ".join(services[name]["healthcheck"]["test"]), name  # type: ignore[index]
