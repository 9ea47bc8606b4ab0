"""A Kafka broker of a test's own (KRaft, broker and controller in one JVM), from the stack's jars.

For tests that stop Kafka: the shared test stack's broker (29092) must never be stopped, because
other tests use it at the same time. Formatting and the first start take about 8 s, a restart
about 4 s (docs: /work/shared/VERIFIED.md).
"""

from __future__ import annotations

import base64
import socket
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from tests.conftest import REPO, free_port, wait_until


class PrivateKafka:
    def __init__(self, libs: str, directory: Path, heap: str = "256m") -> None:
        self.libs = libs
        self.directory = directory
        self.heap = heap
        self.port = free_port()
        controller = free_port()
        (directory / "data").mkdir(parents=True)
        self.log_path = directory / "kafka.log"
        self.config = directory / "server.properties"
        self.config.write_text(
            "process.roles=broker,controller\nnode.id=1\n"
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller}\n"
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}\n"
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
            "inter.broker.listener.name=PLAINTEXT\ncontroller.listener.names=CONTROLLER\n"
            f"controller.quorum.bootstrap.servers=127.0.0.1:{controller}\n"
            f"log.dirs={directory / 'data'}\nauto.create.topics.enable=false\n"
            "offsets.topic.replication.factor=1\ntransaction.state.log.replication.factor=1\n"
            "transaction.state.log.min.isr=1\n"
            # As docker-compose.yml's broker: a new group's first member starts at once.
            "group.initial.rebalance.delay.ms=0\n"
        )
        # A KRaft cluster id is a UUID in URL-safe base64 (what StorageTool random-uuid prints).
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        subprocess.run(
            [*self._java(), "kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(self.config), "--standalone"],
            capture_output=True,
            check=True,
        )
        self.process: subprocess.Popen[bytes] | None = None

    def _java(self, *options: str) -> list[str]:
        return [
            "java",
            *options,
            f"-Dlog4j2.configurationFile={REPO / 'scripts/kafka/log4j2.yaml'}",
            "-Dkafka.log.level=WARN",
            "-cp",
            f"{self.libs}/*",
        ]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self._java(f"-Xms{self.heap}", f"-Xmx{self.heap}"), "kafka.Kafka", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def answers() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log_tail()
            # A plain TCP probe first: a Kafka client aimed at a closed port logs every retry.
            with socket.socket() as probe:
                probe.settimeout(0.5)
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return False
            metadata = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=5)
            return bool(metadata.brokers)

        wait_until(answers, timeout_s, "the test's own Kafka broker")

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM: a clean shutdown (about 2 s); what the broker acknowledged survives on disk."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
