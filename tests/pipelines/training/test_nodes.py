"""Training building blocks on small frames: folds, metrics, the data version, the registry's URI."""

from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stock_pipeline.datasets import SkipEmptyDataset
from stock_pipeline.pipelines.training.modeling import cross_sectional, recipe_of
from stock_pipeline.pipelines.training.nodes import _pending_request, fingerprint_features
from stock_pipeline.pipelines.training.registry import ModelRegistryDataset
from stock_pipeline.pipelines.training.validation import (
    InsufficientHistoryError,
    daily_rank_ic,
    gap_sessions,
    make_folds,
    score_metrics,
)

DATES = pd.bdate_range("2020-01-01", periods=400).to_numpy()
VALIDATION = {
    "scheme": "expanding",
    "n_splits": 4,
    "min_train_dates": 200,
    "rolling_train_dates": 100,
    "purge": None,
    "embargo": 3,
}


def sessions_between(first: pd.Timestamp, second: pd.Timestamp) -> int:
    """Dates of DATES strictly between two dates."""
    dates = pd.DatetimeIndex(DATES)
    return int(((dates > first) & (dates < second)).sum())


@pytest.mark.parametrize("horizon", [1, 5])
def test_folds_leave_purge_and_embargo_between_training_and_test(horizon):
    folds = make_folds(DATES, VALIDATION, horizon)

    assert len(folds) == 4
    assert folds[0].train_start == pd.Timestamp(DATES[0])
    assert (folds[0].train_end - folds[0].train_start).days > 0
    for fold in folds:
        assert sessions_between(fold.train_end, fold.test_start) == horizon + 3
    for earlier, later in pairwise(folds):
        assert sessions_between(earlier.test_end, later.test_start) == 0  # tests tile the dates
    assert folds[-1].test_end == pd.Timestamp(DATES[-1])
    first_train = pd.DatetimeIndex(DATES)[pd.DatetimeIndex(DATES) <= folds[0].train_end]
    assert len(first_train) >= VALIDATION["min_train_dates"]


def test_rolling_folds_train_on_a_window_of_fixed_length():
    folds = make_folds(DATES, {**VALIDATION, "scheme": "rolling"}, 1)
    dates = pd.DatetimeIndex(DATES)
    for fold in folds:
        assert ((dates >= fold.train_start) & (dates <= fold.train_end)).sum() == 100


def test_a_purge_shorter_than_the_horizon_and_too_little_history_are_refused():
    with pytest.raises(ValueError, match="at least the horizon"):
        gap_sessions({**VALIDATION, "purge": 2}, 5)
    with pytest.raises(InsufficientHistoryError, match="needs at least"):
        make_folds(DATES[:205], VALIDATION, 1)
    with pytest.raises(ValueError, match="scheme"):
        make_folds(DATES, {**VALIDATION, "scheme": "anchored"}, 1)


def scores_frame(days: int = 30, tickers: int = 20, seed: int = 0) -> pd.DataFrame:
    """Random forward returns for `tickers` x `days`."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "date": np.repeat(pd.bdate_range("2021-01-01", periods=days), tickers),
            "ticker": np.tile([f"T{i}" for i in range(tickers)], days),
            "forward_return": rng.normal(0, 0.02, days * tickers),
        }
    )


def test_metrics_of_a_perfect_a_reversed_and_a_constant_forecast():
    scores = scores_frame()
    scores["perfect"] = scores["forward_return"] * 3 + 1
    scores["reversed"] = -scores["forward_return"]
    scores["constant"] = 0.0

    perfect = score_metrics(scores, "perfect", 1)
    assert perfect["oos_rank_ic"] == pytest.approx(1.0)
    assert perfect["hit_rate"] == pytest.approx(1.0)
    assert perfect["ic_positive_share"] == 1.0
    assert perfect["dates"] == 30 and perfect["rows"] == 600
    top_two = scores.groupby("date")["forward_return"].apply(
        lambda r: r.nlargest(2).mean() - r.nsmallest(2).mean()
    )
    assert perfect["top_bottom_decile_return"] == pytest.approx(top_two.mean())
    assert score_metrics(scores, "reversed", 1)["oos_rank_ic"] == pytest.approx(-1.0)
    constant = score_metrics(scores, "constant", 1)
    assert constant["oos_rank_ic"] == 0.0
    assert constant["hit_rate"] == 0.5
    assert constant["top_bottom_decile_return"] == 0.0


def test_daily_rank_ic_matches_spearman_per_date():
    scores = scores_frame(days=5, seed=3)
    scores["score"] = (
        np.random.default_rng(4).normal(size=len(scores)) + scores["forward_return"] * 20
    )

    ic = daily_rank_ic(scores, "score")

    expected = scores.groupby("date").apply(
        lambda d: d["score"].corr(d["forward_return"], method="spearman")
    )
    pd.testing.assert_series_equal(ic, expected, check_names=False)


def test_targets_are_transformed_per_date_only():
    values = pd.Series([0.01, 0.03, -0.02, 0.5, 0.1, 0.2])
    dates = pd.Series(["a", "a", "a", "b", "b", "b"])

    assert cross_sectional(values, dates, "demean").groupby(dates).sum().abs().max() < 1e-12
    ranked = cross_sectional(values, dates, "rank")
    assert ranked.tolist() == pytest.approx([0.0, 1 / 3, -1 / 3, 1 / 3, -1 / 3, 0.0])
    assert cross_sectional(values, dates, "raw").equals(values)


def test_the_data_version_is_the_content_whatever_the_row_order():
    frame = scores_frame(days=3)
    version = fingerprint_features(frame)

    assert version == fingerprint_features(frame.sample(frac=1, random_state=1))
    assert version.startswith("features-sha256:") and len(version) == len("features-sha256:") + 16
    changed = frame.copy()
    changed.loc[5, "forward_return"] += 1e-9
    assert fingerprint_features(changed) != version


def test_a_request_is_pending_until_the_ledger_names_its_drift_run():
    request = {"requested": True, "run_id": "drift-7"}
    assert _pending_request(request, {}) == request
    assert _pending_request(request, {"consumed": [{"request_run_id": "drift-7"}]}) is None
    assert _pending_request({"requested": False, "run_id": "drift-8"}, {}) is None
    assert _pending_request({}, {}) is None


def test_recipe_checks_its_target_and_horizon(params):
    with pytest.raises(ValueError, match=r"training\.target"):
        recipe_of({**params, "target": "zscore"})
    with pytest.raises(ValueError, match="horizon"):
        recipe_of({**params, "horizon": 0})


def test_the_tracking_uri_comes_from_parameters_then_environment_then_default(monkeypatch):
    dataset = ModelRegistryDataset(default_tracking_uri="sqlite:///data/mlflow.db")
    settings = {"tracking_uri": None, "experiment": "e", "model_name": "m"}

    assert dataset.load().connect(settings).tracking_uri == "sqlite:///data/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert dataset.load().connect(settings).tracking_uri == "http://127.0.0.1:5000"
    chosen = {**settings, "tracking_uri": "sqlite:///elsewhere.db"}
    assert dataset.load().connect(chosen).tracking_uri == "sqlite:///elsewhere.db"


def test_an_empty_save_keeps_what_is_stored_and_a_missing_file_loads_the_default(tmp_path: Path):
    dataset = SkipEmptyDataset(
        dataset={"type": "json.JSONDataset", "filepath": str(tmp_path / "m.json")}
    )

    assert dataset.load() == {}
    dataset.save({})
    assert not (tmp_path / "m.json").exists()
    dataset.save({"model_version": 1})
    dataset.save({})
    assert dataset.load() == {"model_version": 1}
