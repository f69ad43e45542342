"""Real data for the course, loaded without a network, with where each comes from and its terms.

**Series.** :func:`load_series` returns a :class:`Series`: the values as a 1-D float64 array
``(T,)`` and what the time axis means (``time``, ``unit``, ``freq``). It knows three series
that ship with statsmodels and one that ships with pmdarima (dependencies of the ``course``
extra), and reads a user's own CSV or text file, so a chapter that runs on a built-in series
runs unchanged on a real corpus:

- ``"sunspots"``: yearly mean sunspot numbers, 1700-2008 (T = 309), statsmodels'
  ``datasets.sunspots`` (public domain);
- ``"co2"``: weekly atmospheric CO2 at Mauna Loa, Hawaii, in ppmv, from 1958-03-29 to
  2001-12-29 (T = 2284), statsmodels' ``datasets.co2`` (public domain). 59 weeks have no
  measurement; they are filled by linear interpolation in time (see :func:`load_series`);
- ``"co2_monthly"``: the same measurements as monthly means (T = 526, 1958-03 to 2001-12);
  5 months without a single measured week are filled by linear interpolation;
- ``"taylor"``: half-hourly electricity demand of England and Wales in MW, Monday 5 June to
  Sunday 27 August 2000 (T = 4032), discussed in Taylor (2003), "Short-term electricity demand
  forecasting using double seasonal exponential smoothing", J. Oper. Res. Soc. 54, 799-805;
  provided by James W. Taylor and shipped in pmdarima's wheel (``datasets.load_taylor``;
  pmdarima is MIT-licensed; the series is also R's ``forecast::taylor``);
- a path: a CSV or whitespace-separated text file with one numeric column, or a header row and
  a ``column`` to pick.

Example::

    from rnn_ref.datasets import load_series
    s = load_series("sunspots")
    s.values[:3], s.time[:3], s.unit      # array([ 5., 11., 16.]), array([1700., ...]), ...

**Text.** :func:`load_text` returns a corpus as one string: ``"pydoc_topics"``, the English help
texts that ship with Python itself (``pydoc_data.topics``, ~465,000 characters; part of CPython's
documentation, Python Software Foundation License), or a user's UTF-8 text file.
:func:`load_words` returns words labelled with their language from wordfreq's word lists
(Robyn Speer, *rspeer/wordfreq: v3.0*, Zenodo 2022, doi:10.5281/zenodo.7199437; the word
lists are licensed CC BY-SA 4.0 and derive from Wikipedia, OpenSubtitles, news, books, web
text, Twitter and Reddit; the code is Apache-2.0), or from a user's ``word<TAB>label`` file.
Nothing from either is copied into this repository: both are read from the installed packages.

**Generated.** :func:`toy_dates` (ch09_seq2seq) generates a date-translation task locally.

**Speech.** :func:`load_spoken_digits` returns a :class:`SpokenDigits` (ch13_speech): the Free
Spoken Digit Dataset (Z. Jackson et al., CC BY-SA 4.0; 3,000 real recordings, shipped as a
lossless compact copy in ``rnn_ref/data/fsdd/``), a synthetic set spoken by espeak-ng and flite
voices (``rnn_ref/data/synth_digits/``, CC0), or a user's folder of WAV files named
``{digit}_{speaker}_{index}.wav``.
"""

from __future__ import annotations

import csv
import difflib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Series", "load_series", "BUILTIN"]


@dataclass(frozen=True, eq=False)
class Series:
    """A univariate series and what its time axis means.

    Attributes:
        values: (T,) float64, no NaN.
        time: (T,) the time of each value: calendar years as floats for ``"sunspots"``,
            ``datetime64[D]`` dates for ``"co2"``, the file's time column if one was named,
            else the step index ``0, ..., T - 1``.
        name: the built-in name, or the file's name (and column).
        unit: the unit of ``values`` (``"ppmv"``, ...; ``""`` if unknown).
        freq: the spacing of ``time`` in words (``"yearly"``, ``"weekly"``; ``""`` if unknown).
        filled: (T,) bool, True where a missing value was filled by interpolation.
        source: where the data come from.
    """

    values: np.ndarray
    time: np.ndarray
    name: str
    unit: str = ""
    freq: str = ""
    filled: np.ndarray = field(default=None, repr=False)
    source: str = ""

    def __post_init__(self):
        if self.filled is None:
            object.__setattr__(self, "filled", np.zeros(self.values.shape, dtype=bool))

    def __len__(self) -> int:
        return int(self.values.shape[0])


def _statsmodels_dataset(name: str):
    """``statsmodels.datasets.<name>``, imported only when a built-in series is asked for."""
    try:
        import importlib

        return importlib.import_module(f"statsmodels.datasets.{name}")
    except ImportError as e:
        raise ImportError(
            f"the built-in series {name!r} ships with statsmodels, which is not installed "
            "(pip install statsmodels, or install this package with its 'course' extra: "
            "pip install -e '.[course]')"
        ) from e


