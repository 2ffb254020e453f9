"""The NSE calendar: XNSE merged with calendar.yml's special sessions and late holidays, no horizon,
and real special-session bars kept as clean, flagged bars."""

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from stock_pipeline import trading_calendar
from stock_pipeline.configuration import config_loader, configure_calendar
from stock_pipeline.contract import freshness
from stock_pipeline.pipelines.cleaning.nodes import (
    UNLISTED_SESSION,
    combine_raw_prices,
    validate_bronze,
    validate_prices,
)
from stock_pipeline.pipelines.features.nodes import compute_features
from stock_pipeline.pipelines.ingestion.nodes import to_bronze_text
from stock_pipeline.sources import CSVSource, SyntheticSource
from stock_pipeline.trading_calendar import (
    CalendarConfigError,
    is_special_session,
    last_closed_session,
    nse_sessions,
    schedule,
)

FIXTURES = Path(__file__).parent / "fixtures/csv/special_sessions"
CLEANING = yaml.safe_load(
    (Path(__file__).parents[1] / "conf/base/parameters_cleaning.yml").read_text()
)["cleaning"]
RUN_CONTEXT = {"run_id": "run-13", "started_at": "2026-04-20T12:00:00+00:00"}


@pytest.fixture(autouse=True)
def project_calendar() -> Iterator[None]:
    """Every test starts and ends with the project's conf/base/calendar.yml."""
    trading_calendar.configure(None)
    yield
    trading_calendar.configure(None)


def days(*values: str) -> pd.Series:
    """Dates as a Series of timestamps."""
    return pd.Series(pd.to_datetime(list(values)))


def test_weekend_special_sessions_are_sessions_and_late_holidays_are_not() -> None:
    sessions = nse_sessions("2019-10-25", "2019-10-29")
    assert [str(day.date()) for day in sessions] == ["2019-10-25", "2019-10-27", "2019-10-29"]
    for day in ("2020-11-14", "2023-11-12", "2024-01-20", "2024-03-02", "2024-05-18", "2025-02-01"):
        assert pd.Timestamp(day) in nse_sessions(day, day)
    for day in ("2024-01-22", "2024-05-20", "2024-11-20", "2026-01-15"):
        assert nse_sessions(day, day).empty


def test_hours_come_from_the_configuration_or_from_xnse() -> None:
    muhurat = schedule("2019-10-27", "2019-10-27").iloc[0]
    assert muhurat["market_open"] == pd.Timestamp("2019-10-27 18:15", tz="Asia/Kolkata")
    assert muhurat["market_close"] == pd.Timestamp("2019-10-27 19:15", tz="Asia/Kolkata")
    weekday_muhurat = schedule("2024-11-01", "2024-11-01").iloc[0]  # known to XNSE, hours kept
    assert weekday_muhurat["market_open"] == pd.Timestamp("2024-11-01 18:00", tz="Asia/Kolkata")
    stamps = pd.Series(pd.to_datetime(["2024-03-02 09:15", "2024-03-02 12:30", "2019-10-27 18:20"]))
    assert trading_calendar.within_session_hours(stamps).tolist() == [True, False, True]


def test_special_sessions_are_flagged_weekday_muhurat_included() -> None:
    flags = is_special_session(days("2019-10-27", "2024-11-01", "2025-02-01", "2025-02-03"))
    assert flags.tolist() == [True, True, True, False]


def test_the_last_closed_session_can_be_a_sunday_evening() -> None:
    before = datetime(2019, 10, 27, 13, 0, tzinfo=UTC)  # 18:30 IST, the Muhurat hour
    after = datetime(2019, 10, 27, 14, 0, tzinfo=UTC)
    assert last_closed_session(before) == pd.Timestamp("2019-10-25")
    assert last_closed_session(after) == pd.Timestamp("2019-10-27")


def test_freshness_expects_the_budget_saturday() -> None:
    evening = datetime(2025, 2, 1, 14, 0, tzinfo=UTC)
    assert freshness(date(2025, 1, 31), evening).missing_sessions == 1


