"""The `dates` translation task: human-written dates -> ISO 8601, generated, never downloaded.

    make_dates() -> (train, val, held_out)     lists of (source, target) pairs

    "the 3rd of March, 1994" -> "1994-03-03"       "Thu 03 Mar 94" -> "1994-03-03"

Reading order: the words (months, weekdays, ordinals), the formats (18 for training, 4 held
out), then how the three parts are drawn.

The parts are drawn from disjoint sets of calendar days (every day from 1900-01-01 to
2099-12-31, shuffled once by DATES_SEED: 10% of the days for held_out, 10% for val, the rest
for train), so no validation string, and no validation date, is ever seen in training; val
uses the training formats, held_out only the four HELD_OUT_FORMATS. Weekday names are the
real weekday of the date (datetime). The seed is a constant, never the training seed, so every
run and every baseline sees the same pairs.

Two-digit years follow the POSIX (and Python `strptime("%y")`) window: 69-99 mean 1969-1999,
00-68 mean 2000-2068; a format with a two-digit year is only drawn for dates in that window,
so its target is always recoverable from its source. Torch-free.
"""

from __future__ import annotations

import datetime
from functools import lru_cache
from typing import Callable

import numpy as np

DATES_SEED = 19940303            # fixed: the same pairs for every run, whatever its seed
TRAIN_PAIRS, VAL_PAIRS, HELD_OUT_PAIRS = 20_000, 2_000, 2_000
FIRST_DAY, LAST_DAY = datetime.date(1900, 1, 1), datetime.date(2099, 12, 31)
TWO_DIGIT_WINDOW = (1969, 2068)  # POSIX %y: 69..99 -> 19xx, 00..68 -> 20xx
HELD_OUT_NAME = "formats never seen in training"

# Written out rather than strftime("%B"/"%a"), which follow the machine's locale.
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def ordinal(day: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _month(d: datetime.date) -> str:
    return MONTHS[d.month - 1]


def _mon(d: datetime.date) -> str:          # 'Mar'
    return MONTHS[d.month - 1][:3]


def _weekday(d: datetime.date) -> str:      # 'Thursday': the date's real weekday
    return WEEKDAYS[d.weekday()]


def _yy(d: datetime.date) -> str:           # '94' (only drawn inside TWO_DIGIT_WINDOW)
    return f"{d.year % 100:02d}"


# (example for 1994-03-03, writer, whether the year has two digits)
Format = tuple[str, Callable[[datetime.date], str], bool]
TRAINING_FORMATS: tuple[Format, ...] = (
    ("the 3rd of March, 1994", lambda d: f"the {ordinal(d.day)} of {_month(d)}, {d.year}", False),
    ("3/3/94", lambda d: f"{d.month}/{d.day}/{_yy(d)}", True),               # US order
    ("March 3 1994", lambda d: f"{_month(d)} {d.day} {d.year}", False),
    ("Thu 03 Mar 94", lambda d: f"{_weekday(d)[:3]} {d.day:02d} {_mon(d)} {_yy(d)}", True),
    ("03.03.1994", lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}", False),  # day first
    ("1994 March 3", lambda d: f"{d.year} {_month(d)} {d.day}", False),
    ("3 Mar 1994", lambda d: f"{d.day} {_mon(d)} {d.year}", False),
    ("March 3, 1994", lambda d: f"{_month(d)} {d.day}, {d.year}", False),
    ("Thursday, March 3, 1994",
     lambda d: f"{_weekday(d)}, {_month(d)} {d.day}, {d.year}", False),
    ("3 March 1994", lambda d: f"{d.day} {_month(d)} {d.year}", False),
    ("03/03/1994", lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}", False),  # US order
    ("Mar 3rd 1994", lambda d: f"{_mon(d)} {ordinal(d.day)} {d.year}", False),
    ("3rd March 1994", lambda d: f"{ordinal(d.day)} {_month(d)} {d.year}", False),
    ("Thursday 3 March 1994", lambda d: f"{_weekday(d)} {d.day} {_month(d)} {d.year}", False),
    ("1994/03/03", lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}", False),
    ("03-Mar-1994", lambda d: f"{d.day:02d}-{_mon(d)}-{d.year}", False),
    ("MARCH 3, 1994", lambda d: f"{_month(d).upper()} {d.day}, {d.year}", False),
    ("3.3.94", lambda d: f"{d.day}.{d.month}.{_yy(d)}", True),               # day first
)
# New arrangements of words and separators that training has (so no new characters): a
# model that learned to read dates, not to match templates, gets these right too.
HELD_OUT_FORMATS: tuple[Format, ...] = (
    ("Thu, 3 March 1994", lambda d: f"{_weekday(d)[:3]}, {d.day} {_month(d)} {d.year}", False),
    ("March the 3rd, 1994", lambda d: f"{_month(d)} the {ordinal(d.day)}, {d.year}", False),
    ("1994.03.03", lambda d: f"{d.year}.{d.month:02d}.{d.day:02d}", False),
    ("3 MAR 1994", lambda d: f"{d.day} {_mon(d).upper()} {d.year}", False),
)


@lru_cache(maxsize=1)
def make_dates() -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, val, held_out): TRAIN_PAIRS, VAL_PAIRS and HELD_OUT_PAIRS distinct pairs."""
    rng = np.random.default_rng(DATES_SEED)
    days = np.arange((LAST_DAY - FIRST_DAY).days + 1)
    rng.shuffle(days)
    tenth = len(days) // 10
    held_days, val_days, train_days = days[:tenth], days[tenth:2 * tenth], days[2 * tenth:]
    train = _draw(rng, train_days, TRAINING_FORMATS, TRAIN_PAIRS)
    val = _draw(rng, val_days, TRAINING_FORMATS, VAL_PAIRS)
    held_out = _draw(rng, held_days, HELD_OUT_FORMATS, HELD_OUT_PAIRS)
    return train, val, held_out


def _draw(rng: np.random.Generator, day_offsets: np.ndarray, formats: tuple[Format, ...],
          count: int) -> list[tuple[str, str]]:
    """`count` distinct (written, ISO) pairs: a format uniformly, then a day of this part that
    the format can write (two-digit years: inside TWO_DIGIT_WINDOW)."""
    dates = [FIRST_DAY + datetime.timedelta(days=int(i)) for i in day_offsets]
    low, high = TWO_DIGIT_WINDOW
    in_window = [d for d in dates if low <= d.year <= high]
    pairs: dict[str, str] = {}   # source -> target, in drawing order (dicts keep it)
    while len(pairs) < count:
        _, write, two_digit_year = formats[rng.integers(len(formats))]
        pool = in_window if two_digit_year else dates
        day = pool[rng.integers(len(pool))]
        pairs.setdefault(write(day), day.isoformat())
    return list(pairs.items())
