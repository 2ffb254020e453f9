"""What made a stored layer: the parameters that shape its values and the code's formula version.

Each table stores the recipe it was written under (Delta commit metadata for silver, primary and
gold; the `table_recipes` SQL table for `stock_features`) and the run record names it
(`recipes.<layer>`). A stage compares the configured recipe with the stored one and recomputes
its layer when they differ, so a changed rule or indicator reaches every row without a rebuild.
"""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# Bump a layer's version when the code changes how its values are computed (a rule's or an
# indicator's formula): stored tables then no longer match and are recomputed on the next run.
RECIPE_VERSIONS = {"silver": 1, "primary": 1, "gold": 1, "sql": 1}
# the cleaning parameters that decide which rows survive and their values and flags
CLEANING_SETTINGS = ("ffill_limit", "check_trading_days", "outliers", "split_jump_threshold")


@dataclass(frozen=True)
class Recipe:
    """A layer's recipe: its formula version and the settings that shape its values."""

    layer: str
    settings: dict[str, Any] = field(hash=False)
    version: int = 0

    @property
    def fingerprint(self) -> str:
        """A short hash of the version and settings: equal recipes, equal fingerprints."""
        text = json.dumps([self.version, self.settings], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_json(self) -> str:
        """The recipe as stored with its table."""
        return json.dumps(self.record(), sort_keys=True, default=str)

    def record(self) -> dict[str, Any]:
        """The recipe as the run record names it."""
        return {
            "layer": self.layer,
            "fingerprint": self.fingerprint,
            "version": self.version,
            "settings": self.settings,
        }

    @classmethod
    def from_json(cls, text: str | None) -> "Recipe | None":
        """The stored recipe (`to_json()`, as a table and a loaded frame's `attrs["recipe"]` hold
        it), None when the table records none (written before recipes)."""
        if not text:
            return None
        stored = json.loads(text)
        return cls(stored["layer"], stored["settings"], int(stored["version"]))

    def changes_from(self, stored: "Recipe | None") -> str | None:
        """Why `stored` is not this recipe, in a few words; None when they are equal."""
        if stored is not None and stored.fingerprint == self.fingerprint:
            return None
        if stored is None:
            return "no recipe stored with the table"
        if stored.version != self.version:
            return f"formula version {stored.version} -> {self.version}"
        return "; ".join(_setting_changes(stored.settings, self.settings)) or "settings changed"


def _setting_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Settings added, removed or changed, indicator columns named one by one; a changed input
    (the recipe of the layer read) only when nothing else explains the change."""
    changes = []
    if "indicators" in old or "indicators" in new:
        before, after = old.get("indicators", {}), new.get("indicators", {})
        added = [name for name in after if name not in before]
        removed = [name for name in before if name not in after]
        changed = [name for name in after if name in before and after[name] != before[name]]
        changes += [f"added {', '.join(added)}"] * bool(added)
        changes += [f"removed {', '.join(removed)}"] * bool(removed)
        changes += [f"changed {', '.join(changed)}"] * bool(changed)
    for key in sorted((set(old) | set(new)) - {"indicators", "inputs"}):
        if old.get(key) != new.get(key):
            changes.append(f"{key} {_short(old.get(key))} -> {_short(new.get(key))}")
    if not changes:
        before, after = old.get("inputs") or {}, new.get("inputs") or {}
        changes += [
            f"{layer} recipe changed"
            for layer in sorted(after)
            if before.get(layer) != after[layer]
        ]
    return changes


def _short(value: Any) -> str:
    """A setting's value as written in YAML, compactly."""
    return json.dumps(value, sort_keys=True, default=str)


def cleaning_recipe(params: dict[str, Any], layer: str) -> Recipe:
    """The recipe of silver or primary: the cleaning rules that decide their rows and values."""
    return Recipe(
        layer, {key: params.get(key) for key in CLEANING_SETTINGS}, RECIPE_VERSIONS[layer]
    )


def features_recipe(
    params: dict[str, Any], columns: dict[str, dict[str, Any]], prices: Recipe | None
) -> Recipe:
    """The recipe of gold: each indicator column with the specification that computes it, the
    price column the indicators read, whether warm-up rows are dropped, and the recipe of the
    prices it reads (a changed cleaning rule changes gold's rows too)."""
    settings = {
        "indicators": columns,
        "price_column": params.get("price_column", "close"),
        "drop_warmup": params.get("drop_warmup", True),
        "inputs": {"primary": prices.fingerprint if prices else None},
    }
    return Recipe("gold", settings, RECIPE_VERSIONS["gold"])


def mirror_recipe(source: Recipe, layer: str) -> Recipe:
    """The recipe of a copy of `source` (the SQL table of gold): its settings, its input the
    source's recipe, so that any change of the source (a formula version too) reaches it."""
    settings = source.settings | {"inputs": {source.layer: source.fingerprint}}
    return Recipe(layer, settings, RECIPE_VERSIONS[layer])
