"""Indicators follow TA-Lib, stay inside their ticker, and drop the warm-up."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from stock_pipeline.contract import FEATURES_BASE_COLUMNS, SESSION_FLAG_COLUMNS, ticker_bucket
from stock_pipeline.datasets.delta_table import BucketLoaders
from stock_pipeline.pipelines.features import create_pipeline
from stock_pipeline.pipelines.features.indicators import (
    CONTRACT_INDICATORS,
    IndicatorConfigError,
    build_indicators,
)
from stock_pipeline.pipelines.features.nodes import (
    _recent_rows,
    compute_features,
    configured_recipe,
    update_features,
)

CONFIGURED = Path(__file__).resolve().parents[3] / "conf/base/parameters_features.yml"
PARAMS = {"price_column": "close", "drop_warmup": True, "indicators": CONTRACT_INDICATORS}
CONTRACT = [*FEATURES_BASE_COLUMNS, *SESSION_FLAG_COLUMNS]


def prices(ticker: str = "AAA.NS", sessions: int = 200, seed: int = 1) -> pd.DataFrame:
    """A random-walk OHLCV series on business days."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, sessions)))
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame(
        {
            "ticker": ticker,
            "date": pd.bdate_range("2022-01-03", periods=sessions),
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.99,
            "close": close,
            "adj_close": close * 0.95,
            "volume": rng.integers(1_000, 10_000, sessions),
        }
    )


def test_contract_columns_in_order_and_sorted():
    frame = pd.concat([prices("BBB.NS", seed=2), prices("AAA.NS")]).sample(frac=1, random_state=0)
    features = compute_features(frame, PARAMS)
    assert list(features.columns) == CONTRACT
    assert features[["ticker", "date"]].equals(
        features[["ticker", "date"]].sort_values(["ticker", "date"], ignore_index=True)
    )
    assert not features.isna().any().any()


def test_values_equal_talib_and_pandas_definitions():
    frame = prices()
    features = compute_features(frame, PARAMS | {"drop_warmup": False})
    close = frame["close"].to_numpy()
    np.testing.assert_allclose(features["sma_20"], talib.SMA(close, 20), equal_nan=True)
    np.testing.assert_allclose(features["rsi_14"], talib.RSI(close, 14), equal_nan=True)
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    np.testing.assert_allclose(features["macd"], macd, equal_nan=True)
    np.testing.assert_allclose(features["macd_signal"], signal, equal_nan=True)
    np.testing.assert_allclose(features["macd_hist"], hist, equal_nan=True)
    returns = frame["close"].pct_change()
    np.testing.assert_allclose(features["daily_return"], returns, equal_nan=True)
    np.testing.assert_allclose(
        features["volatility"], returns.rolling(20).std(ddof=1), rtol=1e-7, equal_nan=True
    )


def test_hand_computed_values():
    close = np.array([10, 11, 12, 11, 13], dtype=float)
    frame = pd.DataFrame(
        {
            "ticker": "T",
            "date": pd.bdate_range("2024-01-01", periods=5),
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "adj_close": close,
            "volume": 1,
        }
    )
    specs = [
        {"name": "daily_return"},
        {"name": "sma", "timeperiod": 3},
        {"name": "rsi", "timeperiod": 2},
        {"name": "volatility", "timeperiod": 3},
    ]
    features = compute_features(frame, {"indicators": specs, "drop_warmup": False})
    assert features["sma_3"].tolist()[2:] == pytest.approx([11.0, 34 / 3, 12.0])
    assert features["daily_return"].iloc[1] == pytest.approx(0.1)
    # Wilder RSI(2), seeded by the average of the first two changes (+1, +1): gains 1, losses 0.
    # Next change -1: avg gain (1*1+0)/2 = 0.5, avg loss (0+1)/2 = 0.5 -> RSI 50.
    assert features["rsi_2"].iloc[2] == pytest.approx(100.0)
    assert features["rsi_2"].iloc[3] == pytest.approx(50.0)
    window = np.array([1 / 10, 1 / 11, -1 / 12])
    assert features["volatility"].iloc[3] == pytest.approx(np.std(window, ddof=1))


def test_warmup_rows_are_dropped_per_ticker():
    features = compute_features(pd.concat([prices("A"), prices("B", sessions=120)]), PARAMS)
    assert features.groupby("ticker").size().to_dict() == {"A": 200 - 49, "B": 120 - 49}


def test_a_ticker_does_not_change_when_others_are_added():
    alone = compute_features(prices("AAA.NS"), PARAMS)
    together = compute_features(pd.concat([prices("AAA.NS"), prices("BBB.NS", seed=9)]), PARAMS)
    pd.testing.assert_frame_equal(
        alone, together[together["ticker"] == "AAA.NS"].reset_index(drop=True)
    )


def test_flat_series_gives_finite_values():
    frame = prices().assign(open=50.0, high=50.0, low=50.0, close=50.0, adj_close=50.0)
    features = compute_features(frame, PARAMS)
    assert np.isfinite(features.drop(columns=["ticker", "date"]).to_numpy(float)).all()
    assert (features["daily_return"] == 0).all()
    assert (features["volatility"].abs() < 1e-12).all()
    assert features["sma_50"].eq(50.0).all()


