"""Drift nodes on small frames built in the test."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stock_pipeline.contract import DRIFT_RESULT_COLUMNS
from stock_pipeline.datasets import SQLUpsertDataset
from stock_pipeline.db import upgrade_database
from stock_pipeline.pipelines.drift.nodes import (
    _cauchy_combination,
    build_health_alerts,
    detect_drift,
    drift_windows,
    freeze_drift_baseline,
    recommend_retraining,
    request_retraining,
)
from tests.pipelines.drift.simulation import RUN_CONTEXT, simulated_features

LONG = 600  # sessions: enough history for the regime (`regime_min_history` of its own values)


def flagged(results: pd.DataFrame) -> pd.Series:
    """Each tested (as_of, ticker)'s decision."""
    tested = results[results["ticker_p_value"].notna()]
    return tested.groupby(["as_of", "ticker"])["ticker_drift"].first()


def test_ks_reproduces_the_seed_rule_with_scipy(params):
    features = simulated_features(tickers=4, sessions=150)
    params = {**params, "method": "ks"}

    results = detect_drift(features, {}, params, RUN_CONTEXT)

    assert list(results.columns) == list(DRIFT_RESULT_COLUMNS)
    assert len(results) == 4 * len(params["features"])
    for row in results.itertuples():
        values = features.loc[features["ticker"] == row.ticker, row.feature].to_numpy()
        expected = stats.ks_2samp(values[-67:-7], values[-7:])
        assert row.statistic == expected.statistic
        assert row.p_value == expected.pvalue
        assert row.drift == (expected.pvalue < 0.05)
        assert (row.baseline_sample_size, row.current_sample_size) == (60, 7)
    per_ticker = results.groupby("ticker")
    assert (per_ticker["ticker_p_value"].first() == per_ticker["p_value"].min()).all()
    assert (per_ticker["ticker_drift"].first() == per_ticker["drift"].any()).all()


def test_ks_caps_samples_reproducibly_with_the_seed(params):
    features = simulated_features(tickers=3, sessions=150)
    params = {**params, "method": "ks", "sample_cap": 20}

    first = detect_drift(features, {}, params, RUN_CONTEXT)
    again = detect_drift(features, {}, params, RUN_CONTEXT)
    other_seed = detect_drift(features, {}, {**params, "seed": 7}, RUN_CONTEXT)

    assert set(first["baseline_sample_size"]) == {20}
    assert set(first["current_sample_size"]) == {7}
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first["p_value"], other_seed["p_value"])


def test_ks_flags_autocorrelated_features_without_any_change(params):
    results = detect_drift(simulated_features(), {}, {**params, "method": "ks"}, RUN_CONTEXT)

    assert flagged(results).mean() >= 0.9


def test_calibrated_flags_no_ticker_when_nothing_changes(params):
    results = detect_drift(simulated_features(sessions=LONG), {}, params, RUN_CONTEXT)

    assert results[["p_value", "shock_p_value"]].notna().all().all()
    assert flagged(results).mean() <= 0.05
    assert results["driver"].isna().all()


def test_calibrated_flags_tickers_whose_volatility_triples(params):
    results = detect_drift(simulated_features(vol_factor=3.0), {}, params, RUN_CONTEXT)

    assert flagged(results).mean() >= 0.9
    assert results["method"].eq("calibrated").all()


@pytest.mark.parametrize("garch", [False, True], ids=["iid_normal", "garch_t"])
@pytest.mark.parametrize("sessions", [400, LONG], ids=["shock_alone", "shock_and_regime"])
def test_calm_tickers_are_flagged_at_most_alpha_within_binomial_error(params, garch, sessions):
    tickers = 400  # independent tickers: the false alarm count is binomial(400, <= alpha)
    market = simulated_features(tickers, sessions=sessions, garch=garch, seed=11)

    results = detect_drift(market, {}, params, RUN_CONTEXT)

    assert bool(results["p_value"].notna().all()) is (sessions == LONG)  # the regime needs history
    decisions = flagged(results)
    alpha = params["alpha"]
    assert len(decisions) == tickers
    assert decisions.mean() <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / tickers)


