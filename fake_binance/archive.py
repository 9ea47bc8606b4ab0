"""The public archive (data.binance.vision) for past days: its paths, zip files, CSV rows and CHECKSUMs.

Layout, as Binance publishes it (github.com/binance/binance-public-data):
  /data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2021-05-22.zip
  /data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2021-05-22.zip
  /data/spot/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2021-05-22.zip
  /data/spot/monthly/<same>/...-2021-05.zip                (a whole calendar month)
each beside `<name>.zip.CHECKSUM`, the line `sha256sum` prints: "<64 hex digits>  <name>.zip".
A zip holds one headerless CSV, `<name>.csv`; from 2025-01-01 on its times are microseconds.
Monthly klines of a month are named `1mo` (case-insensitive file systems can't tell 1m from 1M).
Daily files exist for the days the fake's past holds (fake_binance/past.py: up to the day before
yesterday), monthly ones for the months wholly in it. The fake keeps this module's layout apart
from the importer's, as an independent check.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import itertools
import re
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fake_binance import klines as kl
from fake_binance import wire
from fake_binance.exchange_info import SymbolRules
from fake_binance.klines import DAY_MS
from fake_binance.past import PastMarket

# Binance's spot archive switched to microsecond times with this day's files.
MICROSECONDS_FROM_MS = calendar.timegm((2025, 1, 1, 0, 0, 0)) * 1000
_DAILY_INTERVALS = tuple(i for i in kl.INTERVALS if i not in ("3d", "1w", "1M"))
_PATH = re.compile(
    r"/data/spot/(?P<period>daily|monthly)/(?P<kind>trades|aggTrades|klines)/(?P<symbol>[A-Z0-9]{2,20})/"
    r"(?:(?P<interval>[0-9]{1,2}[smhdwM]|1mo)/)?"
    r"(?P<name>(?P=symbol)-(?P<label>trades|aggTrades|[0-9]{1,2}[smhdw]|1mo)-"
    r"(?P<date>[0-9]{4}-[0-9]{2}(?:-[0-9]{2})?))\.zip(?P<checksum>\.CHECKSUM)?"
)
_CACHE_FILES = 16
_LINES_PER_WRITE = 4096
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """One file of the archive: which rows of which period."""

    kind: str  # trades, aggTrades or klines
    symbol: str
    interval: str | None  # Binance's name (1M, not 1mo)
    start_ms: int
    end_ms: int
    name: str  # without .zip

    def matches(self, entries: tuple[str, ...]) -> bool:
        """Whether a fault list names this file: by its name, or by its date (every file of it)."""
        return any(entry == self.name or self.name.endswith(f"-{entry}") for entry in entries)


def parse_path(path: str) -> tuple[ArchiveFile, bool] | None:
    """The file a path names and whether the CHECKSUM is asked, or None for a path not in the layout."""
    match = _PATH.fullmatch(path)
    if match is None:
        return None
    kind, interval_dir, label = match["kind"], match["interval"], match["label"]
    if (kind == "klines") != (interval_dir is not None) or (kind != "klines" and label != kind):
        return None
    if kind == "klines" and interval_dir != label:
        return None
    interval = None if interval_dir is None else ("1M" if interval_dir == "1mo" else interval_dir)
    try:
        start_ms, end_ms = _period(match["period"], match["date"])
    except ValueError:
        return None
    if interval is not None:
        allowed = kl.INTERVALS if match["period"] == "monthly" else _DAILY_INTERVALS
        if interval not in allowed or interval_dir == "1M":
            return None
    return ArchiveFile(kind, match["symbol"], interval, start_ms, end_ms, match["name"]), bool(match["checksum"])


def _period(period: str, date: str) -> tuple[int, int]:
    parts = [int(part) for part in date.split("-")]
    if period == "daily":
        if len(parts) != 3:
            raise ValueError(date)
        start = calendar.timegm(dt.date(*parts).timetuple()) * 1000
        return start, start + DAY_MS
    if len(parts) != 2 or not 1 <= parts[1] <= 12:
        raise ValueError(date)
    year, month = parts
    start = calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    return start, calendar.timegm((*following, 1, 0, 0, 0)) * 1000


def csv_lines(file: ArchiveFile, past: PastMarket, rules: SymbolRules) -> Iterator[str]:
    """The file's CSV rows, each ending in a line feed."""
    scale = wire.MICROSECONDS if file.start_ms >= MICROSECONDS_FROM_MS else wire.MILLISECONDS
    if file.kind == "trades":
        for trade in past.trades_between(file.symbol, file.start_ms, file.end_ms):
            row = wire.rest_trade(trade, rules, scale)
            yield (
                f"{row['id']},{row['price']},{row['qty']},{row['quoteQty']},{row['time']},"
                f"{_python_bool(row['isBuyerMaker'])},True\n"
            )
    elif file.kind == "aggTrades":
        for agg in past.agg_trades_between(file.symbol, file.start_ms, file.end_ms):
            row = wire.rest_agg_trade(agg, rules, scale)
            yield f"{row['a']},{row['p']},{row['q']},{row['f']},{row['l']},{row['T']},{_python_bool(row['m'])},True\n"
    else:
        assert file.interval is not None
        for kline in past.klines_between(file.symbol, file.interval, file.start_ms, file.end_ms):
            fields = wire.rest_kline_row(kline, rules, scale)
            if scale == wire.MICROSECONDS:  # a microsecond kline closes at ...999999, not ...999000
                fields[6] = (kline.close_time + 1) * 1000 - 1
            yield ",".join(str(field) for field in fields) + "\n"