def test_no_horizon_and_one_warning_for_years_without_known_holidays(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="stock_pipeline.trading_calendar"):
        sessions = nse_sessions("2045-01-01", "2045-01-31")
        nse_sessions("2045-03-01", "2045-03-31")
        is_session = trading_calendar.is_session(days("2045-06-01"))
    assert len(sessions) == 22  # every weekday: nothing is known about 2045's holidays
    assert is_session.tolist() == [True]
    warnings = [r.message for r in caplog.records if "2045" in r.getMessage()]
    assert len(warnings) == 1
    assert "knows no NSE holidays for 2045" in caplog.records[0].getMessage()


def test_a_year_whose_holidays_are_configured_is_not_warned_about(caplog) -> None:
    trading_calendar.configure({"holidays": {"2046-01-26": {"note": "Republic Day"}}})
    with caplog.at_level(logging.WARNING, logger="stock_pipeline.trading_calendar"):
        sessions = nse_sessions("2046-01-20", "2046-01-31")
    assert pd.Timestamp("2046-01-26") not in sessions
    assert "2046" not in caplog.text


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"special_sessions": {"2030-02-02": {"open": 555}}}, "HH:MM"),
        ({"special_sessions": {"someday": {}}}, "not a date"),
        ({"special_sessions": {"2030-02-02": {}}, "holidays": {"2030-02-02": {}}}, "both"),
    ],
)
def test_a_broken_calendar_configuration_is_named(config: dict, message: str) -> None:
    with pytest.raises(CalendarConfigError, match=message):
        trading_calendar.configure(config)


def test_an_environment_adds_days_to_the_base_calendar(tmp_path: Path) -> None:
    for env, text in {
        "base": 'special_sessions: {"2031-03-01": {kind: special}}\n',
        "local": 'holidays: {"2031-03-03": {note: declared late}}\n',
    }.items():
        (tmp_path / "conf" / env).mkdir(parents=True)
        (tmp_path / "conf" / env / "calendar.yml").write_text(text)
    configure_calendar(config_loader(tmp_path, "local"))
    sessions = nse_sessions("2031-02-28", "2031-03-04")
    assert [str(day.date()) for day in sessions] == ["2031-02-28", "2031-03-01", "2031-03-04"]


def real_bronze() -> pd.DataFrame:
    """The real bars of the fixture files as bronze text, one frame for all tickers."""
    source = CSVSource(FIXTURES)
    frames = [
        to_bronze_text(source.fetch(path.stem, date(2019, 1, 1), date(2026, 4, 1))).assign(
            ticker=path.stem
        )
        for path in sorted(FIXTURES.glob("*.csv"))
    ]
    return pd.concat(frames, ignore_index=True)


def test_real_special_session_bars_are_clean_and_flagged() -> None:
    clean, quarantine = validate_prices(real_bronze(), CLEANING, RUN_CONTEXT)
    special = clean[clean["is_special_session"]]
    by_day = special.groupby(special["date"].dt.date)["ticker"].nunique().to_dict()
    assert by_day == {date(2019, 10, 27): 4, date(2020, 11, 14): 4, date(2025, 2, 1): 1}
    assert not clean.loc[~clean["is_special_session"], "date"].dt.dayofweek.ge(5).any()
    # Yahoo's zero-volume placeholder bar on the late-declared holiday: an ordinary off day
    [holiday] = quarantine.itertuples()
    assert (holiday.ticker, holiday.date, holiday.rule) == (
        "BHEL.NS",
        pd.Timestamp("2026-01-15"),
        "non_trading_day",
    )
    assert holiday.reason == "not an NSE session"
    features = compute_features(clean, {"indicators": [], "drop_warmup": False})
    assert features.loc[features["is_special_session"], "date"].nunique() == 3