def test_series_shorter_than_the_warmup_yields_no_rows():
    features = compute_features(pd.concat([prices("SHORT", sessions=30), prices("LONG")]), PARAMS)
    assert set(features["ticker"]) == {"LONG"}


def test_adj_close_option_scales_every_price_input():
    frame = prices()
    on_adjusted = compute_features(frame, PARAMS | {"price_column": "adj_close"})
    on_close = compute_features(frame, PARAMS)
    np.testing.assert_allclose(on_adjusted["sma_20"], on_close["sma_20"] * 0.95)
    np.testing.assert_allclose(on_adjusted["rsi_14"], on_close["rsi_14"])


def test_any_talib_function_by_name():
    frame = prices()
    specs = [
        {"talib": "ADX", "timeperiod": 14},
        {"talib": "AROON", "timeperiod": 10},
        {"name": "bbands", "timeperiod": 20, "nbdevup": 2, "nbdevdn": 2},
    ]
    features = compute_features(frame, {"indicators": specs, "drop_warmup": False})
    high, low, close = (frame[c].to_numpy(float) for c in ("high", "low", "close"))
    np.testing.assert_allclose(features["adx_14"], talib.ADX(high, low, close, 14), equal_nan=True)
    down, up = talib.AROON(high, low, 10)
    np.testing.assert_allclose(features["aroon_10_aroondown"], down, equal_nan=True)
    np.testing.assert_allclose(features["aroon_10_aroonup"], up, equal_nan=True)
    upper, _, _ = talib.BBANDS(close, 20, 2.0, 2.0)
    np.testing.assert_allclose(features["bb_upper_20"], upper, equal_nan=True)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"talib": "NOPE"}, "unknown TA-Lib function"),
        ({"name": "sma", "window": 3}, "unknown parameter"),
        ({"name": "rsi", "timeperiod": "fast"}, "bad parameters"),
        ({"name": "wavelet"}, "unknown indicator"),
        ({"name": "volatility", "timeperiod": 1}, "timeperiod >= 2"),
    ],
)
def test_bad_configuration_fails_before_computing(spec: dict, message: str):
    with pytest.raises(IndicatorConfigError, match=message):
        build_indicators([spec])


def test_duplicate_columns_are_rejected():
    with pytest.raises(IndicatorConfigError, match="same column"):
        build_indicators([{"name": "sma", "timeperiod": 5}, {"talib": "SMA", "timeperiod": 5}])


LOCAL = {"engine": "local"}


def by_bucket(stored: pd.DataFrame, buckets: dict, params: dict = PARAMS) -> BucketLoaders:
    """Gold's rows as `features_stored` loads them: a function per bucket (every row in each), the
    table written under the recipe `params` configure."""
    loaders = BucketLoaders({bucket: (lambda: stored) for bucket in buckets})
    loaders.version, loaders.recipe = 3, configured_recipe(params, None)
    return loaders


