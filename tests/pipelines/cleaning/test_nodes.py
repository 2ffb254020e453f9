"""Cleaning rules: each rejected row lands in quarantine with its rule; repairs never look ahead."""

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset

from stock_pipeline.contract import PRICE_VALUES, QUARANTINE_COLUMNS, SILVER_COLUMNS
from stock_pipeline.pipelines.cleaning import create_pipeline
from stock_pipeline.pipelines.cleaning.nodes import (
    combine_raw_prices,
    select_changed_prices,
    validate_bronze,
    validate_prices,
)
from stock_pipeline.trading_calendar import nse_sessions

NO_SILVER = pd.DataFrame(
    {"ticker": pd.Series(dtype=str), "date": pd.Series(dtype="datetime64[us]")}
)
RUN_CONTEXT = {"run_id": "run-1", "started_at": "2024-03-29T12:00:00+00:00"}
PARAMS = {
    "ffill_limit": 2,
    "check_trading_days": True,
    "outliers": {
        "method": "zscore",
        "action": "flag",
        "iqr_multiplier": 3.0,
        "zscore_threshold": 4.0,
        "mad_window": 60,
        "mad_threshold": 8.0,
    },
    "split_jump_threshold": 0.35,
    "freshness_threshold_hours": 36,
}


def bronze(ticker: str = "AAA.NS", sessions: int = 40, start: str = "2024-01-01") -> pd.DataFrame:
    """Text rows as bronze holds them, over real NSE sessions, on a seeded random walk (1% a day)."""
    days = nse_sessions(start, "2024-12-31")[:sessions]
    close = 100 * np.exp(np.cumsum(np.random.default_rng(7).normal(0, 0.01, sessions)))
    open_ = np.r_[100.0, close[:-1]]
    text = lambda values: [f"{value:.4f}" for value in values]  # noqa: E731
    return pd.DataFrame(
        {
            "ticker": ticker,
            "date": days.strftime("%Y-%m-%d"),
            "open": text(open_),
            "high": text(np.maximum(open_, close) + 0.5),
            "low": text(np.minimum(open_, close) - 0.5),
            "close": text(close),
            "adj_close": text(close),
            "volume": "1000",
            "dividends": "",
            "stock_splits": "",
        }
    )


def clean(raw: pd.DataFrame, **overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    return validate_prices(raw, PARAMS | overrides, RUN_CONTEXT)


def rule_of(quarantine: pd.DataFrame, raw_date: str) -> str:
    return quarantine.set_index("raw_date").loc[raw_date, "rule"]


def test_clean_data_passes_untouched():
    raw = bronze()
    prices, quarantine = clean(raw)
    assert len(prices) == len(raw)
    assert quarantine.empty
    assert list(quarantine.columns) == list(QUARANTINE_COLUMNS)
    assert not prices["is_filled"].any()


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("close", "abc", "unparsable_value"),
        ("high", "1", "ohlc_consistency"),
        ("low", "0", "non_positive_price"),
        ("open", "-5", "non_positive_price"),
        ("volume", "-1", "negative_volume"),
        ("date", "2031-01-02", "future_date"),
        ("date", "2024-01-06", "non_trading_day"),  # a Saturday
        ("date", "not-a-date", "unparsable_value"),
    ],
)
def test_each_rule_quarantines_with_raw_values(column: str, value: str, rule: str):
    raw = bronze()
    raw.loc[10, column] = value
    prices, quarantine = clean(raw)
    assert len(prices) == len(raw) - 1
    assert len(quarantine) == 1
    row = quarantine.iloc[0]
    assert row["rule"] == rule
    assert row[f"raw_{column}"] == value
    assert row["run_id"] == "run-1"
    assert row["stage"] == "cleaning"
    assert row["reason"]


def test_empty_prices_row_is_quarantined():
    raw = bronze()
    raw.loc[39, list(PRICE_VALUES)] = ""
    prices, quarantine = clean(raw)
    assert rule_of(quarantine, raw.loc[39, "date"]) == "empty_prices"
    assert len(prices) == 39


def test_duplicate_date_keeps_the_last_fetched_row():
    raw = bronze()
    again = raw.iloc[[5]].assign(volume="2222")
    prices, quarantine = clean(pd.concat([raw, again], ignore_index=True))
    assert len(prices) == len(raw)
    kept = prices.loc[prices["date"] == pd.Timestamp(raw.loc[5, "date"]), "volume"]
    assert kept.tolist() == [2222]
    assert quarantine["rule"].tolist() == ["duplicate_date"]