def test_a_traded_bar_on_an_unknown_day_is_quarantined_as_a_possible_session(caplog) -> None:
    base = yaml.safe_load(trading_calendar.CALENDAR_FILE.read_text())
    del base["special_sessions"]["2020-11-14"]  # as if nobody had listed it
    trading_calendar.configure(base)
    with caplog.at_level(logging.WARNING):
        clean, quarantine = validate_prices(real_bronze(), CLEANING, RUN_CONTEXT)
    unlisted = quarantine[quarantine["reason"] == UNLISTED_SESSION]
    assert set(unlisted["ticker"]) == {"ASIANPAINT.NS", "COALINDIA.NS", "MARUTI.NS", "WIPRO.NS"}
    assert set(unlisted["date"]) == {pd.Timestamp("2020-11-14")}
    assert set(unlisted["rule"]) == {"non_trading_day"}
    assert "possibly a special session" in UNLISTED_SESSION
    assert "2020-11-14 (4 tickers)" in caplog.text
    assert pd.Timestamp("2020-11-14") not in set(clean["date"])


def test_incremental_cleaning_flags_special_sessions_and_names_unlisted_ones() -> None:
    bronze = real_bronze()
    raw_prices = {
        ticker: (lambda rows=rows: rows.drop(columns="ticker"))
        for ticker, rows in bronze.groupby("ticker")
    }
    dates = pd.to_datetime(bronze["date"])
    stored = bronze.loc[dates <= "2020-11-10", ["ticker"]].assign(date=dates[dates <= "2020-11-10"])
    report = {
        "window": {"start": "2019-01-01", "end": "2026-04-01"},
        "tickers": {ticker: {"status": "updated"} for ticker in raw_prices},
    }

    def run(status: str = "updated") -> tuple:
        entries = {ticker: {"status": status} for ticker in raw_prices}
        return validate_bronze(
            raw_prices,
            report | {"tickers": entries},
            stored,
            CLEANING,
            False,
            RUN_CONTEXT,
            {"engine": "local"},
        )

    _, silver, changes, _, _ = run()
    rows = pd.concat([load() for load in silver.values()])
    assert rows["date"].min() > pd.Timestamp("2020-11-10")  # only what silver lacks
    special = rows[rows["is_special_session"]]
    by_day = special.groupby(special["date"].dt.date)["ticker"].nunique().to_dict()
    assert by_day == {date(2020, 11, 14): 4, date(2025, 2, 1): 1}
    since = changes.set_index("ticker")["since"]
    assert since[since.index.isin(stored["ticker"])].notna().all()  # the stored ones: tails

    base = yaml.safe_load(trading_calendar.CALENDAR_FILE.read_text())
    del base["special_sessions"]["2020-11-14"]  # as if nobody had listed it
    trading_calendar.configure(base)
    _, silver, _, rejected, _ = run()
    unlisted = rejected[rejected["reason"] == UNLISTED_SESSION]
    assert set(unlisted["date"]) == {pd.Timestamp("2020-11-14")}
    assert unlisted["ticker"].nunique() == 4
    kept = pd.concat([load() for load in silver.values()])
    assert pd.Timestamp("2020-11-14") not in set(kept["date"])

    # a backfilled ticker (bars before its first stored one) is cleaned from its whole history
    trading_calendar.configure(None)
    entries = {ticker: {"status": "backfilled"} for ticker in raw_prices}
    later = stored[stored["date"] >= "2020-11-02"]
    _, _, plan = combine_raw_prices(raw_prices, {"tickers": entries}, later, CLEANING, False)
    assert set(plan["mode"]) == {"full"}
    _, silver, changes, _, _ = run("backfilled")
    rows = pd.concat([load() for load in silver.values()])
    assert pd.Timestamp("2019-10-27") in set(rows.loc[rows["is_special_session"], "date"])
    assert changes["since"].isna().all()


def test_the_synthetic_market_has_no_horizon_and_trades_special_sessions() -> None:
    source = SyntheticSource(seed=7)
    late = source.fetch("INFY.NS", date(2032, 1, 1), date(2032, 1, 31))
    assert len(late) > 15
    early = source.fetch("INFY.NS", date(2019, 10, 21), date(2019, 10, 31))
    assert pd.Timestamp("2019-10-27") in set(early["date"])
    longer = source.fetch("INFY.NS", date(2019, 10, 21), date(2033, 1, 1))
    pd.testing.assert_frame_equal(early, longer.iloc[: len(early)])
