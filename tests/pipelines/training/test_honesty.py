"""Honesty of the validation: a planted signal is found, noise is not, and the future cannot leak.

The markets are simulated (simulation.py) and go through the project's own features pipeline.
"""

from typing import Any

import numpy as np
import pandas as pd
import pytest

from stock_pipeline.pipelines.training.nodes import build_model_input, fit_model, validate_model
from tests.pipelines.training.simulation import features_of, simulated_prices

TRAIN = {"train": True}


def test_a_planted_ar1_signal_gives_an_out_of_sample_rank_ic_of_at_least_0_10(
    signal_features, params
):
    model_input, _ = build_model_input(signal_features, params)
    overall = validate_model(model_input, TRAIN, params)["overall"]

    assert overall["model"]["oos_rank_ic"] >= 0.10
    assert overall["model"]["oos_rank_ic_tstat"] > 5
    assert overall["model"]["top_bottom_decile_return"] > 0
    assert overall["model"]["hit_rate"] > 0.5
    assert overall["zero"]["oos_rank_ic"] == 0.0
    assert overall["model"]["oos_rank_ic"] > overall["historical_mean"]["oos_rank_ic"] + 0.1


def test_pure_noise_gives_no_out_of_sample_rank_ic(noise_features, params):
    model_input, _ = build_model_input(noise_features, params)
    overall = validate_model(model_input, TRAIN, params)["overall"]

    assert abs(overall["model"]["oos_rank_ic"]) < 0.02  # more would be leakage
    assert abs(overall["ridge"]["oos_rank_ic"]) < 0.02
    assert overall["model"]["dates"] > 500


def _cut_date(model_input: pd.DataFrame, scores: pd.DataFrame) -> pd.Timestamp:
    """A test date in the middle of the out-of-sample period."""
    dates = np.sort(scores["date"].unique())
    return pd.Timestamp(dates[len(dates) // 2])


@pytest.mark.parametrize("change", ["scramble", "shift"])
def test_changing_targets_after_a_date_changes_no_prediction_before_it(
    signal_features, params, change
):
    model_input, _ = build_model_input(signal_features, params)
    before = validate_model(model_input, TRAIN, params)["scores"]
    cut = _cut_date(model_input, before)
    later = (model_input["date"] > cut) & model_input["target"].notna()
    changed = model_input.copy()
    columns = ["target", "forward_return"]
    if change == "scramble":
        rng = np.random.default_rng(0)
        changed.loc[later, columns] = changed.loc[later, columns].to_numpy()[
            rng.permutation(later.sum())
        ]
    else:
        changed.loc[later, columns] = changed.loc[later, columns].shift(-1).fillna(0.01).to_numpy()

    after = validate_model(changed, TRAIN, params)["scores"]

    columns = ["model", "zero", "historical_mean", "ridge"]
    early = before["date"] <= cut
    pd.testing.assert_frame_equal(
        before.loc[early, ["ticker", "date", *columns]].reset_index(drop=True),
        after.loc[after["date"] <= cut, ["ticker", "date", *columns]].reset_index(drop=True),
    )
    # the check has teeth: the later folds, trained on the changed targets, do change
    assert not np.allclose(before.loc[~early, "model"], after.loc[after["date"] > cut, "model"])


def test_changing_prices_after_a_date_changes_no_prediction_before_it(params: dict[str, Any]):
    prices = simulated_prices(tickers=20, sessions=600, phi=0.2, seed=9)
    model_input, _ = build_model_input(features_of(prices), params)
    before = validate_model(model_input, TRAIN, params)["scores"]
    cut = _cut_date(model_input, before)
    later = prices["date"] > cut
    shocked = prices.copy()
    factor = np.random.default_rng(1).uniform(0.8, 1.25, later.sum())
    for column in ["open", "high", "low", "close", "adj_close"]:
        shocked.loc[later, column] *= factor

    after_input, _ = build_model_input(features_of(shocked), params)
    after = validate_model(after_input, TRAIN, params)["scores"]

    scored = ["ticker", "date", "fold", "model", "zero", "historical_mean", "ridge"]
    pd.testing.assert_frame_equal(  # predictions only: realized returns at the cut do change
        before.loc[before["date"] <= cut, scored].reset_index(drop=True),
        after.loc[after["date"] <= cut, scored].reset_index(drop=True),
        check_exact=False,
        rtol=1e-9,
    )


def test_rows_whose_target_is_not_known_yet_are_never_trained_on(small_signal_features, params):
    model_input, _ = build_model_input(small_signal_features, params)
    unknown = model_input["target"].isna()
    # the last `horizon` rows of every ticker have no target yet
    assert unknown.sum() == model_input["ticker"].nunique() * params["horizon"]
    assert model_input.loc[unknown, "date"].eq(model_input["date"].max()).all()

    trained = fit_model(model_input, TRAIN, params)

    assert trained["rows"] == (~unknown).sum()
    assert trained["train_end"] < trained["data_end"]


def test_features_come_from_row_t_and_the_target_from_t_plus_horizon(small_signal_features, params):
    params = {**params, "horizon": 3, "target": "raw"}
    model_input, _ = build_model_input(small_signal_features, params)
    one = small_signal_features[small_signal_features["ticker"] == "T000.NS"].reset_index(drop=True)
    row = model_input[model_input["ticker"] == "T000.NS"].iloc[10]
    source = one[one["date"] == row["date"]].index[0]

    expected = one.loc[source + 3, "adj_close"] / one.loc[source, "adj_close"] - 1
    assert row["forward_return"] == pytest.approx(expected)
    assert row["target"] == pytest.approx(expected)
    assert row["sma_20"] == pytest.approx(one.loc[source, "sma_20"] / one.loc[source, "close"])
    assert row["daily_return"] == pytest.approx(one.loc[source, "daily_return"])
