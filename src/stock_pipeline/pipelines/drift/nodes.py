"""Drift nodes: baseline vs current windows per ticker and monitored feature, alerts and requests.

Two methods. `ks` is the seed's rule verbatim: a two-sample Kolmogorov-Smirnov test of the raw
feature values, baseline window against current window, drift when p < alpha. `calibrated` (the
default) first makes each feature stationary (`drift.transforms`), measures how far the current
window lies from the baseline in baseline standard deviations (Q, below), takes an empirical
p-value from the ticker's own history of Q over past window pairs, and controls the false
discovery rate across tickers and features with Benjamini-Hochberg.
"""

from typing import Any

import numpy as np
import pandas as pd

RESULT_COLUMNS = [
    "as_of",
    "ticker",
    "feature",
    "method",
    "statistic",
    "p_value",
    "alpha",
    "baseline_sample_size",
    "current_sample_size",
    "drift",
    "run_id",
]
ALERT_COLUMNS = [
    "ticker",
    "feature",
    "as_of",
    "p_value",
    "statistic",
    "alpha",
    "baseline_sample_size",
    "current_sample_size",
    "method",
]
METHODS = ("calibrated", "ks")
BASELINE_MODES = ("rolling", "frozen")
TRANSFORMS = ("level", "log", "diff", "log_diff")
FROZEN_PARTITION = "baseline"


def _as_of(features: pd.DataFrame, params: dict[str, Any]) -> pd.Timestamp:
    """The requested as_of date (a string, date or null = the latest date in features)."""
    as_of = params.get("as_of")
    return pd.Timestamp(as_of).normalize() if as_of else features["date"].max().normalize()