def test_a_calm_tickers_decision_does_not_depend_on_how_many_others_drift(params):
    calm = simulated_features(tickers=10, seed=5)
    others_shocked = simulated_features(tickers=10, seed=5, vol_factor=3.0, shocked=5)
    all_shocked = simulated_features(tickers=10, seed=5, vol_factor=3.0, shocked=9)
    last = "T009.NS"  # calm in all three markets

    runs = [
        detect_drift(market, {}, params, RUN_CONTEXT)
        for market in (calm, others_shocked, all_shocked)
    ]

    shares = [flagged(run).mean() for run in runs]
    assert shares[0] < shares[1] < shares[2]
    mine = [run[run["ticker"] == last].reset_index(drop=True) for run in runs]
    pd.testing.assert_frame_equal(mine[0], mine[1])
    pd.testing.assert_frame_equal(mine[0], mine[2])


def test_a_large_shock_gets_p_values_below_any_empirical_floor(params):
    sessions = LONG
    features = simulated_features(tickers=2, sessions=sessions, vol_factor=10.0)

    results = detect_drift(features, {}, params, RUN_CONTEXT)

    floor = 1 / (1 + sessions)  # an empirical p-value of fewer past windows than sessions
    daily = results[results["feature"] == "daily_return"]
    assert (daily[["p_value", "shock_p_value"]] < floor / 10).all().all()
    assert daily["drift"].all()
    assert results["driver"].notna().all()
    assert set(results["kind"]) == {"shock+regime"}


def vol_profile(sessions: int, **spans: tuple[int, int, float]) -> np.ndarray:
    """A volatility factor per session: 1, except (first, last, factor) spans counted from the end."""
    path = np.ones(sessions)
    for first, last, factor in spans.values():
        path[sessions - first : sessions - last] = factor
    return path


@pytest.mark.parametrize(
    ("spans", "kinds", "recommendation"),
    [
        # volatility x3 this week only: a shock, and the market before it was calm: both
        ({"week": (7, 0, 3.0)}, {"shock+regime"}, "retrain_model"),
        # x3 for the last 25 sessions: the conditional scale has caught up, the baseline has not
        ({"month": (25, 0, 3.0)}, {"regime", "shock+regime"}, "retrain_model"),
        # volatile baseline, a calm month, x4 this week: a spike back to the baseline's level
        ({"baseline": (88, 28, 4.0), "week": (7, 0, 4.0)}, {"shock"}, "watch"),
    ],
    ids=["spike", "lasting_regime", "spike_within_the_regime"],
)
def test_the_kind_tells_a_shock_from_a_regime_and_only_a_regime_asks_for_retraining(
    params, spans, kinds, recommendation
):
    features = simulated_features(tickers=40, sessions=LONG, vol_path=vol_profile(LONG, **spans))

    results = detect_drift(features, {}, params, RUN_CONTEXT)
    recommendations = recommend_retraining(results, RUN_CONTEXT)

    found = results.groupby("ticker")["kind"].first()
    flagged = found.dropna()
    assert len(flagged) >= 0.5 * len(found)  # a spike within a volatile history is the hardest
    assert flagged.isin(kinds).mean() >= 0.8
    assert flagged.value_counts().index[0] == sorted(kinds, key=len)[0]  # the most common
    advice = [recommendations["tickers"][ticker] for ticker in flagged[flagged.isin(kinds)].index]
    assert {entry["recommendation"] for entry in advice} == {recommendation}


def test_cauchy_combination_is_the_cauchy_tail_of_the_mean_tangent():
    p_values = np.array([[0.01, 0.5, 0.3], [0.2, np.nan, 0.2], [1e-12, 0.9, 1.0], [np.nan] * 3])

    combined = _cauchy_combination(p_values, np.ones(3))

    tangents = np.tan((0.5 - np.minimum(p_values[:3], 0.999)) * np.pi)
    expected = stats.cauchy.sf(np.nanmean(tangents, axis=1))
    assert np.allclose(combined[:3], expected, rtol=1e-9)
    assert combined[1] == pytest.approx(0.2)  # equal p-values combine to themselves
    assert np.isnan(combined[3])


