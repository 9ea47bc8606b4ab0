"""data.binance.vision's files: fetched, verified against their CHECKSUM, then read row by row.

A file is spooled to disk while its SHA-256 is computed (constant memory whatever its size), and
nothing of it is handed out until the digest equals the one its `.CHECKSUM` names and the zip's
own CRCs check out: a mismatch or a truncated download is an ArchiveError naming the file.
"""

import contextlib
import hashlib
import logging
import re
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests

from producer.history.plan import Unit
from producer.limits import backoff_delay

log = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20
_ATTEMPTS = 5
# What `sha256sum` prints: the digest, two spaces (or a space and '*' in binary mode), the name.
_CHECKSUM_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *]?(\S+)\s*")
# The archive's longest sensible pause; a longer Retry-After is not believed.
_MAX_RETRY_AFTER_S = 300.0


class ArchiveError(Exception):
    """A file that can't be used (bad checksum, truncated zip, unexpected answer); names the file."""


class ArchiveMissing(Exception):
    """The archive has no such file (404): the day was not published."""


@dataclass(frozen=True, slots=True)
class VerifiedFile:
    unit: Unit
    path: Path
    size_bytes: int


class ArchiveClient:
    def __init__(self, base_url: str, timeout_s: float, spool_dir: Path) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.spool_dir = spool_dir
        self.session = requests.Session()
        self.requests = 0
        self.rate_limited = 0

    def _get(self, url: str, stream: bool) -> requests.Response:
        """GET with the archive's refusals waited out (429: Retry-After) and transient errors retried."""
        failures = 0
        while True:
            self.requests += 1
            try:
                response = self.session.get(url, timeout=self.timeout_s, stream=stream)
            except requests.RequestException as error:
                failures += 1
                if failures >= _ATTEMPTS:
                    raise ArchiveError(f"{url}: {error!r} ({failures} attempts)") from error
                time.sleep(backoff_delay(failures, 0.5, 30.0))
                continue
            if response.status_code == 404:
                response.close()
                raise ArchiveMissing(url)
            if response.status_code in (429, 418) or response.status_code >= 500:
                failures += response.status_code >= 500
                self.rate_limited += response.status_code in (429, 418)
                delay = _retry_after_s(response, backoff_delay(failures, 0.5, 30.0))
                response.close()
                if failures >= _ATTEMPTS:
                    raise ArchiveError(f"{url}: HTTP {response.status_code} ({failures} attempts)")
                log.warning(
                    "archive refused, waiting", extra={"url": url, "status": response.status_code, "wait_s": delay}
                )
                time.sleep(delay)
                continue
            if response.status_code != 200:
                response.close()
                raise ArchiveError(f"{url}: HTTP {response.status_code}")
            return response

    def expected_digest(self, unit: Unit) -> str:
        url = f"{self.base_url}/{unit.path}.CHECKSUM"
        text = self._get(url, stream=False).text
        match = _CHECKSUM_LINE.fullmatch(text.strip() + "\n")
        if match is None or match[2] != f"{unit.file_name}.zip":
            raise ArchiveError(
                f"{unit.file_name}.zip: its CHECKSUM is not '<sha256>  {unit.file_name}.zip': {text[:200]!r}"
            )
        return match[1].lower()

    @contextlib.contextmanager
    def fetch(self, unit: Unit) -> Iterator[VerifiedFile]:
        """The file, downloaded and verified; deleted when the block ends. Raises ArchiveMissing, ArchiveError."""
        expected = self.expected_digest(unit)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.spool_dir, prefix=f"{unit.file_name}.", suffix=".zip") as spool:
            digest, size = self._download(f"{self.base_url}/{unit.path}", spool)
            if digest != expected:
                raise ArchiveError(
                    f"{unit.file_name}.zip: SHA-256 {digest} of the {size} bytes received is not {expected}, the one"
                    " its CHECKSUM names (truncated or corrupt); nothing of it was published"
                )
            _check_zip(unit, Path(spool.name))
            yield VerifiedFile(unit, Path(spool.name), size)

    def _download(self, url: str, spool: IO[bytes]) -> tuple[str, int]:
        response = self._get(url, stream=True)
        sha256 = hashlib.sha256()
        size = 0
        try:
            for chunk in response.iter_content(_CHUNK_BYTES):
                sha256.update(chunk)
                spool.write(chunk)
                size += len(chunk)
        except requests.RequestException:
            pass  # a cut connection: the digest below can't match, and the error says so
        finally:
            response.close()
        spool.flush()
        return sha256.hexdigest(), size


def _retry_after_s(response: requests.Response, default: float) -> float:
    try:
        return min(_MAX_RETRY_AFTER_S, max(0.0, float(response.headers.get("Retry-After", default))))
    except ValueError:
        return default


def _check_zip(unit: Unit, path: Path) -> None:
    """The checksum vouches for the bytes; this for the zip inside them (one CSV, CRCs right)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if len(names) != 1 or not names[0].endswith(".csv"):
                raise ArchiveError(f"{unit.file_name}.zip: expected one CSV inside, found {names}")
            bad = archive.testzip()
            if bad is not None:
                raise ArchiveError(f"{unit.file_name}.zip: {bad} fails its CRC; nothing of it was published")
    except (zipfile.BadZipFile, EOFError) as error:
        raise ArchiveError(
            f"{unit.file_name}.zip: not a complete zip ({error}); nothing of it was published"
        ) from error


def rows(file: VerifiedFile) -> Iterator[bytes]:
    """The CSV's rows without line ends, streamed (a header row, which spot files lack, is skipped)."""
    with zipfile.ZipFile(file.path) as archive, archive.open(archive.namelist()[0]) as member:
        first = True
        for line in member:
            row = line.rstrip(b"\r\n")
            if first:
                first = False
                if row[:1].isalpha():
                    continue
            if row:
                yield row


# The column holding each row's time: a trade's time, an aggTrade's T, a kline's open time.
_TIME_COLUMN = {"trade": 4, "aggTrade": 5}


def row_time_ms(unit: Unit, row: bytes) -> int | None:
    """The row's time in ms, or None when it has none readable (it is published for the consumer to judge)."""
    column = _TIME_COLUMN.get(unit.stream, 0)
    fields = row.split(b",", column + 1)
    try:
        value = int(fields[column])
    except (IndexError, ValueError):
        return None
    return value // 1000 if unit.microseconds else value
