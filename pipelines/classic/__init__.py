"""Classic models with scikit-learn (statsmodels for the regression tables): linear and
logistic regression, a decision tree, a random forest, SVMs. models.py holds one class per
registry entry, spec.py their torch- and scikit-learn-free declarations (configs, names),
summaries.py the statistical tables, plots.py the pictures, fit.py the run folder
(`studio train svm-rbf --data digits` ends there)."""

from ..core.spec import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "fit_run": ".fit", "refit": ".fit", "ClassicModel": ".models",
    "LinearRegression": ".models", "Logistic": ".models", "DecisionTree": ".models",
    "RandomForest": ".models", "SVM": ".models", "SVMLinear": ".models", "SVMRBF": ".models",
    "SVMPoly": ".models"})