def _interpolate(values: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill NaNs by linear interpolation in ``t`` between the nearest measured neighbours."""
    missing = np.isnan(values)
    if missing.all():
        raise ValueError("every value is missing (NaN): nothing to interpolate from")
    if missing[0] or missing[-1]:
        # Interpolation needs a neighbour on each side; extrapolating would invent data.
        end = "first" if missing[0] else "last"
        raise ValueError(f"the {end} value is missing (NaN): it cannot be interpolated")
    out = values.copy()
    out[missing] = np.interp(t[missing], t[~missing], values[~missing])
    return out, missing


def _sunspots() -> Series:
    frame = _statsmodels_dataset("sunspots").load_pandas().data
    return Series(
        values=frame["SUNACTIVITY"].to_numpy(dtype=np.float64).copy(),
        time=frame["YEAR"].to_numpy(dtype=np.float64).copy(),
        name="sunspots",
        unit="sunspot number (yearly mean)",
        freq="yearly",
        source="statsmodels.datasets.sunspots: yearly mean sunspot numbers, 1700-2008",
    )


def _co2() -> Series:
    frame = _statsmodels_dataset("co2").load_pandas().data
    time = frame.index.to_numpy().astype("datetime64[D]")
    values = frame["co2"].to_numpy(dtype=np.float64).copy()
    days = time.astype(np.int64).astype(np.float64)
    values, filled = _interpolate(values, days)
    return Series(
        values=values,
        time=time,
        name="co2",
        unit="ppmv",
        freq="weekly",
        filled=filled,
        source=(
            "statsmodels.datasets.co2: weekly atmospheric CO2 at Mauna Loa, 1958-2001; "
            f"{int(filled.sum())} missing weeks filled by linear interpolation"
        ),
    )


def _co2_monthly() -> Series:
    frame = _statsmodels_dataset("co2").load_pandas().data
    # Monthly means of the weeks that were measured (NaN weeks are skipped by the mean, not
    # filled first); a month with no measured week at all is missing, and is then filled by
    # linear interpolation in time like the weekly gaps.
    monthly = frame["co2"].resample("MS").mean()
    time = monthly.index.to_numpy().astype("datetime64[M]")
    values = monthly.to_numpy(dtype=np.float64).copy()
    values, filled = _interpolate(values, time.astype(np.int64).astype(np.float64))
    return Series(
        values=values,
        time=time,
        name="co2_monthly",
        unit="ppmv",
        freq="monthly",
        filled=filled,
        source=(
            "statsmodels.datasets.co2: monthly means of the weekly Mauna Loa CO2 measurements, "
            f"1958-03 to 2001-12; {int(filled.sum())} months without any measured week filled "
            "by linear interpolation"
        ),
    )


def _taylor() -> Series:
    try:
        from pmdarima.datasets import load_taylor
    except ImportError as e:
        raise ImportError(
            "the built-in series 'taylor' ships with pmdarima, which is not installed "
            "(pip install pmdarima, or install this package with its 'course' extra: "
            "pip install -e '.[course]')"
        ) from e
    values = np.asarray(load_taylor(), dtype=np.float64).copy()
    # Monday 5 June 2000, 00:00 (the first half hour), every 30 minutes for 12 weeks.
    time = np.datetime64("2000-06-05T00:00", "m") + np.arange(values.size) * np.timedelta64(30, "m")
    return Series(
        values=values,
        time=time,
        name="taylor",
        unit="MW",
        freq="half-hourly",
        source=(
            "pmdarima.datasets.load_taylor: half-hourly electricity demand in England and "
            "Wales, Monday 5 June to Sunday 27 August 2000 (Taylor 2003)"
        ),
    )


BUILTIN = {
    "sunspots": _sunspots,
    "co2": _co2,
    "co2_monthly": _co2_monthly,
    "taylor": _taylor,
}


def load_series(
    name_or_path,
    column: str | int | None = None,
    *,
    time_column: str | int | None = None,
    delimiter: str | None = None,
    fill_missing: bool = False,
    unit: str = "",
    freq: str = "",
) -> Series:
    """Load a built-in series by name, or a univariate series from a CSV/text file.

    Built-in names (no network; statsmodels is imported here, lazily):

    - ``"sunspots"``: T = 309 yearly values, 1700-2008; ``time`` holds the years (float).
    - ``"co2"``: T = 2284 weekly values in ppmv; ``time`` holds the dates (``datetime64[D]``,
      each a Saturday). The raw data have 59 missing weeks (NaN), among them a gap of 18
      consecutive weeks in 1964. They are **filled by linear interpolation in time** between
      the nearest measured weeks; ``Series.filled`` marks them. A forecast evaluated on the
      filled weeks is partly evaluated on interpolated, not measured, values.
    - ``"co2_monthly"``: T = 526 monthly values in ppmv, March 1958 to December 2001; ``time``
      holds the months (``datetime64[M]``). Each is the mean of that month's *measured* weeks;
      the 5 months with no measured week (1958-06, 1958-10, 1964-02 to 1964-04) are filled by
      linear interpolation in time and marked in ``Series.filled``.
    - ``"taylor"``: T = 4032 half-hourly values in MW, the electricity demand of England and
      Wales from Monday 5 June 2000, 00:00, to Sunday 27 August 2000, 23:30 (12 weeks; daily
      period 48, weekly period 336); ``time`` holds the start of each half hour
      (``datetime64[m]``). It ships with pmdarima (``pmdarima.datasets.load_taylor``).

    A built-in name wins over a file of the same name in the current folder (write ``./co2``
    for the file). In a file, ``#`` starts a comment line; blank lines are skipped; the
    delimiter is guessed (comma, tab, semicolon, else whitespace) unless given. If the first
    row is not numeric it is a header, and ``column`` (a name, or a 0-based index) picks the
    column; a file with a single column needs no ``column``. ``time_column`` optionally names
    the column to use as ``time`` (kept as strings unless numeric).

    Args:
        name_or_path: a built-in name, or a path (``str`` or ``pathlib.Path``).
        column: which column of a file holds the values.
        time_column: which column of a file holds the times.
        delimiter: the file's delimiter, if the guess is wrong.
        fill_missing: for a file, fill empty/``nan`` cells by linear interpolation (in the
            time column if it is numeric and increasing, else in the row order) instead of
            raising; a missing first or last value still raises (nothing to interpolate from).
        unit, freq: recorded in the result for a file (a file does not say them).

    Returns:
        a :class:`Series` with ``values`` (T,) float64 and no NaN.

    Raises:
        ValueError: an unknown name; a non-numeric value (the message gives the line); a missing
            value without ``fill_missing``; an ambiguous or unknown column; an empty file.
        FileNotFoundError: a path that does not exist.
        ImportError: a built-in series without statsmodels installed.
    """
    if isinstance(name_or_path, str) and name_or_path.strip().lower() in BUILTIN:
        return BUILTIN[name_or_path.strip().lower()]()
    if not isinstance(name_or_path, str | Path):
        raise TypeError(f"load_series takes a name or a path, got {type(name_or_path).__name__}")
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return _load_file(path, column, time_column, delimiter, fill_missing, unit, freq)
    looks_like_path = isinstance(name_or_path, Path) or any(
        ch in str(name_or_path) for ch in ("/", "\\", ".")
    )
    if looks_like_path:
        where = "a folder, not a file" if path.is_dir() else "no such file"
        raise FileNotFoundError(f"cannot read {str(path)!r}: {where}")
    known = ", ".join(repr(k) for k in sorted(BUILTIN))
    close = difflib.get_close_matches(str(name_or_path).lower(), BUILTIN, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown series {name_or_path!r}: the built-in series are {known}, or give the path "
        f"of a CSV or text file.{hint}"
    )


def _guess_delimiter(line: str) -> str | None:
    for d in (",", "\t", ";"):
        if d in line:
            return d
    return None  # whitespace


def _split_rows(text: str, delimiter: str | None) -> tuple[list[list[str]], list[int]]:
    """Rows of fields (stripped) and their 1-based line numbers, comments and blanks skipped."""
    lines = [
        (i, line)
        for i, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        return [], []
    if delimiter is None:
        delimiter = _guess_delimiter(lines[0][1])
    numbers = [i for i, _ in lines]
    if delimiter is None:
        return [line.split() for _, line in lines], numbers
    reader = csv.reader(io.StringIO("\n".join(line for _, line in lines)), delimiter=delimiter)
    return [[f.strip() for f in row] for row in reader], numbers


_MISSING = {"", "nan", "na", "n/a", "null", "none", "?"}


def _number(text: str) -> float | None:
    """The float in ``text``, NaN for an empty/missing marker, None if it is not a number."""
    if text.strip().lower() in _MISSING:
        return float("nan")
    try:
        return float(text)
    except ValueError:
        return None


def _column_index(which, header: list[str] | None, n_cols: int, what: str) -> int:
    if isinstance(which, bool) or not isinstance(which, str | int):
        raise TypeError(f"{what} must be a column name or a 0-based index, got {which!r}")
    if isinstance(which, int):
        if not -n_cols <= which < n_cols:
            raise ValueError(f"{what}={which} is out of range: the file has {n_cols} columns")
        return which % n_cols
    if header is None:
        raise ValueError(
            f"{what}={which!r} names a column, but the file has no header row: "
            "give a 0-based index instead"
        )
    if which not in header:
        raise ValueError(f"no column {which!r} in the file; its columns are {header}")
    return header.index(which)


def _load_file(path, column, time_column, delimiter, fill_missing, unit, freq) -> Series:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text file (it is not valid UTF-8)") from e
    rows, line_no = _split_rows(text, delimiter)
    if not rows:
        raise ValueError(f"{path}: the file holds no data (only blank or comment lines)")
    header = None
    if any(_number(f) is None for f in rows[0]):
        header, rows, line_no = rows[0], rows[1:], line_no[1:]
        if not rows:
            raise ValueError(f"{path}: the file has a header row but no data rows")
    n_cols = len(header) if header is not None else len(rows[0])
    for row, ln in zip(rows, line_no, strict=True):
        if len(row) != n_cols:
            raise ValueError(f"{path}, line {ln}: {len(row)} fields, expected {n_cols}")
    if column is None:
        if n_cols != 1:
            names = f" ({', '.join(header)})" if header is not None else ""
            raise ValueError(
                f"{path} has {n_cols} columns{names}: pass column=<name or 0-based index> "
                "to say which one holds the series"
            )
        col = 0
    else:
        col = _column_index(column, header, n_cols, "column")
    label = header[col] if header is not None else f"column {col}"

    values = np.empty(len(rows), dtype=np.float64)
    for k, (row, ln) in enumerate(zip(rows, line_no, strict=True)):
        v = _number(row[col])
        if v is None:
            raise ValueError(f"{path}, line {ln}: {row[col]!r} in column {label!r} is not a number")
        values[k] = v
    if np.isinf(values).any():
        k = int(np.flatnonzero(np.isinf(values))[0])
        raise ValueError(f"{path}, line {line_no[k]}: column {label!r} holds an infinite value")

    time = np.arange(len(rows), dtype=np.float64)
    if time_column is not None:
        tcol = _column_index(time_column, header, n_cols, "time_column")
        raw = [row[tcol] for row in rows]
        parsed = [_number(r) for r in raw]
        numeric = all(p is not None and not np.isnan(p) for p in parsed)
        time = np.array(parsed, dtype=np.float64) if numeric else np.array(raw)

    filled = np.isnan(values)
    if filled.any():
        if not fill_missing:
            k = np.flatnonzero(filled)
            lines = ", ".join(str(line_no[i]) for i in k[:5]) + (", ..." if k.size > 5 else "")
            raise ValueError(
                f"{path}: column {label!r} has {k.size} missing value(s) (NaN or empty) on "
                f"line(s) {lines}; fill or drop them, or pass fill_missing=True to interpolate"
            )
        increasing = time.dtype == np.float64 and bool(np.all(np.diff(time) > 0))
        t = time if increasing else np.arange(len(rows), dtype=np.float64)
        try:
            values, filled = _interpolate(values, t)
        except ValueError as e:
            raise ValueError(f"{path}: column {label!r}: {e}") from None
    name = path.name if header is None and n_cols == 1 else f"{path.name}:{label}"
    return Series(
        values=values,
        time=time,
        name=name,
        unit=unit,
        freq=freq,
        filled=filled,
        source=f"file {path}",
    )


# ---------------------------------------------------------------------------------------------
# ch09_seq2seq: a toy translation task (human-readable dates -> ISO dates), generated locally.
# ---------------------------------------------------------------------------------------------

import datetime as _dt  # noqa: E402

__all__ += [
    "DATE_FORMATS",
    "format_date",
    "toy_dates",
    "CharVocab",
    "date_vocab",
    "pad_sequences",
]

_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
DATE_RANGE = (_dt.date(1950, 1, 1), _dt.date(2049, 12, 31))


def _fmt_d_month_y(d):  # "22 November 2026"
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def _fmt_mon_d_y(d):  # "Nov 22, 2026"
    return f"{_MONTHS[d.month - 1][:3]} {d.day}, {d.year}"


def _fmt_month_d_y(d):  # "November 22, 2026"
    return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"


def _fmt_weekday_d_mon_y(d):  # "sunday, 22 nov 2026"
    return f"{_WEEKDAYS[d.weekday()].lower()}, {d.day} {_MONTHS[d.month - 1][:3].lower()} {d.year}"


def _fmt_d_mon_y_upper(d):  # "22 NOV 2026"
    return f"{d.day:02d} {_MONTHS[d.month - 1][:3].upper()} {d.year}"


def _fmt_dd_mm_yyyy(d):  # "22/11/2026" (day first)
    return f"{d.day:02d}/{d.month:02d}/{d.year}"


def _fmt_dd_mm_yy(d):  # "22.11.26" (two-digit year: 50-99 -> 19xx, 00-49 -> 20xx)
    return f"{d.day:02d}.{d.month:02d}.{d.year % 100:02d}"


def _fmt_weekday_month_d_y(d):  # "Sunday, November 22, 2026"
    return f"{_WEEKDAYS[d.weekday()]}, {_MONTHS[d.month - 1]} {d.day}, {d.year}"


DATE_FORMATS = {
    "d_month_y": _fmt_d_month_y,
    "mon_d_y": _fmt_mon_d_y,
    "month_d_y": _fmt_month_d_y,
    "weekday_d_mon_y": _fmt_weekday_d_mon_y,
    "d_mon_y_upper": _fmt_d_mon_y_upper,
    "dd/mm/yyyy": _fmt_dd_mm_yyyy,
    "dd.mm.yy": _fmt_dd_mm_yy,
    "weekday_month_d_y": _fmt_weekday_month_d_y,
}
"""The source formats of :func:`toy_dates`, by name, each a function ``datetime.date -> str``.
For 2026-11-22: ``"22 November 2026"``, ``"Nov 22, 2026"``, ``"November 22, 2026"``,
``"sunday, 22 nov 2026"``, ``"22 NOV 2026"``, ``"22/11/2026"``, ``"22.11.26"``,
``"Sunday, November 22, 2026"``. English names, whatever the locale (no ``strftime``)."""


def _check_formats(formats) -> list[str]:
    if formats is None:
        return list(DATE_FORMATS)
    if isinstance(formats, str):
        formats = [formats]
    formats = list(formats)
    if not formats:
        raise ValueError("formats is empty: name at least one of " + ", ".join(DATE_FORMATS))
    for f in formats:
        if f not in DATE_FORMATS:
            raise ValueError(f"unknown date format {f!r}; the formats are {list(DATE_FORMATS)}")
    return formats


def format_date(date: _dt.date, fmt: str) -> str:
    """``date`` written in the format named ``fmt`` (a key of :data:`DATE_FORMATS`)."""
    return DATE_FORMATS[_check_formats([fmt])[0]](date)


def toy_dates(n: int, rng, formats=None) -> list[tuple[str, str]]:
    """``n`` pairs (human-readable date, ISO date), the toy translation task of ch09_seq2seq.

    Each date is drawn uniformly from 1950-01-01 to 2049-12-31 (both included), each format
    uniformly from ``formats`` (default: all of :data:`DATE_FORMATS`); the target is always the
    10 characters ``YYYY-MM-DD``. Example: ``("sunday, 22 nov 2026", "2026-11-22")``.

    The task is small but not trivial for a character model: the month must be read from a
    name, an abbreviation or a number, the day may have one or two digits, the two-digit year
    of ``"dd.mm.yy"`` needs a century rule (50-99 -> 19xx, 00-49 -> 20xx), and the output
    order differs from most input orders, which is what attention helps with.

    Args:
        n: number of pairs (>= 0).
        rng: a ``numpy.random.Generator`` or a seed (int); the same seed gives the same pairs.
        formats: names of formats to draw from (a subset of :data:`DATE_FORMATS`), or None.

    Returns:
        a list of ``n`` ``(source, target)`` string pairs.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    names = _check_formats(formats)
    rng = np.random.default_rng(rng)
    first, last = DATE_RANGE
    days = rng.integers(0, (last - first).days + 1, size=n)
    which = rng.integers(0, len(names), size=n)
    pairs = []
    for d, k in zip(days, which, strict=True):
        date = first + _dt.timedelta(days=int(d))
        pairs.append((DATE_FORMATS[names[k]](date), date.isoformat()))
    return pairs


class CharVocab:
    """A character vocabulary with four reserved ids: ``<pad>`` = 0, ``<bos>`` = 1,
    ``<eos>`` = 2, ``<unk>`` = 3, then the characters of ``texts`` in sorted order.

    ``CharVocab(texts)`` builds it from an iterable of strings (e.g. every source and target
    of the training pairs, so one vocabulary serves both sides). ``itos`` lists the tokens by id
    (the reserved ones under their names), ``stoi`` maps a character to its id.
    """

    PAD, BOS, EOS, UNK = 0, 1, 2, 3
    SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
    UNK_CHAR = "\N{REPLACEMENT CHARACTER}"  # what decode writes for <unk>

    def __init__(self, texts):
        if isinstance(texts, str):
            texts = [texts]
        chars = set()
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"CharVocab is built from strings, got {type(t).__name__}")
            chars.update(t)
        self.itos = list(self.SPECIALS) + sorted(chars)
        self.stoi = {c: i for i, c in enumerate(self.itos) if i >= len(self.SPECIALS)}
        self.pad, self.bos, self.eos, self.unk = self.PAD, self.BOS, self.EOS, self.UNK

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} tokens: 4 reserved + {len(self) - 4} characters)"

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """The ids of ``text``'s characters (unknown ones -> ``<unk>`` = 3), optionally with
        ``<bos>`` = 1 in front and ``<eos>`` = 2 at the end."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a string, got {type(text).__name__}")
        ids = [self.stoi.get(c, self.UNK) for c in text]
        return ([self.BOS] if add_bos else []) + ids + ([self.EOS] if add_eos else [])

    def decode(self, ids) -> str:
        """The string of ``ids`` (any iterable of ints: list, array, tensor), read up to the
        first ``<eos>`` (excluded); ``<pad>`` and ``<bos>`` are skipped, ``<unk>`` is written
        U+FFFD. ``decode(encode(s, add_bos=True, add_eos=True)) == s`` for characters in
        the vocabulary."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.EOS:
                break
            if i in (self.PAD, self.BOS):
                continue
            if not 0 <= i < len(self.itos):
                raise ValueError(f"id {i} is out of range for a vocabulary of {len(self)} tokens")
            out.append(self.UNK_CHAR if i == self.UNK else self.itos[i])
        return "".join(out)