def test_forward_fill_is_limited_marked_and_never_backward():
    raw = bronze()
    raw.loc[0, "volume"] = ""  # first row: nothing earlier to fill from, never backfilled
    raw.loc[[10, 11], "adj_close"] = ""  # two sessions: filled
    raw.loc[[20, 21, 22], "volume"] = ""  # three sessions: the third is beyond the limit
    prices, quarantine = clean(raw)
    by_date = prices.set_index(prices["date"].dt.strftime("%Y-%m-%d"))
    assert by_date.loc[raw.loc[11, "date"], "adj_close"] == float(raw.loc[9, "adj_close"])
    assert by_date.loc[raw.loc[11, "date"], "is_filled"]
    assert sorted(quarantine["rule"]) == ["missing_value", "missing_value"]
    assert set(quarantine["raw_date"]) == {raw.loc[0, "date"], raw.loc[22, "date"]}


def test_flags_ghost_bars_outliers_and_suspected_splits():
    raw = bronze(sessions=60)
    raw.loc[30, list(PRICE_VALUES)] = raw.loc[30, "close"]
    raw.loc[30, "volume"] = "0"
    for column in PRICE_VALUES:  # scale halves: a 1:1 bonus
        raw.loc[45:, column] = (raw.loc[45:, column].astype(float) / 2).map("{:.4f}".format)
    prices, _ = clean(raw)
    assert prices.loc[prices["date"] == pd.Timestamp(raw.loc[30, "date"]), "is_ghost_bar"].all()
    jump = prices["date"] == pd.Timestamp(raw.loc[45, "date"])
    assert prices.loc[jump, "is_suspected_split"].all()
    assert prices.loc[jump, "is_outlier"].all()
    assert prices["is_suspected_split"].sum() == 1


@pytest.mark.parametrize("method", ["iqr", "zscore", "mad"])
def test_outlier_methods_can_quarantine(method: str):
    raw = bronze(sessions=120, start="2023-06-01")
    spike = float(raw.loc[100, "close"]) * 1.3
    raw.loc[100, ["close", "adj_close"]] = f"{spike:.4f}"
    raw.loc[100, "high"] = f"{spike + 0.5:.4f}"
    outliers = PARAMS["outliers"] | {"method": method, "action": "quarantine"}
    prices, quarantine = clean(raw, outliers=outliers)
    assert raw.loc[100, "date"] in set(quarantine.loc[quarantine["rule"] == "outlier", "raw_date"])
    assert not prices["is_outlier"].any()


def test_tickers_are_independent():
    alone, _ = clean(bronze("AAA.NS"))
    both, _ = clean(pd.concat([bronze("AAA.NS"), bronze("BBB.NS", sessions=10)], ignore_index=True))
    pd.testing.assert_frame_equal(alone, both[both["ticker"] == "AAA.NS"].reset_index(drop=True))


def test_combine_skips_unreadable_files_and_names_them():
    def broken() -> pd.DataFrame:
        raise ValueError("garbled")

    partitions = {"AAA.NS": lambda: bronze().drop(columns="ticker"), "BBB.NS": broken}
    report = {
        "tickers": {ticker: {"status": "created"} for ticker in ["AAA.NS", "BBB.NS", "CCC.NS"]}
    }
    combined, unreadable, plan = combine_raw_prices(partitions, report, NO_SILVER, PARAMS, False)
    assert set(combined["ticker"]) == {"AAA.NS"}
    assert "garbled" in unreadable["BBB.NS"]
    assert plan.set_index("ticker")["mode"].to_dict() == {"AAA.NS": "full"}


