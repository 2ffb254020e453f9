"""The one node intraday adds: feature rows keyed by (ticker, timestamp) for `stock_features_intraday`."""

import pandas as pd

from stock_pipeline.trading_calendar import NSE_TIMEZONE


def stamp_intraday_rows(features: pd.DataFrame) -> pd.DataFrame:
    """Feature rows with `date` renamed `timestamp` and made tz-aware (Asia/Kolkata) for SQL.

    The files hold naive Asia/Kolkata wall-clock bar start times; the table stores the same instant
    as TIMESTAMP WITH TIME ZONE, so that SQL clients see unambiguous times in any session zone.
    """
    stamped = features.rename(columns={"date": "timestamp"})
    stamped["timestamp"] = (
        pd.to_datetime(stamped["timestamp"]).dt.tz_localize(NSE_TIMEZONE).dt.as_unit("us")
    )
    return stamped