def date_vocab() -> CharVocab:
    """The :class:`CharVocab` of every character :func:`toy_dates` can write (all month and
    weekday names in every case used, digits, ``" ,-./"``), so that a vocabulary does not
    depend on which pairs happened to be drawn."""
    texts = ["0123456789 ,-./"]
    for m in _MONTHS + _WEEKDAYS:
        texts += [m, m.lower(), m.upper()]
    return CharVocab(texts)


def pad_sequences(seqs, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id sequences to one length.

    Args:
        seqs: a non-empty list of N id sequences (lists or 1-D arrays of ints), lengths L_i.
        pad: the id written after each sequence's end (``CharVocab.PAD`` = 0).

    Returns:
        ids (N, S) int64 with S = max L_i, row i = seqs[i] then ``pad``s, and lengths (N,) int64.
        The mask of real positions is ``np.arange(S) < lengths[:, None]``.
    """
    seqs = [np.asarray(s) for s in seqs]
    if not seqs:
        raise ValueError("pad_sequences needs at least one sequence")
    for i, s in enumerate(seqs):
        if s.ndim != 1 or (s.size and not np.issubdtype(s.dtype, np.integer)):
            raise ValueError(f"sequence {i} must be a 1-D sequence of ints, got {s!r}")
    lengths = np.array([s.size for s in seqs], dtype=np.int64)
    out = np.full((len(seqs), int(lengths.max())), pad, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, : s.size] = s
    return out, lengths


# ---------------------------------------------------------------------------------------------
# ch12_text: an English corpus that ships with Python, and multilingual word lists (wordfreq).
# ---------------------------------------------------------------------------------------------

import unicodedata as _unicodedata  # noqa: E402

__all__ += ["load_text", "load_words", "WORD_LANGUAGES"]

TEXTS = ("pydoc_topics",)


def load_text(name_or_path="pydoc_topics") -> str:
    """A text corpus as one string: a built-in one by name, or a user's UTF-8 text file.

    - ``"pydoc_topics"``: the English help texts of Python's own ``pydoc_data.topics`` (what
      ``help("if")`` prints), 79 topics in sorted order of their names, joined as they are
      (each ends with a newline): 464,970 characters and 103 distinct characters on Python
      3.11 (other Python versions ship slightly different texts). They are part of CPython's
      documentation, under the Python Software Foundation License; no download needed.
    - a path (``str`` or ``pathlib.Path``): the whole file, decoded as UTF-8 (a byte-order mark
      is dropped); Windows line ends are turned into ``"\\n"``.

    Raises:
        FileNotFoundError: a path that does not exist; ValueError: an unknown name, a file that
        is not UTF-8 text, or an empty file.
    """
    if isinstance(name_or_path, str) and name_or_path.strip().lower() in TEXTS:
        from pydoc_data.topics import topics

        return "".join(topics[k] for k in sorted(topics))
    if not isinstance(name_or_path, str | Path):
        raise TypeError(f"load_text takes a name or a path, got {type(name_or_path).__name__}")
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        if path.is_dir():
            raise FileNotFoundError(f"cannot read {str(path)!r}: a folder, not a file")
        if any(ch in str(name_or_path) for ch in ("/", "\\", ".")):
            raise FileNotFoundError(f"cannot read {str(path)!r}: no such file")
        raise ValueError(
            f"unknown text {name_or_path!r}: the built-in texts are "
            f"{', '.join(map(repr, TEXTS))}, or give the path of a UTF-8 text file"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from e
    text = text.replace("\r\n", "\n")
    if not text:
        raise ValueError(f"{path}: the file is empty")
    return text


WORD_LANGUAGES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "nl": "Dutch",
    "pt": "Portuguese",
    "sv": "Swedish",
    "da": "Danish",
    "fi": "Finnish",
    "pl": "Polish",
    "cs": "Czech",
    "ro": "Romanian",
    "hu": "Hungarian",
    "ca": "Catalan",
    "nb": "Norwegian Bokmål",
}
"""Latin-script languages of wordfreq that :func:`load_words` accepts (code -> name)."""


def _latin_word(word: str, min_length: int) -> bool:
    """Letters only (no digits, apostrophes or hyphens), every one of them a Latin letter."""
    return (
        len(word) >= min_length
        and word.isalpha()
        and all(_unicodedata.name(ch, "").startswith("LATIN") for ch in word)
    )


def _words_file(path: Path) -> tuple[list[str], list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file") from e
    words, langs = [], []
    for ln, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split(",")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise ValueError(
                f"{path}, line {ln}: expected 'word<TAB>label' (or 'word,label'), got {line!r}"
            )
        words.append(fields[0].strip())
        langs.append(fields[1].strip())
    if not words:
        raise ValueError(f"{path}: the file holds no words")
    return words, langs


def load_words(
    languages=("en", "de", "fr", "es", "it", "nl"),
    n_top: int = 10000,
    *,
    min_length: int = 2,
    path=None,
):
    """Words labelled with their language, for the classifier of ch12_text.

    From wordfreq (Speer 2022; its word lists are CC BY-SA 4.0, built from Wikipedia, subtitles,
    news, books, web text, Twitter and Reddit; code Apache-2.0): the ``n_top`` most frequent
    words of each language (``wordfreq.top_n_list(lang, n_top)``), lowercased by wordfreq,
    kept if they are at least ``min_length`` Latin letters (so no digits, apostrophes,
    hyphens or other scripts, and the script does not give the language away). A word that is
    in the lists of two or more of the ``languages`` ("in", "die", "de", "non" ...) is
    **dropped**: it has no single right answer. Each remaining word occurs once, so a random
    split of the returned list never puts a word in two splits.

    With ``path``, reads a user's file instead: one ``word<TAB>label`` (or ``word,label``) per
    line, ``#`` comments and blank lines skipped; ``languages`` is then the sorted set of its
    labels and no filtering is done, except that a word listed with two different labels is
    dropped, and repeats of a (word, label) line are kept once.

    Returns:
        ``(words, labels, languages)``: a list of N strings in a fixed order (sorted by
        language, then by frequency rank), an int64 array (N,) of indices into ``languages``,
        and the tuple of language codes (or labels).
    """
    if path is not None:
        raw_words, raw_langs = _words_file(Path(path).expanduser())
        seen: dict[str, set[str]] = {}
        for w, lang in zip(raw_words, raw_langs, strict=True):
            seen.setdefault(w, set()).add(lang)
        langs = tuple(sorted(set(raw_langs)))
        words, labels, kept = [], [], set()
        for w, lang in zip(raw_words, raw_langs, strict=True):
            if len(seen[w]) == 1 and w not in kept:
                kept.add(w)
                words.append(w)
                labels.append(langs.index(lang))
        return words, np.array(labels, dtype=np.int64), langs
    if isinstance(languages, str):
        languages = (languages,)
    languages = tuple(languages)
    if len(languages) < 2 or len(set(languages)) != len(languages):
        raise ValueError(f"give at least two different languages, got {languages!r}")
    for lang in languages:
        if lang not in WORD_LANGUAGES:
            raise ValueError(
                f"unknown language {lang!r}: choose from {', '.join(WORD_LANGUAGES)} "
                "(wordfreq's languages written in the Latin script)"
            )
    if isinstance(n_top, bool) or not isinstance(n_top, int) or n_top < 1:
        raise ValueError(f"n_top must be a positive integer, got {n_top!r}")
    try:
        import wordfreq
    except ImportError as e:
        raise ImportError(
            "load_words needs wordfreq (pip install wordfreq, or install this package with "
            "its 'course' extra: pip install -e '.[course]')"
        ) from e
    lists = {}
    for lang in languages:
        top = wordfreq.top_n_list(lang, n_top)
        lists[lang] = list(dict.fromkeys(w for w in top if _latin_word(w, min_length)))
    count: dict[str, int] = {}
    for lang in languages:
        for w in lists[lang]:
            count[w] = count.get(w, 0) + 1
    words, labels = [], []
    for k, lang in enumerate(languages):
        for w in lists[lang]:
            if count[w] == 1:
                words.append(w)
                labels.append(k)
    return words, np.array(labels, dtype=np.int64), languages


# ---------------------------------------------------------------------------------------------
# ch13_speech: spoken digits. The Free Spoken Digit Dataset (real recordings) and a synthetic set
# (espeak-ng and flite voices) ship in rnn_ref/data/ as compact lossless archives; a user's own
# folder of WAV files named like FSDD's is read too.
# ---------------------------------------------------------------------------------------------

import functools as _functools  # noqa: E402
import hashlib as _hashlib  # noqa: E402
import lzma as _lzma  # noqa: E402
import math as _math  # noqa: E402
import re as _re  # noqa: E402

__all__ += ["SpokenDigits", "load_spoken_digits", "SPEECH_SETS"]

_DATA = Path(__file__).resolve().parent / "data"
SPEECH_SETS = {
    "fsdd": _DATA / "fsdd" / "fsdd.npz.xz",
    "synthetic": _DATA / "synth_digits" / "synth_digits.npz.xz",
}
"""The spoken-digit sets that ship with the package (name -> archive)."""

_SPEECH_SOURCE = {
    "fsdd": (
        "Free Spoken Digit Dataset, Z. Jackson et al., CC BY-SA 4.0 "
        "(github.com/Jakobovski/free-spoken-digit-dataset, commit 26eb9aa); "
        "a lossless compact copy in rnn_ref/data/fsdd/"
    ),
    "synthetic": (
        "synthetic spoken digits generated with espeak-ng and flite voices "
        "(rnn_ref/data/synth_digits/generate.py; CC0)"
    ),
}
_WAV_NAME = _re.compile(r"^([0-9])_(.+)_([0-9]+)\.wav$", _re.IGNORECASE)
_ARCHIVE_VERSION = 1


@dataclass(frozen=True, eq=False)
class SpokenDigits:
    """Recordings of spoken digits, one waveform each, with their labels.

    Attributes:
        signals: N mono waveforms, each a 1-D float64 array ``(L_i,)`` with values in
            ``[-1, 1]`` (16-bit samples divided by 32768); lengths differ.
        sample_rate: samples per second of every waveform, in Hz (8000 for FSDD).
        digit: (N,) int64, the spoken digit 0-9.
        speaker: (N,) str, the FSDD speaker (``"jackson"``, ...) or the synthetic voice
            (``"espeak:en-us+f3:s150:p60"``, ...).
        index: (N,) int64, the take number within (digit, speaker); FSDD's run 0-49.
        source: where the recordings come from (citation, or the folder read).
    """

    signals: list
    sample_rate: int
    digit: np.ndarray
    speaker: np.ndarray
    index: np.ndarray
    source: str = ""

    def __post_init__(self):
        n = len(self.signals)
        for name in ("digit", "speaker", "index"):
            shape = np.shape(getattr(self, name))
            if shape != (n,):
                raise ValueError(f"{name} must have shape ({n},) like signals, got {shape}")

    def __len__(self) -> int:
        return len(self.signals)

    def subset(self, which) -> SpokenDigits:
        """The recordings picked by a boolean mask ``(N,)`` or by integer indices."""
        which = np.asarray(which)
        if which.dtype == bool:
            if which.shape != (len(self),):
                raise ValueError(
                    f"a boolean mask must have shape ({len(self)},), got {which.shape}"
                )
            which = np.flatnonzero(which)
        elif which.size == 0:
            which = which.astype(np.int64)
        elif not np.issubdtype(which.dtype, np.integer) or which.ndim != 1:
            raise TypeError(
                f"which must be a boolean mask or 1-D integer indices, got {which.dtype} "
                f"with shape {which.shape}"
            )
        if which.size and (which.min() < -len(self) or which.max() >= len(self)):
            raise IndexError(f"indices out of range for {len(self)} recordings")
        return SpokenDigits(
            signals=[self.signals[i] for i in which],
            sample_rate=self.sample_rate,
            digit=self.digit[which],
            speaker=self.speaker[which],
            index=self.index[which],
            source=self.source,
        )

    def official_test(self) -> np.ndarray:
        """(N,) bool: FSDD's official test set, the takes with ``index`` 0-4 (5-49 train)."""
        return self.index < 5

    @property
    def speakers(self) -> list[str]:
        """The sorted distinct speakers (voices)."""
        return sorted(set(self.speaker.tolist()))

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64, the number of samples of each waveform."""
        return np.array([s.size for s in self.signals], dtype=np.int64)


def _pack_spoken_digits(path, audio, digit, speaker, index, sample_rate: int, meta=None) -> str:
    """Write int16 recordings to a compact lossless archive (an ``.npz`` inside ``.xz``).

    The waveforms are concatenated and stored as first differences (mod 2**16), split into a
    high-byte and a low-byte plane: the differences of speech are small, so the high bytes are
    mostly 0 or 255 and xz compresses the planes far better than the raw samples (FSDD: about
    12.0 MB instead of 13.4 MB for xz on the raw samples). Decoding is a cumulative sum and
    is exact. Returns the SHA-256 of the concatenated little-endian int16 samples, which
    :func:`_unpack_spoken_digits` checks.
    """
    audio = [np.asarray(a) for a in audio]
    for a in audio:
        if a.dtype != np.int16 or a.ndim != 1 or a.size == 0:
            raise ValueError(
                f"each recording must be a non-empty 1-D int16 array, got {a.dtype} {a.shape}"
            )
    flat = np.concatenate(audio).astype("<i2")
    sha = _hashlib.sha256(flat.tobytes()).hexdigest()
    delta = np.diff(flat, prepend=np.int16(0)).astype("<i2")  # wraps mod 2**16: still exact
    planes = delta.view(np.uint8).reshape(-1, 2)
    offsets = np.concatenate([[0], np.cumsum([a.size for a in audio])]).astype(np.int64)
    buf = io.BytesIO()
    np.savez(
        buf,
        version=np.int64(_ARCHIVE_VERSION),
        sample_rate=np.int64(sample_rate),
        delta_hi=np.ascontiguousarray(planes[:, 1]),
        delta_lo=np.ascontiguousarray(planes[:, 0]),
        offsets=offsets,
        digit=np.asarray(digit, dtype=np.int64),
        speaker=np.asarray(speaker, dtype=str),
        index=np.asarray(index, dtype=np.int64),
        sha256=np.array(sha),
        meta=np.array("" if meta is None else str(meta)),
    )
    filters = [{"id": _lzma.FILTER_LZMA2, "preset": 9 | _lzma.PRESET_EXTREME}]
    Path(path).write_bytes(_lzma.compress(buf.getvalue(), format=_lzma.FORMAT_XZ, filters=filters))
    return sha


def _unpack_spoken_digits(path: str):
    """Decode an archive of :func:`_pack_spoken_digits` (cached: pages load it repeatedly).

    Returns ``(flat int16 (sum L_i,), offsets (N + 1,), digit, speaker, index, sample_rate)``,
    all read-only. The cache is keyed by the file's path, size and modification time, so a
    rebuilt archive is decoded afresh.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"the spoken-digit archive {str(p)!r} is missing: reinstall rnn_ref, or rebuild it "
            "(see the README.md next to where it should be)"
        )
    st = p.stat()
    return _unpack_cached(str(p), st.st_size, st.st_mtime_ns)


