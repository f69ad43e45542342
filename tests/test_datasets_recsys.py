"""rnn_ref.datasets.load_interactions: MovieLens-100k read from the installed RecBole package (its
known counts, ranges and first rows), a user's own file (named and RecBole-style columns, token
ids, ISO times), and a clear message for every way it fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rnn_ref.datasets as ds
from rnn_ref.datasets import Interactions, load_interactions


@pytest.fixture(scope="module")
def ml():
    return load_interactions("ml-100k")


def test_ml100k_known_counts(ml):
    # Harper & Konstan 2015: 100,000 ratings (1-5) from 943 users on 1,682 movies
    assert isinstance(ml, Interactions) and len(ml) == 100_000
    assert np.unique(ml.user).size == 943 and np.unique(ml.item).size == 1682
    assert ml.user.min() == 1 and ml.user.max() == 943
    assert ml.item.min() == 1 and ml.item.max() == 1682
    for a in (ml.user, ml.item, ml.timestamp):
        assert a.dtype == np.int64 and a.shape == (100_000,)
    assert ml.rating.dtype == np.float64 and set(np.unique(ml.rating)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    # 20 September 1997 .. 22 April 1998 (Unix seconds)
    assert ml.timestamp.min() == 874724710 and ml.timestamp.max() == 893286638
    # every user rated at least 20 movies (the data set's selection rule)
    assert np.bincount(ml.user).max() == 737 and np.bincount(ml.user)[1:].min() == 20
    assert "Harper" in ml.source and "not redistributed" in ml.source


def test_ml100k_first_rows_and_titles(ml):
    # u.data's first rows, in file order
    assert ml.user[:3].tolist() == [196, 186, 22]
    assert ml.item[:3].tolist() == [242, 302, 377]
    assert ml.timestamp[:3].tolist() == [881250949, 891717742, 878887116]
    assert len(ml.titles) == 1682 and ml.titles[1] == "Toy Story"
    assert ml.titles[50] == "Star Wars"


def test_ml100k_not_in_repository():
    root = Path(__file__).resolve().parents[1]
    for p in ("rnn_ref", "book", "solutions", "exercises", "tests"):
        assert not list((root / p).rglob("*.inter")), "MovieLens must not be copied into the repo"


def test_missing_recbole_clear_error(monkeypatch):
    monkeypatch.setattr(ds._importlib_util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps recbole"):
        load_interactions("ml-100k")


def test_user_csv_file(tmp_path):
    p = tmp_path / "clicks.csv"
    p.write_text(
        "session,item,time,extra\n"
        "u1,P9,2014-04-07T10:51:09.277Z,x\n"
        "u2,P3,2014-04-07T10:51:10Z,y\n"
        "u1,P9,2014-04-07T11:00:00Z,z\n"
    )
    d = load_interactions(p, user_col="session", item_col="item", time_col="time")
    assert d.user.tolist() == [0, 1, 0] and d.item.tolist() == [0, 1, 0]
    assert d.timestamp.tolist() == [1396867869, 1396867870, 1396868400]
    assert d.rating is None and d.titles is None and str(p) in d.source


def test_user_recbole_style_tsv(tmp_path):
    p = tmp_path / "mine.inter"
    p.write_text("user_id:token\titem_id:token\ttimestamp:float\n7\t3\t100\n7\t4\t100.0\n")
    d = load_interactions(str(p))
    assert d.user.tolist() == [7, 7] and d.item.tolist() == [3, 4]
    assert d.timestamp.tolist() == [100, 100]


@pytest.mark.parametrize(
    ("content", "kwargs", "match"),
    [
        ("a,b,c\n1,2,3\n", {}, "no column 'user_id'"),
        ("user_id,item_id,timestamp\n1,2\n", {}, "row 2 has 2 fields"),
        ("user_id,item_id,timestamp\n1,2,yesterday\n", {}, "neither a number"),
        ("user_id,item_id,timestamp\n", {}, "header row and at least one event"),
    ],
)
def test_bad_files(tmp_path, content, kwargs, match):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(ValueError, match=match):
        load_interactions(p, **kwargs)


def test_bad_names(tmp_path):
    with pytest.raises(ValueError, match="Did you mean 'ml-100k'"):
        load_interactions("ml100k")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_interactions(str(tmp_path / "nope.csv"))
    with pytest.raises(FileNotFoundError, match="a folder"):
        load_interactions(tmp_path)
    with pytest.raises(TypeError, match="a name or a path"):
        load_interactions(3)
