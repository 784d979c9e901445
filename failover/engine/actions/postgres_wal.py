"""WAL positions and pg_waldump output, for the postgres actions' loss measurements.

An LSN ("16/B374D848") is a byte position in the WAL stream. `record_end` turns the position
pg_current_wal_insert_lsn() reports into the end of the last record, the form a standby's replay LSN
takes, so "the standby replayed everything the primary wrote" is `replay >= record_end(insert)`.
`WalScan` reads pg_waldump's output line by line (it can be long) and keeps only the totals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

LSN_PATTERN = r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$"
_LSN = re.compile(LSN_PATTERN)
PAGE_HEADER = 24  # SizeOfXLogShortPHD
LONG_PAGE_HEADER = 40  # SizeOfXLogLongPHD, at the start of a segment


def parse_lsn(text: str | None) -> int | None:
    """'16/B374D848' -> byte position; None for None/empty; ValueError for anything else."""
    if text is None or text == "":
        return None
    if not _LSN.match(str(text)):
        raise ValueError(f"{text!r} is not an LSN (like 0/3000060)")
    high, _, low = str(text).partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def record_end(insert_lsn: int, block_size: int = 8192, segment_size: int = 16 * 1024 * 1024) -> int:
    """The insert position points past the page header when the last record ended exactly at a page
    boundary; a replay position never does. Step back over that header."""
    if insert_lsn % segment_size == LONG_PAGE_HEADER:
        return insert_lsn - LONG_PAGE_HEADER
    if insert_lsn % block_size == PAGE_HEADER:
        return insert_lsn - PAGE_HEADER
    return insert_lsn


def timeline_from_walfile(name: str) -> int:
    """'000000020000000000000003' -> 2."""
    return int(name[:8], 16)


_RECORD = re.compile(r"len \(rec/tot\):\s*\d+/\s*(\d+), tx:\s*\d+, lsn: ([0-9A-F]+/[0-9A-F]+)")
_COMMIT = re.compile(r"desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC")
_END = re.compile(r"invalid record length at ([0-9A-F]+/[0-9A-F]+)")
_WALFILE = re.compile(r"^[0-9A-F]{24}$")


def newest_timeline(names: list[str]) -> int | None:
    """The newest timeline that has WAL segments among the file names of a pg_wal directory."""
    timelines = [timeline_from_walfile(n.strip()) for n in names if _WALFILE.match(n.strip())]
    return max(timelines, default=None)


@dataclass
class WalScan:
    """Totals over pg_waldump's lines (run with TZ=UTC so commit times read as UTC)."""

    start: int
    end: int = 0
    records: int = 0
    commits: int = 0
    first_commit_at: float | None = None
    last_commit_at: float | None = None

    def __post_init__(self) -> None:
        self.end = self.start

    def feed(self, line: str) -> None:
        record = _RECORD.search(line)
        if record:
            self.records += 1
            self.end = max(self.end, parse_lsn(record.group(2)) + int(record.group(1)))
            commit = _COMMIT.search(line)
            if commit:
                at = datetime.fromisoformat(commit.group(1)).replace(tzinfo=UTC).timestamp()
                self.commits += 1
                self.first_commit_at = at if self.first_commit_at is None else min(self.first_commit_at, at)
                self.last_commit_at = at if self.last_commit_at is None else max(self.last_commit_at, at)
            return
        end = _END.search(line)
        if end:
            self.end = max(self.end, parse_lsn(end.group(1)))
