"""The replay's Prometheus metrics, on its own metrics port (schemas/metrics_http.py).

Frames are counted per connection and added here about once a second, never per frame: the
counter's lock would cost as much as building the frame.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge


class ReplayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.replays_active = Gauge("replay_connections_open", "Replays playing now", registry=self.registry)
        self.replays_started = Counter(
            "replay_connections_started", "Replays accepted and started", registry=self.registry
        )
        self.refused = Counter(
            "replay_connections_refused",
            "Connections refused before playing, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.closed = Counter(
            "replay_connections_closed", "Replays ended, by close code", ["code"], registry=self.registry
        )
        self.frames_sent = Counter("replay_frames_sent", "Frames handed to clients", registry=self.registry)
        self.control_messages = Counter("replay_control_messages", "Control messages answered", registry=self.registry)
