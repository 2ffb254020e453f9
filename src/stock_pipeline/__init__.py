"""stock-pipeline: a Kedro pipeline for NSE stock prices, from Yahoo Finance to features, SQL and drift."""

__version__ = "0.1.0"