@_functools.lru_cache(maxsize=4)
def _unpack_cached(path: str, size: int, mtime_ns: int):
    p = Path(path)
    try:
        raw = _lzma.decompress(p.read_bytes())
        z = np.load(io.BytesIO(raw), allow_pickle=False)
        if int(z["version"]) != _ARCHIVE_VERSION:
            raise ValueError(
                f"archive format version {int(z['version'])}, expected {_ARCHIVE_VERSION}"
            )
        delta = ((z["delta_hi"].astype(np.uint16) << 8) | z["delta_lo"]).view(np.int16)
        flat = np.cumsum(delta, dtype=np.int16)  # int16 arithmetic wraps, undoing the diff
        arrays = [z[k] for k in ("offsets", "digit", "speaker", "index")]
        sample_rate, sha = int(z["sample_rate"]), str(z["sha256"])
    except (_lzma.LZMAError, ValueError, KeyError, OSError) as e:
        raise ValueError(f"{p}: not a readable spoken-digit archive ({e})") from e
    if _hashlib.sha256(flat.astype("<i2").tobytes()).hexdigest() != sha:
        raise ValueError(
            f"{p}: the decoded samples do not match the archive's SHA-256 (corrupt file)"
        )
    for a in (flat, *arrays):
        a.setflags(write=False)
    return (flat, *arrays, sample_rate)