def _history(features: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Rows up to as_of with each row's position in its ticker and the position of its last row."""
    history = features[features["date"] < as_of + pd.Timedelta(days=1)]
    history = history.sort_values(["ticker", "date"], kind="stable").reset_index(drop=True)
    position = history.groupby("ticker").cumcount()
    return history.assign(
        _pos=position.to_numpy(), _end=position.groupby(history["ticker"]).transform("max")
    )


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


def _rolling_moments(
    values: np.ndarray, position: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population variance of the `window` values ending at each row of its ticker.

    NaN where the window is incomplete or holds a NaN. Values are centred per ticker by the caller,
    so the running sums lose no precision.
    """
    valid = ~np.isnan(values)
    filled = np.where(valid, values, 0.0)
    cumulative = [np.concatenate(([0.0], np.cumsum(a))) for a in (valid, filled, filled**2)]
    stop = np.arange(1, len(values) + 1)
    start = np.maximum(stop - window, 0)
    count, total, squares = (c[stop] - c[start] for c in cumulative)
    complete = (position >= window - 1) & (count == window)
    mean = total / window
    variance = np.maximum(squares / window - mean**2, 0.0)
    return np.where(complete, mean, np.nan), np.where(complete, variance, np.nan)


def _shift(values: np.ndarray, periods: int) -> np.ndarray:
    """Values moved down by `periods` rows (callers mask rows whose source is another ticker)."""
    return np.concatenate((np.full(periods, np.nan), values[:-periods])) if periods else values


def _centred(values: np.ndarray, tickers: pd.Series) -> np.ndarray:
    """Values minus their ticker's mean (Q does not depend on it; the running sums stay small)."""
    return values - pd.Series(values).groupby(tickers.to_numpy()).transform("mean").to_numpy()


def _q_statistic(
    current_mean: np.ndarray,
    current_variance: np.ndarray,
    baseline_mean: np.ndarray,
    baseline_variance: np.ndarray,
) -> np.ndarray:
    """Mean squared distance of the current values from the baseline mean, in baseline variances."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (current_variance + (current_mean - baseline_mean) ** 2) / baseline_variance
    return np.where(baseline_variance > 0, q, np.nan)


def _frozen_moments(frozen: pd.DataFrame, feature: str, how: str) -> pd.DataFrame:
    """Per ticker: mean, sample variance and size of the transformed frozen baseline."""
    frozen = frozen.sort_values(["ticker", "date"], kind="stable").reset_index(drop=True)
    frozen = frozen.assign(_pos=frozen.groupby("ticker").cumcount().to_numpy())
    values = pd.Series(_transform(frozen, feature, how)).groupby(frozen["ticker"].to_numpy())
    return pd.DataFrame(
        {"mean": values.mean(), "variance": values.var(ddof=1), "n": values.count()}
    )


def _calibrated_feature(
    history: pd.DataFrame, frozen: pd.DataFrame | None, feature: str, params: dict[str, Any]
) -> pd.DataFrame:
    """Q as of the last row of each ticker and its empirical p-value over the ticker's past pairs."""
    baseline_window, current_window = params["baseline_window"], params["current_window"]
    how = params.get("transforms", {}).get(feature, "level")
    position = history["_pos"].to_numpy()
    values = _transform(history, feature, how)
    if frozen is None:
        values = _centred(values, history["ticker"])
        mean, variance = _rolling_moments(values, position, baseline_window)
        baseline_mean = _shift(mean, current_window)
        baseline_variance = (
            _shift(variance, current_window) * baseline_window / (baseline_window - 1)
        )
        complete = position >= baseline_window + current_window - 1
        baseline_size = pd.Series(baseline_window, index=history["ticker"].unique())
    else:
        moments = _frozen_moments(frozen, feature, how)
        values = values - history["ticker"].map(moments["mean"]).to_numpy(dtype="float64")
        baseline_mean = np.zeros(len(history))
        baseline_variance = history["ticker"].map(moments["variance"]).to_numpy(dtype="float64")
        complete = np.ones(len(history), dtype=bool)
        baseline_size = moments["n"]
    current_mean, current_variance = _rolling_moments(values, position, current_window)
    q = _q_statistic(current_mean, current_variance, baseline_mean, baseline_variance)
    result = _empirical_p_values(history, np.where(complete, q, np.nan), params)
    tested = result["statistic"].notna()
    return result.assign(
        feature=feature,
        baseline_sample_size=np.where(tested, result["ticker"].map(baseline_size), 0),
        current_sample_size=np.where(tested, current_window, 0),
    )


def _empirical_p_values(
    history: pd.DataFrame, q: np.ndarray, params: dict[str, Any]
) -> pd.DataFrame:
    """Per ticker: Q at its last row and (1 + #past Q >= it) / (1 + #past Q) over earlier pairs.

    Past pairs are those whose current window ends before this current window starts.
    """
    position, end = history["_pos"].to_numpy(), history["_end"].to_numpy()
    tickers = history["ticker"].to_numpy()
    is_last = position == end
    last_q = pd.Series(q[is_last], index=tickers[is_last])
    current = history["ticker"].map(last_q).to_numpy(dtype="float64")
    reference = (position <= end - params["current_window"]) & ~np.isnan(q)
    with np.errstate(invalid="ignore"):
        exceed = reference & (q >= current)
    counts = pd.DataFrame({"n": reference, "exceed": exceed}).groupby(tickers).sum()
    enough = (counts["n"] >= params["min_history"]) & last_q.notna()
    return pd.DataFrame(
        {
            "ticker": counts.index,
            "statistic": last_q.reindex(counts.index).to_numpy(),
            "p_value": np.where(enough, (1 + counts["exceed"]) / (1 + counts["n"]), np.nan),
        }
    )


def _window_matrix(frame: pd.DataFrame, feature: str, offsets: pd.Series) -> pd.DataFrame:
    """One row per ticker, one column per offset, the feature's values (NaN where missing)."""
    return frame.assign(_offset=offsets.to_numpy()).pivot(
        index="ticker", columns="_offset", values=feature
    )


def _capped(matrix: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """At most `cap` non-missing values per row, drawn without replacement where there are more."""
    if matrix.shape[1] <= cap:
        return matrix
    keys = np.where(np.isnan(matrix), np.inf, rng.random(matrix.shape))
    order = np.argsort(keys, axis=1)[:, :cap]
    return np.take_along_axis(matrix, order, axis=1)


def _ks_feature(
    history: pd.DataFrame, frozen: pd.DataFrame | None, feature: str, params: dict[str, Any]
) -> pd.DataFrame:
    """The seed's test: ks_2samp of raw values, baseline window against the current window."""
    baseline_window, current_window = params["baseline_window"], params["current_window"]
    back = history["_end"] - history["_pos"]
    current_rows = history[back < current_window]
    current = _window_matrix(current_rows, feature, back[back < current_window])
    if frozen is None:
        rows = (back >= current_window) & (back < current_window + baseline_window)
        baseline = _window_matrix(history[rows], feature, back[rows])
    else:
        baseline = _window_matrix(frozen, feature, frozen.groupby("ticker").cumcount())
    baseline = baseline.reindex(current.index)
    rng = np.random.default_rng(params["seed"])
    base_values = _capped(baseline.to_numpy(dtype="float64"), params["sample_cap"], rng)
    current_values = _capped(current.to_numpy(dtype="float64"), params["sample_cap"], rng)
    base_size = (~np.isnan(base_values)).sum(axis=1)
    current_size = (~np.isnan(current_values)).sum(axis=1)
    testable = (base_size > 0) & (current_size > 0)
    statistic = np.full(len(current), np.nan)
    p_value = np.full(len(current), np.nan)
    if testable.any():
        # imported here: scipy.stats takes a second to import and only the ks method needs it
        from scipy.stats import ks_2samp  # noqa: PLC0415

        result = ks_2samp(
            base_values[testable], current_values[testable], axis=1, nan_policy="omit"
        )
        statistic[testable], p_value[testable] = result.statistic, result.pvalue
    return pd.DataFrame(
        {
            "ticker": current.index,
            "feature": feature,
            "statistic": statistic,
            "p_value": p_value,
            "baseline_sample_size": base_size,
            "current_sample_size": current_size,
        }
    )


def _benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN and does not count as a test)."""
    adjusted = np.full(len(p_values), np.nan)
    tested = np.flatnonzero(~np.isnan(p_values))
    order = tested[np.argsort(p_values[tested], kind="stable")]
    ranked = p_values[order] * len(order) / np.arange(1, len(order) + 1)
    adjusted[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return adjusted


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
    when `frozen` is given, else the `baseline_window` sessions before the current window.
    """
    baseline_window, current_window = params["baseline_window"], params["current_window"]
    how = "level"
    if params["method"] == "calibrated":
        how = params.get("transforms", {}).get(feature, "level")
    history = _history(features, _as_of(features, params))
    back = (history["_end"] - history["_pos"]).to_numpy()
    limit = current_window if frozen is not None else current_window + baseline_window
    window = np.where(back < current_window, "current", "baseline")
    windows = history[["ticker", "date"]].assign(
        value=_transform(history, feature, how), window=window
    )[back < limit]
    if frozen is not None:
        frozen = frozen.sort_values(["ticker", "date"], kind="stable").reset_index(drop=True)
        frozen = frozen.assign(_pos=frozen.groupby("ticker").cumcount().to_numpy())
        baseline = frozen[["ticker", "date"]].assign(
            value=_transform(frozen, feature, how), window="baseline"
        )
        windows = pd.concat([baseline, windows], ignore_index=True)
    return windows.dropna(subset=["value"]).sort_values(["ticker", "date"], ignore_index=True)


def detect_drift_node(
    features: pd.DataFrame,
    drift_baseline: dict[str, pd.DataFrame],
    params: dict[str, Any],
    run_context: dict[str, Any],
) -> pd.DataFrame:
    """One row per (ticker, monitored feature) as of `drift.as_of`: statistic, p-value, decision."""
    method = params["method"]
    if method not in METHODS:
        raise ValueError(f"drift.method must be one of {METHODS}, got {method!r}")
    as_of = _as_of(features, params)
    history = _history(features, as_of)
    if history.empty:
        raise ValueError(f"drift.as_of {as_of.date()} is before the first date in features")
    frozen = _frozen_baseline(drift_baseline, params)
    test = _ks_feature if method == "ks" else _calibrated_feature
    results = pd.concat(
        [test(history, frozen, feature, params) for feature in params["features"]],
        ignore_index=True,
    )
    p_values = results["p_value"].to_numpy(dtype="float64")
    if method == "calibrated" and params.get("fdr", "benjamini_hochberg") == "benjamini_hochberg":
        drift = _benjamini_hochberg(p_values) <= params["alpha"]
    else:
        drift = p_values < params["alpha"]
    results = results.assign(
        as_of=as_of,
        method=method,
        alpha=float(params["alpha"]),
        drift=drift,
        run_id=run_context["run_id"],
    )
    return results.sort_values(["ticker", "feature"], ignore_index=True)[RESULT_COLUMNS]


def _reason(tested: int, drifted: list[str], method: str) -> str:
    """Why a ticker gets its recommendation, in words."""
    if not tested:
        return "not tested: too little history for the baseline and current windows"
    if not drifted:
        return f"no drift in {tested} tested features ({method})"
    return f"drift in {len(drifted)} of {tested} tested features ({method}): {', '.join(drifted)}"


def _this_run(drift_results: pd.DataFrame, run_context: dict[str, Any]) -> pd.DataFrame:
    """The rows this run wrote (drift_results loads back with the rows of earlier runs)."""
    return drift_results[drift_results["run_id"] == run_context["run_id"]]


def recommend_retraining_node(
    drift_results: pd.DataFrame, run_context: dict[str, Any]
) -> dict[str, Any]:
    """Per ticker `retrain_model` when any monitored feature drifted, else `none`, with the reason."""
    drift_results = _this_run(drift_results, run_context)
    method = str(drift_results["method"].iloc[0])
    drifted = drift_results[drift_results["drift"]].groupby("ticker")["feature"].agg(list)
    tested = drift_results["p_value"].notna().groupby(drift_results["ticker"]).sum()
    tickers = {
        str(ticker): {
            "recommendation": "retrain_model" if ticker in drifted.index else "none",
            "reason": _reason(int(count), drifted.get(ticker, []), method),
            "drifted_features": drifted.get(ticker, []),
        }
        for ticker, count in tested.items()
    }
    tested_tickers = int((tested > 0).sum())
    return {
        "as_of": drift_results["as_of"].max().date().isoformat(),
        "method": method,
        "tickers": tickers,
        "share_drifted": len(drifted) / tested_tickers if tested_tickers else 0.0,
    }


def request_retraining_node(
    drift_recommendations: dict[str, Any], params: dict[str, Any], run_context: dict[str, Any]
) -> dict[str, Any]:
    """The retrain request: requested true when the drifted share reaches the threshold."""
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


def build_health_alerts_node(
    drift_results: pd.DataFrame, run_context: dict[str, Any]
) -> pd.DataFrame:
    """One model_health_alerts row per drifted (ticker, feature, as_of).

    No detected_at: the database stamps it when the alert is first stored, so a rerun of an
    as_of neither adds nor rewrites a row.
    """
    drift_results = _this_run(drift_results, run_context)
    alerts = drift_results[drift_results["drift"]].drop_duplicates(["ticker", "feature", "as_of"])
    return alerts.assign(as_of=alerts["as_of"].dt.date)[ALERT_COLUMNS].reset_index(drop=True)


def freeze_drift_baseline_node(
    features: pd.DataFrame, params: dict[str, Any]
) -> dict[str, pd.DataFrame]:
    """The `baseline_window` sessions per ticker ending at `drift.frozen_end` (null = latest)."""
    history = _history(features, _as_of(features, {"as_of": params.get("frozen_end")}))
    window = history[history["_end"] - history["_pos"] < params["baseline_window"]]
    return {FROZEN_PARTITION: window.drop(columns=["_pos", "_end"]).reset_index(drop=True)}