def test_weighted_cauchy_combination_weighs_the_tangents_of_the_tested_p_values():
    p_values = np.array([[0.01, 0.5, 0.3], [0.02, np.nan, 0.6]])
    weights = np.array([6.0, 1.0, 3.0])

    combined = _cauchy_combination(p_values, weights)

    tangents = np.tan((0.5 - p_values) * np.pi)
    assert combined[0] == pytest.approx(stats.cauchy.sf(tangents[0] @ weights / 10), rel=1e-9)
    assert combined[1] == pytest.approx(
        stats.cauchy.sf((6 * tangents[1, 0] + 3 * tangents[1, 2]) / 9)
    )
    # a small p-value of weight share w reaches alpha near w alpha, like a weighted Bonferroni
    alone = _cauchy_combination(np.array([[0.6 * 0.05, 0.5, 0.5]]), weights)[0]
    assert alone == pytest.approx(0.05, abs=0.005)


def test_feature_weights_must_not_all_be_zero_and_ignore_unmonitored_features(params, caplog):
    features = simulated_features(tickers=2, sessions=150)

    with pytest.raises(ValueError, match=">= 0"):
        zero = dict.fromkeys(params["features"], 0)
        detect_drift(features, {}, {**params, "feature_weights": zero}, RUN_CONTEXT)
    weighted = detect_drift(features, {}, {**params, "feature_weights": {"close": 2}}, RUN_CONTEXT)
    plain = detect_drift(features, {}, {**params, "feature_weights": {}}, RUN_CONTEXT)
    pd.testing.assert_frame_equal(weighted, plain)
    assert "unmonitored features ignored: ['close']" in caplog.text


def test_a_ticker_drifts_when_its_combined_p_value_is_below_alpha_and_names_its_drivers(params):
    features = simulated_features(tickers=20, seed=8, vol_factor=3.0, shocked=10)
    signal_weights = np.array([params["signal_weights"][signal] for signal in ("shock", "regime")])

    results = detect_drift(features, {}, params, RUN_CONTEXT)

    for _, rows in results.groupby("ticker"):
        weights = rows["feature"].map(params["feature_weights"]).fillna(1.0).to_numpy()
        shock, regime = (
            _cauchy_combination(rows[column].to_numpy()[None, :], weights)[0]
            for column in ("shock_p_value", "p_value")
        )
        combined = _cauchy_combination(np.array([[shock, regime]]), signal_weights)[0]
        drifted = combined < params["alpha"]
        assert np.allclose(rows["ticker_p_value"], combined)
        assert rows["ticker_drift"].eq(drifted).all()
        strongest = np.fmin(rows["shock_p_value"], rows["p_value"])
        assert rows["drift"].tolist() == (drifted & (strongest < params["alpha"])).tolist()
        kind = "+".join(
            name for name, p in (("shock", shock), ("regime", regime)) if p < params["alpha"]
        )
        assert rows["kind"].eq(kind).all() if drifted else rows["kind"].isna().all()
        driver = rows.loc[strongest.idxmin(), "feature"]
        assert rows["driver"].eq(driver).all() if drifted else rows["driver"].isna().all()
    assert results["drift"].any()


def test_signal_weights_must_name_known_signals_and_not_all_be_zero(params):
    features = simulated_features(tickers=2, sessions=300)

    for weights, message in (
        ({"trend": 1}, "unknown signals"),
        ({"shock": 0, "regime": 0}, ">= 0"),
    ):
        with pytest.raises(ValueError, match=message):
            detect_drift(features, {}, {**params, "signal_weights": weights}, RUN_CONTEXT)
    shock_only = detect_drift(
        features, {}, {**params, "signal_weights": {"regime": 0}}, RUN_CONTEXT
    )
    weights = params["feature_weights"]
    rows = shock_only.groupby("ticker").first()
    for ticker, row in rows.iterrows():
        mine = shock_only[shock_only["ticker"] == ticker]
        expected = _cauchy_combination(
            mine["shock_p_value"].to_numpy()[None, :],
            mine["feature"].map(weights).fillna(1.0).to_numpy(),
        )[0]
        assert row["ticker_p_value"] == pytest.approx(expected)


