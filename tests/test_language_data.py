"""The language data sets (pipelines/data/language.py, data/dates.py) and their classic
baselines (pipelines/metrics/text_baselines.py): shakespeare-lines by play and by speaker, the
generated dates with their held-out formats, a user's CSV and pairs file with every refusal,
and how run_setup.load_data_for hands a pipeline its data."""

from __future__ import annotations

import datetime
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from pipelines.core.errors import StudioError
from pipelines.data import language, load_data
from pipelines.data.dates import HELD_OUT_FORMATS, TRAINING_FORMATS, make_dates
from pipelines.data.language import (LabelledTextData, TextPairsData, load_labelled_text,
                                     load_text_pairs)
from pipelines.data.text import read_shakespeare
from pipelines.metrics.text_baselines import (copy_digits, copy_digits_baseline,
                                              tfidf_logistic_regression)

PLAYS = ["Coriolanus", "King Richard the Second", "King Richard III", "Romeo and Juliet",
         "The Winter's Tale", "Measure for Measure", "The Taming of the Shrew", "The Tempest"]


@pytest.fixture(scope="module")
def by_play() -> LabelledTextData:
    return load_labelled_text("shakespeare-lines")


@pytest.fixture(scope="module")
def dates() -> TextPairsData:
    return load_text_pairs("dates")


# --- shakespeare-lines ----------------------------------------------------------------------

def test_play_passages_are_split_at_the_end_of_each_play(by_play):
    assert by_play.kind == "labelled-text" and by_play.class_names == PLAYS
    assert by_play.train_labels.dtype == np.int64 and by_play.val_labels.dtype == np.int64
    assert len(by_play.train_texts) == len(by_play.train_labels) > 5000
    assert len(by_play.val_texts) == len(by_play.val_labels) > 500
    corpus = read_shakespeare()
    position, found, lines = 0, 0, 0
    for label, play in enumerate(language._plays()):
        train = [t for t, y in zip(by_play.train_texts, by_play.train_labels) if y == label]
        val = [t for t, y in zip(by_play.val_texts, by_play.val_labels) if y == label]
        # The play's spoken lines in fours, training first: the cut falls between passages.
        spoken = [text for _, text in play.lines]
        assert train + val == ["\n".join(spoken[i:i + 4]) for i in range(0, len(spoken) - 3, 4)]
        assert len(val) == math.ceil(0.1 * (len(train) + len(val)))
        # ...and in the corpus's own order: each line is found after the one before it (all
        # but the few whose inline [direction] or spacing was removed are found verbatim).
        position = corpus.index(PLAYS[label].upper(), position)
        for line in "\n".join(train + val).split("\n"):
            at = corpus.find(line, position)
            lines += 1
            if at >= 0:
                position, found = at + len(line), found + 1
    assert found > 0.98 * lines


def test_passages_are_four_spoken_lines_without_names_or_directions(by_play):
    speaker = re.compile(r"^[A-Z]{2}[A-Z' ,-]*\.?$|^(Juliet|Nurse|Lady Capulet|Mercutio|1 Watch)\.")
    for passage in by_play.train_texts + by_play.val_texts:
        lines = passage.split("\n")
        assert len(lines) == 4 and all(line and line == line.strip() for line in lines)
        assert not any(c in passage for c in "[]{}")
        assert not any(speaker.match(line) for line in lines), passage
        assert not re.search(r"\b(ACT|SCENE|Scene) [IVX\d]|William Shakespeare|PERSONS "
                             r"REPRESENTED|DRAMATIS PERSONAE", passage)
    assert "Now is the winter of our discontent" in "\n".join(by_play.train_texts)


def test_play_passages_are_deterministic(by_play):
    language._plays.cache_clear()
    again = load_labelled_text("shakespeare-lines")
    assert again.train_texts == by_play.train_texts and again.val_texts == by_play.val_texts
    assert np.array_equal(again.train_labels, by_play.train_labels)