def test_pipeline_runs_on_an_in_memory_catalog():
    catalog = DataCatalog(
        {
            "prices@buckets": MemoryDataset(BucketLoaders({str(ticker_bucket("AAA.NS")): prices})),
            "price_changes": MemoryDataset(pd.DataFrame({"ticker": ["AAA.NS"], "since": [pd.NaT]})),
            "features_stored": MemoryDataset(BucketLoaders()),  # no gold stored yet
            "params:features": MemoryDataset(PARAMS),
            "params:rebuild": MemoryDataset(False),
            "params:compute": MemoryDataset(LOCAL),
            "features": MemoryDataset(),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    assert len(catalog.load("features")[str(ticker_bucket("AAA.NS"))]()) == 151


def updated_rows(updated: dict) -> pd.DataFrame:
    """Every bucket's rows, sorted as the table holds them."""
    frames = [load() for load in updated.values()]
    return pd.concat(frames).sort_values(["ticker", "date"], ignore_index=True)


def test_only_the_rows_from_each_tickers_first_changed_date_are_updated():
    history = pd.concat([prices("AAA.NS"), prices("BBB.NS", seed=9)], ignore_index=True)
    buckets = BucketLoaders(
        {
            str(bucket): lambda bucket=bucket: history[
                history["ticker"].map(ticker_bucket) == bucket
            ]
            for bucket in set(history["ticker"].map(ticker_bucket))
        }
    )
    full = compute_features(history, PARAMS)
    since = history.loc[history["ticker"] == "AAA.NS", "date"].iloc[-3]
    changes = pd.DataFrame({"ticker": ["AAA.NS"], "since": [since]})
    stored = full[["ticker", "date"]]
    updated = updated_rows(
        update_features(
            buckets, changes, by_bucket(stored, buckets), PARAMS, rebuild=False, compute=LOCAL
        )
    )
    expected = full[(full["ticker"] == "AAA.NS") & (full["date"] >= since)].reset_index(drop=True)
    pd.testing.assert_frame_equal(updated, expected)  # recursive indicators included, exactly

    lagging = stored[~((stored["ticker"] == "BBB.NS") & (stored["date"] > since))]  # a stopped run
    healed = updated_rows(
        update_features(
            buckets, changes, by_bucket(lagging, buckets), PARAMS, rebuild=False, compute=LOCAL
        )
    )
    behind = (full["ticker"] == "BBB.NS") & (full["date"] > since)
    expected = full[behind | ((full["ticker"] == "AAA.NS") & (full["date"] >= since))]
    pd.testing.assert_frame_equal(healed, expected.reset_index(drop=True))

    rebuilt = updated_rows(
        update_features(
            buckets, changes, by_bucket(stored, buckets), PARAMS, rebuild=True, compute=LOCAL
        )
    )
    pd.testing.assert_frame_equal(rebuilt, full)


def test_a_daily_update_reads_only_the_memory_and_equals_a_rebuild():
    """Long histories, every configured indicator (recursive and cumulative ones included): a run
    adding sessions computes from the indicators' memory, anchors OBV on gold's last row, and
    gives a rebuild's values; a change inside the stored history is computed from the first bar."""
    configured = yaml.safe_load(CONFIGURED.read_text())["features"]
    params = PARAMS | {"indicators": configured["indicators"]}
    memory = max(indicator.memory for indicator in build_indicators(params["indicators"]))
    history = pd.concat(
        [prices(f"T{seed}.NS", sessions=3 * memory, seed=seed) for seed in range(4)],
        ignore_index=True,
    )
    buckets = BucketLoaders({"0": lambda: history})
    full = compute_features(history, params)
    days = np.sort(history["date"].unique())
    indicators = build_indicators(params["indicators"])
    for since, changed in ((days[-5], days[-5]), (days[-5], days[memory])):
        gold = full[full["date"] < since]  # as the run before stored it
        changes = pd.DataFrame({"ticker": ["T1.NS"], "since": [changed]})
        updated = updated_rows(
            update_features(
                buckets,
                changes,
                by_bucket(gold, buckets, params),
                params,
                rebuild=False,
                compute=LOCAL,
            )
        )
        expected = full[
            (full["date"] >= since) | ((full["ticker"] == "T1.NS") & (full["date"] >= changed))
        ]
        assert_equal_within_precision(updated, expected.reset_index(drop=True))
    last_rows = gold.groupby("ticker").last()
    daily = pd.Series(since, index=last_rows.index)
    recent, anchors = _recent_rows(history, daily, last_rows, indicators)
    assert len(recent) == 4 * (memory + 1 + 5)  # the memory, the anchor row, the new sessions
    assert list(anchors.index) == sorted(last_rows.index)


@pytest.mark.parametrize(
    ("change", "described"),
    [
        (lambda specs: [*specs, {"talib": "CCI", "timeperiod": 14}], "added cci_14"),
        (lambda specs: specs[:-1], "removed adx_14"),
        (
            lambda specs: [
                {**spec, "fastperiod": 10} if spec.get("name") == "macd" else spec for spec in specs
            ],
            "changed macd, macd_signal, macd_hist",
        ),
    ],
)
def test_a_changed_indicator_list_recomputes_every_row_and_replaces_the_table(
    change, described, caplog
):
    """Gold written under one recipe, then a run configured with another: every ticker from its
    first bar, the whole table replaced (its columns too), the log saying why. The incremental
    path must never keep the old recipe (a newly configured indicator silently left empty)."""
    configured = PARAMS | {
        "indicators": [*PARAMS["indicators"], {"talib": "ADX", "timeperiod": 14}]
    }
    history = pd.concat([prices("AAA.NS"), prices("BBB.NS", seed=9)], ignore_index=True)
    buckets = BucketLoaders({"0": lambda: history})
    stored = compute_features(history, configured)
    params = configured | {"indicators": change(configured["indicators"])}
    since = history["date"].iloc[-2]
    changes = pd.DataFrame({"ticker": ["AAA.NS"], "since": [since]})  # only one new session
    with caplog.at_level(logging.INFO):
        written = update_features(
            buckets, changes, by_bucket(stored, buckets, configured), params, False, LOCAL
        )
    assert written.overwrite and written.recipe == configured_recipe(params, None)
    assert f"features recipe changed ({described})" in caplog.text
    pd.testing.assert_frame_equal(updated_rows(written), compute_features(history, params))


def test_an_unchanged_recipe_keeps_the_incremental_path():
    history = prices("AAA.NS")
    buckets = BucketLoaders({"0": lambda: history})
    stored = compute_features(history, PARAMS)
    changes = pd.DataFrame({"ticker": ["AAA.NS"], "since": [history["date"].iloc[-1]]})
    written = update_features(buckets, changes, by_bucket(stored, buckets), PARAMS, False, LOCAL)
    assert not written.overwrite
    assert len(updated_rows(written)) == 1


def assert_equal_within_precision(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """The same keys; every float column within 1e-9 relative, NaN where the other is NaN."""
    pd.testing.assert_frame_equal(left[["ticker", "date"]], right[["ticker", "date"]])
    for column in left.columns.drop(["ticker", "date"]):
        np.testing.assert_allclose(left[column], right[column], rtol=1e-9, atol=0, err_msg=column)
