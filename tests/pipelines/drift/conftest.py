"""Fixtures of the drift tests: the project's parameters and the bundled real sample's features."""

import pandas as pd
import pytest
import yaml

from tests.pipelines.drift.simulation import PROJECT_ROOT, features_of


@pytest.fixture
def params() -> dict:
    """The project's drift parameters (conf/base)."""
    return yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_drift.yml").read_text())["drift"]


@pytest.fixture(scope="session")
def sample_features() -> pd.DataFrame:
    """Features of the bundled real sample (8 NSE tickers, 2019-04-01 to 2021-03-31)."""
    frames = []
    for path in sorted((PROJECT_ROOT / "data/sample/prices").glob("*.csv")):
        skip = [1, 2] if path.read_text().startswith("Price") else None
        prices = pd.read_csv(path, skiprows=skip).rename(columns={"Price": "Date"})
        prices.columns = [column.lower().replace(" ", "_") for column in prices.columns]
        prices = prices.assign(
            ticker=path.stem,
            date=pd.to_datetime(prices["date"]),
            adj_close=prices.get("adj_close", prices["close"]),
        )
        frames.append(features_of(prices.astype({"volume": "float64"})))
    return pd.concat(frames, ignore_index=True)
