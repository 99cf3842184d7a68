"""The classic models' pictures, as PNG bytes (matplotlib's Agg backend: no display needed).

    confusion_png     counts of (true, predicted) class on the validation split
    roc_png           binary tasks: the ROC curve of the positive class's score, with its AUC
    residuals_png     regression: residual against fitted value, and predicted against true
    boundary_png      a model of the same kind refit on two features (or two principal
                      components), its decision regions over a grid, the training points on top
    tree_png          the top levels of a fitted decision tree (sklearn.tree.plot_tree)
    importances_png   a horizontal bar per feature (the most important first)
"""

from __future__ import annotations

import io

import numpy as np


def _figure(width: float = 5.0, height: float = 4.5):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=(width, height), dpi=100)


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def confusion_png(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str],
                  title: str = "confusion matrix (validation)") -> bytes:
    from sklearn.metrics import confusion_matrix
    k = len(class_names)
    counts = confusion_matrix(y_true, y_pred, labels=list(range(k)))
    fig, ax = _figure(1.2 + 0.45 * max(k, 4), 1.0 + 0.45 * max(k, 4))
    ax.imshow(counts, cmap="Blues")
    for (i, j), v in np.ndenumerate(counts):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > counts.max() / 2 else "black")
    ax.set_xticks(range(k), class_names, rotation=90 if k > 6 else 0, fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: {np.trace(counts)}/{counts.sum()} right", fontsize=9)
    return _png(fig)


def roc_png(y_true: np.ndarray, scores: np.ndarray, positive: str) -> bytes:
    from sklearn.metrics import roc_auc_score, roc_curve
    fpr, tpr, _ = roc_curve(y_true, scores)
    fig, ax = _figure()
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(y_true, scores):.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC (validation), positive class {positive}", fontsize=9)
    ax.legend(loc="lower right")
    return _png(fig)


def residuals_png(y_true: np.ndarray, y_pred: np.ndarray) -> bytes:
    fig, (a, b) = _subplots_pair()
    a.scatter(y_pred, y_true - y_pred, s=10)
    a.axhline(0, color="grey", linestyle="--")
    a.set_xlabel("fitted")
    a.set_ylabel("residual (true - fitted)")
    a.set_title("residuals (validation)", fontsize=9)
    b.scatter(y_true, y_pred, s=10)
    lo, hi = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    b.plot([lo, hi], [lo, hi], "--", color="grey")
    b.set_xlabel("true")
    b.set_ylabel("predicted")
    b.set_title("predicted vs true (validation)", fontsize=9)
    return _png(fig)


def _subplots_pair():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(1, 2, figsize=(9.0, 4.0), dpi=100)


def boundary_png(model, X2: np.ndarray, y: np.ndarray, axes: tuple[str, str],
                 class_names: list[str], title: str) -> bytes:
    """`model`: an unfitted estimator of the same kind; it is fit here on the 2-D points."""
    model.fit(X2, y)
    pad = 0.5
    (x0, y0), (x1, y1) = X2.min(0) - pad, X2.max(0) + pad
    gx, gy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    regions = model.predict(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    k = len(class_names)
    fig, ax = _figure(5.5, 4.5)
    cmap = "tab10" if k <= 10 else "tab20"
    ax.contourf(gx, gy, regions, levels=np.arange(k + 1) - 0.5, cmap=cmap, alpha=0.3,
                vmin=-0.5, vmax=(9.5 if k <= 10 else 19.5))
    points = ax.scatter(X2[:, 0], X2[:, 1], c=y, cmap=cmap, s=9, edgecolors="k", linewidths=0.2,
                        vmin=-0.5, vmax=(9.5 if k <= 10 else 19.5))
    if k <= 20:
        handles = [ax.scatter([], [], color=points.cmap(points.norm(i)), s=12) for i in range(k)]
        ax.legend(handles, class_names, fontsize=7, loc="best", markerscale=1.2)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title, fontsize=9)
    return _png(fig)


def tree_png(tree, feature_names: list[str], class_names: list[str], depth: int) -> bytes:
    from sklearn.tree import plot_tree
    fig, ax = _figure(min(4 + 3 * 2 ** depth, 30), 2.5 + 1.6 * depth)
    plot_tree(tree, max_depth=depth, feature_names=feature_names, class_names=class_names,
              filled=True, impurity=False, proportion=False, fontsize=7, ax=ax)
    ax.set_title(f"decision tree: the top {depth} levels of {tree.get_depth()}", fontsize=9)
    return _png(fig)


def importances_png(names: list[str], values: np.ndarray, errors: np.ndarray | None,
                    top: int = 20) -> bytes:
    order = np.argsort(values)[::-1][:top][::-1]               # largest at the top
    fig, ax = _figure(6.0, 1.2 + 0.25 * len(order))
    ax.barh([names[i] for i in order], values[order],
            xerr=None if errors is None else errors[order], color="tab:blue")
    ax.set_xlabel("mean decrease in impurity")
    ax.set_title(f"feature importances (top {len(order)})", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    return _png(fig)
