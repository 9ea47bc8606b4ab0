"""A Prometheus of a test's own: Debian's binary on a loopback port, with the repository's scrape
configuration and alert rules, the compose host names mapped to this machine's addresses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import compose_local
import httpx
import yaml

from tests.conftest import free_port, stop_process, wait_until


class Prometheus:
    def __init__(self, directory: Path, addresses: dict[str, str], interval_s: int = 1) -> None:
        """`addresses`: compose `host:port` -> local `127.0.0.1:port`, as compose_local maps them.
        The interval is shortened so that a test sees many scrapes in seconds."""
        binary = shutil.which("prometheus")
        assert binary is not None, "prometheus is missing: bash scripts/setup.sh prometheus"
        config = compose_local.prometheus_config(addresses)
        config["global"].update(
            scrape_interval=f"{interval_s}s", scrape_timeout=f"{interval_s}s", evaluation_interval=f"{interval_s}s"
        )
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.config = config
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log_path = directory / "prometheus.log"
        self._argv = [
            binary,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={self.url.removeprefix('http://')}",
        ]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(self._argv, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._ready, 30, "Prometheus to be ready")
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)

    def _ready(self) -> bool:
        assert self._process is not None
        assert self._process.poll() is None, f"prometheus exited: {self.log_path.read_text()[-2000:]}"
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, path: str, **params: str | float) -> Any:
        answer = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = answer.json()
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expression: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, str | float] = {"query": expression}
        if at is not None:
            params["time"] = at
        result: list[dict[str, Any]] = self.api("query", **params)["result"]
        return result

    def scalar(self, expression: str, at: float | None = None) -> float | None:
        """The value of a one-series answer (e.g. sum(x)); None when there is no series."""
        result = self.query(expression, at)
        return float(result[0]["value"][1]) if result else None

    def target_health(self) -> dict[str, str]:
        return {target["labels"]["job"]: target["health"] for target in self.api("targets")["activeTargets"]}

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]
