"""Demo tasks, so a fresh stack has something real to run and watch.

``price-file-parser`` parses a CSV price file (``data.path`` or inline ``data.content``);
the others are small fakes for demos and tests. ``--tasks jobdeck_worker.demo`` (the
default) serves them.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from jobdeck_worker.context import JobContext
from jobdeck_worker.errors import NonRetryableError
from jobdeck_worker.registry import TaskRegistry

registry = TaskRegistry()

SAMPLES = Path(__file__).parent / "samples"
SAMPLE_PRICE_FILE = SAMPLES / "prices.csv"
REQUIRED_COLUMNS = ("sku", "price")
MAX_INLINE_CHARS = 10_000_000


class PriceFileError(NonRetryableError):
    """The price file is missing or malformed; the same file would fail again."""


def _data(job: JobContext) -> dict[str, Any]:
    if job.data is None:
        return {}
    if not isinstance(job.data, dict):
        raise NonRetryableError(f"task {job.name!r} expects a JSON object as data")
    return job.data


@dataclass
class CurrencyTotals:
    rows: int = 0
    total: Decimal = Decimal(0)
    min: Decimal | None = None
    max: Decimal | None = None

    def add(self, price: Decimal) -> None:
        self.rows += 1
        self.total += price
        self.min = price if self.min is None or price < self.min else self.min
        self.max = price if self.max is None or price > self.max else self.max

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "total": float(self.total),
            "min_price": float(self.min) if self.min is not None else None,
            "max_price": float(self.max) if self.max is not None else None,
        }


@dataclass
class PriceSummary:
    default_currency: str
    rows: int = 0
    skus: set[str] = field(default_factory=set)
    duplicates: int = 0
    all: CurrencyTotals = field(default_factory=CurrencyTotals)
    by_currency: dict[str, CurrencyTotals] = field(default_factory=dict)

    def add_row(self, line: int, row: dict[str, str]) -> None:
        sku = (row.get("sku") or "").strip()
        if not sku:
            raise PriceFileError(f"line {line}: empty sku")
        raw_price = (row.get("price") or "").strip()
        try:
            price = Decimal(raw_price)
        except InvalidOperation:
            raise PriceFileError(f"line {line}: price {raw_price!r} is not a number") from None
        if not price.is_finite() or price < 0:
            raise PriceFileError(f"line {line}: price {raw_price!r} must be zero or more")
        currency = (row.get("currency") or "").strip().upper() or self.default_currency
        if len(currency) != 3 or not currency.isalpha():
            raise PriceFileError(f"line {line}: currency {currency!r} is not a 3-letter code")
        self.rows += 1
        if sku in self.skus:
            self.duplicates += 1
        self.skus.add(sku)
        self.all.add(price)
        self.by_currency.setdefault(currency, CurrencyTotals()).add(price)

    def result(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "unique_skus": len(self.skus),
            "duplicate_skus": self.duplicates,
            **{k: v for k, v in self.all.summary().items() if k != "rows"},
            "currencies": {c: t.summary() for c, t in sorted(self.by_currency.items())},
        }


@functools.cache
def price_file_roots() -> tuple[Path, ...]:
    """Folders ``data.path`` may name files in: the bundled samples, plus the folders listed
    in ``JOBDECK_WORKER_PRICE_DIRS`` (separated by ``:``). Read once, on first use."""
    extra = os.environ.get("JOBDECK_WORKER_PRICE_DIRS", "")
    return (SAMPLES, *(Path(p).resolve() for p in extra.split(os.pathsep) if p))


def resolve_price_file(raw_path: str, roots: tuple[Path, ...]) -> Path:
    """The file ``raw_path`` names, refused unless it lies inside one of ``roots``: whoever may
    enqueue a job must not be able to make the worker read (and quote) any file of its host."""
    path = Path(raw_path)
    path = (path if path.is_absolute() else roots[0] / path).resolve()
    if not any(path.is_relative_to(root.resolve()) for root in roots):
        raise PriceFileError(
            f"price file {raw_path!r} is outside the allowed folders "
            "(the bundled samples and JOBDECK_WORKER_PRICE_DIRS)"
        )
    return path


def _open_price_file(data: dict[str, Any]) -> tuple[io.TextIOBase, int, str]:
    """The text to parse, its size (for progress), and where it came from."""
    if isinstance(data.get("content"), str):
        content: str = data["content"]
        if len(content) > MAX_INLINE_CHARS:
            raise PriceFileError(f"inline content longer than {MAX_INLINE_CHARS} characters")
        return io.StringIO(content, newline=""), len(content), "inline content"
    raw_path = data.get("path")
    if not isinstance(raw_path, str) or not raw_path:
        raise PriceFileError("give the price file as data.path or inline as data.content")
    path = resolve_price_file(raw_path, price_file_roots())
    try:
        size = path.stat().st_size
        return path.open(newline="", encoding="utf-8-sig"), size, str(path)
    except (FileNotFoundError, IsADirectoryError):
        raise PriceFileError(f"price file not found: {raw_path}") from None
    except PermissionError:
        raise PriceFileError(f"price file not readable: {raw_path}") from None


def _chunks(reader: Iterator[list[str]], size: int) -> Iterator[list[tuple[int, list[str]]]]:
    chunk: list[tuple[int, list[str]]] = []
    for fields in reader:
        chunk.append((reader.line_num, fields))  # type: ignore[attr-defined]
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@registry.task("price-file-parser")
async def parse_price_file(job: JobContext) -> dict[str, Any]:
    """Parse a CSV price file (header with at least sku and price), summarising it per currency.

    data: ``path`` (in the bundled samples or JOBDECK_WORKER_PRICE_DIRS) or ``content``;
    optional ``delimiter`` (","), ``currency`` (default when a row has none, "USD"),
    ``chunk_rows`` (rows between progress reports, 500).
    """
    data = _data(job)
    delimiter = str(data.get("delimiter") or ",")
    chunk_rows = max(int(data.get("chunk_rows") or 500), 1)
    summary = PriceSummary(default_currency=str(data.get("currency") or "USD").upper())
    handle, size, source = _open_price_file(data)
    job.log("info", f"parsing price file {source} ({size} bytes)")
    with handle:
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise PriceFileError("price file is empty") from None
        except csv.Error as exc:
            raise PriceFileError(f"line 1: {exc}") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise PriceFileError(f"line 1: header lacks column(s) {', '.join(missing)}")
        read_chars = 0
        try:
            for chunk in _chunks(reader, chunk_rows):
                for line, fields in chunk:
                    if not fields or all(not f.strip() for f in fields):
                        continue
                    if len(fields) != len(header):
                        raise PriceFileError(
                            f"line {line}: expected {len(header)} fields, found {len(fields)}"
                        )
                    summary.add_row(line, dict(zip(header, fields, strict=True)))
                    read_chars += sum(len(f) + 1 for f in fields)
                pct = 100.0 if size == 0 else min(99.0, 100.0 * read_chars / size)
                await job.progress(round(pct, 1), f"{summary.rows} rows")
        except csv.Error as exc:
            raise PriceFileError(f"line {reader.line_num}: {exc}") from None
    if summary.rows == 0:
        raise PriceFileError("price file has a header but no rows")
    await job.progress(100, f"{summary.rows} rows")
    job.log("info", f"parsed {summary.rows} rows in {len(summary.by_currency)} currencies")
    return summary.result()


@registry.task("sleep")
async def sleep(job: JobContext) -> dict[str, Any]:
    """Sleep ``data.seconds`` (1) in ``data.steps`` (10) steps, reporting progress."""
    data = _data(job)
    seconds = float(data.get("seconds", 1.0))
    steps = max(int(data.get("steps", 10)), 1)
    job.log("info", f"sleeping {seconds:g}s")
    for step in range(1, steps + 1):
        await asyncio.sleep(seconds / steps)
        await job.progress(100 * step / steps)
    return {"slept": seconds}


@registry.task("noop")
async def noop(job: JobContext) -> None:
    return None


@registry.task("echo")
async def echo(job: JobContext) -> Any:
    return job.data


@registry.task("fail")
async def fail(job: JobContext) -> None:
    message = _data(job).get("message") or "this task always fails"
    job.log("error", str(message))
    raise RuntimeError(str(message))


@registry.task("flaky")
async def flaky(job: JobContext) -> dict[str, Any]:
    """Fail the first ``data.failures`` (1) attempts, then succeed."""
    failures = int(_data(job).get("failures", 1))
    if job.attempt <= failures:
        job.log("warning", f"attempt {job.attempt}: failing on purpose")
        raise ConnectionError(f"flaky failure on attempt {job.attempt} (fails {failures} times)")
    job.log("info", f"attempt {job.attempt}: succeeded")
    return {"attempt": job.attempt}


@registry.task("send-email")
async def send_email(job: JobContext) -> dict[str, Any]:
    """Pretend to send ``data.to`` an email, taking ``data.delay`` (0.2) seconds."""
    data = _data(job)
    to = data.get("to")
    if not isinstance(to, str) or "@" not in to:
        raise NonRetryableError(f"data.to must be an email address, got {to!r}")
    job.log("info", f"connecting to the mail relay for {to}")
    await job.progress(30, "connected")
    await asyncio.sleep(float(data.get("delay", 0.2)))
    await job.progress(100, "sent")
    job.log("info", f"sent {data.get('subject', '(no subject)')!r} to {to}")
    return {"message_id": f"<{uuid.uuid4().hex}@jobdeck.demo>", "to": to}


@registry.task("generate-report")
async def generate_report(job: JobContext) -> dict[str, Any]:
    """A slower fake: ``data.sections`` (5) sections of ``data.section_s`` (0.5) seconds each."""
    data = _data(job)
    sections = max(int(data.get("sections", 5)), 1)
    for i in range(1, sections + 1):
        await asyncio.sleep(float(data.get("section_s", 0.5)))
        job.log("info", f"section {i}/{sections} rendered")
        await job.progress(100 * i / sections, f"section {i}/{sections}")
    return {"sections": sections, "pages": sections * 3}
