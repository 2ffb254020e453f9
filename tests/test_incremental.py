"""Incremental runs equal full rebuilds, a corporate-action refresh included (real NSE sample)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stock_pipeline.versions import load_features, load_table
from tests.test_end_to_end import copy_project, kedro

pytestmark = pytest.mark.e2e

STAGES = "--pipelines=ingestion,cleaning,features"
SPLIT_TICKER, SPLIT_DAY = "INFY.NS", "2020-09-01"
BRONZE = "data/01_raw/prices"


def run_until(project: Path, end_date: str, rebuild: bool = False) -> dict:
    """Ingest, clean and compute features up to `end_date` from the project's csv folder; the run record."""
    params = f"ingestion.end_date={end_date},ingestion.csv_dir={project / 'csv'},rebuild={rebuild}"
    kedro(project, "run", STAGES, "--env=sample", f"--params={params}")
    records = sorted(
        (project / "data/08_reporting/runs").glob("*.json"), key=lambda p: p.stat().st_mtime
    )
    return json.loads(records[-1].read_text())


def split_history(csv_dir: Path) -> None:
    """A 2:1 split of SPLIT_TICKER on SPLIT_DAY: the source re-adjusts every earlier bar."""
    path = csv_dir / f"{SPLIT_TICKER}.csv"
    frame = pd.read_csv(path)
    before = frame["Date"] < SPLIT_DAY
    for column in ("Open", "High", "Low", "Close", "Adj Close"):
        frame.loc[before, column] = frame.loc[before, column] / 2
    frame.loc[before, "Volume"] = frame.loc[before, "Volume"] * 2
    frame.to_csv(path, index=False)


def project_with_csv(root: Path, target: Path, split: bool) -> Path:
    """A project copy whose csv source is its own copy of the sample (optionally split)."""
    project = copy_project(root, target)
    shutil.copytree(root / "data/sample/prices", project / "csv")
    if split:
        split_history(project / "csv")
    return project


def assert_same_rows(incremental: pd.DataFrame, rebuilt: pd.DataFrame) -> None:
    """Same keys and columns; every float within 1e-9 relative (NaN where the other is NaN)."""
    assert list(incremental.columns) == list(rebuilt.columns)
    pd.testing.assert_frame_equal(
        incremental[["ticker", "date"]], rebuilt[["ticker", "date"]], check_dtype=False
    )
    for column in incremental.columns.drop(["ticker", "date"]):
        left, right = incremental[column].to_numpy(), rebuilt[column].to_numpy()
        if left.dtype.kind == "f":
            np.testing.assert_allclose(left, right, rtol=1e-9, atol=0, err_msg=column)
        else:
            np.testing.assert_array_equal(left, right, err_msg=column)


def bronze_files(project: Path) -> dict[str, bytes]:
    """Each bronze file's bytes, by name."""
    return {path.name: path.read_bytes() for path in (project / BRONZE).glob("*.csv")}


def assert_layers_equal(incremental: Path, rebuilt: Path) -> None:
    """Bronze (byte for byte), silver, primary and gold of the incremental project equal the
    rebuilt project's."""
    assert bronze_files(incremental) == bronze_files(rebuilt)
    for layer in ("data/02_intermediate/clean_prices", "data/03_primary/prices"):
        assert_same_rows(load_table(incremental / layer), load_table(rebuilt / layer))
    assert_same_rows(load_features(project_path=incremental), load_features(project_path=rebuilt))


def test_incremental_runs_equal_rebuilds_after_a_corporate_action(
    project_root: Path, tmp_path: Path
):
    project = project_with_csv(project_root, tmp_path / "incremental", split=False)
    first = run_until(project, "2020-06-30")
    split_history(project / "csv")
    second = run_until(project, "2020-12-31")
    assert second["versions"]["features"] > first["versions"]["features"]
    refreshed = json.loads(
        (project / "data/08_reporting/ingestion/ingestion_report.json").read_text()
    )
    assert refreshed["tickers"][SPLIT_TICKER]["status"] == "refreshed"
    rebuilt = project_with_csv(project_root, tmp_path / "rebuilt", split=True)
    run_until(rebuilt, "2020-12-31")
    assert_layers_equal(project, rebuilt)

    killed = project / BRONZE / "TCS.NS.csv"  # an append of a killed run, stopped mid-row
    with killed.open("ab") as file:
        file.write(b"2021-01-01,2900.5,29")
    third = run_until(project, "2021-03-31")  # appends the new sessions, the torn row dropped
    changes = pd.read_parquet(project / "data/03_primary/price_changes.parquet")
    assert (changes["since"] > pd.Timestamp("2020-12-31")).all()  # only the new sessions
    run_until(rebuilt, "2021-03-31", rebuild=True)
    assert_layers_equal(project, rebuilt)
    before = load_features(version=second["versions"]["features"], project_path=project)
    assert before["date"].max() <= pd.Timestamp("2020-12-31")
    assert third["versions"]["features"] > second["versions"]["features"]
    stored = bronze_files(project)
    again = run_until(project, "2021-03-31")  # nothing new: no row written, the version stays
    assert again["versions"]["features"] == third["versions"]["features"]
    assert bronze_files(project) == stored


def test_a_refresh_killed_before_cleaning_is_cleaned_whole_by_the_next_run(
    project_root: Path, tmp_path: Path
):
    project = project_with_csv(project_root, tmp_path / "incremental", split=False)
    run_until(project, "2020-06-30")
    split_history(project / "csv")
    params = f"ingestion.end_date=2020-12-31,ingestion.csv_dir={project / 'csv'}"
    # the killed run: ingestion rewrote the split ticker's bronze, cleaning never ran
    kedro(project, "run", "--pipelines=ingestion", "--env=sample", f"--params={params}")
    marks = project / BRONZE / ".rewritten"
    assert [path.name for path in marks.iterdir()] == [SPLIT_TICKER]
    run_until(project, "2020-12-31")
    report = json.loads((project / "data/08_reporting/ingestion/ingestion_report.json").read_text())
    assert report["tickers"][SPLIT_TICKER]["status"] == "unchanged"  # nothing new to fetch
    assert not list(marks.iterdir())
    rebuilt = project_with_csv(project_root, tmp_path / "rebuilt", split=True)
    run_until(rebuilt, "2020-12-31")
    assert_layers_equal(project, rebuilt)
