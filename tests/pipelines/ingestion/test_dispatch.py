"""Where ingestion's fetches run: an offline source on the local worker processes gives the same
outcomes as this process's threads, failures included."""

import logging
from datetime import date
from functools import partial

import pandas as pd

from stock_pipeline.contract import TickerStatus
from stock_pipeline.datasets import BronzeDataset
from stock_pipeline.pipelines.ingestion.dispatch import ingest_tickers
from stock_pipeline.pipelines.ingestion.nodes import ingest_ticker
from stock_pipeline.sources import build_source

PARAMS = {
    "source": "synthetic",
    "seed": 7,
    "interval": "1d",
    "max_workers": 3,
    "overlap_sessions": 5,
    "refresh_tolerance": 0.0005,
    "rate_limit": None,
}
WINDOW = (date(2024, 1, 1), date(2024, 6, 28))


def outcomes(tickers: list[str], loaders: dict, sends_requests: bool) -> dict:
    """Each ticker's outcome, fetched by threads here or by the local worker processes."""
    return dict(
        ingest_tickers(
            partial(ingest_ticker, window=WINDOW, params=PARAMS),
            tickers,
            loaders,
            partial(build_source, PARAMS),
            PARAMS,
            {"engine": "local"},
            sends_requests,
        )
    )


def test_an_offline_source_runs_on_the_local_workers_with_the_same_outcomes(tmp_path, caplog):
    stored = BronzeDataset(str(tmp_path))
    early = {"AAA.NS": (date(2024, 1, 1), date(2024, 3, 28)), "BAD.NS": None}
    source = build_source(PARAMS)
    stored.save({"AAA.NS": source.fetch("AAA.NS", *early["AAA.NS"]).astype(str)})
    (tmp_path / "BAD.NS.csv").write_bytes(b"\x00\xffnot,a,bronze\nfile")  # fails alone
    tickers = [f"T{i:03d}.NS" for i in range(120)] + ["AAA.NS", "BAD.NS"]
    with caplog.at_level(logging.INFO):
        on_workers = outcomes(tickers, stored.load(), sends_requests=False)
    assert "ingesting on the local workers: 122/122 tickers, 1 failed" in caplog.text
    here = outcomes(tickers, stored.load(), sends_requests=True)
    assert list(on_workers) == tickers
    assert on_workers["AAA.NS"].status == TickerStatus.UPDATED
    assert on_workers["BAD.NS"].status == TickerStatus.FAILED
    for ticker in tickers:
        left, right = on_workers[ticker], here[ticker]
        assert (left.status, left.rows_stored, left.reason) == (
            right.status,
            right.rows_stored,
            right.reason,
        )
        if left.data is not None:
            data = getattr(left.data, "rows", left.data)
            pd.testing.assert_frame_equal(data, getattr(right.data, "rows", right.data))