@pytest.mark.parametrize("method", ["calibrated", "ks"])
def test_a_replayed_range_equals_single_date_runs(params, method):
    features = simulated_features(tickers=4, sessions=300, vol_factor=3.0, shocked=2)
    params = {**params, "method": method}
    sessions = pd.DatetimeIndex(np.sort(features["date"].unique()))

    replay = detect_drift(
        features,
        {},
        {**params, "as_of_start": str(sessions[120].date()), "as_of_end": None},
        RUN_CONTEXT,
    )

    assert list(replay["as_of"].unique()) == list(sessions[120:])
    assert len(replay) == len(sessions[120:]) * 4 * len(params["features"])
    for day in (sessions[120], sessions[200], sessions[-1]):
        single = detect_drift(features, {}, {**params, "as_of": str(day.date())}, RUN_CONTEXT)
        rows = replay[replay["as_of"] == day].reset_index(drop=True)
        pd.testing.assert_frame_equal(rows, single)


def test_a_replay_ends_at_as_of_end(params):
    features = simulated_features(tickers=2, sessions=250)

    replay = detect_drift(
        features,
        {},
        {**params, "as_of_start": "2019-09-02", "as_of_end": "2019-09-08"},
        RUN_CONTEXT,
    )

    assert [day.date().isoformat() for day in replay["as_of"].unique()] == [
        "2019-09-02",
        "2019-09-03",
        "2019-09-04",
        "2019-09-05",
        "2019-09-06",
    ]


def test_as_of_decides_one_date_even_where_a_range_is_configured(params):
    features = simulated_features(tickers=2, sessions=250)
    dates = {"as_of": "2019-09-02", "as_of_start": "2019-08-01", "as_of_end": None}

    results = detect_drift(features, {}, {**params, **dates}, RUN_CONTEXT)

    assert set(results["as_of"]) == {pd.Timestamp("2019-09-02")}


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        ({"as_of_end": "2019-09-02"}, "as_of_end needs drift.as_of_start"),
        ({"as_of_start": "2030-01-01"}, "no session in features"),
    ],
)
def test_as_of_dates_that_cannot_be_meant_are_refused(params, dates, message):
    with pytest.raises(ValueError, match=message):
        detect_drift(
            simulated_features(tickers=2, sessions=120), {}, {**params, **dates}, RUN_CONTEXT
        )


@pytest.mark.parametrize("as_of", ["2019-09-02", "2019-08-31"])  # a Monday, then a Saturday
def test_as_of_replays_the_windows_ending_at_that_date(params, as_of):
    features = simulated_features(tickers=2, sessions=250)
    params = {**params, "method": "ks", "as_of": as_of}

    results = detect_drift(features, {}, params, RUN_CONTEXT)

    assert (results["as_of"] == pd.Timestamp(as_of)).all()
    for row in results.itertuples():
        ticker = features[(features["ticker"] == row.ticker) & (features["date"] <= as_of)]
        values = ticker[row.feature].to_numpy()
        assert row.p_value == stats.ks_2samp(values[-67:-7], values[-7:]).pvalue


def test_as_of_defaults_to_the_latest_date_and_rejects_dates_before_the_data(params):
    features = simulated_features(tickers=2, sessions=120)

    latest = detect_drift(features, {}, params, RUN_CONTEXT)

    assert (latest["as_of"] == features["date"].max()).all()
    with pytest.raises(ValueError, match="before the first date"):
        detect_drift(features, {}, {**params, "as_of": "2000-01-03"}, RUN_CONTEXT)


def test_too_little_history_is_reported_untested(params):
    features = simulated_features(tickers=2, sessions=150)  # 100 rows after warm-up

    results = detect_drift(features, {}, params, RUN_CONTEXT)
    recommendations = recommend_retraining(results, RUN_CONTEXT)

    assert results["p_value"].isna().all() and not results["drift"].any()
    assert results["ticker_p_value"].isna().all() and not results["ticker_drift"].any()
    assert recommendations["share_drifted"] == 0.0
    assert {entry["recommendation"] for entry in recommendations["tickers"].values()} == {"none"}
    assert all("not tested" in entry["reason"] for entry in recommendations["tickers"].values())


