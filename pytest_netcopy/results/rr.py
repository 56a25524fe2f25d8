"""What a request/response benchmark records (``extra_info["rr"]``, docs/results-schema.md).

Kept beside :mod:`.record`, which lays it out; the bench fills it (bench/rr.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: the percentiles recorded, by their key's stem (``p999`` -> ``p999_us``)
PERCENTILES: dict[str, float] = {
    "p50": 50.0,
    "p90": 90.0,
    "p99": 99.0,
    "p999": 99.9,
    "p9999": 99.99,
}
#: the percentiles whose ``beyond`` count is recorded (samples above them)
BEYOND = ("p99", "p999", "p9999")
#: a percentile resting on fewer samples beyond it than this is noise (reports say so)
MIN_BEYOND = 1000


@dataclass(frozen=True)
class RrRate:
    """The open-loop schedule (``--netcopy-rr-rate``): offered and achieved, per connection."""

    offered_per_connection: float
    achieved_per_connection: float
    kept_schedule: bool
    #: transactions that started more than one interval after they were due
    late_fraction: float

    def to_extra_info(self) -> dict[str, Any]:
        return {
            "offered_per_connection": self.offered_per_connection,
            "achieved_per_connection": self.achieved_per_connection,
            "kept_schedule": self.kept_schedule,
            "late_fraction": self.late_fraction,
        }


@dataclass(frozen=True)
class RrFigures:
    """The round trips of a request/response benchmark's measured rounds (µs)."""

    response_size: int
    tcp_nodelay: bool
    transactions: int
    transactions_per_second: float
    #: p50 .. p9999 by the stems of :data:`PERCENTILES`
    percentiles_us: Mapping[str, float]
    max_us: float
    mean_us: float
    stddev_us: float
    #: samples above each of :data:`BEYOND`
    beyond: Mapping[str, int]
    #: the merged HdrHistogram, the library's compressed base64 text (values in ns)
    histogram: str
    rate: RrRate | None
    round_p50_us: list[float]
    round_p99_us: list[float]
    round_transactions: list[int]
    round_transactions_per_second: list[float]
    #: transactions (all connections) of the counted round the counters come from; None:
    #: no counted round (counters off, or not yet run)
    counted_transactions: int | None = None

    def to_extra_info(self) -> dict[str, Any]:
        rr: dict[str, Any] = {
            "response_size": self.response_size,
            "tcp_nodelay": self.tcp_nodelay,
            "transactions": self.transactions,
            "transactions_per_second": self.transactions_per_second,
        }
        rr.update({f"{stem}_us": self.percentiles_us[stem] for stem in PERCENTILES})
        rr.update(
            {
                "max_us": self.max_us,
                "mean_us": self.mean_us,
                "stddev_us": self.stddev_us,
                "beyond": {stem: self.beyond[stem] for stem in BEYOND},
                "histogram": self.histogram,
                "histogram_unit": "ns",
                "rate": None if self.rate is None else self.rate.to_extra_info(),
                "counted_transactions": self.counted_transactions,
            }
        )
        return {"rr": rr}

    def round_entries(self) -> dict[str, Any]:
        return {
            "rr_p50_us": list(self.round_p50_us),
            "rr_p99_us": list(self.round_p99_us),
            "rr_transactions": list(self.round_transactions),
            "rr_transactions_per_second": list(self.round_transactions_per_second),
        }
