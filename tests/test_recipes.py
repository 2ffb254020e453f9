"""Recipes: equal settings give equal fingerprints; a change is described in a few words."""

from stock_pipeline.recipes import (
    RECIPE_VERSIONS,
    Recipe,
    cleaning_recipe,
    features_recipe,
    mirror_recipe,
)

CLEANING = {"ffill_limit": 2, "check_trading_days": True, "outliers": {"method": "mad"}}
SMA = {"sma_20": {"name": "sma", "timeperiod": 20}}


def gold(columns: dict, price_column: str = "close", prices: Recipe | None = None) -> Recipe:
    """A gold recipe of `columns`."""
    return features_recipe({"price_column": price_column}, columns, prices)


def test_equal_settings_give_equal_fingerprints_whatever_their_order():
    one = Recipe("silver", {"a": 1, "b": {"c": 2, "d": 3}}, 1)
    other = Recipe("silver", {"b": {"d": 3, "c": 2}, "a": 1}, 1)
    assert one.fingerprint == other.fingerprint
    assert one.changes_from(other) is None
    assert Recipe("silver", {"a": 1}, 2).changes_from(Recipe("silver", {"a": 1}, 1)) == (
        "formula version 1 -> 2"
    )


def test_a_recipe_survives_the_table_and_the_frame():
    recipe = gold(SMA)
    assert Recipe.from_json(recipe.to_json()) == recipe
    assert Recipe.from_json(None) is None


def test_changes_name_indicator_columns_and_settings():
    before = gold(SMA | {"rsi_14": {"name": "rsi", "timeperiod": 14}})
    after = gold(
        SMA | {"rsi_14": {"name": "rsi", "timeperiod": 14, "x": 1}, "cci_14": {"talib": "CCI"}},
        price_column="adj_close",
    )
    assert after.changes_from(before) == (
        'added cci_14; changed rsi_14; price_column "close" -> "adj_close"'
    )
    assert before.changes_from(None) == "no recipe stored with the table"


def test_a_cleaning_change_reaches_gold_and_sql_through_their_inputs():
    old_prices = cleaning_recipe(CLEANING, "primary")
    new_prices = cleaning_recipe(CLEANING | {"ffill_limit": 3}, "primary")
    assert new_prices.changes_from(old_prices) == "ffill_limit 2 -> 3"
    old_gold, new_gold = gold(SMA, prices=old_prices), gold(SMA, prices=new_prices)
    assert new_gold.changes_from(old_gold) == "primary recipe changed"
    old_sql, new_sql = mirror_recipe(old_gold, "sql"), mirror_recipe(new_gold, "sql")
    assert new_sql.changes_from(old_sql) == "gold recipe changed"
    assert new_sql.version == RECIPE_VERSIONS["sql"]
