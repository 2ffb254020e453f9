"""Gold layer node: indicators for every ticker from `prices`, warm-up rows dropped."""

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from stock_pipeline.contract import PRICES_COLUMNS, SPECIAL_SESSION_FLAG
from stock_pipeline.datasets.delta_table import BucketLoaders, TableWrite
from stock_pipeline.engine import submit_buckets
from stock_pipeline.pipelines.features.indicators import Indicator, build_indicators
from stock_pipeline.recipes import Recipe, features_recipe
from stock_pipeline.trading_calendar import is_special_session

logger = logging.getLogger(__name__)

PRICE_CHOICES = ("close", "adj_close")


def _ticker_changes(prices: pd.DataFrame) -> np.ndarray:
    """For each row after the first, whether its ticker differs from the previous row's."""
    tickers = prices["ticker"].array
    return np.asarray(tickers[1:] != tickers[:-1], dtype=bool)


def _ticker_bounds(changes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end row of each ticker's block in a frame sorted by ticker."""
    starts = np.flatnonzero(np.r_[True, changes])
    return starts, np.r_[starts[1:], len(changes) + 1]


def _sorted_by_ticker_and_date(prices: pd.DataFrame) -> pd.DataFrame:
    """The prices ordered by ticker then date; already ordered input (the usual case) is not copied."""
    if prices.empty:
        return prices
    changes = _ticker_changes(prices)
    block_tickers = prices["ticker"].array.take(np.flatnonzero(np.r_[True, changes]))
    later_date = np.diff(prices["date"].to_numpy()) > np.timedelta64(0)
    if (later_date | changes).all() and (block_tickers[1:] > block_tickers[:-1]).all():
        return prices
    return prices.sort_values(["ticker", "date"], kind="stable", ignore_index=True)


def _input_arrays(prices: pd.DataFrame, price_column: str) -> dict[str, np.ndarray]:
    """float64 arrays TA-Lib reads; with adj_close, open/high/low are scaled by the same factor."""
    if price_column not in PRICE_CHOICES:
        raise ValueError(
            f"features.price_column must be one of {PRICE_CHOICES}, got {price_column!r}"
        )
    close = prices["close"].to_numpy(np.float64)
    factor = prices[price_column].to_numpy(np.float64) / close
    arrays = {
        column: prices[column].to_numpy(np.float64) * factor for column in ("open", "high", "low")
    }
    arrays["close"] = close * factor
    arrays["volume"] = prices["volume"].to_numpy(np.float64)
    return arrays


def compute_indicators(
    prices: pd.DataFrame, indicators: list[Indicator], price_column: str
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every indicator column over all tickers, and each row's position within its ticker."""
    arrays = _input_arrays(prices, price_column)
    starts, ends = (
        _ticker_bounds(_ticker_changes(prices)) if len(prices) else (np.zeros(0, int),) * 2
    )
    # every row of every column is written by its ticker's block below
    columns = {name: np.empty(len(prices)) for ind in indicators for name in ind.columns}
    for start, end in zip(starts, ends, strict=True):
        block = {name: values[start:end] for name, values in arrays.items()}
        for indicator in indicators:
            for name, values in zip(indicator.columns, indicator.compute(block), strict=True):
                columns[name][start:end] = values
    positions = np.arange(len(prices)) - np.repeat(starts, ends - starts)
    return columns, positions


def _per_row(values: pd.Series, tickers: pd.Index | np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """A per-ticker value repeated over each ticker's block of rows (NaN/NaT where it has none)."""
    return np.repeat(values.reindex(tickers).to_numpy(), sizes)


def _on_or_after(
    frame: pd.DataFrame, since: pd.Series, tickers: np.ndarray, sizes: np.ndarray
) -> np.ndarray:
    """Rows dated on or after their ticker's `since` date (every row of a ticker whose date is
    NaT); `tickers` and `sizes` are the frame's blocks, sorted by ticker."""
    first = _per_row(since.astype("datetime64[us]"), tickers, sizes)
    return np.isnat(first) | (frame["date"].to_numpy(dtype="datetime64[us]") >= first)


def compute_features(
    prices: pd.DataFrame, params: dict[str, Any], since: pd.Series | None = None
) -> pd.DataFrame:
    """Prices, configured indicators and the special-session flag, by ticker then date, no warm-up;
    with `since`, only each ticker's rows from its date there on (NaT: all its rows)."""
    indicators = build_indicators(params["indicators"])
    ordered = _sorted_by_ticker_and_date(prices[list(PRICES_COLUMNS)].reset_index(drop=True))
    columns, positions = compute_indicators(
        ordered, indicators, params.get("price_column", "close")
    )
    warmup = max((indicator.lookback for indicator in indicators), default=0)
    keep = positions >= warmup if params.get("drop_warmup", True) else np.ones(len(ordered), bool)
    if since is not None and len(ordered):
        starts = np.flatnonzero(positions == 0)
        sizes = np.diff(np.r_[starts, len(ordered)])
        tickers = np.asarray(ordered["ticker"].array.take(starts), dtype=object)
        keep &= _on_or_after(ordered, since, tickers, sizes)
    output = {name: ordered[name].array[keep] for name in PRICES_COLUMNS}
    output["volume"] = ordered["volume"].to_numpy(np.float64)[keep]
    output.update({name: values[keep] for name, values in columns.items()})
    output[SPECIAL_SESSION_FLAG] = is_special_session(ordered["date"]).to_numpy()[keep]
    return pd.DataFrame(output, copy=False)


def _changed_since(prices: pd.DataFrame, stored_last: pd.Series, changes: pd.Series) -> pd.Series:
    """Per ticker of `prices` whose feature rows change, the first changed date (NaT: the whole
    history): this run's price changes, and wherever stored gold lags the prices (a run stopped
    between writing prices and features, a ticker gold never held)."""
    last = prices.groupby("ticker")["date"].max()
    stored = stored_last.reindex(last.index)
    lagging = stored.isna() | (stored < last)
    since = (stored[lagging] + pd.Timedelta(microseconds=1)).astype("datetime64[us]")
    changed = changes[changes.index.isin(last.index)].astype("datetime64[us]")
    both = since.index.intersection(changed.index)
    whole = both[since[both].isna().to_numpy() | changed[both].isna().to_numpy()]
    merged = pd.concat([since, changed]).groupby(level=0).min()
    merged[whole] = pd.NaT
    return merged


def _cumulative_columns(indicators: list[Indicator]) -> list[str]:
    """The columns of running totals from the first bar (OBV)."""
    return [name for indicator in indicators if indicator.cumulative for name in indicator.columns]


def _recent_rows(
    prices: pd.DataFrame, since: pd.Series, stored: pd.DataFrame, indicators: list[Indicator]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each ticker's rows from the indicators' memory before its first changed row on (so every
    changed row comes out as a full rebuild computes it), and the stored last rows that anchor
    the cumulative columns of the tickers so cut. A ticker is read from its first bar when the
    memory is unbounded, or when its row before the change is not gold's last stored row (no
    stored value to anchor a running total on)."""
    ordered = _sorted_by_ticker_and_date(prices.reset_index(drop=True))
    cumulative = _cumulative_columns(indicators)
    memories = [indicator.memory for indicator in indicators]
    no_anchors = stored.iloc[:0].reindex(columns=["date", *cumulative])
    if ordered.empty or None in memories:
        return ordered, no_anchors
    memory = max(memories, default=0) + 1  # and the last unchanged row, the anchor
    starts, ends = _ticker_bounds(_ticker_changes(ordered))
    tickers = ordered["ticker"].array.take(starts)
    dates = ordered["date"].to_numpy(dtype="datetime64[us]")
    changed_from = since.reindex(tickers).to_numpy(dtype="datetime64[us]")
    firsts = np.array(
        [
            start if np.isnat(day) else start + np.searchsorted(dates[start:end], day)
            for start, end, day in zip(starts, ends, changed_from, strict=True)
        ],
        dtype=np.int64,
    )
    cut_from = np.maximum(starts, firsts - memory)
    anchors = stored.reindex(index=tickers, columns=["date", *cumulative])
    if cumulative:
        anchored = (anchors["date"].to_numpy(dtype="datetime64[us]") == dates[firsts - 1]) & (
            anchors[cumulative].notna().all(axis=1).to_numpy()
        )
        cut_from = np.where(anchored, cut_from, starts)
    keep = np.arange(len(ordered)) >= np.repeat(cut_from, ends - starts)
    return ordered[keep].reset_index(drop=True), anchors[cut_from > starts]


def _anchor_cumulative(
    features: pd.DataFrame, anchors: pd.DataFrame, tickers: np.ndarray, sizes: np.ndarray
) -> None:
    """Shift each cut ticker's running totals by the constant that makes its anchor row equal the
    stored value (exact: volumes are whole numbers). `tickers` and `sizes` are the blocks of
    `features`, sorted by ticker."""
    at_anchor = features["date"].to_numpy(dtype="datetime64[us]") == _per_row(
        anchors["date"].astype("datetime64[us]"), tickers, sizes
    )
    block = np.repeat(np.arange(len(tickers)), sizes)[at_anchor]
    for column in anchors.columns.drop("date"):
        values = features[column].to_numpy()
        computed = np.full(len(tickers), np.nan)
        computed[block] = values[at_anchor]
        offset = anchors[column].reindex(tickers).to_numpy(dtype=np.float64) - computed
        features[column] = values + np.repeat(np.nan_to_num(offset, nan=0.0), sizes)


def _update_bucket(
    prices: pd.DataFrame,
    stored: pd.DataFrame,
    changes: pd.Series,
    params: dict[str, Any],
    indicators: list[Indicator],
) -> pd.DataFrame:
    """One bucket's changed feature rows, each changed ticker from its first changed date on,
    computed from the `indicators`' memory before it. `stored` is gold's last row per ticker (its
    date and cumulative columns)."""
    since = _changed_since(prices, stored["date"], changes)
    recent, anchors = _recent_rows(
        prices[prices["ticker"].isin(since.index)], since, stored, indicators
    )
    # the changed rows, and the anchor rows before them (dropped once the totals are anchored)
    from_anchor = since.copy()
    from_anchor[anchors.index] = anchors["date"]
    features = compute_features(recent, params, from_anchor)
    if features.empty:
        return features
    starts, ends = _ticker_bounds(_ticker_changes(features))
    tickers, sizes = np.asarray(features["ticker"].array.take(starts), dtype=object), ends - starts
    _anchor_cumulative(features, anchors, tickers, sizes)
    return features[_on_or_after(features, since, tickers, sizes)].reset_index(drop=True)


def _last_stored_rows(
    load: Callable[[], pd.DataFrame] | None, indicators: list[Indicator]
) -> pd.DataFrame:
    """Gold's last row per ticker of one bucket, by ticker: its date and running totals (no row
    when the bucket holds none yet)."""
    stored = load() if load else pd.DataFrame({"ticker": [], "date": pd.Series(dtype="M8[us]")})
    return (
        stored.sort_values(["ticker", "date"], kind="stable")
        .drop_duplicates("ticker", keep="last")
        .set_index("ticker")
        .reindex(columns=["date", *_cumulative_columns(indicators)])
    )


def _update_loaded_bucket(
    load: Callable[[], pd.DataFrame],
    load_stored: Callable[[], pd.DataFrame] | None,
    changes: pd.Series | None,
    params: dict[str, Any],
) -> pd.DataFrame:
    """Load one bucket's prices (and, unless rebuilding, gold's last rows) and return its changed
    feature rows (where the engine runs it)."""
    if changes is None:
        return compute_features(load(), params)
    indicators = build_indicators(params["indicators"])
    stored = _last_stored_rows(load_stored, indicators)
    return _update_bucket(load(), stored, changes, params, indicators)


def configured_recipe(params: dict[str, Any], prices: Recipe | None) -> Recipe:
    """The recipe `params` configure: each indicator column with its spec, the price column, the
    warm-up rule, on prices of recipe `prices` (a bad spec fails here, before any bucket is read)."""
    indicators = build_indicators(params["indicators"])
    columns = {
        name: spec
        for spec, indicator in zip(params["indicators"], indicators, strict=True)
        for name in indicator.columns
    }
    return features_recipe(params, columns, prices)


def update_features(
    price_buckets: BucketLoaders,
    price_changes: pd.DataFrame,
    features_stored: BucketLoaders,
    params: dict[str, Any],
    rebuild: bool,
    compute: dict[str, Any],
) -> TableWrite:
    """The feature rows that change, one function per ticker bucket for the table to save (on the
    local engine computed by worker processes a few buckets ahead of the one being saved, so
    memory holds a few buckets). A changed ticker is computed from the indicators' memory before
    its first changed row (`Indicator.memory`: recursive ones such as RSI, MACD, ATR and ADX until
    their start no longer shows; running totals such as OBV anchored on gold's last stored value),
    so its rows equal a full rebuild's. Every row, replacing the whole table, when `rebuild` or
    when the configured recipe differs from the one gold was written under (an indicator added,
    removed or changed, another price column, prices cleaned under other rules). `features_stored`
    loads gold's last row per ticker one bucket at a time, where the bucket is computed (not at
    all when every row is computed)."""
    recipe = configured_recipe(params, price_buckets.recipe)
    change = (
        recipe.changes_from(features_stored.recipe) if features_stored.version is not None else None
    )
    if change:
        logger.info(
            "features recipe changed (%s): recomputing every ticker of %d buckets from its first bar",
            change,
            len(price_buckets),
        )
    whole = rebuild or change is not None
    changes = None if whole else price_changes.set_index("ticker")["since"]
    work = {
        bucket: (load, None if whole else features_stored.get(bucket), changes, params)
        for bucket, load in sorted(price_buckets.items())
    }
    return TableWrite(submit_buckets(_update_loaded_bucket, work, compute), recipe, whole)
