"""Drift nodes on small frames built in the test."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stock_pipeline.datasets import SQLUpsertDataset
from stock_pipeline.db import upgrade_database
from stock_pipeline.pipelines.drift.nodes import (
    RESULT_COLUMNS,
    _benjamini_hochberg,
    build_health_alerts_node,
    detect_drift_node,
    drift_windows,
    freeze_drift_baseline_node,
    recommend_retraining_node,
    request_retraining_node,
)
from tests.pipelines.drift.simulation import RUN_CONTEXT, simulated_features


def flagged_share(results: pd.DataFrame) -> float:
    return results.groupby("ticker")["drift"].any().mean()


def test_ks_reproduces_the_seed_rule_with_scipy(params):
    features = simulated_features(tickers=4, sessions=150)
    params = {**params, "method": "ks"}

    results = detect_drift_node(features, {}, params, RUN_CONTEXT)

    assert list(results.columns) == RESULT_COLUMNS
    assert len(results) == 4 * len(params["features"])
    for row in results.itertuples():
        values = features.loc[features["ticker"] == row.ticker, row.feature].to_numpy()
        expected = stats.ks_2samp(values[-67:-7], values[-7:])
        assert row.statistic == expected.statistic
        assert row.p_value == expected.pvalue
        assert row.drift == (expected.pvalue < 0.05)
        assert (row.baseline_sample_size, row.current_sample_size) == (60, 7)


def test_ks_caps_samples_reproducibly_with_the_seed(params):
    features = simulated_features(tickers=3, sessions=150)
    params = {**params, "method": "ks", "sample_cap": 20}

    first = detect_drift_node(features, {}, params, RUN_CONTEXT)
    again = detect_drift_node(features, {}, params, RUN_CONTEXT)
    other_seed = detect_drift_node(features, {}, {**params, "seed": 7}, RUN_CONTEXT)

    assert set(first["baseline_sample_size"]) == {20}
    assert set(first["current_sample_size"]) == {7}
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first["p_value"], other_seed["p_value"])


def test_ks_flags_autocorrelated_features_without_any_change(params):
    results = detect_drift_node(simulated_features(), {}, {**params, "method": "ks"}, RUN_CONTEXT)

    assert flagged_share(results) >= 0.9


def test_calibrated_flags_no_ticker_when_nothing_changes(params):
    results = detect_drift_node(simulated_features(), {}, params, RUN_CONTEXT)

    assert results["p_value"].notna().all()
    assert flagged_share(results) <= 0.05


def test_calibrated_flags_tickers_whose_volatility_triples(params):
    results = detect_drift_node(simulated_features(vol_factor=3.0), {}, params, RUN_CONTEXT)

    assert flagged_share(results) >= 0.9
    assert results["method"].eq("calibrated").all()


def test_calibrated_p_values_are_empirical_over_the_tickers_past_pairs(params):
    features = simulated_features(tickers=2, sessions=200)
    results = detect_drift_node(features, {}, params, RUN_CONTEXT)

    sessions = results["ticker"].map(features.groupby("ticker").size())
    # a one-session change (diff, log_diff) has no value on the first row, so one pair fewer
    lag = results["feature"].map(params["transforms"]).str.endswith("diff").astype(int)
    pairs = sessions - lag - 67 + 1 - 7  # complete pairs whose current window ends before this one
    floors = 1 / (1 + pairs)
    multiples = results["p_value"] / floors
    assert (results["p_value"] >= floors).all()
    assert np.allclose(multiples, multiples.round())
    assert (multiples <= 1 + pairs).all()


def test_benjamini_hochberg_matches_scipy_and_skips_untested():
    p_values = np.array([0.01, 0.04, np.nan, 0.03, 0.005, 0.2, 0.03])

    adjusted = _benjamini_hochberg(p_values)

    tested = ~np.isnan(p_values)
    assert np.isnan(adjusted[2])
    assert np.allclose(adjusted[tested], stats.false_discovery_control(p_values[tested]))


def test_fdr_none_decides_each_test_at_alpha(params):
    features = simulated_features(vol_factor=3.0)
    corrected = detect_drift_node(features, {}, params, RUN_CONTEXT)
    uncorrected = detect_drift_node(features, {}, {**params, "fdr": "none"}, RUN_CONTEXT)

    assert (uncorrected["drift"] == (uncorrected["p_value"] < 0.05)).all()
    assert uncorrected["drift"].sum() >= corrected["drift"].sum()


@pytest.mark.parametrize("as_of", ["2019-09-02", "2019-08-31"])  # a Monday, then a Saturday
def test_as_of_replays_the_windows_ending_at_that_date(params, as_of):
    features = simulated_features(tickers=2, sessions=250)
    params = {**params, "method": "ks", "as_of": as_of}

    results = detect_drift_node(features, {}, params, RUN_CONTEXT)

    assert (results["as_of"] == pd.Timestamp(as_of)).all()
    for row in results.itertuples():
        ticker = features[(features["ticker"] == row.ticker) & (features["date"] <= as_of)]
        values = ticker[row.feature].to_numpy()
        assert row.p_value == stats.ks_2samp(values[-67:-7], values[-7:]).pvalue


def test_as_of_defaults_to_the_latest_date_and_rejects_dates_before_the_data(params):
    features = simulated_features(tickers=2, sessions=120)

    latest = detect_drift_node(features, {}, params, RUN_CONTEXT)

    assert (latest["as_of"] == features["date"].max()).all()
    with pytest.raises(ValueError, match="before the first date"):
        detect_drift_node(features, {}, {**params, "as_of": "2000-01-03"}, RUN_CONTEXT)


def test_too_little_history_is_reported_untested(params):
    features = simulated_features(tickers=2, sessions=150)  # 100 rows after warm-up

    results = detect_drift_node(features, {}, params, RUN_CONTEXT)
    recommendations = recommend_retraining_node(results, RUN_CONTEXT)

    assert results["p_value"].isna().all() and not results["drift"].any()
    assert recommendations["share_drifted"] == 0.0
    assert {entry["recommendation"] for entry in recommendations["tickers"].values()} == {"none"}
    assert all("not tested" in entry["reason"] for entry in recommendations["tickers"].values())


def test_covid_crash_is_flagged_on_the_real_sample(params, sample_features):
    results = detect_drift_node(sample_features, {}, {**params, "as_of": "2020-03-17"}, RUN_CONTEXT)

    assert results["p_value"].notna().all()
    assert flagged_share(results) >= 0.9


def test_frozen_baseline_is_the_window_ending_at_frozen_end(params):
    features = simulated_features(tickers=3, sessions=300)
    params = {**params, "baseline": "frozen", "frozen_end": "2019-06-28"}

    frozen = freeze_drift_baseline_node(features, params)["baseline"]
    ks = detect_drift_node(features, {"baseline": frozen}, {**params, "method": "ks"}, RUN_CONTEXT)
    calibrated = detect_drift_node(features, {"baseline": lambda: frozen}, params, RUN_CONTEXT)

    assert frozen.groupby("ticker").size().eq(60).all()
    assert (frozen.groupby("ticker")["date"].max() == pd.Timestamp("2019-06-28")).all()
    for row in ks.itertuples():
        baseline = frozen.loc[frozen["ticker"] == row.ticker, row.feature].to_numpy()
        current = features.loc[features["ticker"] == row.ticker, row.feature].to_numpy()[-7:]
        assert row.p_value == stats.ks_2samp(baseline, current).pvalue
    assert calibrated["p_value"].notna().all()
    assert set(calibrated["baseline_sample_size"]) <= {59, 60}


def test_frozen_mode_without_a_frozen_baseline_says_what_to_run(params):
    with pytest.raises(ValueError, match="--pipelines=baseline"):
        detect_drift_node(
            simulated_features(2, 150), {}, {**params, "baseline": "frozen"}, RUN_CONTEXT
        )


def drift_rows(run_id: str, drifted: dict[str, list[bool]]) -> pd.DataFrame:
    """drift_results rows for one run: tickers to per-feature decisions."""
    features = ["daily_return", "macd", "volatility"]
    return pd.DataFrame(
        [
            {
                "as_of": pd.Timestamp("2024-06-03"),
                "ticker": ticker,
                "feature": feature,
                "method": "calibrated",
                "statistic": 5.0,
                "p_value": 0.001 if flag else 0.5,
                "alpha": 0.05,
                "baseline_sample_size": 60,
                "current_sample_size": 7,
                "drift": flag,
                "run_id": run_id,
            }
            for ticker, flags in drifted.items()
            for feature, flag in zip(features, flags, strict=True)
        ]
    )


def test_recommendations_give_each_ticker_a_decision_and_a_reason():
    results = pd.concat(
        [
            drift_rows("run-0", {"AAA.NS": [True] * 3, "BBB.NS": [True] * 3}),
            drift_rows("run-1", {"AAA.NS": [False, True, True], "BBB.NS": [False] * 3}),
        ]
    )

    recommendations = recommend_retraining_node(results, RUN_CONTEXT)

    assert recommendations["as_of"] == "2024-06-03"
    assert recommendations["method"] == "calibrated"
    assert recommendations["share_drifted"] == 0.5
    assert recommendations["tickers"]["AAA.NS"] == {
        "recommendation": "retrain_model",
        "reason": "drift in 2 of 3 tested features (calibrated): macd, volatility",
        "drifted_features": ["macd", "volatility"],
    }
    assert recommendations["tickers"]["BBB.NS"]["recommendation"] == "none"


@pytest.mark.parametrize(("threshold", "requested"), [(0.5, True), (0.51, False)])
def test_retrain_request_only_when_the_drifted_share_reaches_the_threshold(threshold, requested):
    results = drift_rows("run-1", {"AAA.NS": [True, False, False], "BBB.NS": [False] * 3})
    recommendations = recommend_retraining_node(results, RUN_CONTEXT)

    request = request_retraining_node(
        recommendations, {"retrain_share_threshold": threshold}, RUN_CONTEXT
    )

    assert request["requested"] is requested
    assert request["tickers"] == (["AAA.NS"] if requested else [])
    assert request["requested_at"] == (RUN_CONTEXT["started_at"] if requested else None)
    assert (request["share_drifted"], request["threshold"]) == (0.5, threshold)


def test_alerts_are_one_row_per_drifted_feature_of_this_run_and_upsert_without_duplicates(
    tmp_path,
):
    results = pd.concat(
        [
            drift_rows("run-0", {"AAA.NS": [True] * 3}).assign(as_of=pd.Timestamp("2024-05-31")),
            drift_rows("run-1", {"AAA.NS": [True, False, True], "BBB.NS": [False] * 3}),
        ]
    )

    alerts = build_health_alerts_node(results, RUN_CONTEXT)

    assert alerts[["ticker", "feature"]].values.tolist() == [
        ["AAA.NS", "daily_return"],
        ["AAA.NS", "volatility"],
    ]
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    upgrade_database(url)
    table = SQLUpsertDataset(
        table="model_health_alerts", keys=["ticker", "feature", "as_of"], url=url
    )
    table.save(alerts)
    table.save(build_health_alerts_node(results, RUN_CONTEXT))
    stored = table.load()
    assert len(stored) == 2
    assert stored["detected_at"].notna().all()


@pytest.mark.parametrize("method", ["ks", "calibrated"])
def test_drift_windows_are_the_values_each_method_tests(params, method):
    features = simulated_features(tickers=2, sessions=150)
    params = {**params, "method": method}

    windows = drift_windows(features, "sma_20", params)

    assert set(windows["ticker"]) == set(features["ticker"])
    for ticker, rows in windows.groupby("ticker"):
        values = features.loc[features["ticker"] == ticker, "sma_20"].to_numpy()
        if method == "calibrated":  # sma_20 is tested as its one-session log change
            values = np.diff(np.log(values))
        assert np.allclose(rows.loc[rows["window"] == "baseline", "value"], values[-67:-7])
        assert np.allclose(rows.loc[rows["window"] == "current", "value"], values[-7:])


def test_drift_windows_take_the_baseline_from_the_frozen_window(params):
    features = simulated_features(tickers=2, sessions=300)
    params = {**params, "method": "ks", "frozen_end": "2019-06-28"}
    frozen = freeze_drift_baseline_node(features, params)["baseline"]

    windows = drift_windows(features, "rsi_14", params, frozen=frozen)

    baseline = windows[windows["window"] == "baseline"]
    assert baseline["date"].max() == pd.Timestamp("2019-06-28")
    assert baseline.groupby("ticker").size().eq(60).all()
    assert windows[windows["window"] == "current"].groupby("ticker").size().eq(7).all()