def test_covid_crash_is_flagged_on_the_real_sample(params, sample_features):
    results = detect_drift(sample_features, {}, {**params, "as_of": "2020-03-17"}, RUN_CONTEXT)

    # the sample starts in 2019: the shock decides alone, the regime lacks a year of history
    assert results["shock_p_value"].notna().all() and results["p_value"].isna().all()
    assert flagged(results).mean() >= 0.9


def test_frozen_baseline_is_the_window_ending_at_frozen_end(params):
    features = simulated_features(tickers=3, sessions=LONG)
    params = {**params, "baseline": "frozen", "frozen_end": "2019-06-28"}

    frozen = freeze_drift_baseline(features, params)["baseline"]
    ks = detect_drift(features, {"baseline": frozen}, {**params, "method": "ks"}, RUN_CONTEXT)
    calibrated = detect_drift(features, {"baseline": lambda: frozen}, params, RUN_CONTEXT)

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
        detect_drift(simulated_features(2, 150), {}, {**params, "baseline": "frozen"}, RUN_CONTEXT)


def drift_rows(
    run_id: str, drifted: dict[str, list[bool]], as_of: str = "2024-06-03", kind: str = "regime"
) -> pd.DataFrame:
    """drift_results rows for one run and as_of: tickers to per-feature decisions, all of `kind`."""
    features = ["daily_return", "macd", "volatility"]
    return pd.DataFrame(
        [
            {
                "as_of": pd.Timestamp(as_of),
                "ticker": ticker,
                "feature": feature,
                "method": "calibrated",
                "statistic": 5.0,
                "p_value": 0.001 if flag and kind != "shock" else 0.5,
                "shock_statistic": 4.0,
                "shock_p_value": 0.001 if flag and kind != "regime" else 0.5,
                "alpha": 0.05,
                "baseline_sample_size": 60,
                "current_sample_size": 7,
                "drift": flag,
                "ticker_p_value": 0.003 if any(flags) else 0.5,
                "ticker_drift": any(flags),
                "kind": kind if any(flags) else None,
                "driver": features[flags.index(True)] if any(flags) else None,
                "run_id": run_id,
            }
            for ticker, flags in drifted.items()
            for feature, flag in zip(features, flags, strict=True)
        ],
        columns=list(DRIFT_RESULT_COLUMNS),
    )


def test_recommendations_give_each_ticker_a_decision_and_a_reason():
    results = pd.concat(
        [
            drift_rows("run-0", {"AAA.NS": [True] * 3, "BBB.NS": [True] * 3}),
            drift_rows("run-1", {"AAA.NS": [False, True, True], "BBB.NS": [False] * 3}),
        ]
    )

    recommendations = recommend_retraining(results, RUN_CONTEXT)

    assert recommendations["as_of"] == "2024-06-03"
    assert recommendations["method"] == "calibrated"
    assert recommendations["share_drifted"] == 0.5
    assert recommendations["tickers"]["AAA.NS"] == {
        "recommendation": "retrain_model",
        "kind": "regime",
        "reason": "drift in 2 of 3 tested features (calibrated): macd, volatility; "
        "a regime change against the baseline",
        "drifted_features": ["macd", "volatility"],
    }
    assert recommendations["tickers"]["BBB.NS"]["recommendation"] == "none"


def test_a_shock_alone_is_watched_and_asks_for_no_retraining():
    results = pd.concat(
        [
            drift_rows("run-1", {"AAA.NS": [True, False, False]}, kind="shock"),
            drift_rows("run-1", {"BBB.NS": [True, True, False]}, kind="shock+regime"),
            drift_rows("run-1", {"CCC.NS": [False] * 3, "DDD.NS": [False] * 3}),
        ]
    )

    recommendations = recommend_retraining(results, RUN_CONTEXT)
    request = request_retraining(recommendations, {"retrain_share_threshold": 0.25}, RUN_CONTEXT)
    alerts = build_health_alerts(results, RUN_CONTEXT)

    shock = recommendations["tickers"]["AAA.NS"]
    assert (shock["recommendation"], shock["kind"]) == ("watch", "shock")
    assert shock["reason"].endswith("the regime holds, so watch")
    assert recommendations["tickers"]["BBB.NS"]["recommendation"] == "retrain_model"
    assert (recommendations["share_drifted"], recommendations["share_shock_only"]) == (0.25, 0.25)
    assert request["requested"] and request["tickers"] == ["BBB.NS"]
    assert alerts.set_index("ticker")["kind"].to_dict() == {
        "AAA.NS": "shock",
        "BBB.NS": "shock+regime",
    }
    assert alerts[["shock_statistic", "shock_p_value", "statistic", "p_value"]].notna().all().all()


