"""`python -m bootstrap`: create the Kafka topics and migrate the database, then exit.

Idempotent: run before every start (compose runs it as the one-shot `init` service).
"""

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from psycopg2 import sql
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

import schemas
from bootstrap.settings import BootstrapSettings
from maintenance import runner as maintenance
from maintenance.settings import MaintenanceSettings
from schemas.topics import TopicSpec

log = logging.getLogger("bootstrap")


def retry_until(action: Callable[[], None], what: str, timeout_s: float) -> None:
    """Services start in any order: wait for a dependency instead of failing at once."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            action()
            return
        except (KafkaException, OperationalError) as error:
            if time.monotonic() > deadline:
                raise
            log.info("waiting", extra={"for": what, "error": str(error).splitlines()[0]})
            time.sleep(1)


def topic_specs(settings: BootstrapSettings) -> list[TopicSpec]:
    """The contract's topics with the names, partitions and retention the settings give."""
    return [
        TopicSpec(settings.raw_topic, settings.raw_partitions, settings.raw_retention_ms),
        TopicSpec(settings.dlq_topic, settings.dlq_partitions, settings.dlq_retention_ms),
    ]


def create_topics(bootstrap_servers: str, specs: list[TopicSpec]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    admin.list_topics(timeout=5)  # raises KafkaException until the broker answers
    new_topics = [
        NewTopic(spec.name, spec.partitions, 1, config={"retention.ms": str(spec.retention_ms)}) for spec in specs
    ]
    for name, future in admin.create_topics(new_topics, operation_timeout=30).items():
        try:
            future.result()
            log.info("topic created", extra={"topic": name})
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            log.info("topic exists", extra={"topic": name})


def migrate(database_url: str, api_role: str) -> None:
    config = Config(str(Path(schemas.__file__).parent / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")
    if api_role:
        grant_read_only(database_url, api_role)


def grant_read_only(database_url: str, role: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role})
        if exists.first() is None:
            log.warning("api role missing, no grant made", extra={"role": role})
            return
        statement = sql.SQL(
            "GRANT USAGE ON SCHEMA public TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"
        )
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(statement.format(role=sql.Identifier(role)))
    engine.dispose()
    log.info("read-only access granted", extra={"role": role})


def main() -> int:
    settings = BootstrapSettings()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler])

    specs = topic_specs(settings)
    timeout_s = settings.wait_timeout_s
    retry_until(lambda: create_topics(settings.kafka_bootstrap_servers, specs), "kafka", timeout_s)
    retry_until(lambda: migrate(settings.database_url, settings.api_role), "postgresql", timeout_s)
    # Partitions for today and ahead before any service writes (the consumer keeps them coming).
    maintenance.run_once(MaintenanceSettings(database_url=settings.database_url))
    log.info("ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
