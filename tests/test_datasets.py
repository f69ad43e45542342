"""rnn_ref.datasets.load_series: the built-in series (known lengths, first values, no NaN), a
user's file read back exactly, and a clear message for every way a load can fail."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rnn_ref.datasets import Series, load_series


def test_sunspots_known_values():
    s = load_series("sunspots")
    assert isinstance(s, Series) and s.name == "sunspots" and s.freq == "yearly"
    assert s.values.shape == (309,) and s.values.dtype == np.float64 and len(s) == 309
    np.testing.assert_array_equal(s.values[:5], [5.0, 11.0, 16.0, 23.0, 36.0])
    np.testing.assert_array_equal(s.values[-3:], [15.2, 7.5, 2.9])
    np.testing.assert_array_equal(s.time, np.arange(1700.0, 2009.0))
    assert not np.isnan(s.values).any() and not s.filled.any()
    assert (s.values >= 0).all()  # counts of spots


def test_co2_known_values_and_interpolated_gaps():
    s = load_series("co2")
    assert s.name == "co2" and s.unit == "ppmv" and s.freq == "weekly"
    assert s.values.shape == (2284,) and s.values.dtype == np.float64
    np.testing.assert_array_equal(s.values[:5], [316.1, 317.3, 317.6, 317.5, 316.4])
    assert s.time[0] == np.datetime64("1958-03-29") and s.time[-1] == np.datetime64("2001-12-29")
    assert (np.diff(s.time) == np.timedelta64(7, "D")).all()  # weekly, no week skipped
    assert not np.isnan(s.values).any()
    # 59 weeks were missing; each filled value lies on the line between its measured neighbours.
    assert s.filled.sum() == 59 and "59 missing weeks" in s.source
    assert not s.filled[0] and s.filled[6] and not s.filled[5] and not s.filled[7]
    assert s.values[6] == pytest.approx((s.values[5] + s.values[7]) / 2)
    # The longest gap, weeks 304..321 (18 weeks in 1964), is a straight line across.
    gap = np.arange(303, 323)
    assert s.filled[304:322].all() and not s.filled[303] and not s.filled[322]
    np.testing.assert_allclose(np.diff(s.values[gap], 2), 0.0, atol=1e-9)


def test_names_are_case_insensitive_and_fresh_copies():
    a = load_series(" Sunspots ")
    a.values[0] = -1.0
    assert load_series("sunspots").values[0] == 5.0  # a caller's edit does not leak


def test_user_file_round_trip_single_column(tmp_path):
    values = np.random.default_rng(0).normal(size=50)
    path = tmp_path / "series.txt"
    np.savetxt(path, values)  # one column, no header, full precision
    s = load_series(path)
    np.testing.assert_array_equal(s.values, values)
    np.testing.assert_array_equal(s.time, np.arange(50.0))
    assert s.name == "series.txt" and s.values.dtype == np.float64
    assert load_series(str(path)).values.tolist() == values.tolist()  # a str path too


def test_user_csv_named_column_with_header_comments_and_time(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text(
        "# daily sales, exported from a till\nday,sales,returns\n1,10.5,0\n\n2,12,1\n3,9.25,0\n"
    )
    s = load_series(path, "sales", time_column="day", unit="EUR", freq="daily")
    np.testing.assert_array_equal(s.values, [10.5, 12.0, 9.25])
    np.testing.assert_array_equal(s.time, [1.0, 2.0, 3.0])
    assert (s.name, s.unit, s.freq) == ("shop.csv:sales", "EUR", "daily")
    np.testing.assert_array_equal(load_series(path, column=2).values, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(load_series(path, -2).values, [10.5, 12.0, 9.25])


def test_user_file_whitespace_and_semicolon_and_string_times(tmp_path):
    path = tmp_path / "two.txt"
    path.write_text("1.0 2.0\n3.0 4.0\n")
    np.testing.assert_array_equal(load_series(path, 1).values, [2.0, 4.0])
    path = tmp_path / "dates.csv"
    path.write_text("date;value\n2024-01-01;1\n2024-01-02;2\n")
    s = load_series(path, "value", time_column="date")
    assert s.time.tolist() == ["2024-01-01", "2024-01-02"]


def test_fill_missing_interpolates_in_time(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("t,x\n0,1.0\n1,\n3,7.0\n4,NaN\n5,9\n")
    s = load_series(path, "x", time_column="t", fill_missing=True)
    # t = 1 lies a third of the way from (0, 1) to (3, 7): 3; t = 4 halfway from 7 to 9: 8.
    np.testing.assert_allclose(s.values, [1.0, 3.0, 7.0, 8.0, 9.0])
    np.testing.assert_array_equal(s.filled, [False, True, False, True, False])


# --- error messages ---------------------------------------------------------------------------


def test_unknown_name_lists_the_known_ones_and_suggests():
    with pytest.raises(
        ValueError,
        match=r"unknown series 'sunspot': the built-in series are 'co2', 'co2_monthly', "
        r"'sunspots', 'taylor', or give "
        r"the path of a CSV or text file. Did you mean 'sunspots'\?",
    ):
        load_series("sunspot")
    with pytest.raises(ValueError, match=r"unknown series 'airline'") as info:
        load_series("airline")
    assert "Did you mean" not in str(info.value)
    with pytest.raises(TypeError, match=r"load_series takes a name or a path, got int"):
        load_series(3)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cannot read '.*nope\.csv': no such file"):
        load_series(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match=r"cannot read .*: a folder, not a file"):
        load_series(tmp_path)


def test_non_numeric_value_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("x\n1\n2\nthree\n")
    msg = r"bad\.csv, line 4: 'three' in column 'x' is not a number"
    with pytest.raises(ValueError, match=msg):
        load_series(path)


def test_nan_without_fill_names_the_lines(tmp_path):
    path = tmp_path / "nan.txt"
    path.write_text("1\nnan\n3\n\n4\nNA\n")
    with pytest.raises(
        ValueError,
        match=r"column 'column 0' has 2 missing value\(s\) \(NaN or empty\) on line\(s\) 2, 6; "
        r"fill or drop them, or pass fill_missing=True",
    ):
        load_series(path)
    path.write_text("nan\n1\n2\n")
    with pytest.raises(ValueError, match=r"the first value is missing \(NaN\): it cannot be"):
        load_series(path, fill_missing=True)
    path.write_text("1\ninf\n")
    with pytest.raises(ValueError, match=r"line 2: column 'column 0' holds an infinite value"):
        load_series(path)


def test_column_errors(tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"has 2 columns \(a, b\): pass column=<name or 0-based"):
        load_series(path)
    msg = r"no column 'c' in the file; its columns are \['a', 'b'\]"
    with pytest.raises(ValueError, match=msg):
        load_series(path, "c")
    with pytest.raises(ValueError, match=r"column=5 is out of range: the file has 2 columns"):
        load_series(path, 5)
    path.write_text("1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"column='a' names a column, but the file has no header"):
        load_series(path, "a")
    path.write_text("1,2\n3\n")
    with pytest.raises(ValueError, match=r"line 2: 1 fields, expected 2"):
        load_series(path, 0)


def test_empty_files(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("# nothing but a comment\n\n")
    with pytest.raises(ValueError, match=r"the file holds no data"):
        load_series(path)
    path.write_text("x\n")
    with pytest.raises(ValueError, match=r"has a header row but no data rows"):
        load_series(path)
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ValueError, match=r"not a text file"):
        load_series(path)


def test_builtin_without_statsmodels_says_how_to_install(monkeypatch):
    # A None entry in sys.modules makes the import fail as if statsmodels were not installed.
    monkeypatch.setitem(sys.modules, "statsmodels.datasets.co2", None)
    with pytest.raises(ImportError, match=r"'co2' ships with statsmodels, which is not installed"):
        load_series("co2")


# ---------------------------------------------------------------------------------------------
# ch09_seq2seq: toy_dates, CharVocab, pad_sequences
# ---------------------------------------------------------------------------------------------

import datetime as dt  # noqa: E402

from rnn_ref.datasets import (  # noqa: E402
    DATE_FORMATS,
    CharVocab,
    date_vocab,
    format_date,
    pad_sequences,
    toy_dates,
)

# An independent reading of each format (strptime, English names in the C locale; strptime
# matches names case-insensitively). "dd.mm.yy" is read by hand: strptime's %y puts 50-68 in
# the 2000s, the task's rule puts 50-99 in the 1900s.
STRPTIME = {
    "d_month_y": "%d %B %Y",
    "mon_d_y": "%b %d, %Y",
    "month_d_y": "%B %d, %Y",
    "weekday_d_mon_y": "%A, %d %b %Y",
    "d_mon_y_upper": "%d %b %Y",
    "dd/mm/yyyy": "%d/%m/%Y",
    "weekday_month_d_y": "%A, %B %d, %Y",
}


def parse_date(text: str, fmt: str) -> dt.date:
    if fmt == "dd.mm.yy":
        d, m, y = (int(p) for p in text.split("."))
        return dt.date(1900 + y if y >= 50 else 2000 + y, m, d)
    date = dt.datetime.strptime(text, STRPTIME[fmt]).date()
    if fmt.startswith("weekday"):  # strptime reads the weekday but does not check it
        assert text.split(",")[0].lower() == date.strftime("%A").lower(), text
    return date


def test_toy_date_formats_known_values():
    d = dt.date(2026, 11, 22)  # a Sunday
    written = {f: format_date(d, f) for f in DATE_FORMATS}
    assert written == {
        "d_month_y": "22 November 2026",
        "mon_d_y": "Nov 22, 2026",
        "month_d_y": "November 22, 2026",
        "weekday_d_mon_y": "sunday, 22 nov 2026",
        "d_mon_y_upper": "22 NOV 2026",
        "dd/mm/yyyy": "22/11/2026",
        "dd.mm.yy": "22.11.26",
        "weekday_month_d_y": "Sunday, November 22, 2026",
    }
    assert format_date(dt.date(1950, 3, 5), "d_month_y") == "5 March 1950"
    assert format_date(dt.date(1950, 3, 5), "dd.mm.yy") == "05.03.50"
    with pytest.raises(ValueError, match=r"unknown date format 'iso'"):
        format_date(d, "iso")


@pytest.mark.parametrize(
    "date",
    [dt.date(1950, 1, 1), dt.date(2049, 12, 31), dt.date(2000, 2, 29), dt.date(1999, 12, 31)],
)
def test_every_format_parses_back_to_the_same_iso_date(date):
    for fmt in DATE_FORMATS:
        assert parse_date(format_date(date, fmt), fmt).isoformat() == date.isoformat(), fmt


def test_toy_dates_pairs_are_right_deterministic_and_cover_range_and_formats():
    pairs = toy_dates(3000, 0)
    assert len(pairs) == 3000 and pairs == toy_dates(3000, 0)
    assert pairs == toy_dates(3000, np.random.default_rng(0))
    assert pairs != toy_dates(3000, 1)
    seen = set()
    years = []
    for src, iso in pairs:
        assert len(iso) == 10 and iso[4] == iso[7] == "-"
        date = dt.date.fromisoformat(iso)
        years.append(date.year)
        # the source reads back to the target in exactly the format(s) that write it
        fmts = [f for f in DATE_FORMATS if format_date(date, f) == src]
        assert fmts, src
        seen.update(fmts)
        assert all(parse_date(src, f) == date for f in fmts)
    assert seen == set(DATE_FORMATS)
    assert min(years) == 1950 and max(years) == 2049
    assert toy_dates(0, 0) == []


def test_toy_dates_format_subset_and_errors():
    pairs = toy_dates(50, 3, formats=["dd/mm/yyyy"])
    assert all(src == format_date(dt.date.fromisoformat(iso), "dd/mm/yyyy") for src, iso in pairs)
    assert toy_dates(5, 3, formats="dd.mm.yy") == toy_dates(5, 3, formats=["dd.mm.yy"])
    with pytest.raises(ValueError, match=r"unknown date format 'yyyy'"):
        toy_dates(5, 0, formats=["yyyy"])
    with pytest.raises(ValueError, match=r"formats is empty"):
        toy_dates(5, 0, formats=[])
    with pytest.raises(ValueError, match=r"n must be a non-negative integer"):
        toy_dates(-1, 0)


def test_char_vocab_round_trip_and_reserved_ids():
    vocab = CharVocab(["ba", "ca"])
    assert vocab.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b", "c"] and len(vocab) == 7
    assert (vocab.pad, vocab.bos, vocab.eos, vocab.unk) == (0, 1, 2, 3)
    assert vocab.encode("cab") == [6, 4, 5]
    assert vocab.encode("cab", add_bos=True, add_eos=True) == [1, 6, 4, 5, 2]
    assert vocab.encode("xa") == [3, 4]
    assert vocab.decode([1, 6, 4, 0, 5, 2, 4, 4]) == "cab"  # stops at <eos>, skips pad/bos
    assert vocab.decode(np.array([4, 3])) == "a\N{REPLACEMENT CHARACTER}"
    with pytest.raises(ValueError, match=r"id 9 is out of range"):
        vocab.decode([4, 9])
    with pytest.raises(TypeError, match=r"built from strings"):
        CharVocab([["a"]])
    dv = date_vocab()
    for src, iso in toy_dates(2000, 5):
        for s in (src, iso):
            ids = dv.encode(s, add_bos=True, add_eos=True)
            assert dv.unk not in ids and dv.decode(ids) == s


def test_pad_sequences():
    ids, lengths = pad_sequences([[5, 6, 7], [8], np.array([9, 9])])
    assert ids.dtype == np.int64 and lengths.dtype == np.int64
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0], [9, 9, 0]])
    np.testing.assert_array_equal(lengths, [3, 1, 2])
    ids, _ = pad_sequences([[1], [2, 3]], pad=-1)
    np.testing.assert_array_equal(ids, [[1, -1], [2, 3]])
    with pytest.raises(ValueError, match=r"at least one sequence"):
        pad_sequences([])
    with pytest.raises(ValueError, match=r"sequence 1 must be a 1-D sequence of ints"):
        pad_sequences([[1], [0.5]])


# --- ch11_timeseries: Taylor's electricity demand and the monthly CO2 series --------------------


def test_taylor_known_values_and_calendar():
    s = load_series("taylor")
    assert s.name == "taylor" and s.unit == "MW" and s.freq == "half-hourly"
    assert s.values.shape == (4032,) and s.values.dtype == np.float64
    np.testing.assert_array_equal(s.values[:5], [22262.0, 21756.0, 22247.0, 22759.0, 22549.0])
    assert not np.isnan(s.values).any() and not s.filled.any()
    # 12 whole weeks of 336 half hours, from Monday 5 June 2000 00:00 to Sunday 27 August 23:30.
    assert len(s) == 12 * 336
    assert s.time[0] == np.datetime64("2000-06-05T00:00")
    assert s.time[-1] == np.datetime64("2000-08-27T23:30")
    assert (np.diff(s.time) == np.timedelta64(30, "m")).all()
    first_day = s.time[0].astype("datetime64[D]").astype(object)
    assert first_day.strftime("%A") == "Monday"
    # Demand is higher on weekdays than at weekends: the weekly period is real.
    days = s.values.reshape(-1, 48).mean(axis=1)  # (84,) daily means
    weekday = np.arange(84) % 7 < 5
    assert days[weekday].mean() > 1.1 * days[~weekday].mean()


def test_co2_monthly_means_of_measured_weeks():
    weekly = load_series("co2")
    s = load_series("co2_monthly")
    assert s.name == "co2_monthly" and s.unit == "ppmv" and s.freq == "monthly"
    assert s.values.shape == (526,) and not np.isnan(s.values).any()
    assert s.time[0] == np.datetime64("1958-03") and s.time[-1] == np.datetime64("2001-12")
    filled = [str(t) for t in s.time[s.filled]]
    assert filled == ["1958-06", "1958-10", "1964-02", "1964-03", "1964-04"]
    assert "5 months" in s.source
    # A month without gaps is the plain mean of its measured weeks.
    months = weekly.time.astype("datetime64[M]")
    k = int(np.flatnonzero(s.time == np.datetime64("1990-07"))[0])
    in_month = (months == np.datetime64("1990-07")) & ~weekly.filled
    assert s.values[k] == pytest.approx(weekly.values[in_month].mean())
    # The three missing months of 1964 lie on the line between February's neighbours.
    gap = np.flatnonzero(
        (s.time >= np.datetime64("1964-01")) & (s.time <= np.datetime64("1964-05"))
    )
    np.testing.assert_allclose(np.diff(s.values[gap], 2), 0.0, atol=1e-9)


# --- ch12_text: the pydoc corpus and wordfreq's words ------------------------------------------


def test_pydoc_topics_text():
    from rnn_ref.datasets import load_text

    text = load_text("pydoc_topics")
    assert isinstance(text, str) and len(text) > 400_000
    assert text.startswith('The "assert" statement')
    assert 80 <= len(set(text)) <= 130
    assert load_text() == text  # the default


def test_load_text_reads_a_users_file(tmp_path):
    from rnn_ref.datasets import load_text

    f = tmp_path / "corpus.txt"
    f.write_bytes("\ufeffline one\r\nligne deux é\n".encode())
    assert load_text(f) == "line one\nligne deux é\n"
    assert load_text(str(f)) == "line one\nligne deux é\n"


def test_load_text_errors(tmp_path):
    from rnn_ref.datasets import load_text

    with pytest.raises(ValueError, match="unknown text 'shakespeare'"):
        load_text("shakespeare")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_text(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="a folder"):
        load_text(tmp_path)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="not a UTF-8 text file"):
        load_text(tmp_path / "latin1.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_text(tmp_path / "empty.txt")
    with pytest.raises(TypeError):
        load_text(42)


def test_load_words_are_latin_unique_and_unambiguous():
    import wordfreq

    from rnn_ref.datasets import load_words

    words, labels, langs = load_words(("en", "de", "fr"), n_top=3000)
    assert langs == ("en", "de", "fr") and labels.dtype == np.int64
    assert len(words) == labels.shape[0] > 5000
    assert len(set(words)) == len(words)  # each word once: no word can be in two splits
    assert set(np.unique(labels)) == {0, 1, 2}
    for w in words:
        assert w.isalpha() and w == w.lower() and len(w) >= 2
    # Words of several languages' lists are dropped; words of one list keep its label.
    tops = {lang: set(wordfreq.top_n_list(lang, 3000)) for lang in langs}
    assert "in" in tops["en"] and "in" in tops["de"] and "in" not in words
    for w, k in zip(words[::97], labels[::97], strict=True):
        assert w in tops[langs[k]] and sum(w in t for t in tops.values()) == 1
    assert "which" in words and labels[words.index("which")] == 0
    assert "und" in words and labels[words.index("und")] == 1


def test_load_words_reads_a_users_file_and_rejects_bad_input(tmp_path):
    from rnn_ref.datasets import load_words

    f = tmp_path / "words.tsv"
    f.write_text("# word\tlabel\nhund\tde\ndog\ten\nchien\tfr\nhund\tde\nbank\ten\nbank\tde\n")
    words, labels, langs = load_words(path=f)
    assert langs == ("de", "en", "fr")
    assert words == ["hund", "dog", "chien"]  # 'bank' has two labels; the repeat is kept once
    np.testing.assert_array_equal(labels, [0, 1, 2])
    (tmp_path / "bad.tsv").write_text("hund\n")
    with pytest.raises(ValueError, match="line 1: expected 'word<TAB>label'"):
        load_words(path=tmp_path / "bad.tsv")
    with pytest.raises(ValueError, match="unknown language 'ru'"):
        load_words(("en", "ru"))
    with pytest.raises(ValueError, match="at least two different languages"):
        load_words(("en",))
    with pytest.raises(ValueError, match="n_top"):
        load_words(("en", "de"), n_top=0)