def test_results_stored_before_the_two_signals_still_recommend_retraining():
    results = drift_rows("run-1", {"AAA.NS": [True, False, False]}).drop(
        columns=["kind", "shock_statistic", "shock_p_value"]
    )

    advice = recommend_retraining(results, RUN_CONTEXT)["tickers"]["AAA.NS"]

    assert (advice["recommendation"], advice["kind"]) == ("retrain_model", None)
    assert advice["reason"] == "drift in 1 of 3 tested features (calibrated): daily_return"


def test_a_replay_recommends_and_alerts_on_its_latest_as_of_only():
    results = pd.concat(
        [
            drift_rows("run-1", {"AAA.NS": [True] * 3, "BBB.NS": [True] * 3}, as_of="2024-05-31"),
            drift_rows("run-1", {"AAA.NS": [False, False, True], "BBB.NS": [False] * 3}),
        ]
    )

    recommendations = recommend_retraining(results, RUN_CONTEXT)
    alerts = build_health_alerts(results, RUN_CONTEXT)

    assert recommendations["as_of"] == "2024-06-03"
    assert recommendations["share_drifted"] == 0.5
    assert alerts[["ticker", "feature"]].values.tolist() == [["AAA.NS", "volatility"]]
    assert set(alerts["as_of"]) == {pd.Timestamp("2024-06-03").date()}


@pytest.mark.parametrize(("threshold", "requested"), [(0.5, True), (0.51, False)])
def test_retrain_request_only_when_the_drifted_share_reaches_the_threshold(threshold, requested):
    results = drift_rows("run-1", {"AAA.NS": [True, False, False], "BBB.NS": [False] * 3})
    recommendations = recommend_retraining(results, RUN_CONTEXT)

    request = request_retraining(
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
            drift_rows("run-0", {"AAA.NS": [True] * 3}, as_of="2024-05-31"),
            drift_rows("run-1", {"AAA.NS": [True, False, True], "BBB.NS": [False] * 3}),
        ]
    )

    alerts = build_health_alerts(results, RUN_CONTEXT)

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
    table.save(build_health_alerts(results, RUN_CONTEXT))
    stored = table.load()
    assert len(stored) == 2
    assert stored["detected_at"].notna().all()
    assert set(stored["kind"]) == {"regime"} and stored["shock_p_value"].notna().all()


@pytest.mark.parametrize("method", ["ks", "calibrated"])
def test_drift_windows_are_the_values_each_method_tests(params, method):
    features = simulated_features(tickers=2, sessions=150)
    params = {**params, "method": method}

    windows = drift_windows(features, "sma_20", params)

    assert set(windows["ticker"]) == set(features["ticker"])
    for ticker, rows in windows.groupby("ticker"):
        values = features.loc[features["ticker"] == ticker, "sma_20"].to_numpy()
        baseline = values[-67:-7]
        if method == "calibrated":  # its one-session log change, against the regime's baseline
            values = np.diff(np.log(values))
            baseline = values[-88:-28]
        assert np.allclose(rows.loc[rows["window"] == "baseline", "value"], baseline)
        assert np.allclose(rows.loc[rows["window"] == "current", "value"], values[-7:])


def test_drift_windows_take_the_baseline_from_the_frozen_window(params):
    features = simulated_features(tickers=2, sessions=300)
    params = {**params, "method": "ks", "frozen_end": "2019-06-28"}
    frozen = freeze_drift_baseline(features, params)["baseline"]

    windows = drift_windows(features, "rsi_14", params, frozen=frozen)

    baseline = windows[windows["window"] == "baseline"]
    assert baseline["date"].max() == pd.Timestamp("2019-06-28")
    assert baseline.groupby("ticker").size().eq(60).all()
    assert windows[windows["window"] == "current"].groupby("ticker").size().eq(7).all()