def test_stored_tickers_are_cleaned_from_their_new_rows_plus_the_lookback():
    raw = bronze(sessions=300, start="2023-06-01").drop(columns="ticker")
    stored = pd.DataFrame({"ticker": "AAA.NS", "date": pd.to_datetime(raw["date"][:280])})
    report = {"tickers": {"AAA.NS": {"status": "updated"}}}
    params = PARAMS | {"outliers": PARAMS["outliers"] | {"method": "mad"}}
    combined, _, plan = combine_raw_prices({"AAA.NS": lambda: raw}, report, stored, params, False)
    lookback = 2 * (2 * 60 + 2 + 2)
    assert len(combined) == 20 + lookback
    assert plan["mode"].tolist() == ["tail"]
    later = RUN_CONTEXT | {"started_at": "2025-06-02T12:00:00+00:00"}
    cleaned, _ = validate_prices(combined, params, later)
    silver, changes = select_changed_prices(cleaned, plan)
    full, _ = validate_prices(raw.assign(ticker="AAA.NS"), params, later)
    assert len(silver) == 20
    pd.testing.assert_frame_equal(silver, full.iloc[280:].reset_index(drop=True))
    assert changes["since"].tolist() == [pd.Timestamp(raw["date"][280])]

    nothing_new, _, plan = combine_raw_prices(
        {"AAA.NS": lambda: raw},
        report,
        pd.concat([stored, full[["ticker", "date"]]]),
        params,
        False,
    )
    assert nothing_new.empty and plan["mode"].tolist() == ["unchanged"]
    rebuilt, _, plan = combine_raw_prices({"AAA.NS": lambda: raw}, report, stored, params, True)
    assert len(rebuilt) == 300 and plan["mode"].tolist() == ["full"]


def test_changed_prices_have_the_contract_columns():
    raw = bronze().drop(columns="ticker")
    report = {"tickers": {"AAA.NS": {"status": "created"}}}
    prices, silver, changes, _, _ = validate_bronze(
        {"AAA.NS": lambda: raw}, report, NO_SILVER, PARAMS, False, RUN_CONTEXT, {"engine": "local"}
    )
    assert changes["since"].isna().all()  # a new ticker: the whole history changed
    (silver_rows,), (price_rows,) = silver.values(), prices.values()  # one bucket
    assert list(silver_rows().columns) == list(SILVER_COLUMNS)
    assert list(price_rows().columns) == [
        "ticker",
        "date",
        "open",
        "high",
        "low",
        "close",
        "adj_close",
        "volume",
    ]


def test_pipeline_slice_reports_quality_per_ticker(tmp_path):
    raw = bronze()
    raw.loc[3, "close"] = "oops"
    ingestion_report = {
        "window": {"start": "2024-01-01", "end": "2024-03-28"},
        "tickers": {
            "AAA.NS": {"status": "created", "reason": None},
            "BBB.NS": {"status": "failed", "reason": "NoDataError: delisted"},
        },
    }
    catalog = DataCatalog(
        {
            "raw_prices": MemoryDataset({"AAA.NS": lambda: raw.drop(columns="ticker")}),
            "clean_prices_stored": MemoryDataset(NO_SILVER),
            "params:rebuild": MemoryDataset(False),
            "params:compute": MemoryDataset({"engine": "local"}),
            "price_changes": MemoryDataset(),
            "params:cleaning": MemoryDataset(PARAMS),
            "run_context": MemoryDataset(RUN_CONTEXT),
            "ingestion_report": MemoryDataset(ingestion_report),
            "clean_prices": MemoryDataset(),
            "quarantine": MemoryDataset(),
            # kept on disk: the runner releases a memory dataset once its last reader has run
            "quality_report": JSONDataset(filepath=str(tmp_path / "quality_report.json")),
            "prices@table": MemoryDataset(),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    report = catalog.load("quality_report")
    aaa = report["tickers"]["AAA.NS"]
    assert aaa["total_rows"] == 40
    assert aaa["clean_rows"] == 39
    assert aaa["quarantine_by_rule"] == {"unparsable_value": 1}
    assert aaa["completeness"]["null_counts"]["close"] == 0
    day_after = pd.Timestamp(raw["date"].max()) + pd.Timedelta(days=1)
    expected_missing = len(nse_sessions(day_after, "2024-03-28"))
    assert aaa["freshness"]["missing_sessions"] == expected_missing
    assert aaa["freshness"]["stale"]
    assert 0 < aaa["quality_score"] < 100
    assert report["tickers"]["BBB.NS"]["status"] == "failed"
    assert "delisted" in report["tickers"]["BBB.NS"]["reason"]
    assert report["summary"]["tickers_failed"] == {"BBB.NS": "NoDataError: delisted"}
    assert len(catalog.load("quarantine")) == 1
    assert sum(len(rows()) for rows in catalog.load("prices@table").values()) == 39
