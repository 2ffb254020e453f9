"""Walk-forward validation on dates: folds with purge and embargo, out-of-sample scores, metrics.

Folds are scikit-learn's TimeSeriesSplit over the unique dates whose target is known: every fold
trains strictly before it tests, with `purge + embargo` sessions left out in between. The purge
(at least the horizon) keeps any training target from overlapping a test target; the embargo adds
sessions against the serial correlation of rolling features. In a walk-forward no training data
follows a test window, so the embargo is applied on the same side as the purge.
"""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from stock_pipeline.pipelines.training.modeling import (
    BASELINES,
    baseline_predictions,
    fit_lightgbm,
    predict,
)

SCHEMES = ("expanding", "rolling")
SCORED = ("model", *BASELINES)


class InsufficientHistoryError(ValueError):
    """Too few dates for the configured walk-forward."""


@dataclass(frozen=True)
class Fold:
    """One walk-forward split: inclusive training and test date ranges."""

    fold: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO strings."""
        return {
            k: v.date().isoformat() if isinstance(v, pd.Timestamp) else v
            for k, v in asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Fold":
        """The inverse of as_dict."""
        return cls(
            int(data["fold"]),
            *(
                pd.Timestamp(data[k])
                for k in ("train_start", "train_end", "test_start", "test_end")
            ),
        )


def gap_sessions(validation: dict[str, Any], horizon: int) -> int:
    """Sessions left out between training and test: purge (null = horizon, never less) + embargo."""
    purge = validation.get("purge")
    purge = horizon if purge is None else int(purge)
    if purge < horizon:
        raise ValueError(
            f"training.validation.purge ({purge}) must be at least the horizon ({horizon})"
        )
    return purge + int(validation["embargo"])


def required_dates(validation: dict[str, Any], horizon: int) -> int:
    """The fewest dates with a known target that the walk-forward can split."""
    return (
        int(validation["min_train_dates"])
        + gap_sessions(validation, horizon)
        + int(validation["n_splits"])
    )


def make_folds(dates: np.ndarray, validation: dict[str, Any], horizon: int) -> list[Fold]:
    """Expanding or rolling walk-forward folds over sorted unique dates."""
    scheme = validation["scheme"]
    if scheme not in SCHEMES:
        raise ValueError(f"training.validation.scheme must be one of {SCHEMES}, got {scheme!r}")
    gap, n_splits = gap_sessions(validation, horizon), int(validation["n_splits"])
    test_size = (len(dates) - int(validation["min_train_dates"]) - gap) // n_splits
    if test_size < 1:
        raise InsufficientHistoryError(
            f"{len(dates)} dates with a known target; the walk-forward needs at least "
            f"{required_dates(validation, horizon)}"
        )
    from sklearn.model_selection import TimeSeriesSplit

    rolling = int(validation["rolling_train_dates"]) if scheme == "rolling" else None
    splitter = TimeSeriesSplit(
        n_splits=n_splits, test_size=test_size, gap=gap, max_train_size=rolling
    )
    dates = pd.DatetimeIndex(dates)
    return [
        Fold(number, dates[train[0]], dates[train[-1]], dates[test[0]], dates[test[-1]])
        for number, (train, test) in enumerate(splitter.split(dates), start=1)
    ]


def known_dates(frame: pd.DataFrame) -> np.ndarray:
    """Sorted unique dates that have at least one row with a known target."""
    return np.sort(frame.loc[frame["target"].notna(), "date"].unique())


def walk_forward(
    frame: pd.DataFrame,
    folds: list[Fold],
    recipe: dict[str, Any],
    ridge_alpha: float | None = None,
) -> pd.DataFrame:
    """Out-of-sample scores of every fold's test rows: the model and, with ridge_alpha, the baselines.

    Each fold fits only on rows dated within its training range whose target is known.
    """
    names = recipe["features"]
    known = frame[frame["target"].notna()]
    parts = []
    for fold in folds:
        train = known[known["date"].between(fold.train_start, fold.train_end)]
        test = known[known["date"].between(fold.test_start, fold.test_end)]
        scores = {"model": predict(fit_lightgbm(train, recipe), test, names)}
        if ridge_alpha is not None:
            scores |= baseline_predictions(train, test, names, ridge_alpha)
        parts.append(test[["ticker", "date", "forward_return"]].assign(fold=fold.fold, **scores))
    return pd.concat(parts, ignore_index=True)


def daily_rank_ic(scores: pd.DataFrame, column: str) -> pd.Series:
    """Spearman correlation of scores with forward returns per date (0 for a constant score)."""
    by_date = scores.groupby("date", sort=True)
    score_rank = by_date[column].rank(method="average")
    return_rank = by_date["forward_return"].rank(method="average")
    dates = scores["date"]
    x = score_rank - score_rank.groupby(dates).transform("mean")
    y = return_rank - return_rank.groupby(dates).transform("mean")
    sums = (
        pd.DataFrame({"xy": x * y, "xx": x * x, "yy": y * y, "date": dates}).groupby("date").sum()
    )
    ic = sums["xy"] / np.sqrt(sums["xx"] * sums["yy"])
    ic[sums["xx"] == 0] = 0.0  # a constant forecast ranks nothing
    return ic[sums["yy"] > 0]


def _newey_west_tstat(values: np.ndarray, lags: int) -> float:
    """t-statistic of the mean with Newey-West standard errors (overlapping targets when lags > 0)."""
    n = len(values)
    if n < 2:
        return float("nan")
    centred = values - values.mean()
    variance = centred @ centred / n
    for lag in range(1, min(lags, n - 1) + 1):
        variance += 2 * (1 - lag / (lags + 1)) * (centred[lag:] @ centred[:-lag]) / n
    return float(values.mean() / np.sqrt(variance / n)) if variance > 0 else float("nan")


def _hit_rate(scores: pd.DataFrame, column: str) -> float:
    """Share of rows whose score and forward return fall on the same side of their date's median."""
    by_date = scores.groupby("date")
    score_side = np.sign(scores[column] - by_date[column].transform("median"))
    return_side = np.sign(scores["forward_return"] - by_date["forward_return"].transform("median"))
    agreement = (score_side * return_side).to_numpy()
    return float(np.where(agreement > 0, 1.0, np.where(agreement < 0, 0.0, 0.5)).mean())


