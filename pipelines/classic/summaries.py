"""The statistical summaries of the classic models, as plain tables.

A table is {"columns": [...], "rows": [[...], ...]}; `markdown` renders one. The numbers are the
ones a statistics package prints:

    ols_summary        linear regression: statsmodels OLS on the same design matrix the model
                       was fit on: estimate, std err, t, p, 95% CI; R², adjusted R², F, AIC/BIC
    logit_summary      logistic regression at the fitted coefficients: Wald std errors from the
                       inverse of the (penalised) observed information, z, p, 95% CI;
                       log-likelihood, null log-likelihood, McFadden pseudo-R², LR test.
                       Unpenalised (C=0) these equal statsmodels' Logit (tests/test_classic.py)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))


def table(columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"columns": list(columns), "rows": [[_plain(v) for v in row] for row in rows]}


def _plain(value: Any) -> Any:
    """JSON-friendly scalars (numpy floats become floats; NaN stays NaN)."""
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


def markdown(name: str, tab: dict[str, Any]) -> str:
    def cell(v):
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4g}"
        return str(v)
    lines = [f"### {name}", "", "| " + " | ".join(tab["columns"]) + " |",
             "|" + "---|" * len(tab["columns"])]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in tab["rows"]]
    return "\n".join(lines) + "\n"


# --- linear regression -------------------------------------------------------------------------
def ols_summary(X: np.ndarray, y: np.ndarray, names: list[str]) -> tuple[dict, dict]:
    """(coefficient table, fit statistics) of least squares with an intercept."""
    import statsmodels.api as sm
    fit = sm.OLS(y, sm.add_constant(X, has_constant="add")).fit()
    ci = np.asarray(fit.conf_int(0.05))
    rows = [[term, fit.params[i], fit.bse[i], fit.tvalues[i], fit.pvalues[i], ci[i, 0], ci[i, 1]]
            for i, term in enumerate(["intercept", *names])]
    coefficients = table(["term", "estimate", "std_err", "t", "p_value", "ci_low", "ci_high"], rows)
    statistics = {"r_squared": float(fit.rsquared), "adj_r_squared": float(fit.rsquared_adj),
                  "f_statistic": float(fit.fvalue), "f_p_value": float(fit.f_pvalue),
                  "log_likelihood": float(fit.llf), "aic": float(fit.aic), "bic": float(fit.bic),
                  "n": int(fit.nobs), "df_residual": float(fit.df_resid)}
    return coefficients, statistics


# --- logistic regression -----------------------------------------------------------------------
def logit_summary(X: np.ndarray, y: np.ndarray, intercept: float, coef: np.ndarray,
                  C: float) -> tuple[list[list[Any]], dict[str, float]]:
    """Wald rows [estimate, std err, z, p, ci_low, ci_high] per term (intercept first) and the
    likelihood statistics of a binary logistic model with the given coefficients.

    scikit-learn minimises  C * sum_i logloss_i + ||w||^2 / 2  (intercept unpenalised), so
    the observed information of that objective, divided by C, is
        H = X1' diag(p (1 - p)) X1 + diag(0, 1/C, ..., 1/C),   X1 = [1, X]
    and the covariance of the estimate is H^-1 (C = inf: the classic MLE's)."""
    X1 = np.column_stack([np.ones(len(X)), X])                 # (N, D + 1)
    beta = np.concatenate([[intercept], coef])                 # (D + 1,)
    eta = X1 @ beta
    p = 1.0 / (1.0 + np.exp(-eta))
    w = p * (1.0 - p)
    H = X1.T @ (X1 * w[:, None])
    if math.isfinite(C) and C > 0:
        H[1:, 1:] += np.eye(len(coef)) / C
    singular = np.linalg.matrix_rank(H) < len(beta)
    cov = np.linalg.pinv(H) if singular else np.linalg.inv(H)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = beta / se
    pvals = 2 * stats.norm.sf(np.abs(z))
    rows = [[beta[i], se[i], z[i], pvals[i], beta[i] - Z95 * se[i], beta[i] + Z95 * se[i]]
            for i in range(len(beta))]
    # log-likelihood, written with logaddexp so that a near-certain wrong answer is finite
    llf = float(-np.sum(np.logaddexp(0.0, -eta) * y + np.logaddexp(0.0, eta) * (1 - y)))
    rate = float(np.mean(y))
    llnull = (float(len(y) * (rate * math.log(rate) + (1 - rate) * math.log(1 - rate)))
              if 0 < rate < 1 else 0.0)
    k = int(np.linalg.matrix_rank(X1)) - 1                     # df of the LR test (as statsmodels)
    llr = 2 * (llf - llnull)
    n_params = len(beta)
    statistics = {"log_likelihood": llf, "ll_null": llnull,
                  "pseudo_r2": 1 - llf / llnull if llnull else float("nan"),
                  "llr": llr, "llr_p_value": float(stats.chi2.sf(llr, k)) if k > 0 else float("nan"),
                  "aic": 2 * n_params - 2 * llf, "bic": n_params * math.log(len(y)) - 2 * llf,
                  "n": int(len(y)), "singular_information": bool(singular)}
    return rows, statistics
