"""Tables for the classic models: scikit-learn's bundled sets and a user's CSV.

    load_table("iris" | "wine" | "breast_cancer" | "diabetes" | "digits" | "csv:PATH",
               task="classification" | "regression", target="column")  -> TabularData

The validation split follows the image data sets' rule (pipelines/data: 10% held out, seed 0,
stratified by class for classification), through the same `split_indices`, so `digits` as a
table of 64 pixels holds out exactly the 180 images every image family is measured on.
Regression targets are split by the same fraction and seed, unstratified.

A CSV is read with pandas. Feature columns: numbers keep their values (missing ones become the
training split's median); text columns are one-hot encoded (missing text is its own category).
Rows without a target are dropped. Anything that cannot be handled is refused with one line.

Torch-free: the UI and the classic models import this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..core import limits
from ..core.errors import StudioError
from . import SPLIT_SEED, VALIDATION_FRACTION, split_indices

BUNDLED_TABLES = {
    "iris": ("classification", "150 iris flowers, 4 measurements, 3 species"),
    "wine": ("classification", "178 wines, 13 chemical measurements, 3 cultivars"),
    "breast_cancer": ("classification", "569 tumours, 30 cell measurements, malignant/benign"),
    "diabetes": ("regression", "442 patients, 10 measurements, disease progression after a year"),
    "digits": ("classification", "1,797 hand-written 8x8 digits as 64 pixel columns (0..16)"),
}
MAX_CLASSES = 100            # a classification target with more distinct values is refused
MAX_CATEGORIES = 50          # a text feature column with more distinct values is refused


@dataclass
class TabularData:
    """Features as float64 (N, D); targets as int64 class indices or float64 values."""

    name: str
    task: str                         # "classification" or "regression"
    train_X: np.ndarray
    train_y: np.ndarray
    val_X: np.ndarray
    val_y: np.ndarray
    feature_names: list[str]
    target_name: str
    class_names: list[str] = field(default_factory=list)   # empty for regression
    dropped_rows: int = 0             # CSV rows without a target
    kind: ClassVar[str] = "table"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def info(self) -> dict:
        """What run.json stores about the table (and classify_image matches on)."""
        return {"name": self.name, "kind": "table", "task": self.task,
                "features": list(self.feature_names), "target": self.target_name,
                "class_names": list(self.class_names), "train_rows": len(self.train_y),
                "val_rows": len(self.val_y), "dropped_rows": self.dropped_rows}


def is_table_spec(spec: str) -> bool:
    return spec.strip().lower() in BUNDLED_TABLES or spec.strip().lower().startswith("csv:")


def load_table(spec: str, *, task: str, target: str = "") -> TabularData:
    """A bundled table or `csv:PATH`, split, for a model of `task`."""
    name = spec.strip()
    key = name.lower()
    if key in BUNDLED_TABLES:
        X, y, features, target_name, classes = _bundled(key)
        if task != BUNDLED_TABLES[key][0]:
            raise StudioError(f"{name} is a {BUNDLED_TABLES[key][0]} table; a {task} model "
                              f"needs a {'numeric target' if task == 'regression' else 'class target'} "
                              f"(try {'diabetes' if task == 'regression' else 'iris, wine, breast_cancer or digits'})")
        return _split(name, task, X, y, features, target_name, classes)
    if key.startswith("csv:"):
        return _load_csv(name[4:], task=task, target=target, name=name)
    raise StudioError(f"unknown table {spec!r}; use {', '.join(BUNDLED_TABLES)} or csv:PATH")


def _bundled(key: str):
    from sklearn import datasets  # lazy: sklearn is slow to import
    loader = {"iris": datasets.load_iris, "wine": datasets.load_wine,
              "breast_cancer": datasets.load_breast_cancer, "diabetes": datasets.load_diabetes,
              "digits": datasets.load_digits}[key]
    bunch = loader()
    X = np.asarray(bunch.data, dtype=np.float64)
    if key == "digits":
        features = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
        return X, bunch.target.astype(np.int64), features, "digit", [str(d) for d in range(10)]
    features = [str(f) for f in bunch.feature_names]
    if key == "diabetes":
        return X, bunch.target.astype(np.float64), features, "progression", []
    return X, bunch.target.astype(np.int64), features, "class", [str(c) for c in bunch.target_names]


def _split(name, task, X, y, features, target_name, classes, dropped=0) -> TabularData:
    if task == "classification":
        train, val = split_indices(y)
    else:
        from sklearn.model_selection import train_test_split
        if len(y) < 2:
            raise StudioError(f"{name} has {len(y)} usable row(s); at least 2 are needed")
        train, val = train_test_split(np.arange(len(y)), test_size=VALIDATION_FRACTION,
                                      random_state=SPLIT_SEED)
        train, val = np.sort(train), np.sort(val)
    return TabularData(name, task, X[train], y[train], X[val], y[val], list(features),
                       target_name, list(classes), dropped)


# --- a user's CSV ----------------------------------------------------------------------------
def _load_csv(path_text: str, *, task: str, target: str, name: str) -> TabularData:
    import pandas as pd
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise StudioError(f"CSV file {path} does not exist")
    size = path.stat().st_size
    if size > limits.MAX_TABLE_BYTES:   # pandas needs several times this in memory
        raise StudioError(f"CSV file {path} is {limits.size_text(size)}; a table may be at most "
                          f"{limits.size_text(limits.MAX_TABLE_BYTES)}: train on a sample of "
                          f"its rows")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise StudioError(f"CSV file {path} is empty; it needs a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StudioError(f"CSV file {path} could not be read ({first}); save it as "
                          f"comma-separated UTF-8 text") from None
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if not target:
        raise StudioError(f"csv data needs a target column: add --set target=NAME (columns: "
                          f"{', '.join(columns)})")
    if target not in columns:
        raise StudioError(f"CSV file {path} has no column {target!r}; its columns are "
                          f"{', '.join(columns)}")
    if len(frame) == 0:
        raise StudioError(f"CSV file {path} has a header but no data rows")
    if len(columns) < 2:
        raise StudioError(f"CSV file {path} has only the target column; it needs at least one "
                          f"feature column")
    has_target = frame[target].notna()
    dropped = int((~has_target).sum())
    frame = frame[has_target].reset_index(drop=True)
    if len(frame) < 2:
        raise StudioError(f"CSV file {path} has {len(frame)} row(s) with a {target!r} value; at "
                          f"least 2 are needed")
    y, classes = _target(frame[target], task, target, path)
    train, val = (split_indices(y) if task == "classification" else _regression_split(len(y)))
    X, features = _features(frame.drop(columns=[target]), train, path)
    return TabularData(name, task, X[train], y[train], X[val], y[val], features, target,
                       classes, dropped)


def _regression_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split
    train, val = train_test_split(np.arange(n), test_size=VALIDATION_FRACTION,
                                  random_state=SPLIT_SEED)
    return np.sort(train), np.sort(val)


def _target(column, task: str, target: str, path: Path) -> tuple[np.ndarray, list[str]]:
    import pandas as pd
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if task == "regression":
        if not numeric:
            raise StudioError(f"target column {target!r} in {path} is not numeric (e.g. "
                              f"{column.iloc[0]!r}); a regression model needs numbers")
        return column.to_numpy(dtype=np.float64), []
    values = column.astype(str) if not numeric else column
    classes = sorted(pd.unique(values), key=lambda v: (str(type(v)), v))
    if len(classes) > MAX_CLASSES:
        raise StudioError(f"target column {target!r} in {path} has {len(classes)} distinct "
                          f"values; a classifier needs at most {MAX_CLASSES} classes (use a "
                          f"regression model for a numeric target)")
    if len(classes) < 2:
        raise StudioError(f"target column {target!r} in {path} has a single value; a "
                          f"classifier needs at least two classes")
    index = {c: i for i, c in enumerate(classes)}
    names = [str(int(c)) if isinstance(c, float) and float(c).is_integer() else str(c)
             for c in classes]
    return np.array([index[v] for v in values], dtype=np.int64), names


def _features(frame, train: np.ndarray, path: Path) -> tuple[np.ndarray, list[str]]:
    """Numbers as they are (missing -> the training median), text one-hot encoded."""
    import pandas as pd
    parts, names = [], []
    for col in frame.columns:
        series = frame[col]
        if pd.api.types.is_bool_dtype(series):
            series = series.astype(float)
        if pd.api.types.is_numeric_dtype(series):
            values = series.to_numpy(dtype=np.float64)
            known = values[train][~np.isnan(values[train])]
            if len(known) == 0:
                raise StudioError(f"column {col!r} in {path} has no values in the training "
                                  f"rows; fill it in or drop it")
            values = np.where(np.isnan(values), float(np.median(known)), values)
            parts.append(values[:, None])
            names.append(col)
            continue
        text = series.astype(object).where(series.notna(), "<missing>").astype(str)
        categories = sorted(text.unique())
        if len(categories) > MAX_CATEGORIES:
            raise StudioError(f"column {col!r} in {path} is text with {len(categories)} "
                              f"distinct values (at most {MAX_CATEGORIES} are one-hot encoded); "
                              f"drop it or turn it into numbers")
        for category in categories:  # one 0/1 column per category
            parts.append((text.to_numpy() == category).astype(np.float64)[:, None])
            names.append(f"{col}={category}")
    X = np.concatenate(parts, axis=1)
    if not math.isfinite(float(np.abs(X).sum())):
        raise StudioError(f"CSV file {path} holds infinite numbers; replace them")
    return X, names
