"""Training nodes: decide, validate walk-forward against baselines, fit, register, promote, serve.

Every node after `decide_training` does its work only when the decision says to train and hands
on an empty value otherwise, which the catalog's SkipEmptyDataset does not write. The champion's
predictions and the models summary are refreshed on every run from the registry.
"""

import json
import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from stock_pipeline.contract import fingerprint_features
from stock_pipeline.pipelines.training.modeling import (
    BASELINES,
    KEYS,
    build_model_frame,
    feature_importance,
    fit_lightgbm,
    predict,
    recipe_of,
)
from stock_pipeline.pipelines.training.registry import (
    CHALLENGER,
    CHAMPION,
    RECIPE_FILE,
    VALIDATION_FILE,
    RegistryLocation,
)
from stock_pipeline.pipelines.training.validation import (
    SCORED,
    Fold,
    all_metrics,
    daily_rank_ic,
    gap_sessions,
    known_dates,
    make_folds,
    required_dates,
    walk_forward,
)

logger = logging.getLogger(__name__)

DEFINITIONS = {
    "oos_rank_ic": "mean over test dates of the Spearman correlation between scores and forward returns",
    "oos_rank_ic_tstat": "t-statistic of that mean, Newey-West errors with horizon - 1 lags",
    "hit_rate": "share of rows whose score and forward return are on the same side of the date's median",
    "top_bottom_decile_return": "mean per date of the top tenth's forward return minus the bottom tenth's",
    "ic_positive_share": "share of test dates with a positive rank IC",
}


COMPARISONS = {
    "fresh_dates": "test dates after everything the champion saw (the champion as registered)",
    "same_folds": "test dates of the same folds (the champion's recipe refitted in each)",
}


