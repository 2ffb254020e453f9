"""The pandera schemas, through Kedro's `validator:` catalog key as the project's catalog uses them."""

import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro.validation.exceptions import DataValidationError

PRICES = pd.DataFrame(
    {
        "ticker": ["AAA.NS", "AAA.NS", "BBB.NS"],
        "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"]),
        "open": [10.0, 11.0, 20.0],
        "high": [12.0, 12.0, 21.0],
        "low": [9.0, 10.5, 19.0],
        "close": [11.0, 11.5, 20.5],
        "adj_close": [11.0, 11.5, 20.5],
        "volume": [100.0, 200.0, 300.0],
    }
)


def catalog_with(tmp_path, schema: str) -> DataCatalog:
    """A catalog with one Parquet dataset validated on save by the named schema."""
    return DataCatalog.from_config(
        {
            "table": {
                "type": "stock_pipeline.datasets.MergeParquetDataset",
                "filepath": str(tmp_path / "table.parquet"),
                "validator": {"class": f"stock_pipeline.schemas.{schema}", "on": ["save"]},
            }
        }
    )


def features_of(prices: pd.DataFrame, rsi: list[float]) -> pd.DataFrame:
    """Prices plus the contract's indicator columns (values irrelevant except rsi_14)."""
    indicators = ["daily_return", "sma_20", "sma_50", "macd", "macd_signal", "macd_hist"]
    flags = {"is_special_session": False}
    return prices.assign(**dict.fromkeys(indicators, 0.0), rsi_14=rsi, volatility=0.01, **flags)


def test_valid_prices_are_saved(tmp_path):
    catalog = catalog_with(tmp_path, "PricesSchema")
    catalog.save("table", PRICES)
    # saved as validated: the schema coerces dates to its datetime64[ns]
    pd.testing.assert_frame_equal(catalog.load("table"), PRICES.astype({"date": "M8[ns]"}))


@pytest.mark.parametrize(
    ("change", "column", "check"),
    [
        (lambda f: f.assign(high=[8.0, 12.0, 21.0]), None, "high >= max(open, close, low)"),
        (lambda f: f.assign(close=[11.0, -1.0, 20.5]), "close", "greater_than(0)"),
        (lambda f: f.assign(volume=[100.0, -5.0, 300.0]), "volume", "greater_than_or_equal_to(0)"),
        (lambda f: f.assign(date=f["date"].iloc[[0, 0, 2]].to_numpy()), None, "unique"),
    ],
)
def test_a_failure_names_the_dataset_column_check_and_rows(tmp_path, change, column, check):
    catalog = catalog_with(tmp_path, "PricesSchema")
    with pytest.raises(DataValidationError) as caught:
        catalog.save("table", change(PRICES))
    message = str(caught.value)
    assert "table" in message
    assert check in message or any(check in (f.check or "") for f in caught.value.failures)
    if column:
        assert any(failure.column == column for failure in caught.value.failures)
    assert not (tmp_path / "table.parquet").exists()


def test_features_rsi_must_stay_within_0_and_100(tmp_path):
    catalog = catalog_with(tmp_path, "FeaturesSchema")
    catalog.save("table", features_of(PRICES, [50.0, 0.0, 100.0]))
    with pytest.raises(DataValidationError) as caught:
        catalog.save("table", features_of(PRICES, [50.0, 100.5, 30.0]))
    failure = caught.value.failures[0]
    assert (failure.column, failure.failure_examples) == ("rsi_14", [100.5])


def test_features_must_be_ordered_by_ticker_then_date(tmp_path):
    catalog = catalog_with(tmp_path, "FeaturesSchema")
    shuffled = features_of(PRICES, [50.0, 50.0, 50.0]).iloc[[2, 0, 1]]
    with pytest.raises(DataValidationError, match="sorted by ticker then date"):
        catalog.save("table", shuffled)
