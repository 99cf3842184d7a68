"""Classic baselines for the language tasks, so every model's number has a reference measured
on the same split (scikit-learn; torch-free, a few seconds at most).

    tfidf_logistic_regression(train_texts, train_labels, val_texts, val_labels, analyzer)
        -> {"accuracy": ..., "macro_f1": ...}      text classification (shakespeare-lines, csv:)
    copy_digits_baseline(pairs) -> exact match     translation (dates, pairs:)

Measured on shakespeare-lines (the last 10% of each play; 5,364 training passages, 600
validation passages, 8 plays, chance 1/8), one CPU thread: word unigrams 60.2% accuracy
(about a second), character 2-5-grams 58.8% (7 to 11 seconds); with label=speaker (top 8
speakers, 1,224 / 141 passages) 51.1% and 56.7%. Moving a passage boundary by a line or two
moved these by up to 1.6 points: 600 validation passages measure to about +-2 points.
"""

from __future__ import annotations

import re
import warnings
from typing import Sequence

import numpy as np

from ..core.errors import StudioError

# TfidfVectorizer settings per analyzer: word unigrams; character 2- to 5-grams taken inside
# word boundaries (char_wb pads each word with spaces, so n-grams do not span two words), the
# usual strong classic baseline for short texts (scikit-learn's text classification guide).
ANALYZERS = {"word": {"analyzer": "word", "ngram_range": (1, 1)},
             "char": {"analyzer": "char_wb", "ngram_range": (2, 5)}}
# scikit-learn's default inverse regularisation strength, deliberately not tuned on the
# validation split (measured on shakespeare-lines: C from 1 to 30 moves play accuracy by
# under 1.5 points; speaker accuracy, on 141 passages, by up to 6: 56.7% word at C=10).
# lbfgs, multinomial; 1000 iterations is several times what these sets need (under 100).
LOGISTIC_C = 1.0
LOGISTIC_MAX_ITER = 1000
RANDOM_STATE = 0


def tfidf_logistic_regression(train_texts: Sequence[str], train_labels: np.ndarray,
                              val_texts: Sequence[str], val_labels: np.ndarray,
                              analyzer: str = "word") -> dict[str, float]:
    """TF-IDF features (fitted on the training texts only) into a logistic regression;
    accuracy and macro-averaged F1 on the validation texts."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    if analyzer not in ANALYZERS:
        raise StudioError(f"analyzer {analyzer!r} is not one of {', '.join(ANALYZERS)}")
    if len(val_texts) == 0:
        raise StudioError("there are no validation texts to measure the baseline on")
    # sublinear_tf: 1 + log(count), so a word repeated in a passage does not dominate it
    # (Manning et al., Introduction to Information Retrieval, 6.4.1).
    vectorizer = TfidfVectorizer(sublinear_tf=True, **ANALYZERS[analyzer])
    train_x = vectorizer.fit_transform(list(train_texts))   # (N, vocabulary) sparse
    val_x = vectorizer.transform(list(val_texts))           # (M, vocabulary)
    model = LogisticRegression(C=LOGISTIC_C, max_iter=LOGISTIC_MAX_ITER,
                               random_state=RANDOM_STATE)
    with warnings.catch_warnings():   # a baseline's convergence is no news to the user
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train_x, np.asarray(train_labels))
    predicted = model.predict(val_x)
    val_labels = np.asarray(val_labels)
    return {"accuracy": float(accuracy_score(val_labels, predicted)),
            "macro_f1": float(f1_score(val_labels, predicted, average="macro",
                                       zero_division=0))}


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def copy_digits(source: str) -> str:
    """The digits of `source` in the order written; exactly eight of them are laid out as
    YYYY-MM-DD, any other number of them is returned as it is. No knowledge of month names,
    field order or two-digit years: right only when the source already writes year, month
    and day in that order with zero padding ('1994/03/03', '1994.03.03')."""
    digits = "".join(c for c in source if c.isdigit())
    if len(digits) == 8:
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
    return digits


def copy_digits_baseline(pairs: Sequence[tuple[str, str]]) -> float:
    """Exact match (0..1) of a rule-free baseline on (source, target) pairs: `copy_digits`
    when every target is an ISO date (the dates task), else the source copied unchanged
    (for a user's pairs, the share of pairs whose target is their source)."""
    if len(pairs) == 0:
        raise StudioError("there are no pairs to measure the copy baseline on")
    dates = all(_ISO_DATE.match(target) for _, target in pairs)
    guess = copy_digits if dates else (lambda source: source)
    return float(np.mean([guess(source) == target for source, target in pairs]))
