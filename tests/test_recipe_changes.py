"""Change the recipe and the data follows: a configuration changed mid-history reaches every stored
row of gold and SQL at the next daily run, as a fresh rebuild under the new configuration has them
(real NSE sample, new sessions arriving in the same run as the change)."""

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from sqlalchemy import create_engine

from stock_pipeline.datasets import AppendParquetDataset
from stock_pipeline.versions import load_features, load_table
from tests.test_end_to_end import kedro
from tests.test_incremental import assert_same_rows, project_with_csv

pytestmark = pytest.mark.e2e

STAGES = "--pipelines=ingestion,cleaning,features,persistence"
FIRST_END, LAST_END = "2020-12-31", "2021-03-31"
BASE_FEATURES = Path(__file__).resolve().parents[1] / "conf/base/parameters_features.yml"


def run(project: Path, end_date: str) -> dict[str, Any]:
    """The stages up to `end_date` from the project's csv folder; the run record."""
    params = f"ingestion.end_date={end_date},ingestion.csv_dir={project / 'csv'}"
    kedro(project, "run", STAGES, "--env=sample", f"--params={params}")
    records = sorted(
        (project / "data/08_reporting/runs").glob("*.json"), key=lambda p: p.stat().st_mtime
    )
    return json.loads(records[-1].read_text())


def configure(project: Path, parameters: dict[str, Any]) -> None:
    """The sample environment's parameters with `parameters` merged in (as a user edits YAML)."""
    path = project / "conf/sample/parameters.yml"
    current = yaml.safe_load(path.read_text())
    for section, values in parameters.items():
        current[section] = current.get(section, {}) | values
    path.write_text(yaml.safe_dump(current))


def changed_indicators() -> list[dict[str, Any]]:
    """The shipped indicators with CCI added, log_return removed and MACD's fast period changed."""
    shipped = yaml.safe_load(BASE_FEATURES.read_text())["features"]["indicators"]
    kept = [spec for spec in shipped if spec.get("name") != "log_return"]
    changed = [spec | {"fastperiod": 10} if spec.get("name") == "macd" else spec for spec in kept]
    return [*changed, {"talib": "CCI", "timeperiod": 14}]


SCENARIOS = {
    "indicators": (
        {"features": {"indicators": changed_indicators(), "price_column": "adj_close"}},
        "gold",
        "features recipe changed (added cci_14; removed log_return; changed macd",
    ),
    "cleaning": (
        {
            "cleaning": {
                "ffill_limit": 0,
                "outliers": {
                    "method": "mad",
                    "action": "quarantine",
                    "mad_window": 40,
                    "mad_threshold": 5.0,
                },
            }
        },
        "silver",
        "cleaning recipe changed (",
    ),
}


def stock_features(project: Path) -> pd.DataFrame:
    """SQL stock_features as stored, by ticker then date."""
    engine = create_engine(f"sqlite:///{project / 'data/stock_pipeline.db'}")
    with engine.connect() as connection:
        rows = pd.read_sql("SELECT * FROM stock_features ORDER BY ticker, date", connection)
    engine.dispose()
    return rows.assign(date=pd.to_datetime(rows["date"]))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_changed_recipe_reaches_every_row_at_the_next_run(
    scenario: str, project_root: Path, tmp_path: Path
):
    change, layer, logged = SCENARIOS[scenario]
    changed = project_with_csv(project_root, tmp_path / "changed", split=False)
    before = run(changed, FIRST_END)
    configure(changed, change)
    record = run(changed, LAST_END)
    fresh = project_with_csv(project_root, tmp_path / "fresh", split=False)
    configure(fresh, change)
    rebuilt = run(fresh, LAST_END)

    assert logged in (changed / "logs/pipeline.log").read_text()
    assert record["recipes"] == rebuilt["recipes"]
    assert record["recipes"][layer]["fingerprint"] != before["recipes"][layer]["fingerprint"]
    for table in ("data/02_intermediate/clean_prices", "data/03_primary/prices"):
        assert_same_rows(load_table(changed / table), load_table(fresh / table))
    gold = load_features(project_path=changed)
    assert_same_rows(gold, load_features(project_path=fresh))
    sql, sql_fresh = stock_features(changed), stock_features(fresh)
    columns = [c for c in gold.columns if c in sql_fresh.columns]
    assert_same_rows(sql[columns], sql_fresh[columns])
    emptied = [c for c in sql.columns if c not in {*gold.columns, "created_at", "updated_at"}]
    assert all(sql[column].isna().all() for column in emptied)
    quarantine = [
        AppendParquetDataset(str(project / "data/02_intermediate/quarantine"))
        .load()
        .drop(columns=["run_id", "quarantined_at"])
        .sort_values(["ticker", "raw_date", "rule"], ignore_index=True)
        for project in (changed, fresh)
    ]
    pd.testing.assert_frame_equal(*quarantine)  # what the rules in force reject, nothing else
    if scenario == "indicators":
        assert "cci_14" in gold and "log_return" not in gold and gold["cci_14"].notna().any()
        assert emptied == ["log_return"]