def test_speaker_labels_hold_out_each_speakers_last_passages(by_play):
    data = load_labelled_text("shakespeare-lines", label="speaker")
    assert data.num_classes == 8 and data.class_names[0] == "Duke (Measure for Measure)"
    assert "Romeo (Romeo and Juliet)" in data.class_names
    for label in range(8):
        train = int((data.train_labels == label).sum())
        val = int((data.val_labels == label).sum())
        assert val == math.ceil(0.1 * (train + val)) >= 1
    three = load_labelled_text("shakespeare-lines", label="speaker", speakers=3)
    assert three.class_names == data.class_names[:3]
    with pytest.raises(StudioError, match="speakers=1 is not possible"):
        load_labelled_text("shakespeare-lines", label="speaker", speakers=1)
    with pytest.raises(StudioError, match="label=play or --set label=speaker"):
        load_labelled_text("shakespeare-lines", label="author")


# --- dates ----------------------------------------------------------------------------------

def _parse(source: str) -> set[datetime.date]:
    """Every date the standard library reads `source` as (ordinal suffixes dropped), by the
    formats' strptime patterns; %y has the same 1969-2068 window as the task."""
    plain = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", source)
    patterns = ("the %d of %B, %Y", "%m/%d/%y", "%B %d %Y", "%a %d %b %y", "%d.%m.%Y",
                "%Y %B %d", "%d %b %Y", "%B %d, %Y", "%A, %B %d, %Y", "%d %B %Y", "%m/%d/%Y",
                "%b %d %Y", "%A %d %B %Y", "%Y/%m/%d", "%d-%b-%Y", "%d.%m.%y",
                "%a, %d %B %Y", "%B the %d, %Y", "%Y.%m.%d")
    found = set()
    for pattern in patterns:
        try:
            found.add(datetime.datetime.strptime(plain, pattern).date())
        except ValueError:
            pass
    return found


def test_dates_are_read_the_one_way_the_calendar_allows(dates):
    assert (len(dates.train_pairs), len(dates.val_pairs), len(dates.held_out)) == (
        20_000, 2_000, 2_000)
    assert len(TRAINING_FORMATS) >= 15 and dates.held_out_name == "formats never seen in training"
    weekdays = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    # All of val and held_out, a tenth of train (strptime is slow: 19 patterns a pair).
    for source, target in dates.train_pairs[::10] + dates.val_pairs + dates.held_out:
        day = datetime.date.fromisoformat(target)
        assert _parse(source) == {day}, source   # one reading only, and the right one
        assert len(source) <= 40 and datetime.date(1900, 1, 1) <= day <= datetime.date(2099, 12, 31)
        named = [w for w in weekdays if w[:3] in source]
        assert named in ([], [weekdays[day.weekday()]]), source   # the real weekday


def test_held_out_formats_never_appear_in_training_and_val_dates_are_new(dates):
    held_out_shapes = [re.compile(p) for p in (
        r"^[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]+ \d{4}$", r"^[A-Z][a-z]+ the \d{1,2}(st|nd|rd|th), "
        r"\d{4}$", r"^\d{4}\.\d{2}\.\d{2}$", r"^\d{1,2} [A-Z]{3} \d{4}$")]
    assert len(held_out_shapes) == len(HELD_OUT_FORMATS)
    assert all(any(s.match(src) for s in held_out_shapes) for src, _ in dates.held_out)
    assert not any(s.match(src) for s in held_out_shapes
                   for src, _ in dates.train_pairs + dates.val_pairs)
    train_sources = {s for s, _ in dates.train_pairs}
    train_days = {t for _, t in dates.train_pairs}
    assert not any(s in train_sources for s, _ in dates.val_pairs + dates.held_out)
    assert not any(t in train_days for _, t in dates.val_pairs + dates.held_out)
    assert len(train_sources) == len(dates.train_pairs)   # no duplicates
    make_dates.cache_clear()
    assert load_text_pairs("dates").train_pairs == dates.train_pairs   # same pairs every time


# --- a user's CSV ---------------------------------------------------------------------------

