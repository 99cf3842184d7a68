"""Fit a classic model into a run folder, and refit it from one.

    run = fit_run("svm-rbf", "digits", config_overrides={"C": "10"})   # what `studio train` does
    model, fitted, data = refit(run)                                      # the same model again

A classic run folder is an ordinary run folder (status done at step 1 of 1):

    run.json           pipeline, data, config, data_info (features, classes), eval (metrics)
    metrics.jsonl      one line: val/accuracy, val/macro_f1, ... (regression: val/r2, val/rmse)
    summary.json       {"tables": {...}, "statistics": {...}, "metrics": {...}}
    summary.md         the same as markdown tables
    plots/*.png        confusion matrix, ROC (binary), residuals (regression), decision
                       boundary, and the model's own (tree.png, importances.png)

No fitted model is stored: nothing here is pickled. Fits take seconds and are deterministic
for (config, data spec, seed), so `refit` rebuilds the model from run.json when it is needed
again (e.g. by the Classify tab) and checks that it reproduces the stored validation metrics.
"""

from __future__ import annotations

import json
import time
import warnings
from importlib import metadata
from typing import Any

import numpy as np

from ..core.config import apply_overrides, config_hash, to_dict
from ..data.tabular import TabularData, load_table
from ..core.errors import StudioError
from ..registry import get_entry, load_pipeline_class
from ..core.atomic_files import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..core.runs import RunFolder, runs_dir_from_env
from . import plots
from .summaries import markdown


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("scikit-learn", "statsmodels", "numpy", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def fit_model(model, data: TabularData):
    """The fitted scikit-learn pipeline. Convergence warnings are kept for the summary."""
    fitted = model.model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted.fit(data.train_X, data.train_y)
    notes = sorted({str(w.message).splitlines()[0] for w in caught
                    if "converge" in str(w.message).lower()})
    return fitted, notes


def validation_metrics(fitted, data: TabularData) -> dict[str, float]:
    from sklearn import metrics as M
    pred = fitted.predict(data.val_X)
    if data.task == "regression":
        return {"r2": float(M.r2_score(data.val_y, pred)),
                "rmse": float(np.sqrt(M.mean_squared_error(data.val_y, pred))),
                "mae": float(M.mean_absolute_error(data.val_y, pred)),
                "train_r2": float(M.r2_score(data.train_y, fitted.predict(data.train_X)))}
    out = {"accuracy": float(M.accuracy_score(data.val_y, pred)),
           "macro_f1": float(M.f1_score(data.val_y, pred, average="macro", zero_division=0)),
           "train_accuracy": float(M.accuracy_score(data.train_y, fitted.predict(data.train_X)))}
    if data.num_classes == 2:
        out["roc_auc"] = float(M.roc_auc_score(data.val_y, fitted.predict_proba(data.val_X)[:, 1]))
    return out


def two_features(model, fitted, data: TabularData) -> tuple[np.ndarray, tuple[str, str]]:
    """The training rows on two axes: the features named in `boundary_features`, or the
    first two principal components of the (standardised) features."""
    chosen = [n.strip() for n in model.config.boundary_features.split(",") if n.strip()]
    if chosen:
        missing = [n for n in chosen if n not in data.feature_names]
        if len(chosen) != 2 or missing:
            raise StudioError(f"boundary_features must name two features (a,b) of "
                              f"{', '.join(data.feature_names[:12])}{' ...' if len(data.feature_names) > 12 else ''}")
        idx = [data.feature_names.index(n) for n in chosen]
        return data.train_X[:, idx], (chosen[0], chosen[1])
    from sklearn.decomposition import PCA
    X = model.design(fitted, data.train_X)
    if X.shape[1] == 1:
        return np.column_stack([X[:, 0], np.zeros(len(X))]), (data.feature_names[0], "(none)")
    return PCA(2, random_state=0).fit_transform(X), ("principal component 1", "principal component 2")


def make_plots(model, fitted, data: TabularData) -> dict[str, bytes]:
    pred = fitted.predict(data.val_X)
    if data.task == "regression":
        return {"residuals.png": plots.residuals_png(data.val_y, pred)}
    out = {"confusion.png": plots.confusion_png(data.val_y, pred, data.class_names)}
    if data.num_classes == 2:
        out["roc.png"] = plots.roc_png(data.val_y, fitted.predict_proba(data.val_X)[:, 1],
                                       data.class_names[1])
    X2, axes = two_features(model, fitted, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["boundary.png"] = plots.boundary_png(
            model.model(), X2, data.train_y, axes, data.class_names,
            f"{model.name} refit on two axes (training points)")
    return out


def _make(pipeline: str, values: dict[str, Any], where: str = ""):
    get_entry(pipeline)
    cls = load_pipeline_class(pipeline)
    return cls(apply_overrides(cls.Config(), values, where))


def fit_run(pipeline: str, data: str, *, config_overrides: dict[str, Any] | None = None,
            runs_dir: Any = None, name: str | None = None) -> RunFolder:
    """Fit `pipeline` on the table `data` and write a finished run folder."""
    model = _make(pipeline, config_overrides or {})
    table = load_table(data, task=model.task, target=model.config.target)
    run = RunFolder.create(runs_dir_from_env(runs_dir), name or f"{pipeline}-{data.replace(':', '-')}", {
        "pipeline": pipeline, "data": data, "status": "running", "step": 0, "total_steps": 1,
        "seed": model.config.seed, "config": to_dict(model.config), "trainer": {},
        "data_info": table.info(), "versions": _versions(),
        "config_hash": config_hash(model.config), "message": "",
        "stored_model": "none: refit from config + data + seed (deterministic, seconds)"})
    try:
        start = time.perf_counter()
        fitted, notes = fit_model(model, table)
        seconds = time.perf_counter() - start
        results = validation_metrics(fitted, table)
        tables, statistics, extra = model.summary(fitted, table)
        pictures = {**make_plots(model, fitted, table), **extra}
        summary = {"pipeline": pipeline, "data": data, "task": table.task, "metrics": results,
                   "statistics": statistics, "tables": tables, "notes": notes}
        atomic_write_json(run.path / "summary.json", summary)
        atomic_write_text(run.path / "summary.md", summary_markdown(summary))
        for file_name, png in pictures.items():
            atomic_write_bytes(run.path / "plots" / file_name, png)
        run.log_metrics({"step": 1, "time": round(seconds, 3),
                         **{f"val/{k}": v for k, v in results.items()}})
        message = f"dropped {table.dropped_rows} rows without a target" if table.dropped_rows else ""
        run.update_info(status="done", step=1, eval=results, elapsed_seconds=round(seconds, 3),
                        fit_seconds=round(seconds, 3), message="; ".join([message, *notes]).strip("; "))
    except BaseException as e:
        run.update_info(status="failed", message=f"{type(e).__name__}: {e}")
        raise
    return run


def summary_markdown(summary: dict[str, Any]) -> str:
    lines = [f"# {summary['pipeline']} on {summary['data']} ({summary['task']})", "",
             "Validation: " + ", ".join(f"{k} {v:.4g}" for k, v in summary["metrics"].items()), ""]
    if summary["statistics"]:
        lines += ["Fit statistics (training split): " + ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in summary["statistics"].items()), ""]
    lines += [f"Note: {n}" for n in summary.get("notes", [])]
    for name, tab in summary["tables"].items():
        lines += ["", markdown(name, tab)]
    return "\n".join(lines) + "\n"


def refit(run_ref: Any, runs_dir: Any = None):
    """(model, fitted pipeline, data) rebuilt from a classic run's run.json."""
    run = run_ref if isinstance(run_ref, RunFolder) else RunFolder.resolve(run_ref, runs_dir)
    info = run.info()
    model = _make(info["pipeline"], info.get("config", {}), where="config.")
    data = load_table(info["data"], task=model.task, target=model.config.target)
    fitted, _ = fit_model(model, data)
    return model, fitted, data


def read_summary(run: RunFolder) -> dict[str, Any]:
    path = run.path / "summary.json"
    if not path.is_file():
        raise StudioError(f"run {run.id} has no summary.json; it is not a finished classic run")
    return json.loads(path.read_text(encoding="utf-8"))
