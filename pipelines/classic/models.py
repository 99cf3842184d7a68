"""The classic models: one class per registry entry, each declared in spec.py (its config
dataclass, name and summary).

    linear-regression   least squares; statsmodels' coefficient table (regression tables)
    logistic            L2-penalised logistic regression; Wald table and likelihood statistics.
                        Multiclass targets: one-vs-rest, one binary model (and one table) per
                        class against the rest, probabilities normalised over the classes
    decision-tree       CART; the drawn tree and the feature importances
    random-forest       bagged CART trees; importances with their spread over the trees
    svm-linear, svm-rbf, svm-poly   support vector machines; support vectors per class.
                        Probabilities: scikit-learn's probability=True (Platt scaling fitted
                        by internal 5-fold cross-validation, seeded); accuracy uses predict()

A model is `make_pipeline(StandardScaler(), estimator)` when `standardize` is on, so every
coefficient is "per standard deviation of the feature". `summary(fitted, data)` returns
(tables, statistics, plots) for the run folder; fit.py writes them.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..data.tabular import TabularData
from ..core.errors import StudioError
from ..core.spec import PipelineSpec, adopt
from . import plots
from . import spec as S
from .spec import ClassicConfig
from .summaries import logit_summary, ols_summary, table


class ClassicModel:
    """A registry entry fit in one go by fit.py (no trainer, no steps, no weights file)."""
    # The model's torch-free declaration (spec.py): a class that names one takes its name,
    # Config, SampleControls, tools, train_defaults, presets (None) and data_kind from it.
    spec: ClassVar[PipelineSpec | None] = None
    name: ClassVar[str]
    Config: ClassVar[type] = ClassicConfig
    task: ClassVar[str] = "classification"
    data_kind: ClassVar[str] = "table"
    draws_samples: ClassVar[bool] = False
    train_defaults: ClassVar[dict[str, Any]] = {}
    presets: ClassVar[None] = None      # fit in one go: no steps for a preset to set
    SampleControls: ClassVar[type | None] = None
    tools: ClassVar[tuple] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("spec") is not None:
            adopt(cls, cls.spec)

    def __init__(self, config: Any):
        self.config = config

    def estimator(self):
        raise NotImplementedError

    def model(self):
        """The unfitted scikit-learn pipeline: scaler (if on) and estimator."""
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        steps = [StandardScaler()] if self.config.standardize else []
        return make_pipeline(*steps, self.estimator())

    def summary(self, fitted, data: TabularData) -> tuple[dict, dict, dict[str, bytes]]:
        """(tables, statistics, extra plots) of a fitted model."""
        return {}, {}, {}

    @staticmethod
    def design(fitted, X: np.ndarray) -> np.ndarray:
        """X as the estimator sees it (standardised when the scaler is on)."""
        return fitted[:-1].transform(X) if len(fitted) > 1 else X


class LinearRegression(ClassicModel):
    spec = S.LINEAR_REGRESSION
    task = "regression"

    def estimator(self):
        from sklearn.linear_model import LinearRegression as LR
        return LR(fit_intercept=self.config.fit_intercept)

    def summary(self, fitted, data):
        X = self.design(fitted, data.train_X)
        if not self.config.fit_intercept:
            raise StudioError("the coefficient table assumes an intercept; set fit_intercept=true")
        coefficients, statistics = ols_summary(X, data.train_y, data.feature_names)
        return {"coefficients": coefficients}, statistics, {}


class Logistic(ClassicModel):
    spec = S.LOGISTIC

    def estimator(self):
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        c = self.config
        binary = LogisticRegression(C=c.C if c.C > 0 else math.inf, solver="newton-cholesky",
                                    max_iter=c.max_iter, tol=1e-12)
        # With two classes one-vs-rest fits a single binary model (the positive class's).
        return OneVsRestClassifier(binary)

    def summary(self, fitted, data):
        X = self.design(fitted, data.train_X)
        rows, statistics = [], {}
        C = self.config.C if self.config.C > 0 else math.inf
        ovr = fitted[-1]
        positives = ovr.classes_[1:] if len(ovr.estimators_) == 1 else ovr.classes_
        models = list(zip((int(c) for c in positives), ovr.estimators_))
        for k, (positive, est) in enumerate(models):
            y = (data.train_y == positive).astype(np.float64) if len(models) > 1 else \
                data.train_y.astype(np.float64)
            wald, stats_k = logit_summary(X, y, float(est.intercept_[0]), est.coef_[0], C)
            label = data.class_names[positive]
            terms = ["intercept", *data.feature_names]
            rows += [[label, term, *values] for term, values in zip(terms, wald)]
            stats_k["converged"] = bool(np.all(np.asarray(est.n_iter_) < self.config.max_iter))
            statistics.update({f"{label}/{key}": value for key, value in stats_k.items()}
                              if len(models) > 1 else stats_k)
        columns = ["class", "term", "estimate", "std_err", "z", "p_value", "ci_low", "ci_high"]
        return {"coefficients": table(columns, rows)}, statistics, {}


class DecisionTree(ClassicModel):
    spec = S.DECISION_TREE

    def estimator(self):
        from sklearn.tree import DecisionTreeClassifier
        c = self.config
        return DecisionTreeClassifier(max_depth=c.max_depth or None, criterion=c.criterion,
                                      min_samples_leaf=c.min_samples_leaf, random_state=c.seed)

    def summary(self, fitted, data):
        tree = fitted[-1]
        order = np.argsort(tree.feature_importances_)[::-1]
        rows = [[data.feature_names[i], tree.feature_importances_[i]] for i in order]
        statistics = {"depth": int(tree.get_depth()), "leaves": int(tree.get_n_leaves()),
                      "nodes": int(tree.tree_.node_count)}
        picture = plots.tree_png(tree, data.feature_names, data.class_names,
                                 min(self.config.draw_depth, max(tree.get_depth(), 1)))
        return {"importances": table(["feature", "importance"], rows)}, statistics, \
            {"tree.png": picture}


class RandomForest(ClassicModel):
    spec = S.RANDOM_FOREST

    def estimator(self):
        from sklearn.ensemble import RandomForestClassifier
        c = self.config
        return RandomForestClassifier(
            n_estimators=c.n_estimators, max_depth=c.max_depth or None,
            max_features=None if c.max_features == "all" else c.max_features,
            min_samples_leaf=c.min_samples_leaf, random_state=c.seed, n_jobs=1)

    def summary(self, fitted, data):
        forest = fitted[-1]
        values = forest.feature_importances_
        spread = np.std([t.feature_importances_ for t in forest.estimators_], axis=0)
        order = np.argsort(values)[::-1]
        rows = [[data.feature_names[i], values[i], spread[i]] for i in order]
        statistics = {"trees": len(forest.estimators_),
                      "mean_depth": float(np.mean([t.get_depth() for t in forest.estimators_]))}
        picture = plots.importances_png(data.feature_names, values, spread)
        return {"importances": table(["feature", "importance", "std_over_trees"], rows)}, \
            statistics, {"importances.png": picture}


class SVM(ClassicModel):
    spec = S.SVM_SPEC
    kernel: ClassVar[str]

    def estimator(self):
        from sklearn.svm import SVC
        c = self.config
        return SVC(kernel=self.kernel, C=c.C, gamma=_gamma(c.gamma), degree=c.degree,
                   coef0=c.coef0, probability=True, random_state=c.seed)

    def summary(self, fitted, data):
        svc = fitted[-1]
        rows = [[data.class_names[int(k)], int(n)] for k, n in zip(svc.classes_, svc.n_support_)]
        statistics = {"kernel": self.kernel, "support_vectors": int(svc.n_support_.sum()),
                      "gamma": float(svc._gamma) if self.kernel != "linear" else float("nan")}
        return {"support_vectors": table(["class", "support_vectors"], rows)}, statistics, {}


def _gamma(text: str):
    if text in ("scale", "auto"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise StudioError(f"gamma must be scale, auto or a positive number, not {text!r}") from None
    if value <= 0:
        raise StudioError(f"gamma must be positive, not {value}")
    return value


class SVMLinear(SVM):
    spec, kernel = S.SVM_LINEAR, "linear"


class SVMRBF(SVM):
    spec, kernel = S.SVM_RBF, "rbf"


class SVMPoly(SVM):
    spec, kernel = S.SVM_POLY, "poly"