def _decile_spread(scores: pd.DataFrame, column: str) -> pd.Series:
    """Per date: mean forward return of the top tenth by score minus the bottom tenth (at least one name each)."""
    by_date = scores.groupby("date")
    rank = by_date[column].rank(method="first")
    count = by_date[column].transform("count")
    k = np.maximum(1, count // 10)
    top, bottom = rank > count - k, rank <= k
    returns = scores["forward_return"]
    spread = (
        returns.where(top).groupby(scores["date"]).mean()
        - returns.where(bottom).groupby(scores["date"]).mean()
    )
    constant = by_date[column].std(ddof=0).fillna(0) == 0
    spread[constant] = 0.0
    return spread


def score_metrics(scores: pd.DataFrame, column: str, horizon: int) -> dict[str, float]:
    """Out-of-sample metrics of one score column: rank IC (mean, std, t-stat), hit rate, decile spread."""
    ic = daily_rank_ic(scores, column)
    spread = _decile_spread(scores, column)
    return {
        "oos_rank_ic": float(ic.mean()) if len(ic) else float("nan"),
        "oos_rank_ic_std": float(ic.std()) if len(ic) > 1 else float("nan"),
        "oos_rank_ic_tstat": _newey_west_tstat(ic.to_numpy(), horizon - 1),
        "ic_positive_share": float((ic > 0).mean()) if len(ic) else float("nan"),
        "hit_rate": _hit_rate(scores, column),
        "top_bottom_decile_return": float(spread.mean()),
        "dates": len(ic),
        "rows": len(scores),
    }


def all_metrics(scores: pd.DataFrame, horizon: int) -> dict[str, dict[str, float]]:
    """score_metrics of the model and of each baseline present."""
    return {column: score_metrics(scores, column, horizon) for column in SCORED if column in scores}