def _resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample a float waveform with a polyphase filter (scipy.signal.resample_poly)."""
    if rate_in == rate_out:
        return x
    try:
        from scipy.signal import resample_poly
    except ImportError as e:
        raise ImportError("resampling needs scipy (pip install scipy)") from e
    g = _math.gcd(int(rate_in), int(rate_out))
    # The polyphase low-pass can overshoot slightly near full scale; keep the [-1, 1] promise.
    return np.clip(resample_poly(x, rate_out // g, rate_in // g), -1.0, 1.0)


def _wav_to_float(x: np.ndarray, path: Path) -> np.ndarray:
    """Samples of any PCM/float WAV as float64 in [-1, 1], stereo (or more) averaged to mono."""
    if x.dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        y = (x.astype(np.float64) - 128.0) / 128.0
    elif np.issubdtype(x.dtype, np.integer):
        y = x.astype(np.float64) / float(2 ** (8 * x.dtype.itemsize - 1))
    elif np.issubdtype(x.dtype, np.floating):
        y = np.clip(x.astype(np.float64), -1.0, 1.0)
    else:
        raise ValueError(f"{path}: unsupported WAV sample type {x.dtype}")
    if y.ndim == 2:
        y = y.mean(axis=1)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"{path}: holds no samples")
    return y


def _load_wav_folder(folder: Path, sample_rate: int) -> SpokenDigits:
    try:
        from scipy.io import wavfile
    except ImportError as e:
        raise ImportError("reading WAV files needs scipy (pip install scipy)") from e
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".wav")
    if not files:
        raise ValueError(
            f"{str(folder)!r} holds no .wav files (looked in it and its subfolders); expected "
            "files named {digit}_{speaker}_{index}.wav like 7_jackson_32.wav"
        )
    rows, seen = [], {}
    for p in files:
        m = _WAV_NAME.match(p.name)
        if m is None:
            raise ValueError(
                f"{p}: a WAV file must be named {{digit}}_{{speaker}}_{{index}}.wav, "
                "e.g. 7_jackson_32.wav (digit 0-9, index a whole number)"
            )
        key = (int(m.group(1)), m.group(2), int(m.group(3)))
        if key in seen:
            raise ValueError(
                f"{p} and {seen[key]} are the same recording {key} (digit, speaker, index)"
            )
        seen[key] = p
        try:
            rate, x = wavfile.read(p)
        except Exception as e:  # scipy raises ValueError, EOFError, struct.error ...
            raise ValueError(f"{p}: not a readable WAV file ({type(e).__name__}: {e})") from e
        rows.append((key, _resample(_wav_to_float(x, p), int(rate), sample_rate)))
    rows.sort(key=lambda r: (r[0][1], r[0][0], r[0][2]))
    return SpokenDigits(
        signals=[r[1] for r in rows],
        sample_rate=sample_rate,
        digit=np.array([r[0][0] for r in rows], dtype=np.int64),
        speaker=np.array([r[0][1] for r in rows], dtype=str),
        index=np.array([r[0][2] for r in rows], dtype=np.int64),
        source=f"WAV files in {folder}",
    )


def load_spoken_digits(name_or_path="fsdd", sample_rate: int = 8000) -> SpokenDigits:
    """Spoken digits: a set that ships with the package, or a user's folder of WAV files.

    - ``"fsdd"``: the Free Spoken Digit Dataset (Z. Jackson et al., CC BY-SA 4.0; upstream
      commit 26eb9aa): 3,000 real recordings, 6 male speakers (``jackson``, ``nicolas``,
      ``theo``, ``yweweler``, ``george``, ``lucas``) x 10 digits x 50 takes, 8 kHz, 16-bit,
      trimmed of most leading and trailing silence. FSDD's official split: takes 0-4 are the
      test set (:meth:`SpokenDigits.official_test`, 300 recordings), 5-49 the training set.
      Speaker metadata (gender, accent) is in ``rnn_ref/data/fsdd/speakers.json``.
    - ``"synthetic"``: digits spoken by espeak-ng and flite voices (accents, speeds, pitches),
      8 kHz, trimmed like FSDD; ``speaker`` names the voice, ``index`` the take.
    - a folder (``str`` or ``pathlib.Path``): every ``.wav`` in it and its subfolders, named
      ``{digit}_{speaker}_{index}.wav`` (FSDD's convention), of any sample rate and sample
      type (8/16/32-bit integer or float); channels are averaged to mono.

    The shipped sets are decoded once per process and cached; each call returns fresh float64
    copies. Recordings are ordered by speaker, then digit, then index.

    Args:
        name_or_path: ``"fsdd"``, ``"synthetic"``, or the path of a folder.
        sample_rate: the rate of the returned waveforms in Hz; recordings at another rate are
            resampled with ``scipy.signal.resample_poly`` (a polyphase low-pass filter).

    Returns:
        a :class:`SpokenDigits` with float64 waveforms in ``[-1, 1]``.

    Raises:
        ValueError: an unknown name; a folder without WAV files; a WAV file that is misnamed,
            unreadable or empty; two files for the same (digit, speaker, index); a
            non-positive ``sample_rate``.
        FileNotFoundError: a path that does not exist, or is a file, not a folder.
    """
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, int | np.integer)
        or sample_rate <= 0
    ):
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    sample_rate = int(sample_rate)
    if isinstance(name_or_path, str) and name_or_path.strip().lower() in SPEECH_SETS:
        name = name_or_path.strip().lower()
        flat, offsets, digit, speaker, index, rate = _unpack_spoken_digits(str(SPEECH_SETS[name]))
        x = flat.astype(np.float64) / 32768.0
        signals = [
            _resample(x[a:b], rate, sample_rate)
            for a, b in zip(offsets[:-1], offsets[1:], strict=True)
        ]
        return SpokenDigits(
            signals=signals,
            sample_rate=sample_rate,
            digit=digit.copy(),
            speaker=speaker.copy(),
            index=index.copy(),
            source=_SPEECH_SOURCE[name],
        )
    if not isinstance(name_or_path, str | Path):
        raise TypeError(
            f"load_spoken_digits takes a name or a folder path, got {type(name_or_path).__name__}"
        )
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return _load_wav_folder(path, sample_rate)
    if path.is_file():
        raise FileNotFoundError(
            f"cannot read {str(path)!r}: a file, not a folder (give the folder of WAV files)"
        )
    looks_like_path = isinstance(name_or_path, Path) or any(
        ch in str(name_or_path) for ch in ("/", "\\", ".")
    )
    if looks_like_path:
        raise FileNotFoundError(f"cannot read {str(path)!r}: no such folder")
    known = ", ".join(repr(k) for k in SPEECH_SETS)
    close = difflib.get_close_matches(str(name_or_path).lower(), SPEECH_SETS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown spoken-digit set {name_or_path!r}: the shipped sets are {known}, or give the "
        f"path of a folder of WAV files named {{digit}}_{{speaker}}_{{index}}.wav.{hint}"
    )


# ---------------------------------------------------------------------------------------------
# ch14_recsys: timestamped user-item interactions. MovieLens-100k is read from the installed
# RecBole wheel (its example data; installed with --no-deps, never imported); its terms forbid
# redistribution, so nothing of it is copied here. A user's own (user, item, timestamp) file is
# read too (YOOCHOOSE, Diginetica, MovieLens-1M ...).
# ---------------------------------------------------------------------------------------------

import importlib.util as _importlib_util  # noqa: E402

__all__ += ["Interactions", "load_interactions", "INTERACTION_SETS"]

INTERACTION_SETS = ("ml-100k",)

_ML100K_SOURCE = (
    "MovieLens-100k (GroupLens Research, University of Minnesota; F. M. Harper and J. A. Konstan, "
    "'The MovieLens Datasets: History and Context', ACM TiiS 5(4), 2015), read from the example "
    "data of the installed RecBole package ({path}); not redistributed"
)


@dataclass(frozen=True, eq=False)
class Interactions:
    """Timestamped user-item events, in the file's order (one row = one event).

    Attributes:
        user: ``(N,)`` int64, the file's user ids.
        item: ``(N,)`` int64, the file's item ids.
        timestamp: ``(N,)`` int64, seconds (Unix time for MovieLens).
        rating: ``(N,)`` float64 where the file has a rating column, else ``None``.
        source: where the events come from (citation and path).
        titles: item id -> title where the data has them (MovieLens-100k does), else ``None``.
    """

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    rating: np.ndarray | None
    source: str
    titles: dict[int, str] | None = None

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def __repr__(self) -> str:
        return (
            f"Interactions({len(self)} events, {np.unique(self.user).size} users, "
            f"{np.unique(self.item).size} items, source={self.source!r})"
        )


def _recbole_example(name: str) -> Path:
    """The folder of RecBole's example data set ``name``, located without importing recbole."""
    spec = _importlib_util.find_spec("recbole")
    folder = None
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            cand = Path(root) / "dataset_example" / name
            if (cand / f"{name}.inter").is_file():
                folder = cand
                break
    if folder is None:
        raise FileNotFoundError(
            f"{name} is read from the example data of the RecBole package, which is not "
            "installed (or ships no dataset_example/" + name + "). Install its data only with "
            "`pip install --no-deps recbole==1.2.1` (the Makefile's env step does it); it is "
            "never imported, so its dependencies are not needed."
        )
    return folder


def _int_column(values: list[str], what: str, path) -> np.ndarray:
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        pass
    try:
        f = np.array([float(v) for v in values], dtype=np.float64)
    except ValueError as e:
        raise ValueError(f"{path}: column {what!r} must hold numbers ({e})") from e
    if not np.all(np.isfinite(f)):
        raise ValueError(f"{path}: column {what!r} has a missing or infinite value")
    if what == "timestamp" and np.any(f != np.floor(f)):
        return np.floor(f).astype(np.int64)  # fractional seconds: whole seconds suffice here
    if np.any(f != np.floor(f)):
        raise ValueError(f"{path}: column {what!r} must hold integer ids")
    return f.astype(np.int64)


def _ids_column(values: list[str], what: str, path) -> np.ndarray:
    """Integer ids as they are; other tokens (e.g. 'P123') numbered 0.. in order of first use."""
    try:
        return _int_column(values, what, path)
    except ValueError:
        uniq: dict[str, int] = {}
        return np.array([uniq.setdefault(v, len(uniq)) for v in values], dtype=np.int64)


def _timestamp_column(values: list[str], path) -> np.ndarray:
    try:
        return _int_column(values, "timestamp", path)
    except ValueError:
        pass
    # ISO 8601 times (YOOCHOOSE: 2014-04-07T10:51:09.277Z) -> Unix seconds (UTC)
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        try:
            t = _dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError as e:
            raise ValueError(
                f"{path}: row {i + 2}: timestamp {v!r} is neither a number of seconds nor an "
                "ISO 8601 time"
            ) from e
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.UTC)
        out[i] = int(t.timestamp())
    return out


