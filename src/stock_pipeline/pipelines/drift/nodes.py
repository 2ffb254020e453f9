"""Drift nodes: per-ticker decisions as of one date or every session of a range, alerts, requests.

Every decision is per ticker: whether a ticker drifted depends on its own prices only, never on
how many other tickers drifted. Two methods. `ks` is the seed's rule verbatim: a two-sample
Kolmogorov-Smirnov test of the raw feature values, baseline window against current window, a
feature drifts when p < alpha and a ticker when any feature does. `calibrated` (the default) makes
each feature stationary (`drift.transforms`) and measures the current window's mean absolute
deviation twice (S, below): against the ticker's GARCH-like volatility forecast (the shock) and
against the baseline before the change (the regime). Each S gets a p-value from a tail fitted to
the ticker's own past values of it, and the p-values are combined inside the ticker with the
weighted Cauchy combination test (`drift.feature_weights`, `drift.signal_weights`), which holds
under any dependence between them; `kind` says which signals saw the change.

All sessions of a replay are computed in one vectorized pass: every quantity at a row depends on
that row and earlier rows of its ticker only, so a range of as_of dates reads each off its row.
"""

import logging
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from stock_pipeline.contract import DRIFT_ALERT_COLUMNS, DRIFT_RESULT_COLUMNS

logger = logging.getLogger(__name__)

METHODS = ("calibrated", "ks")
BASELINE_MODES = ("rolling", "frozen")
TRANSFORMS = ("level", "log", "diff", "log_diff")
FROZEN_PARTITION = "baseline"
# shock: the window against the recent conditional scale; regime: against the baseline
SIGNALS = ("shock", "regime")
SIGNAL_P_VALUES = {"shock": "shock_p_value", "regime": "p_value"}
# a drifted ticker's kind of change, in words and as a recommendation (retraining answers a regime)
KIND_WORDS = {
    "shock": "a shock against the recent conditional scale; the regime holds, so watch",
    "regime": "a regime change against the baseline",
    "shock+regime": "a shock and a regime change against the baseline",
}
RECOMMENDATIONS = {
    "shock": "watch",
    "regime": "retrain_model",
    "shock+regime": "retrain_model",
}
# a feature whose p-value is near 1 would add a huge negative Cauchy term and could cancel another
# feature's evidence; capping it there changes nothing else
CAUCHY_P_CAP = 0.999
# log S has a heavier tail than a normal on fat-tailed markets: however long the history, its
# tail is Student-t's with at most this many degrees of freedom (a normal let 5.5% of calm GARCH-t
# tickers through with four years of history)
TAIL_DEGREES_CAP = 30


def _day(value: Any) -> pd.Timestamp:
    """A date parameter (string or date) as a midnight Timestamp."""
    return pd.Timestamp(value).normalize()


def _as_of(features: pd.DataFrame, params: dict[str, Any]) -> pd.Timestamp:
    """The requested single as_of date (a string, date or null = the latest date in features)."""
    as_of = params.get("as_of")
    return _day(as_of) if as_of else features["date"].max().normalize()


def _as_of_dates(features: pd.DataFrame, params: dict[str, Any]) -> pd.DatetimeIndex:
    """`drift.as_of` when set, else every session from `as_of_start` to `as_of_end` (null = latest).

    With neither, the latest date. `as_of` wins so that `--params=drift.as_of=...` decides one
    date even in an environment that replays a range.
    """
    start, end = params.get("as_of_start"), params.get("as_of_end")
    if params.get("as_of") or start is None:
        if end is not None and not params.get("as_of"):
            raise ValueError("drift.as_of_end needs drift.as_of_start (for one date use as_of)")
        return pd.DatetimeIndex([_as_of(features, params)])
    days = features["date"].dt.normalize()
    last = _day(end) if end is not None else days.max()
    sessions = np.sort(days[(days >= _day(start)) & (days <= last)].unique())
    if not len(sessions):
        raise ValueError(f"no session in features from drift.as_of_start {start} to {end}")
    return pd.DatetimeIndex(sessions)


