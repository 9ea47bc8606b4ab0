import pytest

from bootstrap.__main__ import topic_specs
from bootstrap.settings import BootstrapSettings
from schemas.topics import DLQ_TOPIC, RAW_TOPIC, TOPICS, TopicSpec


def test_defaults_are_the_contracts_topics() -> None:
    assert topic_specs(BootstrapSettings()) == list(TOPICS)


def test_partitions_retention_and_names_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOTSTRAP_RAW_PARTITIONS", "6")
    monkeypatch.setenv("BOOTSTRAP_RAW_RETENTION_MS", "3600000")
    monkeypatch.setenv("BOOTSTRAP_DLQ_TOPIC", "my.dlq")
    specs = topic_specs(BootstrapSettings())
    assert specs[0] == TopicSpec(RAW_TOPIC, 6, 3600000)
    assert specs[1].name == "my.dlq" and specs[1].name != DLQ_TOPIC


def test_zero_partitions_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOTSTRAP_RAW_PARTITIONS", "0")
    with pytest.raises(ValueError, match="raw_partitions"):
        BootstrapSettings()
