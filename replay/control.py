"""Binance's control messages on a replay connection: schemas/control_messages.py's rules, with
the streams a replay serves (replay/streams.py). Pure."""

from replay.streams import StreamName, parse_stream
from schemas.control_messages import ControlOutcome
from schemas.control_messages import handle_control as answer_control


def handle_control(text: str, subscribed: list[str], combined: bool, max_streams: int) -> ControlOutcome[StreamName]:
    """Binance's answer to one control message, and what it changes."""
    return answer_control(text, subscribed, combined, max_streams, parse_stream, _name)


def _name(stream: StreamName) -> str:
    return stream.name