def _ordered(features: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by ticker then date, with each row's position in its ticker (`_pos`)."""
    ordered = features.sort_values(["ticker", "date"], kind="stable", ignore_index=True)
    return ordered.assign(_pos=ordered.groupby("ticker").cumcount().to_numpy())


def _history(features: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Rows up to as_of, ordered, with the position of each ticker's last row (`_end`)."""
    history = _ordered(features[features["date"] < as_of + pd.Timedelta(days=1)])
    return history.assign(_end=history.groupby("ticker")["_pos"].transform("max").to_numpy())


def _targets(ordered: pd.DataFrame, as_of_dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Per as_of and ticker, the row of the ticker's last bar on or before that day (if any)."""
    rows = pd.DataFrame(
        {
            "ticker": ordered["ticker"].to_numpy(),
            "_date": ordered["date"].to_numpy().astype("datetime64[ns]"),
            "row": np.arange(len(ordered)),
        }
    ).sort_values("_date", kind="stable")
    grid = pd.MultiIndex.from_product(
        [as_of_dates, ordered["ticker"].unique()], names=["as_of", "ticker"]
    ).to_frame(index=False)
    grid["_date"] = (grid["as_of"] + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")).astype(
        "datetime64[ns]"
    )
    matched = pd.merge_asof(grid.sort_values("_date"), rows, on="_date", by="ticker")
    matched = matched.dropna(subset=["row"]).astype({"row": "int64"})
    return matched.sort_values(["as_of", "ticker"], ignore_index=True)[["as_of", "ticker", "row"]]


def _transform(frame: pd.DataFrame, feature: str, how: str) -> np.ndarray:
    """The feature made stationary: level, log, diff or log_diff (one-session change)."""
    values = frame[feature].to_numpy(dtype="float64")
    if how not in TRANSFORMS:
        raise ValueError(f"drift.transforms.{feature} must be one of {TRANSFORMS}, got {how!r}")
    if how in ("log", "log_diff"):
        values = np.log(np.where(values > 0, values, np.nan))
    if how in ("level", "log"):
        return values
    change = np.diff(values, prepend=np.nan)
    return np.where(frame["_pos"].to_numpy() > 0, change, np.nan)


def _lag(values: np.ndarray, position: np.ndarray, periods: int) -> np.ndarray:
    """Values `periods` rows earlier in the same ticker (NaN before its first row)."""
    if not periods:
        return values
    shifted = np.concatenate((np.full(periods, np.nan), values[:-periods]))
    return np.where(position >= periods, shifted, np.nan)


def _per_ticker(values: np.ndarray, tickers: np.ndarray, window: Any) -> np.ndarray:
    """A pandas rolling or ewm window's mean within each ticker, in row order."""
    grouped = pd.Series(values).groupby(tickers, sort=False)
    smoothed = window(grouped).mean()
    return smoothed.droplevel(0).sort_index().to_numpy()


def _running_sum(values: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Cumulative sum within each ticker, in row order (a ticker's rows are contiguous: its first
    row is `position` rows back)."""
    total = np.cumsum(values)
    first = np.arange(len(values)) - position
    return total - (total[first] - values[first])


def _rolling_baselines(
    values: np.ndarray, tickers: np.ndarray, position: np.ndarray, params: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row (the end of a current window): each signal's centre and scale, known before it.

    Deviations from the baseline mean are measured in absolute value (as the frozen baseline's
    spread is): their mean is a far steadier scale than a mean of squares under fat tails.

    shock: the baseline mean and a GARCH(1,1)-like scale forecast at the window's start:
    (1 - `scale_long_run_share`) x an exponentially weighted mean (half-life `scale_halflife`
    sessions) + the share x their mean over `scale_long_run_window` sessions (the long-run level
    GARCH reverts to; a year estimates it far better than 60 sessions). It follows volatility
    clusters, so a calm but volatile spell is no shock; it also adapts within weeks.

    regime: the mean and mean absolute deviation of the `baseline_window` sessions that end
    `regime_gap` sessions before the window, what the market was like before the change: a change
    that began a few weeks before the window is still measured against the market before it, as a
    model trained then would see it.
    """
    baseline_window, current_window = params["baseline_window"], params["current_window"]
    mean = _per_ticker(values, tickers, lambda g: g.rolling(baseline_window))
    deviation = np.abs(values - _lag(mean, position, 1))
    recent = _per_ticker(
        deviation,
        tickers,
        lambda g: g.ewm(halflife=params["scale_halflife"], min_periods=current_window),
    )
    spread, long_run = (
        _per_ticker(
            deviation, tickers, lambda g, w=window: g.rolling(w, min_periods=current_window)
        )
        for window in (baseline_window, params["scale_long_run_window"])
    )
    share = params["scale_long_run_share"]
    shock = share * long_run + (1 - share) * recent
    regime_lag = current_window + params["regime_gap"]
    return (
        _lag(mean, position, current_window),
        _lag(shock, position, current_window),
        _lag(mean, position, regime_lag),
        _lag(spread, position, regime_lag),
    )


def _frozen_baseline_moments(
    frozen: pd.DataFrame, feature: str, how: str
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Per ticker: mean, mean absolute deviation and size of the transformed frozen baseline."""
    frozen = _ordered(frozen)
    values = pd.Series(_transform(frozen, feature, how))
    tickers = frozen["ticker"].to_numpy()
    mean = values.groupby(tickers).mean()
    scale = (values - pd.Series(tickers).map(mean)).abs().groupby(tickers).mean()
    return mean, scale, values.groupby(tickers).count()


def _scale_ratio(
    values: np.ndarray, position: np.ndarray, centre: np.ndarray, scale: np.ndarray, window: int
) -> np.ndarray:
    """S: mean absolute deviation of the current window from the baseline mean, over the scale."""
    deviations = np.stack([np.abs(_lag(values, position, k) - centre) for k in range(window)])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = deviations.mean(axis=0) / scale
    return np.where(scale > 0, ratio, np.nan)


def _tail_p_values(
    log_s: np.ndarray, position: np.ndarray, before: int, min_history: int
) -> np.ndarray:
    """P(S >= this S) under a normal fit of log S over the ticker's earlier window pairs.

    Earlier pairs are those ending `before` rows or more before this one (at least
    `min_history` of them): before the current window starts for the shock; before the regime's
    baseline ends for the regime, so that the weeks since a change began never teach the null
    that the change is normal. Their mean and spread are estimated from the effective number of
    independent values: n / before, shrunk by (1 - rho) / (1 + rho) with rho the correlation of
    log S `before` rows apart (a regime statistic, whose baseline spans months, repeats itself
    far longer than a shock's; counting its overlapping values as independent let calm GARCH
    markets through at 7-11%). So the tail is Student-t's predictive one with that many degrees
    of freedom (at most TAIL_DEGREES_CAP): wide while the history holds few independent values,
    and never floored at 1 / (1 + n) like an empirical p-value.
    """
    valid = np.isfinite(log_s)
    values = np.where(valid, log_s, 0.0)
    paired = valid & (_lag(valid.astype("float64"), position, before) == 1)  # NaN: no row then
    earlier = np.nan_to_num(_lag(values, position, before))
    count, total, squares, pairs, products = (
        np.nan_to_num(_lag(_running_sum(part, position), position, before))
        for part in (
            valid.astype("float64"),
            values,
            values**2,
            paired.astype("float64"),
            np.where(paired, values * earlier, 0.0),
        )
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / count
        variance = (squares - count * mean**2) / (count - 1)
        rho = np.clip((products / pairs - mean**2) / variance, 0.0, 0.95)
        independent = count / before * (1 - rho) / (1 + rho)
        z = (log_s - mean) / np.sqrt(variance * (1 + 1 / independent))
        p_value = _student_t_cdf(np.minimum(independent - 1, TAIL_DEGREES_CAP), -z)
    usable = (count >= min_history) & valid & (variance > 0) & (independent > 1)
    return np.where(usable, p_value, np.nan)


def _calibrated_feature(
    ordered: pd.DataFrame,
    frozen: pd.DataFrame | None,
    feature: str,
    params: dict[str, Any],
    rows: np.ndarray,
) -> pd.DataFrame:
    """Both signals' S and p-value at the given rows, each the end of a current window of its ticker.

    shock: the window against the recent conditional scale. regime: the window against the
    baseline, the frozen one when given (what the model was trained on), else the
    `baseline_window` sessions ending `regime_gap` sessions before the window. Each p-value comes
    from the ticker's own past values of its statistic, so each signal is calibrated on its own.
    """
    how = params.get("transforms", {}).get(feature, "level")
    position = ordered["_pos"].to_numpy()
    tickers = np.cumsum(position == 0)  # a number per ticker: grouping on it skips the strings
    values = _transform(ordered, feature, how)
    first = np.nan_to_num(values[np.arange(len(values)) - position])  # a diff's first is NaN
    values = values - first  # small running sums; the ticker's first value is in every row's past
    centre, shock_scale, regime_centre, regime_scale = _rolling_baselines(
        values, tickers, position, params
    )
    baseline_size = np.full(len(ordered), params["baseline_window"])
    if frozen is not None:
        mean, spread, size = _frozen_baseline_moments(frozen, feature, how)
        ticker_series = ordered["ticker"]
        regime_centre = ticker_series.map(mean).to_numpy(dtype="float64") - first
        regime_scale = ticker_series.map(spread).to_numpy(dtype="float64")
        baseline_size = ticker_series.map(size).fillna(0).to_numpy(dtype="int64")
    signals = {}
    window = params["current_window"]
    for signal, (signal_centre, scale, before, min_history) in (
        ("shock", (centre, shock_scale, window, params["min_history"])),
        (
            "regime",
            (
                regime_centre,
                regime_scale,
                window + params["regime_gap"],
                params["regime_min_history"],
            ),
        ),
    ):
        statistic = _scale_ratio(values, position, signal_centre, scale, window)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_s = np.log(statistic)
        p_value = _tail_p_values(log_s, position, before, min_history)
        signals[signal] = (statistic[rows], p_value[rows])
    tested = ~np.isnan(signals["regime"][0]) | ~np.isnan(signals["shock"][0])
    return pd.DataFrame(
        {
            "statistic": signals["regime"][0],
            "p_value": signals["regime"][1],
            "shock_statistic": signals["shock"][0],
            "shock_p_value": signals["shock"][1],
            "baseline_sample_size": np.where(tested, baseline_size[rows], 0),
            "current_sample_size": np.where(tested, params["current_window"], 0),
        }
    )


def _windows_at(
    values: np.ndarray, position: np.ndarray, rows: np.ndarray, back: range
) -> np.ndarray:
    """One row per target row: the values `back` rows before it in its ticker (NaN before the first)."""
    offsets = np.asarray(back)
    source = rows[:, None] - offsets[None, :]
    inside = offsets[None, :] <= position[rows][:, None]
    return np.where(inside, values[np.clip(source, 0, None)], np.nan)


def _capped(matrix: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """At most `cap` non-missing values per row, drawn without replacement where there are more."""
    if matrix.shape[1] <= cap:
        return matrix
    keys = np.where(np.isnan(matrix), np.inf, rng.random(matrix.shape))
    order = np.argsort(keys, axis=1)[:, :cap]
    return np.take_along_axis(matrix, order, axis=1)


def _ks_feature(
    ordered: pd.DataFrame,
    frozen: pd.DataFrame | None,
    feature: str,
    params: dict[str, Any],
    rows: np.ndarray,
) -> pd.DataFrame:
    """The seed's test at the given rows: ks_2samp of raw values, baseline against current window."""
    baseline_window, current_window = params["baseline_window"], params["current_window"]
    values = ordered[feature].to_numpy(dtype="float64")
    position = ordered["_pos"].to_numpy()
    current = _windows_at(values, position, rows, range(current_window))
    if frozen is None:
        back = range(current_window, current_window + baseline_window)
        baseline = _windows_at(values, position, rows, back)
    else:
        frozen = _ordered(frozen)
        matrix = frozen.pivot(index="ticker", columns="_pos", values=feature)
        baseline = matrix.reindex(ordered["ticker"].to_numpy()[rows]).to_numpy(dtype="float64")
    rng = np.random.default_rng(params["seed"])
    base_values = _capped(baseline, params["sample_cap"], rng)
    current_values = _capped(current, params["sample_cap"], rng)
    base_size = (~np.isnan(base_values)).sum(axis=1)
    current_size = (~np.isnan(current_values)).sum(axis=1)
    testable = (base_size > 0) & (current_size > 0)
    statistic = np.full(len(rows), np.nan)
    p_value = np.full(len(rows), np.nan)
    if testable.any():
        # imported here: scipy.stats takes a second to import and only the ks method needs it
        from scipy.stats import ks_2samp  # noqa: PLC0415

        policy = (
            "omit"
            if np.isnan(base_values[testable]).any() or np.isnan(current_values[testable]).any()
            else "propagate"
        )
        result = ks_2samp(
            base_values[testable], current_values[testable], axis=1, nan_policy=policy
        )
        statistic[testable], p_value[testable] = result.statistic, result.pvalue
    return pd.DataFrame(
        {
            "statistic": statistic,
            "p_value": p_value,
            "shock_statistic": np.nan,
            "shock_p_value": np.nan,
            "baseline_sample_size": base_size,
            "current_sample_size": current_size,
        }
    )


def _cauchy_combination(p_values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row, the weighted Cauchy combination test of its p-values (NaN skipped; any dependence).

    T = sum of w tan((1/2 - p) pi) with weights w summing to 1 over the row's tested p-values is
    standard Cauchy under the null whatever the dependence between the p-values (Liu and Xie,
    2020), so the combined p-value is its Cauchy tail. For small p-values it acts like a weighted
    Bonferroni: a feature of weight share w alone reaches alpha at a p-value of about w alpha.
    """
    capped = np.minimum(p_values, CAUCHY_P_CAP)
    with np.errstate(divide="ignore"):
        terms = 1 / np.tan(np.pi * capped)  # tan((1/2 - p) pi), exact for tiny p
    tested = ~np.isnan(terms)
    weight = np.where(tested, weights[None, :], 0.0)
    total = weight.sum(axis=1)
    mean = np.where(tested, terms * weight, 0.0).sum(axis=1) / np.where(total > 0, total, 1.0)
    with np.errstate(divide="ignore"):
        combined = np.where(mean > 0, np.arctan(1 / mean) / np.pi, 0.5 - np.arctan(mean) / np.pi)
    return np.where(total > 0, combined, np.nan)


def _feature_weights(features: list[str], params: dict[str, Any]) -> np.ndarray:
    """Each monitored feature's weight in the combination (`drift.feature_weights`, default 1)."""
    given = params.get("feature_weights") or {}
    unmonitored = sorted(set(given) - set(features))
    if unmonitored:  # e.g. --params=drift.features=[...] narrowed the list: not an error
        logger.warning("drift.feature_weights for unmonitored features ignored: %s", unmonitored)
    weights = np.array([float(given.get(feature, 1.0)) for feature in features])
    if (weights < 0).any() or not weights.sum() > 0:
        raise ValueError("drift.feature_weights must be >= 0 with at least one positive")
    return weights


def _signal_weights(params: dict[str, Any]) -> np.ndarray:
    """Each signal's weight in the ticker's combination (`drift.signal_weights`, default 1)."""
    given = params.get("signal_weights") or {}
    unknown = sorted(set(given) - set(SIGNALS))
    if unknown:
        raise ValueError(f"drift.signal_weights: unknown signals {unknown}, known {SIGNALS}")
    weights = np.array([float(given.get(signal, 1.0)) for signal in SIGNALS])
    if (weights < 0).any() or not weights.sum() > 0:
        raise ValueError("drift.signal_weights must be >= 0 with at least one positive")
    return weights


def _kinds(signal_p: dict[str, np.ndarray], ticker_drift: np.ndarray, alpha: float) -> np.ndarray:
    """Per drifted ticker, the signals that saw the change: shock, regime or shock+regime.

    A combined p-value below alpha needs at least one signal's own below alpha, so a drifted
    ticker always has a kind.
    """
    missing = np.full(len(ticker_drift), np.nan)
    with np.errstate(invalid="ignore"):
        shock, regime = (signal_p.get(signal, missing) < alpha for signal in SIGNALS)
    kinds = np.array([None, "shock", "regime", "shock+regime"], dtype=object)
    return np.where(ticker_drift, kinds[shock + 2 * regime], None)


def _ticker_decisions(
    per_feature: list[pd.DataFrame], features: list[str], params: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Per (as_of, ticker): the combined p-value, the decision, its kind, feature decisions, driver.

    calibrated: each signal's feature p-values are combined inside the ticker with the weighted
    Cauchy combination test, then the two signals' with `signal_weights` (the same test, so the
    union still holds alpha whatever the dependence); the ticker drifts when that is below alpha,
    and the features that drove it are those with a signal's p-value below alpha. ks: the seed's
    rule, any feature with p < alpha; it compares the window with the baseline, a regime test.
    """
    alpha = float(params["alpha"])
    matrices = {
        signal: np.column_stack(
            [frame[SIGNAL_P_VALUES[signal]].to_numpy(dtype="float64") for frame in per_feature]
        )
        for signal in SIGNALS
    }
    if params["method"] == "ks":
        regime = matrices["regime"]
        tested = ~np.isnan(regime).all(axis=1)
        masked = np.where(tested[:, None], regime, 1.0)
        signal_p = {"regime": np.where(tested, np.nanmin(masked, axis=1), np.nan)}
        ticker_p = signal_p["regime"]
    else:
        weights = _feature_weights(features, params)
        signal_p = {
            signal: _cauchy_combination(matrix, weights) for signal, matrix in matrices.items()
        }
        ticker_p = _cauchy_combination(
            np.column_stack([signal_p[signal] for signal in SIGNALS]), _signal_weights(params)
        )
    ticker_drift = ticker_p < alpha
    strongest_p = np.fmin(matrices["shock"], matrices["regime"])
    with np.errstate(invalid="ignore"):
        feature_drift = ticker_drift[:, None] & (strongest_p < alpha)
    strongest = np.argmin(np.where(np.isnan(strongest_p), np.inf, strongest_p), axis=1)
    return {
        "ticker_p_value": ticker_p,
        "ticker_drift": ticker_drift,
        "kind": _kinds(signal_p, ticker_drift, alpha),
        "feature_drift": feature_drift,
        "driver": np.where(ticker_drift, np.asarray(features, dtype=object)[strongest], None),
    }


def _frozen_baseline(
    drift_baseline: dict[str, pd.DataFrame], params: dict[str, Any]
) -> pd.DataFrame | None:
    """The frozen baseline rows when drift.baseline is frozen, else None."""
    mode = params.get("baseline", "rolling")
    if mode not in BASELINE_MODES:
        raise ValueError(f"drift.baseline must be one of {BASELINE_MODES}, got {mode!r}")
    if mode == "rolling":
        return None
    if FROZEN_PARTITION not in drift_baseline:
        raise ValueError(
            "drift.baseline is frozen but no baseline is frozen yet: "
            "run `kedro run --pipelines=baseline` first"
        )
    frozen = drift_baseline[FROZEN_PARTITION]
    return frozen() if callable(frozen) else frozen


def drift_windows(
    features: pd.DataFrame,
    feature: str,
    params: dict[str, Any],
    frozen: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The values a method tests for one feature as of `drift.as_of`, per ticker and window.

    Columns ticker, date, value, window (`baseline` or `current`): the raw values for `ks`, the
    stationary transform of `drift.transforms` for `calibrated`; the baseline is the frozen one
    when `frozen` is given, else the `baseline_window` sessions before the current window (for
    `calibrated`, the regime's: ending `regime_gap` sessions before it).
    """
    baseline_window, current_window = params["baseline_window"], params["current_window"]
    how, gap = "level", 0
    if params["method"] == "calibrated":
        how, gap = params.get("transforms", {}).get(feature, "level"), params["regime_gap"]
    history = _history(features, _as_of(features, params))
    back = (history["_end"] - history["_pos"]).to_numpy()
    in_baseline = (back >= current_window + gap) & (back < current_window + gap + baseline_window)
    if frozen is not None:
        in_baseline = np.zeros(len(history), dtype=bool)
    window = np.where(back < current_window, "current", "baseline")
    windows = history[["ticker", "date"]].assign(
        value=_transform(history, feature, how), window=window
    )[(back < current_window) | in_baseline]
    if frozen is not None:
        frozen = _ordered(frozen)
        baseline = frozen[["ticker", "date"]].assign(
            value=_transform(frozen, feature, how), window="baseline"
        )
        windows = pd.concat([baseline, windows], ignore_index=True)
    return windows.dropna(subset=["value"]).sort_values(["ticker", "date"], ignore_index=True)


def detect_drift(
    features: pd.DataFrame,
    drift_baseline: dict[str, pd.DataFrame],
    params: dict[str, Any],
    run_context: dict[str, Any],
) -> pd.DataFrame:
    """One row per (as_of, ticker, monitored feature): statistic, p-values, per-ticker decision."""
    method = params["method"]
    if method not in METHODS:
        raise ValueError(f"drift.method must be one of {METHODS}, got {method!r}")
    as_of_dates = _as_of_dates(features, params)
    ordered = _ordered(features)
    targets = _targets(ordered, as_of_dates)
    if targets.empty:
        raise ValueError(
            f"drift.as_of {as_of_dates[-1].date()} is before the first date in features"
        )
    frozen = _frozen_baseline(drift_baseline, params)
    test = _ks_feature if method == "ks" else _calibrated_feature
    rows = targets["row"].to_numpy()
    names = list(params["features"])
    per_feature = [test(ordered, frozen, feature, params, rows) for feature in names]
    decisions = _ticker_decisions(per_feature, names, params)
    feature_drift = decisions.pop("feature_drift")
    results = pd.concat(
        [
            frame.assign(
                as_of=targets["as_of"].to_numpy(),
                ticker=targets["ticker"].to_numpy(),
                feature=feature,
                drift=feature_drift[:, column],
                **decisions,
            )
            for column, (feature, frame) in enumerate(zip(names, per_feature, strict=True))
        ],
        ignore_index=True,
    )
    results = results.assign(
        method=method, alpha=float(params["alpha"]), run_id=run_context["run_id"]
    ).astype({"driver": "string", "kind": "string"})
    return results.sort_values(["as_of", "ticker", "feature"], ignore_index=True)[
        list(DRIFT_RESULT_COLUMNS)
    ]


def _reason(tested: int, drifted: list[str], kind: str | None, method: str) -> str:
    """Why a ticker gets its recommendation, in words."""
    if not tested:
        return "not tested: too little history for the baseline and current windows"
    if not drifted:
        return f"no drift in {tested} tested features ({method})"
    seen = f"drift in {len(drifted)} of {tested} tested features ({method}): {', '.join(drifted)}"
    return f"{seen}; {KIND_WORDS[kind]}" if kind in KIND_WORDS else seen


def _latest_of_this_run(drift_results: pd.DataFrame, run_context: dict[str, Any]) -> pd.DataFrame:
    """The rows this run wrote for its latest as_of (drift_results loads back with earlier runs'),
    with every column of the contract (rows stored by older versions lack the newer ones)."""
    this_run = drift_results[drift_results["run_id"] == run_context["run_id"]]
    latest = this_run[this_run["as_of"] == this_run["as_of"].max()]
    return latest.reindex(columns=list(DRIFT_RESULT_COLUMNS))


def recommend_retraining(
    drift_results: pd.DataFrame, run_context: dict[str, Any]
) -> dict[str, Any]:
    """Per ticker, as of the run's latest as_of: `retrain_model`, `watch` or `none`, with the reason.

    Retraining answers a regime change (the ticker no longer behaves as in the baseline the model
    learned from); a shock alone (this week against the recent conditional scale) is `watch`.
    """
    drift_results = _latest_of_this_run(drift_results, run_context)
    method = str(drift_results["method"].iloc[0])
    drifted = drift_results[drift_results["drift"]].groupby("ticker")["feature"].agg(list)
    either = drift_results["p_value"].notna() | drift_results["shock_p_value"].notna()
    tested = either.groupby(drift_results["ticker"]).sum()
    kinds = drift_results.groupby("ticker")["kind"].first().dropna()
    tickers = {}
    for ticker, count in tested.items():
        features, kind = drifted.get(ticker, []), kinds.get(ticker)
        tickers[str(ticker)] = {
            # results stored before the two signals have no kind: a drift was a retrain then
            "recommendation": RECOMMENDATIONS.get(kind, "retrain_model") if features else "none",
            "kind": kind,
            "reason": _reason(int(count), features, kind, method),
            "drifted_features": features,
        }
    tested_tickers = int((tested > 0).sum())
    counts = Counter(entry["recommendation"] for entry in tickers.values())
    share = {
        recommendation: counts[recommendation] / tested_tickers if tested_tickers else 0.0
        for recommendation in ("retrain_model", "watch")
    }
    return {
        "as_of": drift_results["as_of"].max().date().isoformat(),
        "method": method,
        "tickers": tickers,
        "share_drifted": share["retrain_model"],
        "share_shock_only": share["watch"],
    }


def request_retraining(
    drift_recommendations: dict[str, Any], params: dict[str, Any], run_context: dict[str, Any]
) -> dict[str, Any]:
    """The retrain request: requested when the share of tickers whose regime changed reaches the
    threshold (a shock alone asks for no retraining)."""
    threshold = params["retrain_share_threshold"]
    share = drift_recommendations["share_drifted"]
    drifted = sorted(
        ticker
        for ticker, entry in drift_recommendations["tickers"].items()
        if entry["recommendation"] == "retrain_model"
    )
    requested = bool(drifted) and share >= threshold
    return {
        "requested": requested,
        "as_of": drift_recommendations["as_of"],
        "method": drift_recommendations["method"],
        "share_drifted": share,
        "threshold": threshold,
        "tickers": drifted if requested else [],
        "run_id": run_context["run_id"],
        "requested_at": run_context["started_at"] if requested else None,
    }


def build_health_alerts(drift_results: pd.DataFrame, run_context: dict[str, Any]) -> pd.DataFrame:
    """One model_health_alerts row per drifted (ticker, feature) as of the run's latest as_of,
    with both signals' statistics and p-values and the kind of change.

    No detected_at: the database stamps it when the alert is first stored, so a rerun of an
    as_of neither adds nor rewrites a row.
    """
    drift_results = _latest_of_this_run(drift_results, run_context)
    alerts = drift_results[drift_results["drift"]].drop_duplicates(["ticker", "feature", "as_of"])
    return alerts.assign(as_of=alerts["as_of"].dt.date)[list(DRIFT_ALERT_COLUMNS)].reset_index(
        drop=True
    )


def freeze_drift_baseline(
    features: pd.DataFrame, params: dict[str, Any]
) -> dict[str, pd.DataFrame]:
    """The `baseline_window` sessions per ticker ending at `drift.frozen_end` (null = latest)."""
    history = _history(features, _as_of(features, {"as_of": params.get("frozen_end")}))
    window = history[history["_end"] - history["_pos"] < params["baseline_window"]]
    return {FROZEN_PARTITION: window.drop(columns=["_pos", "_end"]).reset_index(drop=True)}


def _student_t_cdf(degrees: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Student's t distribution function (scipy's stdtr), imported on use: scipy takes a third of
    a second to import, which every `kedro run` would pay through the pipeline registry."""
    from scipy.special import stdtr  # noqa: PLC0415

    return stdtr(degrees, values)
