"""The fault suite's pipeline (one for all of test_pipeline_faults.py: the faults run one after
another on it, and every check covers all trades so far) and the figures file docs/reliability.md
quotes."""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import ARTIFACTS
from tests.faults.harness import FaultPipeline

FIGURES_PATH = ARTIFACTS / "faults" / "figures.json"
COMMAND = ".venv/bin/python -m pytest -m faults tests/faults -q"


# Module scope: torn down (servers stopped, figures written) as soon as the fault tests are done,
# not at the end of a whole `pytest tests` session.
@pytest.fixture(scope="module")
def fault_pipeline(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultPipeline]:
    started = time.monotonic()
    # stack_env only lends the Kafka jars: the pipeline runs on a broker and a database of its own.
    pipeline = FaultPipeline(stack_env, tmp_path_factory.mktemp("faults"), ARTIFACTS / "logs" / "faults")
    try:
        pipeline.start()
        yield pipeline
    finally:
        pipeline.shutdown()
        pipeline.figures["pipeline_seconds"] = round(time.monotonic() - started, 1)
        write_figures(pipeline.figures)


def write_figures(figures: dict[str, Any]) -> None:
    FIGURES_PATH.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "command": COMMAND,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary": summary(figures.get("faults", {})),
        **figures,
    }
    FIGURES_PATH.write_text(json.dumps(body, indent=2, default=str) + "\n")


def summary(faults: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The headline figures, from the checks that ran (a check that failed recorded nothing)."""
    checks = [figures for figures in faults.values() if "losses" in figures]
    evidence = {name: figures.get("evidence", {}) for name, figures in faults.items()}
    websocket, bad_input = evidence.get("websocket", {}), evidence.get("bad-input", {})
    return {
        "fault_runs_checked": [name for name, figures in faults.items() if "evidence" in figures],
        "trades_checked": max((figures["trades_checked"] for figures in checks), default=0),
        "trade_checks": sum(figures["trades_checked"] for figures in checks),
        "losses": sum(figures["losses"] + figures["wrong_values"] for figures in checks),
        "duplicates": sum(figures["duplicate_rows"] + figures["duplicates_counted_in_rollups"] for figures in checks),
        "faults_survived": {
            "consumer_sigkill_mid_batch": int(bool(evidence.get("consumer-kill"))),
            "kafka_outage_30s": int(bool(evidence.get("kafka-outage"))),
            "postgresql_outage_30s": int(bool(evidence.get("postgres-outage"))),
            "websocket_connections_dropped": websocket.get("connections_dropped", 0),
            "rollovers": websocket.get("rollovers", 0),
            "trades_left_out_of_the_stream": websocket.get("trades_left_out_of_the_stream", 0),
            "rest_429": websocket.get("rest_429", 0),
            "error_replies": websocket.get("error_replies", 0),
            "frozen_connections": int(bool(websocket)),
        },
        "inputs_tried": {
            "invalid_messages_dead_lettered": max((figures["dead_lettered"] for figures in checks), default=0),
            "hand_made_invalid_kinds": bad_input.get("invalid", 0),
            "frames_corrupted_by_the_fake": websocket.get("frames_corrupted", 0)
            + bad_input.get("frames_corrupted_by_the_fake", 0),
            "duplicate_trade_messages_absorbed": max(
                (figures["raw_trade_duplicates_absorbed"] for figures in checks), default=0
            ),
            "reordered_messages": bad_input.get("reordered", 0),
        },
    }
