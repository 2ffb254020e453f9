"""pandera schemas of the silver, primary and gold layers, attached in the catalog with `validator:`."""

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from kedro.utils import load_obj
from pandera.typing import Series

from stock_pipeline.contract import OHLC


class PricesSchema(pa.DataFrameModel):
    """`prices`: one row per (ticker, date), OHLC relations hold, prices positive, volume >= 0."""

    ticker: Series[str] = pa.Field(nullable=False)
    date: Series[pd.Timestamp] = pa.Field(nullable=False)
    open: Series[float] = pa.Field(gt=0)
    high: Series[float] = pa.Field(gt=0)
    low: Series[float] = pa.Field(gt=0)
    close: Series[float] = pa.Field(gt=0)
    adj_close: Series[float] = pa.Field(gt=0)
    volume: Series[float] = pa.Field(ge=0)

    class Config:
        strict = False
        coerce = True
        unique = ["ticker", "date"]  # noqa: RUF012

    @classmethod
    def validate(cls, check_obj: pd.DataFrame, *args: Any, **kwargs: Any) -> pd.DataFrame:
        """Validate in place: a copy of a multi-million-row frame costs more than every check."""
        return super().validate(check_obj, *args, **{"inplace": True, **kwargs})

    @pa.dataframe_check(
        name="ohlc_consistency", error="high >= max(open, close, low) and low <= min(open, close)"
    )
    @classmethod
    def ohlc_consistent(cls, frame: pd.DataFrame) -> pd.Series:
        """High is the bar's maximum and low its minimum."""
        open_, high, low, close = (frame[name].to_numpy() for name in OHLC)
        body_top, body_bottom = np.maximum(open_, close), np.minimum(open_, close)
        return pd.Series(
            (high >= body_top) & (high >= low) & (low <= body_bottom), index=frame.index
        )


class CleanPricesSchema(PricesSchema):
    """`clean_prices` (silver): prices plus the flags cleaning sets."""

    is_filled: Series[bool]
    is_outlier: Series[bool]
    is_special_session: Series[bool]  # a calendar.yml special session (Muhurat, Budget day...)


class FeaturesSchema(PricesSchema):
    """`features` (gold): prices plus indicators; RSI within 0..100."""

    daily_return: Series[float] = pa.Field(nullable=True)
    sma_20: Series[float] = pa.Field(nullable=True, required=False)
    sma_50: Series[float] = pa.Field(nullable=True, required=False)
    rsi_14: Series[float] = pa.Field(ge=0, le=100, nullable=True, required=False)
    macd: Series[float] = pa.Field(nullable=True, required=False)
    macd_signal: Series[float] = pa.Field(nullable=True, required=False)
    macd_hist: Series[float] = pa.Field(nullable=True, required=False)
    volatility: Series[float] = pa.Field(ge=0, nullable=True, required=False)
    # compute_features always sets it; frames written before the calendar amendments lack it
    is_special_session: Series[bool] = pa.Field(required=False)

    class Config:
        unique = None  # implied by the stricter, linear-time ordering check below

    @pa.dataframe_check(
        name="ordered_by_ticker_then_date",
        error="rows sorted by ticker then date, one row per (ticker, date)",
    )
    @classmethod
    def ordered_by_ticker_then_date(cls, frame: pd.DataFrame) -> pd.Series:
        """Each row comes after the previous one: a later ticker, or the same ticker and a later date."""
        tickers, dates = frame["ticker"].array, frame["date"].to_numpy()
        same_ticker = np.asarray(tickers[1:] == tickers[:-1], dtype=bool)
        later_ticker = np.asarray(tickers[1:] > tickers[:-1], dtype=bool)
        in_order = later_ticker | (same_ticker & (dates[1:] > dates[:-1]))
        return pd.Series(np.r_[True, in_order], index=frame.index)


class ChunkValidator:
    """A pandera schema for a frame, or for each chunk of a lazily saved {name: function} as the
    dataset computes it (Kedro's `validator:` key, `options: {schema: <class path>}`)."""

    def __init__(self, schema: str):
        self._schema = load_obj(schema)

    def validate(self, data: Any) -> Any:
        """The validated frame, or the chunks' functions wrapped to validate what they return."""
        if not isinstance(data, dict):
            return self._checked(data)
        return {name: self._validated(load) for name, load in data.items()}

    def _checked(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame validated; an empty chunk (a bucket with nothing new) has nothing to check."""
        return frame if frame.empty else self._schema.validate(frame)

    def _validated(self, load: Callable[[], pd.DataFrame]) -> Callable[[], pd.DataFrame]:
        """A function returning `load()` after validation."""
        return lambda: self._checked(load())
