"""A fixed log-scale histogram of milliseconds, and percentiles read back from it.

The recorder adds each finished job's duration and wait to a histogram per rollup row;
the API sums the rows of a range and reads percentiles from the sum. Buckets are fixed
(four per doubling: bucket ``i >= 1`` holds ``[2**((i-1)/4), 2**(i/4))`` ms, bucket 0
holds values under 1 ms), so histograms of any rows add up by index, in SQL or Python.

A percentile is the geometric middle of the bucket holding the nearest-rank value,
clamped to the exact min/max when known, so it is within ``RELATIVE_ERROR`` (2**(1/8) - 1,
about 9.05 %) of the true nearest-rank percentile (Postgres ``percentile_disc``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

STEPS_PER_DOUBLING = 4
MAX_BUCKET = STEPS_PER_DOUBLING * 40 + 1  # 2**40 ms (35 years): everything beyond shares it
RELATIVE_ERROR = 2 ** (1 / (2 * STEPS_PER_DOUBLING)) - 1

Histogram = dict[int, int]


def bucket_of(ms: float) -> int:
    """The bucket index of a value in milliseconds."""
    if ms < 1:
        return 0
    return min(math.floor(math.log2(ms) * STEPS_PER_DOUBLING) + 1, MAX_BUCKET)


def representative(index: int) -> float:
    """The value reported for a bucket: its geometric middle (0 for bucket 0)."""
    if index <= 0:
        return 0.0
    return float(2 ** ((index - 0.5) / STEPS_PER_DOUBLING))


def merge(histograms: Iterable[Mapping[int, int]]) -> Histogram:
    """Bucket-wise sum; buckets that sum to zero are dropped."""
    total: Histogram = {}
    for h in histograms:
        for index, count in h.items():
            total[index] = total.get(index, 0) + count
    return {i: n for i, n in total.items() if n}


def percentile(
    hist: Mapping[int, int], p: float, lo: float | None = None, hi: float | None = None
) -> float | None:
    """The nearest-rank ``p`` percentile (0 < p <= 1), or None for an empty histogram."""
    total = sum(n for n in hist.values() if n > 0)
    if total == 0:
        return None
    rank = max(1, math.ceil(p * total - 1e-9))
    seen = 0
    value = 0.0
    for index in sorted(hist):
        count = hist[index]
        if count <= 0:
            continue
        seen += count
        if seen >= rank:
            value = representative(index)
            break
    if lo is not None:
        value = max(value, float(lo))
    if hi is not None:
        value = min(value, float(hi))
    return round(value, 1)


def from_json(doc: Mapping[str, int] | None) -> Histogram:
    """A histogram as stored in jsonb (string keys)."""
    return {int(k): int(v) for k, v in (doc or {}).items()}