def _csv(tmp_path, text: str, name: str = "reviews.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_is_split_stratified_by_label(tmp_path):
    rows = "".join(f"passage number {i} about {'cats' if i % 2 else 'dogs'},"
                   f"{'cat' if i % 2 else 'dog'}\n" for i in range(40))
    path = _csv(tmp_path, "text,label\n" + rows + ",dog\n")   # a row without text: dropped
    data = load_labelled_text(f"csv:{path}")
    assert data.class_names == ["cat", "dog"] and data.name == f"csv:{path}"
    assert (len(data.train_texts), len(data.val_texts)) == (36, 4)
    assert sorted(data.val_labels.tolist()) == [0, 0, 1, 1]
    assert all(("cats" in t) == (y == 0) for t, y in zip(data.train_texts, data.train_labels))
    three = _csv(tmp_path, "review,stars,source\n" + "good,5,web\nbad,1,web\n" * 5, "b.csv")
    data = load_labelled_text(f"csv:{three}", text_column="review", target_column="stars")
    assert data.class_names == ["1", "5"] and len(data.val_texts) == 1   # 10% of 10 rows


@pytest.mark.parametrize("content, options, message", [
    ("text,label\nhello,a\n", {"text_column": "body"},
     r"no text column 'body'; its columns are 'text', 'label'"),
    ("text,label\nhello,a\n", {"target_column": "class"},
     r"no label column 'class'; its columns are 'text', 'label'"),
    ("text,label,source\nhello,a,x\n", {}, r"columns 'text', 'label', 'source'; name the label"),
    ("text,label\n" + "a line,x\n" * 3 + "another,y\n", {},
     r"label 'y' .* has only one example; .* add examples or remove those rows"),
    ("text,label\n" + "a line,x\n" * 3, {}, r"a single label \('x'\)"),
    ("text,label\n,x\n  ,y\n", {}, r"no row with both a 'text' text and a 'label' label"),
    ("", {}, r"is empty; it needs a header row"),
    ("text,label\n" + "".join(f"t{i},c{i}\nu{i},c{i}\n" for i in range(101)), {},
     r"101 distinct labels; a classifier takes at most 100"),
])
def test_a_bad_csv_is_refused_with_what_to_do(tmp_path, content, options, message):
    path = _csv(tmp_path, content)
    with pytest.raises(StudioError, match=message):
        load_labelled_text(f"csv:{path}", **options)


def test_a_missing_or_wrong_csv_is_refused(tmp_path):
    with pytest.raises(StudioError, match="does not exist; check the path"):
        load_labelled_text(f"csv:{tmp_path / 'none.csv'}")
    with pytest.raises(StudioError, match="is not a file"):
        load_labelled_text(f"csv:{tmp_path}")
    path = _csv(tmp_path, "text,label\nhi,a\nho,a\nhu,b\nha,b\n")
    with pytest.raises(StudioError, match="only applies to shakespeare-lines"):
        load_labelled_text(f"csv:{path}", label="speaker")
    with pytest.raises(StudioError, match="not labelled text; .* shakespeare-lines or csv:PATH"):
        load_labelled_text("digits")


def test_a_csv_over_the_size_limit_is_refused_before_reading(tmp_path, monkeypatch):
    from pipelines.core import limits
    path = _csv(tmp_path, "text,label\nhi,a\nho,a\nhu,b\nha,b\n")
    monkeypatch.setattr(limits, "MAX_TABLE_BYTES", 10)
    with pytest.raises(StudioError, match="it may be at most 10 bytes"):
        load_labelled_text(f"csv:{path}")


# --- a user's pairs file --------------------------------------------------------------------

def test_a_pairs_file_is_split_by_a_seeded_tenth(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"word {i}\tmot {i}\n" for i in range(30)) + "\n", encoding="utf-8")
    data = load_data(f"pairs:{path}")
    assert isinstance(data, TextPairsData) and data.kind == "text-pairs"
    assert (len(data.train_pairs), len(data.val_pairs), data.held_out) == (27, 3, [])
    assert sorted(data.train_pairs + data.val_pairs) == sorted(
        (f"word {i}", f"mot {i}") for i in range(30))
    assert load_text_pairs(f"pairs:{path}").val_pairs == data.val_pairs


