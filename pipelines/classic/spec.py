"""The classic models' declarations, without scikit-learn (pipelines/core/spec.py): the config every
model shares, each model's own options, and one spec per registry entry. They are fit in one
go (`trains="fit"`): no trainer, no steps, so no training defaults and no presets (None). The
page and the CLI read these; fitting imports models.py (scikit-learn, statsmodels)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..core.config import option, seed_option
from ..core.spec import PipelineSpec, Tool


@dataclass
class ClassicConfig:
    target: str = option("", "csv: data: the column to predict (the bundled tables know theirs).")
    standardize: bool = option(True, "Scale every feature to zero mean and unit variance "
                               "(fitted on the training split) before the model sees it.")
    seed: int = seed_option(0, "Seed of the randomised parts (forests, SVM probability "
                            "calibration); the same seed refits the same model.")
    boundary_features: str = option("", "Two feature names, comma separated, for the 2-D "
                                    "decision-boundary view; empty: the first two principal "
                                    "components of the (standardised) features.")


@dataclass
class LinearRegressionConfig(ClassicConfig):
    fit_intercept: bool = option(True, "Fit an intercept (the table's first row).")


@dataclass
class LogisticConfig(ClassicConfig):
    C: float = option(1.0, "Inverse strength of the L2 penalty (scikit-learn's C); 0 fits "
                      "without a penalty: the classic maximum-likelihood fit and summary.", low=0.0)
    max_iter: int = option(200, "Newton iterations at most.", low=1, high=10000)


@dataclass
class TreeConfig(ClassicConfig):
    max_depth: int = option(0, "Deepest level; 0 grows until every leaf is pure.", low=0, high=100)
    min_samples_leaf: int = option(1, "Fewest training rows in a leaf.", low=1)
    criterion: str = option("gini", "Split quality measure.", choices=("gini", "entropy"))
    draw_depth: int = option(3, "Levels of the tree drawn in plots/tree.png.", low=1, high=6)


@dataclass
class ForestConfig(ClassicConfig):
    n_estimators: int = option(300, "Trees in the forest.", low=1, high=5000)
    max_depth: int = option(0, "Deepest level of each tree; 0: grown until pure.", low=0, high=100)
    max_features: str = option("sqrt", "Features tried at each split: sqrt, log2 or all.",
                               choices=("sqrt", "log2", "all"))
    min_samples_leaf: int = option(1, "Fewest training rows in a leaf.", low=1)


@dataclass
class SVMConfig(ClassicConfig):
    C: float = option(10.0, "Penalty on margin violations; larger fits the training data "
                      "more closely.", low=1e-6)
    gamma: str = option("scale", "RBF/poly kernel width: scale (1 / (features * variance)), "
                        "auto (1 / features), or a number.")
    degree: int = option(3, "Polynomial kernel degree.", low=1, high=10)
    coef0: float = option(1.0, "Polynomial kernel's constant term.")


# The tools show what a fit wrote into the run folder (classic/tools.py): its tables and its
# pictures, in the page's Tools panel (Classify tab) and `studio tool RUN NAME`.
PLOTS = ("confusion", "roc", "residuals", "boundary", "tree", "importances")


@dataclass
class SummaryOptions:
    """The summary has no options."""


@dataclass
class PlotOptions:
    which: str = option("first", "The picture: first (the first this run drew), confusion, roc "
                        "(two classes), residuals (regression), boundary (a model of the same "
                        "kind refit on two axes), tree (decision-tree), importances "
                        "(random-forest).", choices=("first",) + PLOTS)


CLASSIC_TOOLS = (
    Tool("summary", "tool_summary", SummaryOptions, "The fitted model's tables (coefficients "
         "with standard errors and p-values, importances, ...), its fit statistics and "
         "validation metrics."),
    Tool("plot", "tool_plot", PlotOptions, "One of the pictures the fit drew: confusion "
         "matrix, ROC curve, residuals, decision boundary, tree, importances."))

# Fit in one go by fit.py: no trainer options to change, and no presets (None, not {}: there
# are no steps for a preset to set; pipelines/core/presets.py `has_presets`).
CLASSIC_SPEC = PipelineSpec(
    name="classic-base", family="classic", kind="classic",
    summary="every classic model's shared declarations",
    impl="pipelines.classic.models:ClassicModel",
    Config=ClassicConfig, train_defaults={}, presets=None, data_kind="table", trains="fit",
    tools=CLASSIC_TOOLS)


def model(name: str, cls: str, summary: str, **changes: Any) -> PipelineSpec:
    """A registry entry: the shared spec with its name, class, summary and what it changes."""
    return replace(CLASSIC_SPEC, name=name, impl=f"pipelines.classic.models:{cls}",
                   summary=summary, **changes)


LINEAR_REGRESSION = model(
    "linear-regression", "LinearRegression",
    "Least squares with statsmodels' coefficient table (std err, t, p, CI, R²); "
    "regression tables (diabetes, csv:)", Config=LinearRegressionConfig)
LOGISTIC = model(
    "logistic", "Logistic", "Logistic regression (one-vs-rest for 3+ classes) with the z/p "
    "table, log-likelihood and pseudo-R²", Config=LogisticConfig)
DECISION_TREE = model(
    "decision-tree", "DecisionTree", "CART decision tree; the drawn tree and feature importances",
    Config=TreeConfig)
RANDOM_FOREST = model(
    "random-forest", "RandomForest",
    "Random forest; feature importances with their spread over the trees", Config=ForestConfig)
# The three SVMs share one config; the kernel is the class's (models.py).
SVM_SPEC = model("svm-base", "SVM", "every support vector machine's shared declarations",
                 Config=SVMConfig)
SVM_LINEAR = replace(SVM_SPEC, name="svm-linear", impl="pipelines.classic.models:SVMLinear",
                     summary="Support vector machine, linear kernel")
SVM_RBF = replace(SVM_SPEC, name="svm-rbf", impl="pipelines.classic.models:SVMRBF",
                  summary="Support vector machine, RBF kernel")
SVM_POLY = replace(SVM_SPEC, name="svm-poly", impl="pipelines.classic.models:SVMPoly",
                   summary="Support vector machine, polynomial kernel")

SPECS = (LINEAR_REGRESSION, LOGISTIC, DECISION_TREE, RANDOM_FOREST, SVM_LINEAR, SVM_RBF,
         SVM_POLY)