def _python_bool(value: object) -> str:
    # The archive's CSV writes Python's booleans, not JSON's.
    return "True" if value else "False"


def is_published(file: ArchiveFile, past: PastMarket) -> bool:
    """Binance publishes a day's file the next day and a month's in the next month."""
    return file.end_ms <= past.end_ms


@dataclass(frozen=True, slots=True)
class BuiltZip:
    """A zip written to disk, with the SHA-256 of its bytes (its CHECKSUM)."""

    path: Path
    size: int
    sha256: hashlib._Hash

    def checksum(self, extra: bytes = b"") -> str:
        """The hex digest of the file's bytes followed by `extra` (a tampered CHECKSUM's)."""
        digest = self.sha256.copy()
        digest.update(extra)
        return digest.hexdigest()

    def chunks(self, length: int) -> Iterator[bytes]:
        """The file's first `length` bytes, a chunk at a time."""
        with self.path.open("rb") as data:
            while length > 0 and (chunk := data.read(min(_CHUNK_BYTES, length))):
                length -= len(chunk)
                yield chunk


class ArchiveFiles:
    """Zips built on demand, written to a temporary directory as their rows are generated (a day of
    millions of trades never held whole), and kept there for the CHECKSUM and zip requests."""

    def __init__(self, past: PastMarket) -> None:
        self.past = past
        self._directory = tempfile.TemporaryDirectory(prefix="fake-binance-archive-")
        self._built: OrderedDict[str, BuiltZip] = OrderedDict()

    def zip_file(self, file: ArchiveFile, rules: SymbolRules) -> BuiltZip:
        cached = self._built.get(file.name)
        if cached is not None:
            self._built.move_to_end(file.name)
            return cached
        path = Path(self._directory.name) / f"{file.name}.zip"
        with (
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
            archive.open(f"{file.name}.csv", "w") as member,
        ):
            lines = csv_lines(file, self.past, rules)
            while batch := "".join(itertools.islice(lines, _LINES_PER_WRITE)):
                member.write(batch.encode())
        sha256 = hashlib.sha256()
        with path.open("rb") as data:
            while chunk := data.read(_CHUNK_BYTES):
                sha256.update(chunk)
        built = BuiltZip(path, path.stat().st_size, sha256)
        self._built[file.name] = built
        if len(self._built) > _CACHE_FILES:
            _, dropped = self._built.popitem(last=False)
            dropped.path.unlink(missing_ok=True)
        return built


def checksum_line(hex_digest: str, file_name: str) -> str:
    return f"{hex_digest}  {file_name}\n"