@pytest.mark.parametrize("content, message", [
    ("", r"holds 0 pair\(s\); at least 2"),
    ("\n\n", r"holds 0 pair\(s\); at least 2"),
    ("a\tb\nc\td\nno tab here\n", r"line 3 of .* has no tab \('no tab here'\); every line"),
    ("a\tb\tc\n", r"line 1 of .* has 2 tabs"),
    ("a\tb\nc\t \n", r"line 2 of .* has an empty target"),
])
def test_a_bad_pairs_file_is_refused_with_the_line(tmp_path, content, message):
    path = tmp_path / "pairs.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StudioError, match=message):
        load_text_pairs(f"pairs:{path}")


def test_a_missing_or_binary_pairs_file_is_refused(tmp_path):
    with pytest.raises(StudioError, match="does not exist"):
        load_text_pairs(f"pairs:{tmp_path / 'none.tsv'}")
    path = tmp_path / "pairs.tsv"
    path.write_bytes(b"\xff\xfe\x00a\tb\n")
    with pytest.raises(StudioError, match="not valid UTF-8"):
        load_text_pairs(f"pairs:{path}")
    with pytest.raises(StudioError, match="not a set of text pairs; .* dates or pairs:PATH"):
        load_text_pairs("shakespeare")


# --- the baselines --------------------------------------------------------------------------

def test_tfidf_logistic_regression_is_far_above_chance(by_play):
    scores = tfidf_logistic_regression(by_play.train_texts, by_play.train_labels,
                                       by_play.val_texts, by_play.val_labels, analyzer="word")
    assert 0.45 < scores["accuracy"] < 0.8 and 0.4 < scores["macro_f1"] < 0.8   # chance: 1/8
    with pytest.raises(StudioError, match="analyzer 'bigram' is not one of word, char"):
        tfidf_logistic_regression(["a"], np.array([0]), ["a"], np.array([0]), "bigram")


def test_copy_digits_is_a_weak_but_honest_reference(dates):
    assert copy_digits("1994/03/03") == "1994-03-03"
    assert copy_digits("03.03.1994") == "0303-19-94" and copy_digits("3/3/94") == "3394"
    val, held_out = copy_digits_baseline(dates.val_pairs), copy_digits_baseline(dates.held_out)
    assert 0 < val < 0.2 and 0 < held_out < 0.5   # right only for year-month-day sources
    assert copy_digits_baseline([("abc", "abc"), ("abc", "xyz")]) == 0.5   # not dates: copy


# --- wiring ---------------------------------------------------------------------------------

def test_load_data_for_passes_the_configs_options_to_the_loader():
    from pipelines.core.run_setup import load_data_for

    def pipeline(kind):
        return type("Fake", (), {"name": "fake", "data_kind": kind})

    by_speaker = load_data_for(pipeline("labelled-text"),
                               SimpleNamespace(label="speaker", speakers=3), "shakespeare-lines")
    assert by_speaker.num_classes == 3
    assert load_data_for(pipeline("labelled-text"), object(),
                         "shakespeare-lines").class_names == PLAYS
    assert load_data_for(pipeline("text-pairs"), object(), "dates").held_out
    with pytest.raises(StudioError, match="needs text data, but 'dates' is text-pairs data"):
        load_data_for(pipeline("text"), object(), "dates")
    assert load_data("shakespeare-lines").kind == "labelled-text"


def test_data_info_describes_both_kinds(by_play, dates):
    from pipelines.core.base import data_info
    assert data_info(by_play) == {
        "name": "shakespeare-lines", "kind": "labelled-text", "num_classes": 8,
        "class_names": PLAYS, "train_texts": len(by_play.train_texts),
        "val_texts": len(by_play.val_texts)}
    assert data_info(dates) == {"name": "dates", "kind": "text-pairs", "train_pairs": 20_000,
                                "val_pairs": 2_000, "held_out_pairs": 2_000,
                                "held_out_name": "formats never seen in training"}
