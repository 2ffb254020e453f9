"""Model inputs, the target, and the learners: LightGBM and the baselines it has to beat.

A recipe (`recipe_of`) is everything that defines a model: the horizon, the price its forward
return is measured on, the target transform, the input features and the learner's parameters. The
registry stores it with each model, so a champion can be rebuilt or rescored with its own recipe.
"""

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # LightGBM and scikit-learn take a second each to import: only when training
    import lightgbm as lgb

RECIPE_KEYS = ("horizon", "price_column", "target", "features", "relative_to_close", "model")
TARGETS = ("raw", "demean", "rank")
BASELINES = ("zero", "historical_mean", "ridge")
KEYS = ["ticker", "date"]


def recipe_of(params: dict[str, Any]) -> dict[str, Any]:
    """The parts of `training` parameters that define a model (validation settings excluded)."""
    recipe = {key: params[key] for key in RECIPE_KEYS}
    recipe["features"] = list(recipe["features"])
    recipe["relative_to_close"] = list(recipe["relative_to_close"] or [])
    recipe["model"] = dict(recipe["model"])
    if recipe["target"] not in TARGETS:
        raise ValueError(f"training.target must be one of {TARGETS}, got {recipe['target']!r}")
    if int(recipe["horizon"]) < 1:
        raise ValueError(f"training.horizon must be at least 1, got {recipe['horizon']!r}")
    return recipe


def _sorted(features: pd.DataFrame) -> pd.DataFrame:
    """Rows by ticker then date, the order the target's shift relies on."""
    return features.sort_values(KEYS, kind="stable", ignore_index=True)


def forward_returns(features: pd.DataFrame, price_column: str, horizon: int) -> pd.Series:
    """Return from the close of each row to the close `horizon` rows later of the same ticker (NaN at the end)."""
    price = features[price_column].astype("float64")
    future = price.groupby(features["ticker"], sort=False).shift(-horizon)
    return future / price - 1.0


def cross_sectional(values: pd.Series, dates: pd.Series, how: str) -> pd.Series:
    """The target per date: raw, minus the date's mean, or the centred rank in [-0.5, 0.5]."""
    if how == "raw":
        return values
    by_date = values.groupby(dates, sort=False)
    if how == "demean":
        return values - by_date.transform("mean")
    ranks, counts = by_date.rank(method="average"), by_date.transform("count")
    return (ranks - 0.5) / counts - 0.5


def build_model_frame(features: pd.DataFrame, recipe: dict[str, Any]) -> pd.DataFrame:
    """ticker, date, the recipe's inputs (from row t only), forward_return and target (NaN when unknown).

    Price-unit inputs listed in `relative_to_close` are divided by the row's close so that they
    compare across tickers. Rows with an incomplete input (indicator warm-up) are left out.
    """
    names = recipe["features"]
    price_column = recipe["price_column"]
    missing = sorted({*names, price_column, "close"} - set(features.columns))
    if missing:
        raise ValueError(f"training needs feature columns that the gold layer lacks: {missing}")
    features = _sorted(features)
    close = features["close"].to_numpy("float64")
    relative = set(recipe["relative_to_close"])
    inputs = {
        name: features[name].to_numpy("float64") / close
        if name in relative
        else features[name].to_numpy("float64")
        for name in names
    }
    frame = pd.DataFrame(
        {
            "ticker": features["ticker"].astype(str).to_numpy(),
            "date": features["date"].to_numpy(),
            **inputs,
            "forward_return": forward_returns(features, price_column, int(recipe["horizon"])),
        }
    )
    complete = np.isfinite(frame[names].to_numpy()).all(axis=1)
    frame = frame[complete].reset_index(drop=True)
    known = frame["forward_return"].notna()
    target = cross_sectional(
        frame.loc[known, "forward_return"], frame.loc[known, "date"], recipe["target"]
    )
    frame["target"] = target.reindex(frame.index)
    return frame


def fit_lightgbm(frame: pd.DataFrame, recipe: dict[str, Any]) -> "lgb.Booster":
    """A LightGBM regressor of the target on the recipe's inputs, deterministic for a seed."""
    import lightgbm as lgb

    params = {"verbose": -1, "deterministic": True, "force_row_wise": True, **recipe["model"]}
    model = lgb.LGBMRegressor(**params)
    model.fit(
        frame[recipe["features"]].to_numpy("float32"),
        frame["target"].to_numpy("float64"),
        feature_name=list(recipe["features"]),
    )
    return model.booster_


def predict(booster: "lgb.Booster", frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The booster's scores for the rows of a model frame."""
    if frame.empty:
        return np.zeros(0)
    return booster.predict(frame[names].to_numpy("float32"))


def baseline_predictions(
    train: pd.DataFrame, test: pd.DataFrame, names: list[str], ridge_alpha: float
) -> dict[str, np.ndarray]:
    """Zero, each ticker's historical mean target, and a ridge regression on the same inputs."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    means = train.groupby("ticker")["target"].mean()
    historical = test["ticker"].map(means).fillna(train["target"].mean()).to_numpy("float64")
    ridge = make_pipeline(StandardScaler(), Ridge(alpha=ridge_alpha))
    ridge.fit(train[names].to_numpy("float64"), train["target"].to_numpy("float64"))
    return {
        "zero": np.zeros(len(test)),
        "historical_mean": historical,
        "ridge": ridge.predict(test[names].to_numpy("float64")) if len(test) else np.zeros(0),
    }


def feature_importance(booster: "lgb.Booster") -> dict[str, float]:
    """Each input's share of the total split gain, largest first."""
    gain = booster.feature_importance(importance_type="gain")
    total = float(gain.sum()) or 1.0
    shares = {
        name: float(value) / total for name, value in zip(booster.feature_name(), gain, strict=True)
    }
    return dict(sorted(shares.items(), key=lambda item: -item[1]))
