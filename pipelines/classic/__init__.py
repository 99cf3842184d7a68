"""Classic models with scikit-learn (statsmodels for the regression tables): linear and
logistic regression, a decision tree, a random forest, SVMs. models.py holds one class per
registry entry, summaries.py the statistical tables, plots.py the pictures, fit.py the run
folder (`studio train svm-rbf --data digits` ends there)."""

from .fit import fit_run, refit
from .models import (SVM, ClassicModel, DecisionTree, LinearRegression, Logistic, RandomForest,
                     SVMLinear, SVMPoly, SVMRBF)

__all__ = ["fit_run", "refit", "ClassicModel", "LinearRegression", "Logistic", "DecisionTree",
           "RandomForest", "SVM", "SVMLinear", "SVMRBF", "SVMPoly"]
