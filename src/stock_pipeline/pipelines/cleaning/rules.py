"""Named row rules of the silver layer: each marks the rows it rejects and says why.

Rows are daily bars (dated at midnight) or intraday bars (stamped with their start time); both are
naive Asia/Kolkata wall-clock time. Session rules use the date part; intraday bars must also start
within the session's hours.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from stock_pipeline.contract import BAR_VALUES, OHLC, PRICE_VALUES
from stock_pipeline.trading_calendar import is_session, within_session_hours

# a decimal number both Arrow and pandas parse, to the same value
PLAIN_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
SPLIT_RATIOS = np.array([1 / 10, 1 / 5, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 3 / 2, 2, 3, 4, 5, 10])


def _numbers(text: pd.Series) -> np.ndarray:
    """Numbers of the text, surrounding whitespace ignored; NaN where it does not parse.

    Arrow parses (the values pandas' `to_numeric` gives, many times faster); when some text is no
    plain decimal number, `to_numeric` parses that text alone, so its verdict on it stands."""
    stripped = pc.utf8_trim_whitespace(pa.array(text.astype(str).array))
    try:
        return pc.cast(pc.if_else(pc.equal(stripped, ""), None, stripped), pa.float64()).to_numpy(
            zero_copy_only=False
        )
    except pa.ArrowInvalid:
        plain = pc.fill_null(pc.match_substring_regex(stripped, PLAIN_NUMBER), False)
        values = pc.cast(pc.if_else(plain, stripped, None), pa.float64())
        numbers = np.array(values.to_numpy(zero_copy_only=False))
        other = ~plain.to_numpy(zero_copy_only=False)
        numbers[other] = pd.to_numeric(text[other].str.strip(), errors="coerce").to_numpy(float)
        return numbers


def parse_numbers(raw: pd.DataFrame) -> pd.DataFrame:
    """Dates and numbers parsed from bronze text; what does not parse (or is not finite) becomes NaN."""
    parsed = pd.DataFrame({"ticker": raw["ticker"].astype(str)}, index=raw.index)
    parsed["date"] = pd.to_datetime(raw["date"], errors="coerce", format="ISO8601")
    for column in BAR_VALUES:
        values = _numbers(raw[column])
        parsed[column] = np.where(np.isfinite(values), values, np.nan)
    return parsed


def _text_blank(raw: pd.DataFrame, column: str) -> pd.Series:
    """True where the bronze text of a column is empty."""
    return raw[column].str.strip().eq("")


def unparsable_value(raw: pd.DataFrame, parsed: pd.DataFrame) -> pd.Series:
    """Reason text where a date or number column holds text that is not one, else NaN."""
    reasons = pd.Series(np.nan, index=raw.index, dtype=object)
    for column in ["date", *BAR_VALUES]:
        bad = ~_text_blank(raw, column) & parsed[column].isna() & reasons.isna()
        text = raw.loc[bad, column].str.slice(0, 40).map(repr)
        reasons[bad] = column + "=" + text + " does not parse"
    missing_date = _text_blank(raw, "date")
    return reasons.where(reasons.notna() | ~missing_date, "date is empty")


def empty_prices(raw: pd.DataFrame) -> pd.Series:
    """Rows whose open, high, low and close are all empty (a partial or placeholder bar)."""
    return pd.concat([_text_blank(raw, column) for column in OHLC], axis=1).all(axis=1)


def has_time_of_day(parsed: pd.DataFrame) -> pd.Series:
    """True for the rows of tickers holding intraday bars (any of their times is not midnight)."""
    dates = parsed["date"]
    timed = dates.notna() & (dates != dates.dt.normalize())
    return timed.groupby(parsed["ticker"]).transform("any").astype(bool)


def future_date(
    parsed: pd.DataFrame, run_day: pd.Timestamp, run_time: pd.Timestamp | None = None
) -> pd.Series:
    """Rows dated after the day of the run; intraday bars starting after the run's time."""
    future = parsed["date"].dt.normalize() > run_day
    if run_time is None:
        return future
    return future | (has_time_of_day(parsed) & (parsed["date"] > run_time))


def non_trading_day(parsed: pd.DataFrame, run_day: pd.Timestamp) -> pd.Series:
    """Rows up to the run day dated on no NSE session (later ones are future_date's to reject)."""
    dated = parsed["date"].notna() & (parsed["date"].dt.normalize() <= run_day)
    off = pd.Series(False, index=parsed.index)
    off[dated] = ~is_session(parsed.loc[dated, "date"])
    return off


def traded(parsed: pd.DataFrame) -> pd.Series:
    """Rows with positive prices and volume: a real trading bar, not a placeholder."""
    return (parsed[list(OHLC)] > 0).all(axis=1) & (parsed["volume"] > 0)


def outside_session_hours(parsed: pd.DataFrame) -> pd.Series:
    """Intraday bars that do not start within their session's hours (09:15 to 15:30 IST)."""
    return has_time_of_day(parsed) & parsed["date"].notna() & ~within_session_hours(parsed["date"])


def duplicate_date(parsed: pd.DataFrame) -> pd.Series:
    """Every row but the last fetched one of a (ticker, date), or of a (ticker, bar time)."""
    return parsed.duplicated(subset=["ticker", "date"], keep="last")


def non_positive_price(parsed: pd.DataFrame) -> pd.Series:
    """Rows with a price at or below zero."""
    return (parsed[list(PRICE_VALUES)] <= 0).any(axis=1)


def negative_volume(parsed: pd.DataFrame) -> pd.Series:
    """Rows with a volume below zero."""
    return parsed["volume"] < 0


def ohlc_inconsistent(parsed: pd.DataFrame) -> pd.Series:
    """Rows where high is not the bar's maximum or low not its minimum."""
    high_ok = parsed["high"] >= parsed[["open", "close", "low"]].max(axis=1)
    low_ok = parsed["low"] <= parsed[["open", "close"]].min(axis=1)
    return ~(high_ok & low_ok)


def ghost_bar(prices: pd.DataFrame) -> pd.Series:
    """Zero-volume bars with open = high = low = close: a placeholder, not trading."""
    ohlc = prices[list(OHLC)].to_numpy()
    flat = (ohlc == ohlc[:, :1]).all(axis=1)
    return prices["volume"].eq(0) & flat


def suspected_split(returns: pd.Series, threshold: float, tolerance: float = 0.03) -> pd.Series:
    """One-day moves beyond the threshold whose ratio is a usual split or bonus ratio."""
    large = (returns.abs() > threshold).to_numpy(copy=True)
    ratio = 1 + returns.to_numpy()[large]  # only the large moves: the ratios of those
    nearest = np.abs(ratio[:, None] / SPLIT_RATIOS[None, :] - 1).min(axis=1)
    large[large] = nearest < tolerance
    return pd.Series(large, index=returns.index)


def outlier_mask(returns: pd.Series, tickers: pd.Series, settings: dict) -> pd.Series:
    """Outlying daily returns per ticker by the configured method: iqr, zscore or rolling mad."""
    grouped = returns.groupby(tickers)
    method = settings["method"]
    if method == "iqr":
        q1, q3 = (
            grouped.transform(lambda r: r.quantile(0.25)),
            grouped.transform(lambda r: r.quantile(0.75)),
        )
        spread = settings["iqr_multiplier"] * (q3 - q1)
        return (returns < q1 - spread) | (returns > q3 + spread)
    if method == "zscore":
        score = (returns - grouped.transform("mean")) / grouped.transform("std")
        return score.abs() > settings["zscore_threshold"]
    if method == "mad":
        window = settings["mad_window"]
        past = grouped.shift(1)
        median = _rolling_median(past, tickers, window)
        mad = _rolling_median((past - median).abs(), tickers, window)
        score = (returns - median).abs() / (1.4826 * mad)
        return score > settings["mad_threshold"]
    raise ValueError(f"cleaning.outliers.method must be iqr, zscore or mad, got {method!r}")


def _rolling_median(values: pd.Series, tickers: pd.Series, window: int) -> pd.Series:
    """Each ticker's rolling median over `window` rows (at least 20 values), aligned with `values`.

    One rolling pass over all tickers, each preceded by `window` NaNs: every window then holds the
    values of one ticker only (NaNs do not count), the same values a rolling window per ticker
    holds, so the medians are the same, without a Python call per ticker."""
    codes = pd.factorize(tickers)[0]
    order = np.argsort(codes, kind="stable")
    groups = np.cumsum(np.r_[True, codes[order][1:] != codes[order][:-1]])
    positions = np.arange(len(order)) + window * groups
    padded = np.full(len(order) + window * (groups[-1] if len(order) else 0), np.nan)
    padded[positions] = values.to_numpy(dtype=float)[order]
    medians = pd.Series(padded).rolling(window, min_periods=20).median().to_numpy()
    aligned = np.empty(len(order))
    aligned[order] = medians[positions]
    return pd.Series(aligned, index=values.index)
