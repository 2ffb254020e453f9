"""pandera schemas of the silver, primary and gold layers, attached in the catalog with `validator:`."""

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from kedro.utils import load_obj

from stock_pipeline.contract import OHLC, PRICE_VALUES, SPECIAL_SESSION_FLAG


def _ohlc_consistent(frame: pd.DataFrame) -> pd.Series:
    """High is the bar's maximum and low its minimum."""
    open_, high, low, close = (frame[name].to_numpy() for name in OHLC)
    body_top, body_bottom = np.maximum(open_, close), np.minimum(open_, close)
    return pd.Series((high >= body_top) & (high >= low) & (low <= body_bottom), index=frame.index)


def _ordered_by_ticker_then_date(frame: pd.DataFrame) -> pd.Series:
    """Each row comes after the previous one: a later ticker, or the same ticker and a later date."""
    tickers, dates = frame["ticker"].array, frame["date"].to_numpy()
    same_ticker = np.asarray(tickers[1:] == tickers[:-1], dtype=bool)
    later_ticker = np.asarray(tickers[1:] > tickers[:-1], dtype=bool)
    in_order = later_ticker | (same_ticker & (dates[1:] > dates[:-1]))
    return pd.Series(np.r_[True, in_order], index=frame.index)


OHLC_CONSISTENCY = pa.Check(
    _ohlc_consistent,
    name="ohlc_consistency",
    error="high >= max(open, close, low) and low <= min(open, close)",
)

# Schema objects rather than DataFrameModel classes: building a model's schema imports dask (for
# pandera's dask types) when it is installed, over a second of every run's start-up. The names
# stay the catalog's `validator:` paths.

PRICE_COLUMNS = {
    "ticker": pa.Column(str, nullable=False),
    "date": pa.Column(pd.Timestamp, nullable=False),
    **{name: pa.Column(float, pa.Check.gt(0)) for name in PRICE_VALUES},
    "volume": pa.Column(float, pa.Check.ge(0)),
}


def _prices_schema(
    name: str,
    columns: dict[str, pa.Column],
    checks: tuple[pa.Check, ...] = (),
    unique: list[str] | None = ["ticker", "date"],  # noqa: B006  (read only)
) -> pa.DataFrameSchema:
    """The prices' columns and OHLC check, plus a layer's own; values coerced, more columns allowed."""
    return pa.DataFrameSchema(
        {**PRICE_COLUMNS, **columns},
        checks=[OHLC_CONSISTENCY, *checks],
        strict=False,
        coerce=True,
        unique=unique,
        name=name,
    )


_OPTIONAL = {"nullable": True, "required": False}

# `prices`: one row per (ticker, date), OHLC relations hold, prices positive, volume >= 0.
PricesSchema = _prices_schema("PricesSchema", {})

# `clean_prices` (silver): prices plus the flags cleaning sets (is_special_session: a calendar.yml
# special session such as Muhurat or Budget day).
CleanPricesSchema = _prices_schema(
    "CleanPricesSchema",
    {flag: pa.Column(bool) for flag in ("is_filled", "is_outlier", SPECIAL_SESSION_FLAG)},
)

# `features` (gold): prices plus indicators; RSI within 0..100; rows ordered by ticker then date,
# which implies one row per (ticker, date) in linear time (so no separate uniqueness check).
FeaturesSchema = _prices_schema(
    "FeaturesSchema",
    {
        "daily_return": pa.Column(float, nullable=True),
        **{
            name: pa.Column(float, **_OPTIONAL)
            for name in ("sma_20", "sma_50", "macd", "macd_signal", "macd_hist")
        },
        "rsi_14": pa.Column(float, [pa.Check.ge(0), pa.Check.le(100)], **_OPTIONAL),
        "volatility": pa.Column(float, pa.Check.ge(0), **_OPTIONAL),
        # compute_features always sets it; frames written before the calendar amendments lack it
        SPECIAL_SESSION_FLAG: pa.Column(bool, required=False),
    },
    checks=(
        pa.Check(
            _ordered_by_ticker_then_date,
            name="ordered_by_ticker_then_date",
            error="rows sorted by ticker then date, one row per (ticker, date)",
        ),
    ),
    unique=None,
)


class ChunkValidator:
    """A pandera schema for a frame, or for each chunk of a lazily saved {name: function} as the
    dataset computes it (Kedro's `validator:` key, `options: {schema: <class path>}`)."""

    def __init__(self, schema: str):
        self._schema = load_obj(schema)

    def validate(self, data: Any) -> Any:
        """The validated frame, or the chunks' functions wrapped to validate what they return."""
        if not isinstance(data, dict):
            return self._checked(data)
        chunks = copy.copy(data)  # of the same class: a TableWrite keeps its recipe
        chunks.update((name, self._validated(load)) for name, load in data.items())
        return chunks

    def _checked(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame validated; an empty chunk (a bucket with nothing new) has nothing to check."""
        # in place: a copy of a multi-million-row frame costs more than every check
        return frame if frame.empty else self._schema.validate(frame, inplace=True)

    def _validated(self, load: Callable[[], pd.DataFrame]) -> Callable[[], pd.DataFrame]:
        """A function returning `load()` after validation."""
        return lambda: self._checked(load())