def _as_bool(value: Any) -> bool:
    """A flag from YAML or `--params` (where it may arrive as text)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _json_ready(value: Any) -> Any:
    """NaN and infinities as null, numpy scalars as Python ones, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def build_model_input(features: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    """The model's rows (inputs at t, forward return, target) and the version of the data they come
    from: the gold table's version the frame was loaded at (`attrs["version"]`, the API's
    X-Data-Version), else the content's fingerprint."""
    stored = features.attrs.get("version")
    version = str(stored) if stored is not None else None
    return build_model_frame(features, recipe_of(params)), version or fingerprint_features(features)


def _pending_request(
    retrain_request: dict[str, Any], ledger: dict[str, Any]
) -> dict[str, Any] | None:
    """The drift run's retrain request when it asks for one that no training run has consumed."""
    if not retrain_request or not retrain_request.get("requested"):
        return None
    consumed = {entry["request_run_id"] for entry in ledger.get("consumed", [])}
    return None if retrain_request.get("run_id") in consumed else retrain_request


def decide_training(
    retrain_request: dict[str, Any],
    retrain_ledger_stored: dict[str, Any],
    model_input: pd.DataFrame,
    model_registry: RegistryLocation,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Train when forced, when no model exists, or on a pending retrain request, given enough history."""
    pending = _pending_request(retrain_request, retrain_ledger_stored)
    forced = _as_bool(params["force"])
    champion = model_registry.connect(params["mlflow"]).version(CHAMPION)
    if forced:
        reason = "forced (training.force=true)"
    elif champion is None:
        reason = "no model registered yet"
    elif pending is not None:
        reason = (
            f"retrain requested by drift run {pending.get('run_id')} as of {pending.get('as_of')} "
            f"({pending.get('share_drifted', 0):.0%} of tickers changed regime)"
        )
    else:
        logger.info(
            "No retrain requested: nothing to train (champion: version %s)", champion["version"]
        )
        return {"train": False, "reason": "no retrain requested", "forced": False, "request": None}
    dates = len(known_dates(model_input))
    needed = required_dates(params["validation"], int(params["horizon"]))
    if dates < needed:
        logger.warning(
            "Not training although %s: %d dates with a known target, the walk-forward needs %d",
            reason,
            dates,
            needed,
        )
        return {
            "train": False,
            "reason": f"too little history ({dates} < {needed} dates)",
            "forced": forced,
            "request": None,
        }
    logger.info("Training: %s", reason)
    return {"train": True, "reason": reason, "forced": forced, "request": pending}


def _fold_table(folds: list[Fold], per_fold: dict[int, dict[str, dict[str, float]]]) -> str:
    """The folds' rank ICs, model against baselines, as log lines."""
    header = f"{'fold':>4} {'test':>23} " + " ".join(f"{name:>15}" for name in SCORED)
    lines = [header]
    for fold in folds:
        ics = " ".join(f"{per_fold[fold.fold][name]['oos_rank_ic']:>15.4f}" for name in SCORED)
        lines.append(f"{fold.fold:>4} {fold.test_start.date()}..{fold.test_end.date()} {ics}")
    return "\n".join(lines)


def validate_model(
    model_input: pd.DataFrame, training_decision: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """Walk-forward out-of-sample scores and metrics of the model and the baselines, fold by fold."""
    if not training_decision["train"]:
        return {}
    recipe = recipe_of(params)
    horizon = int(recipe["horizon"])
    folds = make_folds(known_dates(model_input), params["validation"], horizon)
    scores = walk_forward(model_input, folds, recipe, float(params["baselines"]["ridge_alpha"]))
    per_fold = {
        fold.fold: all_metrics(scores[scores["fold"] == fold.fold], horizon) for fold in folds
    }
    overall = all_metrics(scores, horizon)
    logger.info(
        "Walk-forward rank IC per fold (model and baselines):\n%s", _fold_table(folds, per_fold)
    )
    logger.info(
        "Out of sample: model rank IC %.4f (t %.2f), ridge %.4f, historical mean %.4f",
        overall["model"]["oos_rank_ic"],
        overall["model"]["oos_rank_ic_tstat"],
        overall["ridge"]["oos_rank_ic"],
        overall["historical_mean"]["oos_rank_ic"],
    )
    return {
        "folds": [fold.as_dict() for fold in folds],
        "per_fold": {str(number): metrics for number, metrics in per_fold.items()},
        "overall": overall,
        "scores": scores,
    }


def fit_model(
    model_input: pd.DataFrame, training_decision: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """The model fitted on every row whose target is known, with what it saw."""
    if not training_decision["train"]:
        return {}
    recipe = recipe_of(params)
    known = model_input[model_input["target"].notna()]
    booster = fit_lightgbm(known, recipe)
    return {
        "booster": booster,
        "recipe": recipe,
        "importance": feature_importance(booster),
        "rows": len(known),
        "tickers": int(known["ticker"].nunique()),
        "train_start": known["date"].min().date().isoformat(),
        "train_end": known["date"].max().date().isoformat(),
        "data_end": model_input["date"].max().date().isoformat(),
    }


def _paired_ic(scores: pd.DataFrame) -> tuple[float, float, int]:
    """Mean daily rank IC of the challenger (`model`) and the champion on the same rows, and their dates."""
    challenger, champion = daily_rank_ic(scores, "model"), daily_rank_ic(scores, "champion")
    return float(challenger.mean()), float(champion.mean()), len(challenger)


def _champion_scores(
    features: pd.DataFrame,
    challenger: pd.DataFrame,
    validation_results: dict[str, Any],
    champion: dict[str, Any],
    booster: Any,
    recipe: dict[str, Any],
) -> tuple[str, pd.DataFrame]:
    """The champion's out-of-sample scores on the challenger's test rows, and how they were obtained.

    `fresh_dates`: the frozen champion on test dates after everything it saw. Otherwise
    `same_folds`: the champion's recipe refitted in the challenger's folds (identical recipes give
    identical scores, so nothing is refitted).
    """
    if booster is not None:
        fresh = challenger[challenger["date"] > pd.Timestamp(champion["data_end"])]
        frame = build_model_frame(features, champion["recipe"])
        rows = fresh.merge(frame[[*KEYS, *champion["recipe"]["features"]]], on=KEYS)
        return "fresh_dates", rows.assign(
            champion=predict(booster, rows, champion["recipe"]["features"])
        )
    if champion["recipe"] == recipe:
        return "same_folds", challenger.assign(champion=challenger["model"])
    folds = [Fold.from_dict(fold) for fold in validation_results["folds"]]
    refit = walk_forward(build_model_frame(features, champion["recipe"]), folds, champion["recipe"])
    refit = refit[[*KEYS, "model"]].rename(columns={"model": "champion"})
    return "same_folds", challenger.merge(refit, on=KEYS)


def compare_with_champion(
    features: pd.DataFrame,
    validation_results: dict[str, Any],
    model_registry: RegistryLocation,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Whether the new model beats the champion out of sample on the same folds (the first model always wins)."""
    if not validation_results:
        return {}
    registry = model_registry.connect(params["mlflow"])
    champion = registry.version(CHAMPION)
    if champion is None:
        return {
            "method": "first_model",
            "promote": True,
            "champion_version": None,
            "reason": "no champion yet: the first model becomes champion",
        }
    promotion = params["promotion"]
    challenger = validation_results["scores"][[*KEYS, "forward_return", "model"]]
    fresh_dates = challenger.loc[
        challenger["date"] > pd.Timestamp(champion["data_end"]), "date"
    ].nunique()
    booster = (
        registry.load_model(champion) if fresh_dates >= int(promotion["min_fresh_dates"]) else None
    )
    method, paired = _champion_scores(
        features, challenger, validation_results, champion, booster, recipe_of(params)
    )
    challenger_ic, champion_ic, dates = _paired_ic(paired)
    promote = bool(challenger_ic > champion_ic + float(promotion["min_improvement"]))
    verdict = "beats" if promote else "does not beat"
    return {
        "method": method,
        "promote": promote,
        "champion_version": champion["version"],
        "challenger_oos_rank_ic": challenger_ic,
        "champion_oos_rank_ic": champion_ic,
        "dates": dates,
        "min_improvement": float(promotion["min_improvement"]),
        "reason": (
            f"the new model {verdict} champion version {champion['version']}: rank IC "
            f"{challenger_ic:.4f} against {champion_ic:.4f} on {dates} {COMPARISONS[method]}"
        ),
    }


def _flat_params(recipe: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Recipe and validation settings as flat MLflow params."""
    flat = {key: value for key, value in recipe.items() if key != "model"}
    flat |= {f"model.{key}": value for key, value in recipe["model"].items()}
    flat |= {f"validation.{key}": value for key, value in params["validation"].items()}
    flat["baselines.ridge_alpha"] = params["baselines"]["ridge_alpha"]
    return flat


def _flat_metrics(validation_results: dict[str, Any]) -> dict[str, float]:
    """The model's metrics by name, the baselines' as `<baseline>.<metric>`, folds as `fold_<n>.<metric>`."""
    overall = validation_results["overall"]
    flat = dict(overall["model"])
    for name in BASELINES:
        flat |= {f"{name}.{key}": value for key, value in overall[name].items()}
    for number, metrics in validation_results["per_fold"].items():
        flat |= {f"fold_{number}.{key}": value for key, value in metrics["model"].items()}
    return flat


def register_model(
    trained_model: dict[str, Any],
    validation_results: dict[str, Any],
    champion_comparison: dict[str, Any],
    training_data_version: str,
    training_decision: dict[str, Any],
    model_registry: RegistryLocation,
    params: dict[str, Any],
    run_context: dict[str, Any],
) -> dict[str, Any]:
    """Register the model as challenger and, when it beat the champion, promote it."""
    if not trained_model:
        return {}
    registry = model_registry.connect(params["mlflow"])
    recipe = trained_model["recipe"]
    request = training_decision.get("request") or {}
    tags = {
        "kedro_run_id": run_context["run_id"],
        "trained_at": run_context["started_at"],
        "data_version": training_data_version,
        "train_start": trained_model["train_start"],
        "train_end": trained_model["train_end"],
        "data_end": trained_model["data_end"],
        "recipe": json.dumps(recipe, sort_keys=True),
        "features": json.dumps(recipe["features"]),
        "folds": json.dumps(validation_results["folds"]),
        "trigger": training_decision["reason"],
        "retrain_request_run_id": str(request.get("run_id")),
        "promoted": str(champion_comparison["promote"]).lower(),
    }
    documents = {
        RECIPE_FILE: recipe,
        VALIDATION_FILE: _json_ready(
            {key: validation_results[key] for key in ("folds", "per_fold", "overall")}
            | {"feature_importance": trained_model["importance"], "promotion": champion_comparison}
        ),
    }
    version = registry.log_model(
        trained_model["booster"],
        metrics=_flat_metrics(validation_results),
        params=_flat_params(recipe, params),
        tags=tags,
        documents=documents,
    )
    registry.set_alias(CHALLENGER, version)
    promoted = champion_comparison["promote"]
    if promoted:
        registry.set_alias(CHAMPION, version)
        logger.info(
            "Model %s version %d promoted to champion: %s",
            registry.model_name,
            version,
            champion_comparison["reason"],
        )
    else:
        logger.info(
            "Model %s version %d stays challenger: %s",
            registry.model_name,
            version,
            champion_comparison["reason"],
        )
    return {
        "model_name": registry.model_name,
        "version": version,
        "promoted": promoted,
        "champion_version": version if promoted else champion_comparison["champion_version"],
    }


def consume_retrain_request(
    training_decision: dict[str, Any],
    model_registration: dict[str, Any],
    retrain_ledger_stored: dict[str, Any],
    run_context: dict[str, Any],
) -> dict[str, Any]:
    """Record the pending request as consumed by this run, once its model is registered."""
    request = training_decision.get("request")
    if not request or not model_registration:
        return {}
    entry = {
        "request_run_id": request.get("run_id"),
        "as_of": request.get("as_of"),
        "requested_at": request.get("requested_at"),
        "tickers": request.get("tickers", []),
        "consumed_by_run_id": run_context["run_id"],
        "consumed_at": run_context["started_at"],
        "model_version": model_registration["version"],
    }
    logger.info(
        "Retrain request of drift run %s consumed by run %s (model version %d)",
        entry["request_run_id"],
        entry["consumed_by_run_id"],
        entry["model_version"],
    )
    return {"consumed": [*retrain_ledger_stored.get("consumed", []), entry]}


def report_training(
    validation_results: dict[str, Any],
    trained_model: dict[str, Any],
    champion_comparison: dict[str, Any],
    model_registration: dict[str, Any],
    training_decision: dict[str, Any],
    training_data_version: str,
    params: dict[str, Any],
    run_context: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """metrics.json (model, baselines, folds, data and model versions, promotion) and the daily OOS rank ICs."""
    if not model_registration:
        return {}, pd.DataFrame()
    recipe, overall = trained_model["recipe"], validation_results["overall"]
    per_fold = validation_results["per_fold"]
    request = training_decision.get("request") or {}
    metrics = {
        "run_id": run_context["run_id"],
        "trained_at": run_context["started_at"],
        "model_name": model_registration["model_name"],
        "model_version": model_registration["version"],
        "promoted": model_registration["promoted"],
        "champion_version": model_registration["champion_version"],
        "data_version": training_data_version,
        "trigger": {
            "reason": training_decision["reason"],
            "forced": training_decision["forced"],
            "retrain_request_run_id": request.get("run_id"),
        },
        "target": {key: recipe[key] for key in ("horizon", "price_column", "target")},
        "features": recipe["features"],
        "data": {
            key: trained_model[key]
            for key in ("rows", "tickers", "train_start", "train_end", "data_end")
        },
        "validation": {
            **params["validation"],
            "gap_sessions": gap_sessions(params["validation"], int(recipe["horizon"])),
            "splitter": "sklearn TimeSeriesSplit over unique dates",
        },
        "model": {
            "learner": "lightgbm",
            **overall["model"],
            "feature_importance": trained_model["importance"],
        },
        "baselines": {name: overall[name] for name in BASELINES},
        "folds": [
            {
                **fold,
                "model": per_fold[str(fold["fold"])]["model"],
                "baselines": {name: per_fold[str(fold["fold"])][name] for name in BASELINES},
            }
            for fold in validation_results["folds"]
        ],
        "promotion": champion_comparison,
        "definitions": DEFINITIONS,
    }
    scores = validation_results["scores"]
    daily = pd.DataFrame({name: daily_rank_ic(scores, name) for name in SCORED})
    daily["fold"] = scores.groupby("date")["fold"].first()
    daily = (
        daily.rename_axis("date").reset_index().assign(model_version=model_registration["version"])
    )
    return _json_ready(metrics), daily


def score_with_champion(
    features: pd.DataFrame,
    model_registration: dict[str, Any],
    model_registry: RegistryLocation,
    params: dict[str, Any],
) -> pd.DataFrame:
    """The current champion's score for every row of the gold layer it has complete inputs for."""
    registry = model_registry.connect(params["mlflow"])
    champion = registry.version(CHAMPION)
    if champion is None:
        logger.info("No champion model yet: no predictions to write")
        return pd.DataFrame()
    recipe = champion["recipe"]
    frame = build_model_frame(features, recipe)
    scores = frame[KEYS].assign(
        score=predict(registry.load_model(champion), frame, recipe["features"])
    )
    scores["rank_pct"] = scores.groupby("date")["score"].rank(pct=True)
    scores["model_version"] = champion["version"]
    scores["in_sample"] = scores["date"] <= pd.Timestamp(champion["train_end"])
    fresh = "this run's model" if model_registration.get("promoted") else "the standing champion"
    logger.info(
        "Predictions of %s (version %d) for %d rows", fresh, champion["version"], len(scores)
    )
    return scores


def _public(version: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the API shows of a model version."""
    if version is None:
        return None
    recipe = version["recipe"]
    return {
        "version": version["version"],
        "run_id": version["run_id"],
        "trained_at": version["trained_at"],
        "data_version": version["data_version"],
        "train_end": version["train_end"],
        "horizon": recipe["horizon"],
        "target": recipe["target"],
        "features": recipe["features"],
        "metrics": version["metrics"],
    }


def summarize_models(
    model_registration: dict[str, Any],
    model_registry: RegistryLocation,
    params: dict[str, Any],
    run_context: dict[str, Any],
) -> dict[str, Any]:
    """The champion and the challenger as the API serves them (GET /models)."""
    registry = model_registry.connect(params["mlflow"])
    champion, challenger = registry.version(CHAMPION), registry.version(CHALLENGER)
    if champion is None and challenger is None:
        return {}
    return _json_ready(
        {
            "model_name": registry.model_name,
            "generated_by_run": run_context["run_id"],
            "generated_at": run_context["started_at"],
            "registered_this_run": model_registration.get("version"),
            "champion": _public(champion),
            "challenger": _public(challenger),
        }
    )