def _read_table(path: Path, sep) -> tuple[list[str], list[list[str]]]:
    text = path.read_text(encoding="utf-8-sig", errors="replace").replace("\r\n", "\n")
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if len(lines) < 2:
        raise ValueError(f"{path}: needs a header row and at least one event")
    if sep is None:
        sep = _guess_delimiter(lines[0])
    rows = [ln.split(sep) if sep is not None else ln.split() for ln in lines]
    header = [h.strip().strip('"') for h in rows[0]]
    return header, [[c.strip().strip('"') for c in r] for r in rows[1:]]


def _find_column(header: list[str], name, path) -> int:
    """Index of the column called ``name``; RecBole's ``name:type`` headers match by name."""
    if isinstance(name, int | np.integer) and not isinstance(name, bool):
        if not 0 <= name < len(header):
            raise ValueError(f"{path}: column {name} does not exist ({len(header)} columns)")
        return int(name)
    bare = [h.split(":")[0].strip().lower() for h in header]
    for i, h in enumerate(header):
        if h.lower() == str(name).lower() or bare[i] == str(name).lower():
            return i
    raise ValueError(
        f"{path}: no column {name!r}; the header has {header} (name the columns with "
        "user_col=, item_col=, time_col=)"
    )


def _item_titles(path: Path) -> dict[int, str] | None:
    if not path.is_file():
        return None
    header, rows = _read_table(path, "\t")
    i_id, i_title = _find_column(header, "item_id", path), _find_column(header, "movie_title", path)
    return {int(r[i_id]): r[i_title] for r in rows if len(r) > max(i_id, i_title)}


