"""The readers of a requested stream: its rows (kline streams computed from trades, the others read
as stored), and its known holes."""

from replay.hole_reader import HoleReader
from replay.kline_reader import KlineReader
from replay.player import StreamReader
from replay.streams import StreamKind, StreamName


def make_readers(stream: StreamName, order: int) -> tuple[StreamReader, ...]:
    rows = KlineReader(stream, order) if stream.kind is StreamKind.KLINE else StreamReader(stream, order)
    return rows, HoleReader(stream, order)
