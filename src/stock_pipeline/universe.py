"""The ticker universe: from the parameters or a file, checked before anything is fetched."""

from pathlib import Path
from typing import Any

from stock_pipeline.contract import TICKER_SYNTAX


class UniverseError(ValueError):
    """A symbol of the universe is malformed or listed twice."""


def read_universe_file(path: str | Path) -> list[str]:
    """Symbols from a text file: one per line, blank lines and # comments ignored."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def validate_universe(symbols: list[str], origin: str) -> list[str]:
    """The symbols, unchanged, after checking their syntax (Yahoo NSE/BSE form) and uniqueness."""
    for position, symbol in enumerate(symbols, start=1):
        if not isinstance(symbol, str) or not TICKER_SYNTAX.match(symbol):
            raise UniverseError(
                f"{origin}: entry {position} {symbol!r} is not a Yahoo NSE/BSE symbol such as INFY.NS"
            )
    seen: set[str] = set()
    for symbol in symbols:
        if symbol in seen:
            raise UniverseError(f"{origin}: {symbol!r} is listed more than once")
        seen.add(symbol)
    if not symbols:
        raise UniverseError(f"{origin}: the universe is empty")
    return list(symbols)


def resolve_universe(ingestion_params: dict[str, Any]) -> list[str]:
    """`ingestion.universe_file` when set, else `ingestion.tickers`, validated."""
    universe_file = ingestion_params.get("universe_file")
    if universe_file:
        return validate_universe(read_universe_file(universe_file), str(universe_file))
    return validate_universe(list(ingestion_params["tickers"]), "ingestion.tickers")
