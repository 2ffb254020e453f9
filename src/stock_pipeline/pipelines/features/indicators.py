"""The indicator engine: YAML specs to TA-Lib calls (or numpy, for returns) on one ticker's arrays."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import talib
from talib import abstract

Arrays = dict[str, np.ndarray]
TRADING_DAYS_PER_YEAR = 252


class IndicatorConfigError(ValueError):
    """An indicator spec names an unknown function or a bad parameter."""


@dataclass(frozen=True)
class Indicator:
    """Output column names, rows needed before the first value, and the computation on one ticker.

    `memory`: the rows before a row that its value depends on, to float precision: the lookback
    for a finite window; for recursive smoothing (EMA, Wilder's), enough rows for the start's
    influence to fall below a double's precision; None when the whole history counts. A
    `cumulative` indicator (OBV) is a running total from the first bar: computed from a later
    start it differs by a constant, which one stored value recovers exactly.
    """

    columns: tuple[str, ...]
    lookback: int
    compute: Callable[[Arrays], list[np.ndarray]]
    memory: int | None = None
    cumulative: bool = False


# The indicators behind the feature columns every consumer may rely on (DESIGN.md): the seed's set.
CONTRACT_INDICATORS: list[dict[str, Any]] = [
    {"name": "daily_return"},
    {"name": "sma", "timeperiod": 20},
    {"name": "sma", "timeperiod": 50},
    {"name": "rsi", "timeperiod": 14},
    {"name": "macd", "fastperiod": 12, "slowperiod": 26, "signalperiod": 9},
    {"name": "volatility", "timeperiod": 20},
]

# Named indicators that map to a TA-Lib function, with the contract's column names.
TALIB_ALIASES: dict[str, tuple[str, Callable[[dict[str, Any]], list[str]]]] = {
    "sma": ("SMA", lambda p: [f"sma_{p['timeperiod']}"]),
    "ema": ("EMA", lambda p: [f"ema_{p['timeperiod']}"]),
    "rsi": ("RSI", lambda p: [f"rsi_{p['timeperiod']}"]),
    "macd": ("MACD", lambda p: ["macd", "macd_signal", "macd_hist"]),
    "bbands": (
        "BBANDS",
        lambda p: [
            f"bb_upper_{p['timeperiod']}",
            f"bb_middle_{p['timeperiod']}",
            f"bb_lower_{p['timeperiod']}",
        ],
    ),
    "atr": ("ATR", lambda p: [f"atr_{p['timeperiod']}"]),
    "obv": ("OBV", lambda p: ["obv"]),
    "stoch": ("STOCH", lambda p: ["stoch_k", "stoch_d"]),
}


# How far back TA-Lib functions look (others count their whole history: exact, never shortened).
FINITE_WINDOW = frozenset(
    {"SMA", "WMA", "BBANDS", "STOCH", "STOCHF", "WILLR", "CCI", "MOM", "ROC", "ROCP", "ROCR"}
    | {"MFI", "STDDEV", "VAR", "MAX", "MIN", "MIDPOINT", "MIDPRICE", "AROON", "AROONOSC"}
)
SMOOTHED = frozenset(
    {"EMA", "MACD", "RSI", "ATR", "NATR", "ADX", "ADXR", "DX", "PLUS_DI", "MINUS_DI", "PLUS_DM"}
    | {"MINUS_DM", "CMO", "DEMA", "TEMA", "TRIX", "PPO", "APO"}
)
CUMULATIVE = frozenset({"OBV"})  # running totals from the first bar
# Smoothing by 1/n (Wilder's; an EMA's 2/(n+1) is faster) leaves (1 - 1/n)^k of the start's
# influence after k rows: under 1e-22 after 50 periods, past a double's precision even for the
# chained smoothings (ADX, TEMA), so a row's value no longer depends on where the series began.
SMOOTHING_PERIODS = 50


def _talib_memory(name: str, lookback: int, settings: dict[str, Any]) -> int | None:
    """Rows before a row that a TA-Lib function's value depends on (Indicator.memory)."""
    if any(key.endswith("matype") and value for key, value in settings.items()):
        return None  # a moving average other than the simple one: not told apart here
    if name in FINITE_WINDOW or name in CUMULATIVE:
        return lookback
    if name in SMOOTHED:
        periods = [int(value) for key, value in settings.items() if key.endswith("period")]
        return lookback + SMOOTHING_PERIODS * max(periods, default=1)
    return None


def _previous(values: np.ndarray) -> np.ndarray:
    """The series shifted by one row, NaN first."""
    shifted = np.empty_like(values)
    shifted[0] = np.nan
    shifted[1:] = values[:-1]
    return shifted


def _daily_return(arrays: Arrays) -> list[np.ndarray]:
    """close.pct_change()."""
    return [arrays["close"] / _previous(arrays["close"]) - 1.0]


def _log_return(arrays: Arrays) -> list[np.ndarray]:
    """log(close / previous close)."""
    return [np.log(arrays["close"] / _previous(arrays["close"]))]


def _volatility(timeperiod: int, annualize: bool) -> Callable[[Arrays], list[np.ndarray]]:
    """Sample standard deviation (ddof=1) of daily returns over the window, optionally annualized."""
    scale = np.sqrt(timeperiod / (timeperiod - 1)) * (
        np.sqrt(TRADING_DAYS_PER_YEAR) if annualize else 1.0
    )

    def compute(arrays: Arrays) -> list[np.ndarray]:
        returns = _daily_return(arrays)[0]
        if len(returns) <= timeperiod:
            return [np.full(len(returns), np.nan)]
        return [talib.STDDEV(returns, timeperiod=timeperiod, nbdev=1.0) * scale]

    return compute


def _numpy_indicator(name: str, params: dict[str, Any]) -> Indicator:
    """daily_return, log_return and volatility, which TA-Lib does not define as we need them."""
    if name == "daily_return":
        return Indicator(("daily_return",), 1, _daily_return, memory=1)
    if name == "log_return":
        return Indicator(("log_return",), 1, _log_return, memory=1)
    timeperiod = int(params.get("timeperiod", 20))
    if timeperiod < 2:
        raise IndicatorConfigError(f"volatility needs timeperiod >= 2, got {timeperiod}")
    return Indicator(
        ("volatility",),
        timeperiod,
        _volatility(timeperiod, bool(params.get("annualize", False))),
        memory=timeperiod,
    )


def _talib_function(name: str, params: dict[str, Any]) -> abstract.Function:
    """The TA-Lib function by name with its parameters checked."""
    if name.upper() not in talib.get_functions():
        raise IndicatorConfigError(f"unknown TA-Lib function {name!r}")
    function = abstract.Function(name.upper())
    unknown = set(params) - set(function.parameters)
    if unknown:
        raise IndicatorConfigError(
            f"{name}: unknown parameter(s) {sorted(unknown)}; it takes {sorted(function.parameters)}"
        )
    defaults = function.parameters
    typed = {
        key: float(value) if isinstance(defaults[key], float) and isinstance(value, int) else value
        for key, value in params.items()
    }
    try:
        function.parameters = typed
    except Exception as error:
        raise IndicatorConfigError(f"{name}: bad parameters {params}: {error}") from error
    return function


def _default_columns(function: abstract.Function, params: dict[str, Any]) -> list[str]:
    """`adx_14` for ADX(timeperiod=14); one column per output for multi-output functions."""
    base = "_".join([function.info["name"].lower(), *(str(value) for value in params.values())])
    outputs = function.output_names
    return [base] if len(outputs) == 1 else [f"{base}_{output.lower()}" for output in outputs]


def _talib_indicator(
    name: str, params: dict[str, Any], namer: Callable[[dict[str, Any]], list[str]] | None = None
) -> Indicator:
    """Any TA-Lib function on the ticker's arrays, called through the fast function API."""
    function = _talib_function(name, params)
    columns = namer(dict(function.parameters)) if namer else _default_columns(function, params)
    inputs = [
        price
        for names in function.input_names.values()
        for price in ([names] if isinstance(names, str) else names)
    ]
    talib_name = function.info["name"]
    call = getattr(talib, talib_name)
    settings = dict(function.parameters)

    def compute(arrays: Arrays) -> list[np.ndarray]:
        result = call(*(arrays[price] for price in inputs), **settings)
        return list(result) if isinstance(result, tuple | list) else [result]

    return Indicator(
        tuple(columns),
        function.lookback,
        compute,
        memory=_talib_memory(talib_name, function.lookback, settings),
        cumulative=talib_name in CUMULATIVE,
    )


def build_indicator(spec: dict[str, Any]) -> Indicator:
    """One configured indicator: `{name: rsi, timeperiod: 14}` or `{talib: ADX, timeperiod: 14}`."""
    params = {key: value for key, value in spec.items() if key not in ("name", "talib")}
    if "talib" in spec:
        return _talib_indicator(str(spec["talib"]), params)
    name = str(spec.get("name", "")).lower()
    if name in ("daily_return", "log_return", "volatility"):
        return _numpy_indicator(name, params)
    if name in TALIB_ALIASES:
        function, namer = TALIB_ALIASES[name]
        return _talib_indicator(function, params, namer)
    known = sorted([*TALIB_ALIASES, "daily_return", "log_return", "volatility"])
    raise IndicatorConfigError(
        f"unknown indicator {spec!r}: use name: one of {known}, or talib: <FUNCTION>"
    )


def build_indicators(specs: list[dict[str, Any]]) -> list[Indicator]:
    """All configured indicators, checked before any computation; column names must be unique."""
    indicators = [build_indicator(dict(spec)) for spec in specs]
    columns = [column for indicator in indicators for column in indicator.columns]
    duplicated = sorted({column for column in columns if columns.count(column) > 1})
    if duplicated:
        raise IndicatorConfigError(f"indicators produce the same column(s) {duplicated}")
    return indicators