def load_interactions(
    name_or_path="ml-100k",
    *,
    user_col="user_id",
    item_col="item_id",
    time_col="timestamp",
    rating_col="rating",
    sep=None,
) -> Interactions:
    """Timestamped (user, item, time) events: MovieLens-100k by name, or a user's own file.

    - ``"ml-100k"``: MovieLens-100k (Harper & Konstan 2015): 100,000 ratings (1-5 stars) of
      1,682 movies by 943 users, September 1997 to April 1998, timestamps in Unix seconds, with
      movie titles. It is read from the installed RecBole package's example data
      (``recbole/dataset_example/ml-100k/``), located with ``importlib.util.find_spec`` without
      importing RecBole. Its terms forbid redistribution: nothing is copied into this repository.
    - a path (``str`` or ``pathlib.Path``): a CSV/TSV file with a header row naming the columns
      ``user_col``, ``item_col``, ``time_col`` (and optionally ``rating_col``); RecBole's
      ``name:type`` headers match by name. Ids that are not integers (``"u17"``) are numbered
      0, 1, ... in order of first appearance; timestamps may be seconds or ISO 8601 times (UTC).

    Events are kept in file order (sessions and splits are built by
    :func:`rnn_ref.numpy.recsys.make_sessions` and :func:`~rnn_ref.numpy.recsys.time_split`).

    Raises:
        FileNotFoundError: RecBole (the data's carrier) not installed; a path that does not exist.
        ValueError: an unknown name; a file without the named columns, with a short row, or with
            a value that is not a number.
    """
    name = name_or_path.strip().lower() if isinstance(name_or_path, str) else None
    if name in INTERACTION_SETS:
        folder = _recbole_example(name)
        path = folder / f"{name}.inter"
        titles = _item_titles(folder / f"{name}.item")
        source = _ML100K_SOURCE.format(path=path)
    else:
        if not isinstance(name_or_path, str | Path):
            raise TypeError(
                f"load_interactions takes a name or a path, got {type(name_or_path).__name__}"
            )
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            if path.is_dir():
                raise FileNotFoundError(f"cannot read {str(path)!r}: a folder, not a file")
            if isinstance(name_or_path, Path) or any(c in str(name_or_path) for c in "/\\."):
                raise FileNotFoundError(f"cannot read {str(path)!r}: no such file")
            close = difflib.get_close_matches(str(name), INTERACTION_SETS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"unknown interaction set {name_or_path!r}: the built-in sets are "
                f"{', '.join(map(repr, INTERACTION_SETS))}, or give the path of a CSV/TSV file "
                f"with user, item and timestamp columns.{hint}"
            )
        titles, source = None, str(path)
    header, rows = _read_table(path, "\t" if name in INTERACTION_SETS else sep)
    cols = [_find_column(header, c, path) for c in (user_col, item_col, time_col)]
    try:
        i_rating = _find_column(header, rating_col, path) if rating_col is not None else None
    except ValueError:
        i_rating = None
    need = max(cols + ([i_rating] if i_rating is not None else []))
    for ln, r in enumerate(rows, start=2):
        if len(r) <= need:
            raise ValueError(f"{path}: row {ln} has {len(r)} fields, needs at least {need + 1}")
    user = _ids_column([r[cols[0]] for r in rows], "user", path)
    item = _ids_column([r[cols[1]] for r in rows], "item", path)
    timestamp = _timestamp_column([r[cols[2]] for r in rows], path)
    rating = None
    if i_rating is not None:
        try:
            rating = np.array([float(r[i_rating]) for r in rows], dtype=np.float64)
        except ValueError as e:
            raise ValueError(f"{path}: column {rating_col!r} must hold numbers ({e})") from e
    return Interactions(user, item, timestamp, rating, source, titles)
