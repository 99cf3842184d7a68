"""The classic models (pipelines/classic) and their tables (pipelines/data/tabular.py):
every model on every bundled set it applies to, the summaries against statsmodels and
scikit-learn, bad CSVs, the digits split, and `studio train` writing a finished run folder."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pipelines.classic.fit import fit_model, refit, validation_metrics
from pipelines.cli import main
from pipelines.core.config import apply_overrides
from pipelines.data import load_data
from pipelines.data.tabular import load_table
from pipelines.core.errors import StudioError
from pipelines.registry import get_entry, load_pipeline_class
from pipelines.core.runs import RunFolder

CLASSIFIERS = ["logistic", "decision-tree", "random-forest", "svm-linear", "svm-rbf", "svm-poly"]
CLASSIFICATION_SETS = ["iris", "wine", "breast_cancer", "digits"]
FAST = {"random-forest": {"n_estimators": 40}}    # keeps the file fast; the default is 300
TABLE_COLUMNS = {
    "linear-regression": ("coefficients", ["term", "estimate", "std_err", "t", "p_value",
                                           "ci_low", "ci_high"]),
    "logistic": ("coefficients", ["class", "term", "estimate", "std_err", "z", "p_value",
                                  "ci_low", "ci_high"]),
    "decision-tree": ("importances", ["feature", "importance"]),
    "random-forest": ("importances", ["feature", "importance", "std_over_trees"]),
    "svm-linear": ("support_vectors", ["class", "support_vectors"]),
    "svm-rbf": ("support_vectors", ["class", "support_vectors"]),
    "svm-poly": ("support_vectors", ["class", "support_vectors"]),
}


def make(name: str, **overrides):
    cls = load_pipeline_class(name)
    return cls(apply_overrides(cls.Config(), {**FAST.get(name, {}), **overrides}))


# --- every model on every bundled set -----------------------------------------------------------
# Regression (linear-regression) only on diabetes, the one regression table; the classifiers
# on the four classification tables. Crossing them is refused (tested below).
CASES = [("linear-regression", "diabetes")] + [(m, d) for m in CLASSIFIERS
                                               for d in CLASSIFICATION_SETS]


@pytest.mark.parametrize("name,spec", CASES)
def test_each_model_fits_predicts_and_summarises(name, spec):
    model = make(name)
    data = load_table(spec, task=model.task)
    fitted, _ = fit_model(model, data)
    pred = fitted.predict(data.val_X)
    assert pred.shape == data.val_y.shape
    results = validation_metrics(fitted, data)
    if model.task == "regression":
        assert 0.2 < results["r2"] < 1 and results["rmse"] > 0
    else:
        proba = fitted.predict_proba(data.val_X)
        assert proba.shape == (len(data.val_y), data.num_classes)
        assert np.allclose(proba.sum(1), 1.0)
        assert results["accuracy"] > 0.8, results            # every one beats chance by far
    tables, statistics, plots = model.summary(fitted, data)
    key, columns = TABLE_COLUMNS[name]
    assert tables[key]["columns"] == columns
    assert len(tables[key]["rows"]) > 0 and all(len(r) == len(columns) for r in tables[key]["rows"])
    assert statistics
    for png in plots.values():
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_models_refuse_the_other_task():
    with pytest.raises(StudioError, match="regression table"):
        load_table("diabetes", task="classification")
    with pytest.raises(StudioError, match="classification table"):
        load_table("iris", task="regression")


# --- the summaries against reference implementations -------------------------------------------
def test_logistic_summary_equals_statsmodels_logit():
    import statsmodels.api as sm
    data = load_table("breast_cancer", task="classification")
    data.train_X, data.feature_names = data.train_X[:, :4], data.feature_names[:4]  # MLE exists
    model = make("logistic", C=0)                               # unpenalised
    fitted, _ = fit_model(model, data)
    tables, statistics, _ = model.summary(fitted, data)
    rows = np.array([r[2:] for r in tables["coefficients"]["rows"]], dtype=float)
    ref = sm.Logit(data.train_y, sm.add_constant(model.design(fitted, data.train_X))).fit(
        disp=0, method="newton", tol=1e-12)
    ci = np.asarray(ref.conf_int())
    assert np.allclose(rows[:, 0], ref.params, atol=1e-6, rtol=0)
    assert np.allclose(rows[:, 1], ref.bse, atol=1e-6, rtol=0)
    assert np.allclose(rows[:, 2], ref.tvalues, atol=1e-5, rtol=1e-6)
    assert np.allclose(rows[:, 3], ref.pvalues, atol=1e-8)
    assert np.allclose(rows[:, 4:], ci, atol=1e-6)
    assert statistics["log_likelihood"] == pytest.approx(ref.llf, abs=1e-6)
    assert statistics["ll_null"] == pytest.approx(ref.llnull, abs=1e-6)
    assert statistics["pseudo_r2"] == pytest.approx(ref.prsquared, abs=1e-8)
    assert statistics["llr_p_value"] == pytest.approx(ref.llr_pvalue, rel=1e-4)
    assert statistics["aic"] == pytest.approx(ref.aic, abs=1e-6)


def test_penalised_logistic_information_matches_scikit_learns_objective():
    """The table's std errors assume sklearn minimises C*sum(logloss) + |w|^2/2: at its fit
    the gradient of sum(logloss) + |w|^2/(2C) must vanish."""
    data = load_table("breast_cancer", task="classification")
    model = make("logistic", C=0.3)
    fitted, _ = fit_model(model, data)
    est = fitted[-1].estimators_[0]
    X1 = np.column_stack([np.ones(len(data.train_X)), model.design(fitted, data.train_X)])
    beta = np.concatenate([est.intercept_, est.coef_[0]])
    p = 1 / (1 + np.exp(-X1 @ beta))
    grad = X1.T @ (data.train_y - p)
    grad[1:] -= est.coef_[0] / 0.3
    assert np.abs(grad).max() < 1e-6


def test_multiclass_logistic_has_one_table_block_per_class():
    model = make("logistic")
    data = load_table("iris", task="classification")
    fitted, _ = fit_model(model, data)
    tables, statistics, _ = model.summary(fitted, data)
    classes = [r[0] for r in tables["coefficients"]["rows"]]
    assert classes == [c for c in data.class_names for _ in range(1 + len(data.feature_names))]
    assert {f"{c}/pseudo_r2" for c in data.class_names} <= set(statistics)


def test_linear_regression_table_is_the_least_squares_fit():
    model = make("linear-regression")
    data = load_table("diabetes", task="regression")
    fitted, _ = fit_model(model, data)
    tables, statistics, _ = model.summary(fitted, data)
    rows = tables["coefficients"]["rows"]
    assert rows[0][1] == pytest.approx(fitted[-1].intercept_, abs=1e-6)
    assert np.allclose([r[1] for r in rows[1:]], fitted[-1].coef_, atol=1e-6)
    assert statistics["r_squared"] == pytest.approx(fitted.score(data.train_X, data.train_y))
    for term, est, se, t, p, lo, hi in rows:
        assert t == pytest.approx(est / se) and lo < est < hi and 0 <= p <= 1


# --- data ------------------------------------------------------------------------------------------
def test_digits_table_holds_out_the_same_180_images_as_the_image_families():
    table = load_table("digits", task="classification")
    images = load_data("digits")
    assert len(table.val_y) == 180 == len(images.val_labels)
    assert np.array_equal(table.val_y, images.val_labels)
    assert np.allclose(table.val_X / 16.0, images.val_images.reshape(180, 64))
    assert np.allclose(table.train_X / 16.0, images.train_images.reshape(-1, 64))


def test_csv_missing_values_text_columns_and_rows_without_target(tmp_path):
    path = tmp_path / "pets.csv"
    path.write_text("weight,colour,kind\n4.0,black,cat\n,white,dog\n30,,dog\n5,black,cat\n"
                    "28,white,dog\n3.5,black,\n6,ginger,cat\n25,black,dog\n4.5,white,cat\n"
                    "32,ginger,dog\n")
    data = load_table(f"csv:{path}", task="classification", target="kind")
    assert data.class_names == ["cat", "dog"] and data.dropped_rows == 1
    assert data.feature_names == ["weight", "colour=<missing>", "colour=black",
                                  "colour=ginger", "colour=white"]
    X = np.vstack([data.train_X, data.val_X])
    assert np.isfinite(X).all() and len(X) == 9
    assert set(np.unique(X[:, 1:])) == {0.0, 1.0}
    reg = load_table(f"csv:{path}", task="regression", target="weight")
    assert reg.task == "regression" and len(reg.train_y) + len(reg.val_y) == 9


@pytest.mark.parametrize("content,target,task,message", [
    ("a,b,label\n1,2,x\n3,4,y\n", "nope", "classification", "has no column 'nope'"),
    ("a,b,label\n1,2,x\n3,4,y\n", "", "classification", "needs a target column"),
    ("a,b,label\n1,2,x\n3,4,y\n", "label", "regression", "is not numeric"),
    ("", "label", "classification", "is empty"),
    ("a,b,label\n", "label", "classification", "no data rows"),
    ("a,label\n1,x\n2,x\n", "label", "classification", "single value"),
    ("label\nx\ny\n", "label", "classification", "only the target column"),
    ("a,b,label\n" + "".join(f"{i},{i},{i}.5\n" for i in range(150)), "label", "classification",
     "150 distinct values"),
    ("a,b,label\n" + "".join(f"{i},id{i},{i % 2}\n" for i in range(80)), "label",
     "classification", "text with 80 distinct values"),
])
def test_a_bad_csv_gets_a_one_line_error(tmp_path, content, target, task, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(StudioError, match=message) as caught:
        load_table(f"csv:{path}", task=task, target=target)
    assert "\n" not in str(caught.value)


def test_a_missing_csv_and_an_unknown_table():
    with pytest.raises(StudioError, match="does not exist"):
        load_table("csv:/no/such/file.csv", task="classification", target="y")
    with pytest.raises(StudioError, match="unknown table"):
        load_table("mnist", task="classification")


# --- the run folder -----------------------------------------------------------------------------
def test_studio_train_writes_a_finished_classic_run(tmp_path, capsys):
    assert get_entry("decision-tree").kind == "classic"
    code = main(["--runs-dir", str(tmp_path), "train", "decision-tree", "--data", "iris",
                 "--set", "max_depth=3", "--name", "tree"])
    assert code == 0, capsys.readouterr().err
    run = RunFolder(next(tmp_path.iterdir()))
    info = run.info()
    assert info["status"] == "done" and info["step"] == 1 and info["pipeline"] == "decision-tree"
    assert info["config"]["max_depth"] == 3 and info["data_info"]["class_names"][0] == "setosa"
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["metrics"] == info["eval"] and summary["statistics"]["depth"] == 3
    assert "| feature | importance |" in (run.path / "summary.md").read_text()
    assert sorted(p.name for p in (run.path / "plots").iterdir()) == [
        "boundary.png", "confusion.png", "tree.png"]
    assert run.metrics()[0]["val/accuracy"] == info["eval"]["accuracy"]
    assert not list(run.path.rglob("*.pkl")) and not run.weights_path.exists()
    # refit from run.json reproduces the stored numbers (nothing was pickled)
    model, fitted, data = refit(run)
    assert validation_metrics(fitted, data) == info["eval"]
    assert "validation: accuracy" in capsys.readouterr().out


def test_binary_and_regression_runs_get_their_plots(tmp_path, capsys):
    from pipelines.classic import fit_run
    binary = fit_run("logistic", "breast_cancer", runs_dir=tmp_path, name="b")
    assert (binary.path / "plots" / "roc.png").is_file()
    assert binary.info()["eval"]["roc_auc"] > 0.95
    regression = fit_run("linear-regression", "diabetes", runs_dir=tmp_path, name="r")
    assert sorted(p.name for p in (regression.path / "plots").iterdir()) == ["residuals.png"]
    assert not math.isnan(regression.info()["eval"]["r2"])
    assert main(["--runs-dir", str(tmp_path), "train", "svm-rbf", "--data", "diabetes"]) == 2
    assert "regression table" in capsys.readouterr().err
