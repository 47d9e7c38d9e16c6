"""The demo tasks, above all ``price-file-parser``, run directly with an in-memory sink."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobdeck.events import Event, EventType
from jobdeck_worker import demo
from jobdeck_worker.context import JobContext
from jobdeck_worker.errors import NonRetryableError
from jobdeck_worker.lifecycle import JobRun


class ListSink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, job_id: str, event: Event, coalesce: bool = False) -> None:
        self.events.append(event)

    async def backpressure(self) -> None:
        return None


def job(
    data: Any, name: str = "price-file-parser", attempt: int = 1
) -> tuple[JobContext, ListSink]:
    sink = ListSink()
    return JobContext(JobRun("j", "q", name, attempt, 3, 1), data, sink), sink


async def test_parses_the_bundled_sample_file() -> None:
    ctx, sink = job({"path": "prices.csv"})
    result = await demo.parse_price_file(ctx)
    assert result["rows"] == 15
    assert result["unique_skus"] == 15
    assert set(result["currencies"]) == {"EUR", "USD"}
    assert result["min_price"] == 3.49 and result["max_price"] == 149.0
    assert result["currencies"]["USD"]["rows"] == 7
    assert [e.fields["progress"] for e in sink.events if e.type is EventType.PROGRESS][-1] == 100


@pytest.fixture
def price_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``tmp_path`` allowed as a price-file folder for the test."""
    monkeypatch.setenv("JOBDECK_WORKER_PRICE_DIRS", str(tmp_path))
    demo.price_file_roots.cache_clear()
    yield tmp_path
    demo.price_file_roots.cache_clear()


async def test_reports_progress_per_chunk_and_sums_exactly(price_dir: Path) -> None:
    tmp_path = price_dir
    lines = ["SKU;Name;Price;Currency"] + [f"S{i};Item {i};0.10;eur" for i in range(10)]
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines) + "\n")
    ctx, sink = job({"path": str(path), "delimiter": ";", "chunk_rows": 3})
    result = await demo.parse_price_file(ctx)
    assert result["rows"] == 10 and result["total"] == 1.0  # Decimal, not 0.9999999
    progress = [e.fields["progress"] for e in sink.events if e.type is EventType.PROGRESS]
    assert len(progress) == 5  # four chunks and the final 100
    assert progress == sorted(progress) and progress[-1] == 100


async def test_inline_content_with_missing_currency_uses_the_default() -> None:
    ctx, _ = job({"content": "sku,price\nA,1.50\nA,2.50\n", "currency": "gbp"})
    result = await demo.parse_price_file(ctx)
    assert result["currencies"] == {
        "GBP": {"rows": 2, "total": 4.0, "min_price": 1.5, "max_price": 2.5}
    }
    assert result["duplicate_skus"] == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sku,price\nA,1\nB,abc\n", "line 3: price 'abc' is not a number"),
        ("sku,price\nA,1\nB,2,3\n", "line 3: expected 2 fields, found 3"),
        ("sku,price\nA,-1\n", "line 2: price '-1' must be zero or more"),
        ("sku,price\n,1\n", "line 2: empty sku"),
        ("sku,price,currency\nA,1,EURO\n", "line 2: currency 'EURO' is not a 3-letter code"),
        ("name,price\nA,1\n", "line 1: header lacks column\\(s\\) sku"),
        ("sku,price\n", "header but no rows"),
        ("", "empty"),
        ('sku,price\nA,"1\n', "line"),
    ],
)
async def test_malformed_files_fail_naming_the_line(content: str, message: str) -> None:
    ctx, _ = job({"content": content})
    with pytest.raises(demo.PriceFileError, match=message):
        await demo.parse_price_file(ctx)


async def test_missing_file_and_missing_input_are_clear(price_dir: Path) -> None:
    with pytest.raises(demo.PriceFileError, match=r"not found: .*x\.csv"):
        await demo.parse_price_file(job({"path": str(price_dir / "x.csv")})[0])
    with pytest.raises(demo.PriceFileError, match=r"data\.path or inline as data\.content"):
        await demo.parse_price_file(job({})[0])
    with pytest.raises(NonRetryableError, match="JSON object"):
        await demo.parse_price_file(job([1, 2])[0])


async def test_files_outside_the_allowed_folders_are_refused(price_dir: Path) -> None:
    for outside in ("/etc/passwd", "../../../../etc/passwd", str(price_dir / ".." / "x.csv")):
        with pytest.raises(demo.PriceFileError, match="outside the allowed folders"):
            await demo.parse_price_file(job({"path": outside})[0])


async def test_flaky_fails_then_recovers() -> None:
    with pytest.raises(ConnectionError):
        await demo.flaky(job({"failures": 2}, "flaky", attempt=2)[0])
    assert await demo.flaky(job({"failures": 2}, "flaky", attempt=3)[0]) == {"attempt": 3}


async def test_send_email_checks_the_address() -> None:
    with pytest.raises(NonRetryableError, match="email address"):
        await demo.send_email(job({"to": "nobody"}, "send-email")[0])
    result = await demo.send_email(job({"to": "a@b.c", "delay": 0}, "send-email")[0])
    assert result["to"] == "a@b.c"
