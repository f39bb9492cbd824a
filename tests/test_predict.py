"""Reloading a trained run and predicting: rkgen.load_run and `rkgen predict`.

Tiny real runs (compiled modules the other tests compile too: euler, midpoint), trained once per
session into a temporary folder; the predictions must reproduce the accuracies the trainer
recorded, exactly.
"""

import json
import os
import shutil
import warnings

import numpy as np
import pytest

import rkgen
from conftest import GENERATED
from rkgen.errors import RkgenError
from rkgen.train import predict_cli
from rkgen.train.predict import load_run
from rkgen.train.runs import read_history

TINY = dict(layers=3, plots=False, progress=False)


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """name -> run folder: explicit rk with the squared loss (and --data-scale), a plain net, an
    implicit tableau with learned steps, three classes with cross-entropy and adam, a run from a
    generated *_net.py file, and one on a CSV file with named classes and its label in column 1."""
    base = tmp_path_factory.mktemp("runs")
    specs = {
        "euler": dict(tableau="euler", dataset="spiral", iterations=5, data_scale=0.5),
        "net": dict(model="net", tableau=None, dataset="donut2d", iterations=5),
        "midpoint": dict(tableau="midpoint", model="odenet", dataset="squares", iterations=3),
        "3c": dict(tableau="euler", dataset="donut2d-3c", optimizer="adam", epochs=1),
        "netpy": dict(tableau=str(GENERATED / "euler_net.py"), dataset="spiral", iterations=2),
    }
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    lines = [f"{a!r},{'yes' if a * b > 0 else 'no'},{b!r}" for a, b in x.tolist()]
    (base / "mine.csv").write_text("u,answer,v\n" + "\n".join(lines) + "\n")
    specs["csv"] = dict(tableau="euler", dataset=str(base / "mine.csv"), label_column=1, iterations=2)
    out = {}
    for name, kw in specs.items():
        if name != "csv":
            kw["samples"] = 40
        res = rkgen.train(out=str(base / name), **TINY, **kw)
        assert res.status == "completed", res.message
        out[name] = base / name
    return out


def _summary(path):
    return json.loads((path / "summary.json").read_text())


@pytest.mark.parametrize("name", ["euler", "net", "midpoint", "3c", "netpy", "csv"])
def test_predictions_reproduce_the_recorded_accuracies(runs, name):
    run = load_run(runs[name])
    final = _summary(runs[name])["final"]
    hist = read_history(runs[name] / "history.csv")
    ds = run.dataset
    for split in ("train", "test"):
        x, c = getattr(ds, f"x_{split}"), getattr(ds, f"c_{split}")
        acc = np.count_nonzero(run.predict(x, scaled=True) == c) / len(c)
        assert acc == final[f"{split}_accuracy"] == hist[f"{split}_accuracy"][-1]
        assert run.evaluate(split) == acc
    p = run.predict_proba(ds.x_test, scaled=True)
    assert p.shape == (len(ds.x_test), run.n_classes)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.all((p >= 0) & (p <= 1))
    pred = run.predict(ds.x_test, scaled=True)
    assert pred.dtype.kind == "i" and np.array_equal(pred, np.argmax(p, axis=1))
    names = ("no", "yes") if name == "csv" else tuple(str(k) for k in range(run.n_classes))
    assert run.class_names == names
    assert run.predict_labels(ds.x_test[:4], scaled=True).tolist() == [names[k] for k in pred[:4]]
    labels = run.decode(ds.c_test)
    assert run.accuracy(ds.x_test, labels, scaled=True) == final["test_accuracy"]
    assert run.summary["status"] == "completed" and run.status == "completed"
    assert set(run.params) >= {"K", "beta", "W", "mu"} and ("h" in run.params) == (name != "net")


def test_what_load_run_returns(runs):
    run = rkgen.load_run(runs["3c"])
    assert run.config.optimizer == "adam" and run.config.dataset == "donut2d-3c"
    assert run.model.loss == "cross-entropy" and run.n_classes == 3 and run.dim == 2
    assert "rk-euler on donut2d-3c, 3 classes" in repr(run)
    squared = load_run(runs["euler"])
    assert squared.model.loss == "squared" and squared.n_classes == 2
    x = squared.dataset.x_test[:5] / squared.config.data_scale  # the points as in the source
    z = squared.model.forward(squared.flat, squared.dataset.x_test[:5], keep_tape=False).logits
    p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
    np.testing.assert_allclose(squared.predict_proba(x), np.column_stack([1 - p1, p1]), rtol=1e-12)


def test_data_scale_is_applied_to_raw_points(runs):
    run = load_run(runs["euler"])
    assert run.config.data_scale == 0.5  # a power of two: dividing and multiplying back is exact
    xs = run.dataset.x_test
    np.testing.assert_array_equal(run.predict_proba(xs / 0.5), run.predict_proba(xs, scaled=True))
    assert not np.array_equal(run.predict_proba(xs), run.predict_proba(xs, scaled=True))


def test_bad_points_are_one_clear_error(runs):
    run = load_run(runs["euler"])
    for bad, match in [
        (np.zeros((3, 3)), r"shape \(m, 2\).*got shape \(3, 3\)"),
        (np.zeros(2), r"shape \(m, 2\)"),
        (np.array([[0.0, 1.0], [np.nan, 0.0]]), r"^1 point \(point 2\) holds NaN or infinite values$"),
        (np.full((3, 2), np.inf), r"^3 points \(the first: point 1\) hold NaN or infinite values$"),
        (np.array([["a", "b"]]), "real numbers"),
    ]:
        with pytest.raises(RkgenError, match=match):
            run.predict(bad)
    with pytest.raises(RkgenError, match="'7' is not a class"):
        run.accuracy(np.zeros((1, 2)), [7])
    assert run.predict_proba(np.zeros((0, 2))).shape == (0, 2)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_bad_run_folders_are_one_clear_error(runs, tmp_path):
    with pytest.raises(RkgenError, match="no such run folder"):
        load_run(tmp_path / "nothing")
    for name in ("params.npz", "config.json", "dataset.npz"):
        r = _copy(runs["euler"], tmp_path / f"no-{name}")
        (r / name).unlink()
        with pytest.raises(RkgenError, match=f"not a trained run folder \\(no {name}\\)"):
            load_run(r)
    r = _copy(runs["euler"], tmp_path / "broken-json")
    (r / "config.json").write_text("{not json")
    with pytest.raises(RkgenError, match="cannot read it as JSON"):
        load_run(r)
    r = _copy(runs["euler"], tmp_path / "other-params")  # the parameters of another model
    shutil.copy(runs["3c"] / "params.npz", r / "params.npz")
    with pytest.raises(RkgenError, match="does not fit the model of config.json"):
        load_run(r)
    r = _copy(runs["euler"], tmp_path / "pickled")
    np.savez(r / "params.npz", flat=np.array([{"a": 1}], dtype=object))
    with pytest.raises(RkgenError, match="not a readable .npz"):
        load_run(r)
    r = _copy(runs["euler"], tmp_path / "other-tableau")
    with pytest.raises(RkgenError, match="not the one the run was trained with"):
        load_run(r, network="midpoint")
    r = _copy(runs["euler"], tmp_path / "newer")
    saved = json.loads((r / "config.json").read_text())
    saved["config"]["option_from_the_future"] = 1
    (r / "config.json").write_text(json.dumps(saved))
    with pytest.raises(RkgenError, match="option_from_the_future"):
        load_run(r)


def test_a_moved_tableau_file_is_named(runs, tmp_path):
    """A run trained from a JSON tableau that has since moved: one line; network= finds it."""
    tab = tmp_path / "mine.json"
    shutil.copy(rkgen.tableau.__file__.replace("tableau.py", "tableaux/euler.json"), tab)
    out = tmp_path / "json-run"
    rkgen.train(tableau=str(tab), dataset="spiral", samples=40, iterations=1, out=str(out), **TINY)
    assert load_run(out).evaluate() == _summary(out)["final"]["test_accuracy"]
    moved = tab.rename(tmp_path / "moved.json")
    with pytest.raises(RkgenError, match=r"tableau file '.*mine\.json'.*not there any more"):
        load_run(out)
    assert load_run(out, network=str(moved)).evaluate() == _summary(out)["final"]["test_accuracy"]
    fake = tmp_path / "evil_net.py"
    fake.write_text("raise SystemExit('imported')\n")
    with pytest.raises(RkgenError, match="not a network module written by rkgen"):
        load_run(out, network=str(fake))


# -- the command line ------------------------------------------------------------------------------


def _cli(capsys, *argv):
    code = predict_cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _parse(text):
    lines = text.splitlines()
    rows = [line.split(",") for line in lines[1:]]
    return lines[0].split(","), np.array([[float(v) for v in r[:-1]] for r in rows]), [r[-1] for r in rows]


def test_cli_matches_the_api(runs, tmp_path, capsys):
    run = load_run(runs["3c"])
    ds = run.dataset
    data = tmp_path / "points.csv"
    rows = ["x1,x2,class"] + [f"{a!r},{b!r},{c}" for (a, b), c in zip(ds.x_test.tolist(), ds.c_test, strict=True)]
    data.write_text("\n".join(rows) + "\n")
    code, out, err = _cli(capsys, runs["3c"], data)
    assert code == 0
    header, p, labels = _parse(out)
    assert header == ["p_0", "p_1", "p_2", "label"]
    np.testing.assert_array_equal(p, run.predict_proba(ds.x_test))  # repr: read back exactly
    assert labels == run.predict_labels(ds.x_test).tolist()
    acc = _summary(runs["3c"])["final"]["test_accuracy"]
    n = len(ds.c_test)
    assert err == f"accuracy {100 * acc:.2f}% ({round(acc * n)} of {n} points)\n"
    # features only, to a file; an .npz with x and y gives the same
    feats = tmp_path / "feats.csv"
    feats.write_text("\n".join(f"{a!r},{b!r}" for a, b in ds.x_test[:5].tolist()) + "\n")
    target = tmp_path / "pred.csv"
    code, out2, err2 = _cli(capsys, runs["3c"], feats, "-o", target)
    assert (code, out2, err2) == (0, "", "")
    assert target.read_text().splitlines() == out.splitlines()[:6]
    np.savez(tmp_path / "pts.npz", x=ds.x_test, y=ds.c_test)
    assert _cli(capsys, runs["3c"], tmp_path / "pts.npz") == (0, out, err)


def test_cli_applies_the_data_scale_to_text_labelled_points(runs, tmp_path, capsys):
    run = load_run(runs["euler"])  # data_scale 0.5: DATA holds the points as in the source
    raw = run.dataset.x_test / 0.5
    np.savez(tmp_path / "pts.npz", x=raw, y=np.where(run.dataset.c_test == 1, "1", "0"))
    code, out, err = _cli(capsys, runs["euler"], tmp_path / "pts.npz")
    assert code == 0
    _, p, labels = _parse(out)
    np.testing.assert_array_equal(p, run.predict_proba(run.dataset.x_test, scaled=True))
    acc = _summary(runs["euler"])["final"]["test_accuracy"]
    assert err.startswith(f"accuracy {100 * acc:.2f}%")


def test_cli_errors_are_one_line(runs, tmp_path, capsys):
    r = runs["euler"]
    cases = {
        "missing.csv": None,
        "wide.csv": "1,2,3,4\n",
        "nan.csv": "0.5,nan\n",
        "word.csv": "0.5,0.1\n0.5,abc\n",
        "label.csv": "0.5,0.1,0\n0.5,0.2,7\n",
        "ragged.csv": "0.5,0.1\n0.5\n",
        "points.json": "[]",
    }
    expect = {
        "missing.csv": "no such file",
        "wide.csv": "has 4 columns; the run's data has 2 features",
        "nan.csv": "line 1, column 2: the feature 'nan' is not finite",
        "word.csv": "line 2, column 2: the feature 'abc' is not a number",
        "label.csv": "line 2: the label '7' is not a class of this run",
        "ragged.csv": "line 2 has 1 column",  # "1 column" or the old "1 columns"
        "points.json": "a .csv, .txt or .npz file",
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        code, out, err = _cli(capsys, r, tmp_path / name)
        assert code == 2 and out == "", name
        assert err.count("\n") == 1 and err.startswith("rkgen: error: ") and expect[name] in err, err
    np.savez(tmp_path / "nox.npz", points=np.zeros((2, 2)))
    code, _, err = _cli(capsys, r, tmp_path / "nox.npz")
    assert code == 2 and "an array 'x'" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, tmp_path, tmp_path / "nox.npz")
    assert code == 2 and "not a trained run folder" in err
    good = tmp_path / "good.csv"
    good.write_text("0.5,0.1\n")
    (tmp_path / "adir").mkdir()
    code, out, err = _cli(capsys, r, good, "-o", tmp_path / "adir")
    assert code == 2 and "is a folder" in err and err.count("\n") == 1


def test_cli_on_named_classes(runs, tmp_path, capsys):
    """A run trained on a CSV file with the label in column 1 ("no"/"yes"): DATA in the same
    layout (the run's --label-column is the default), or features only."""
    run = load_run(runs["csv"])
    assert run.config.label_column == 1
    code, out, err = _cli(capsys, runs["csv"], runs["csv"].parent / "mine.csv")
    assert code == 0 and err.startswith("accuracy ") and "of 60 points" in err
    header, p, labels = _parse(out)
    assert header == ["p_no", "p_yes", "label"] and set(labels) <= {"no", "yes"}
    x = np.loadtxt(runs["csv"].parent / "mine.csv", delimiter=",", skiprows=1, usecols=(0, 2))
    np.testing.assert_array_equal(p, run.predict_proba(x))
    assert labels == run.predict_labels(x).tolist()
    truth = np.loadtxt(runs["csv"].parent / "mine.csv", delimiter=",", skiprows=1, usecols=1, dtype=str)
    assert err == f"accuracy {100 * run.accuracy(x, truth):.2f}% ({round(run.accuracy(x, truth) * 60)} of 60 points)\n"
    (tmp_path / "bad.csv").write_text("0.1,maybe,0.2\n")
    code, out, err = _cli(capsys, runs["csv"], tmp_path / "bad.csv")
    assert code == 2 and out == "" and "the label 'maybe' is not a class of this run; its classes are no, yes" in err


# -- what the command refuses, and how it says it ---------------------------------------------------


def _one_line_error(code, out, err, text):
    assert code == 2 and out == "", err
    assert err.count("\n") == 1 and err.startswith("rkgen: error: ") and "Traceback" not in err, err
    assert text in err, err


def test_cli_never_overwrites_the_run_or_its_input(runs, tmp_path, capsys):
    """-o naming a file of the run folder (also through a link to the folder, or .. in the path) or the
    input DATA itself is refused, and the file is left as it was; a new file in the run folder is fine."""
    r = _copy(runs["euler"], tmp_path / "run")
    data = tmp_path / "points.csv"
    data.write_text("0.5,0.1\n0.2,0.3\n")
    (tmp_path / "link").symlink_to(r)
    own = ["config.json", "params.npz", "dataset.npz", "summary.json", "history.csv"]
    before = {name: (r / name).read_bytes() for name in own}
    for name in own:
        for out in (r / name, tmp_path / "link" / name, r / ".." / "run" / name):
            code, stdout, err = _cli(capsys, r, data, "-o", out)
            want = f"-o would overwrite the run's own {name}; write the predictions elsewhere"
            _one_line_error(code, stdout, err, want)
    assert {name: (r / name).read_bytes() for name in own} == before
    load_run(r)  # still a whole run
    text = data.read_text()
    for out in (data, tmp_path / "sub" / ".." / "points.csv"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        code, stdout, err = _cli(capsys, r, data, "-o", out)
        _one_line_error(code, stdout, err, "-o is the input DATA")
    os.link(data, tmp_path / "hard.csv")  # the same file under another name
    _one_line_error(*_cli(capsys, r, data, "-o", tmp_path / "hard.csv"), "-o is the input DATA")
    assert data.read_text() == text
    _one_line_error(*_cli(capsys, r, data, "-o", ""), "-o is empty")
    missing = tmp_path / "gone.csv"  # DATA's own error comes first
    _one_line_error(*_cli(capsys, r, missing, "-o", missing), "gone.csv: no such file")
    code, stdout, err = _cli(capsys, r, data, "-o", r / "predictions.csv")  # a new file: nothing is replaced
    assert (code, stdout, err) == (0, "", "") and (r / "predictions.csv").read_text().startswith("p_0,p_1,label\n")


def test_cli_says_what_DATA_and_RUN_are(runs, tmp_path, capsys):
    r = runs["euler"]
    os.mkfifo(tmp_path / "fifo.csv")
    _one_line_error(*_cli(capsys, r, tmp_path / "fifo.csv"), "fifo.csv is not a regular file (it is a named pipe)")
    _one_line_error(*_cli(capsys, r, "/dev/null"), "/dev/null is not a regular file (it is a device)")
    (tmp_path / "folder.csv").mkdir()
    _one_line_error(*_cli(capsys, r, tmp_path / "folder.csv"), "folder.csv is a folder")
    _one_line_error(*_cli(capsys, r, tmp_path / "missing.csv"), "missing.csv: no such file")
    good = tmp_path / "good.csv"
    good.write_text("0.5,0.1\n")
    _one_line_error(*_cli(capsys, good, good), "good.csv is a file, not a run folder")
    _one_line_error(*_cli(capsys, tmp_path / "nothing", good), "nothing: no such run folder")
    with pytest.raises(RkgenError, match="is a file, not a run folder"):
        load_run(good)


def test_cli_npz_messages(runs, tmp_path, capsys):
    """Not a zip at all (text, a bare .npy): "not an .npz (zip) file"; Python objects only for a zip that
    holds a pickled array; entries named 1-based."""
    r = runs["euler"]
    (tmp_path / "text.npz").write_text("hello\n")
    np.save(tmp_path / "bare.npy", np.zeros((2, 2)))
    shutil.copy(tmp_path / "bare.npy", tmp_path / "bare.npz")
    for name in ("text.npz", "bare.npz"):
        code, out, err = _cli(capsys, r, tmp_path / name)
        _one_line_error(code, out, err, f"{name}: not an .npz (zip) file")
        assert "Python objects" not in err
    np.savez(tmp_path / "objects.npz", x=np.zeros((1, 2)), y=np.array([{"a": 1}], dtype=object))
    _one_line_error(*_cli(capsys, r, tmp_path / "objects.npz"), "it holds Python objects, which rkgen never loads")
    np.savez(tmp_path / "label.npz", x=np.zeros((2, 2)), y=np.array([0, 7]))
    _one_line_error(*_cli(capsys, r, tmp_path / "label.npz"), "label.npz: y entry 2: the label '7' is not a class")
    np.savez(tmp_path / "empty.npz", x=np.zeros((2, 2)), y=np.array(["0", " "]))
    _one_line_error(*_cli(capsys, r, tmp_path / "empty.npz"), "empty.npz: y entry 2 is an empty label")
    np.savez(tmp_path / "nan.npz", x=np.array([[0.0, 0.0], [0.0, np.nan]]))
    _one_line_error(*_cli(capsys, r, tmp_path / "nan.npz"), "nan.npz: x row 2 holds NaN or infinite values")
    np.savez(tmp_path / "ok.npz", x=np.zeros((2, 2)))
    _one_line_error(*_cli(capsys, r, tmp_path / "ok.npz", "--label-column", "1"), "--label-column is for a CSV file")


def test_cli_one_row_csv_and_the_label_column(runs, tmp_path, capsys):
    """A one-row CSV is data unless ALL its feature cells are text; the label column is the run's or
    --label-column, and a file without a label column refuses --label-column."""
    one = tmp_path / "one.csv"
    one.write_text("0.1,yes,0.2\n")  # the csv run's layout: the label in column 1 (0-based)
    code, out, err = _cli(capsys, runs["csv"], one)
    assert (
        code == 0
        and out.count("\n") == 2
        and err
        == ("accuracy 100.00% (1 of 1 point)\n" if out.endswith(",yes\n") else "accuracy 0.00% (0 of 1 point)\n")
    )
    (tmp_path / "first.csv").write_text("1,0.1,0.2\n")
    code, out, err = _cli(capsys, runs["euler"], tmp_path / "first.csv", "--label-column", "0")
    assert code == 0 and err.endswith("of 1 point)\n")
    assert out == _cli(capsys, runs["euler"], tmp_path / "first.csv", "--label-column", "-3")[1]
    (tmp_path / "feats.csv").write_text("0.5,0.1\n0.2,0.3\n")
    for col in ("5", "0", "-1"):
        code, out, err = _cli(capsys, runs["euler"], tmp_path / "feats.csv", "--label-column", col)
        want = f"--label-column {col} given, but the file has no label column: its 2 columns are the features"
        _one_line_error(code, out, err, want)
    assert _cli(capsys, runs["euler"], tmp_path / "feats.csv")[0] == 0


def _scaled_copy(runs, tmp_path, scale):
    r = _copy(runs["euler"], tmp_path / f"scale-{scale:g}")
    saved = json.loads((r / "config.json").read_text())
    saved["config"]["data_scale"] = scale
    (r / "config.json").write_text(json.dumps(saved))
    return r


def test_data_scale_overflow_is_one_line_without_warnings(runs, tmp_path, capsys):
    r = _scaled_copy(runs, tmp_path, 1e10)
    big = tmp_path / "big.csv"
    big.write_text("# huge\n0,0\n1e308,1e308\n-1e300,0\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = _cli(capsys, r, big)
        np.savez(tmp_path / "big.npz", x=np.array([[0.0, 0.0], [0.0, 1e308]]))
        code2, out2, err2 = _cli(capsys, r, tmp_path / "big.npz")
        run = load_run(r)
        with pytest.raises(RkgenError) as e:
            run.predict(np.array([[1e300, 0.0]]))
    assert caught == []
    _one_line_error(
        code,
        out,
        err,
        "big.csv: 2 points (the first: line 3) overflow to infinity when scaled by the run's data scale 1e+10 "
        "(its --data-scale): with it, the values must stay below 1.8e+298 in magnitude",
    )
    _one_line_error(code2, out2, err2, "big.npz: 1 point (x row 2) overflows to infinity when scaled by the run's data")
    assert str(e.value).startswith("1 point (point 1) overflows to infinity when scaled by the run's data scale 1e+10")
    assert run.predict(np.array([[1e-10, 0.0]])).shape == (1,)


def test_cli_one_row_csv_with_a_number_among_its_features_is_data(runs, tmp_path, capsys):
    """The trainer's reader (datasets.csv_table) takes a first row as a header only when ALL its feature
    cells are text: with the label in the wrong column, a one-row file names the feature that is not a
    number instead of saying "a header and no data rows"."""
    one = tmp_path / "one.csv"
    one.write_text("0.1,yes,0.2\n")  # the euler run's label is the last column: "yes" is a feature
    code, out, err = _cli(capsys, runs["euler"], one)
    _one_line_error(code, out, err, "line 1, column 2: the feature 'yes' is not a number")
    assert "header" not in err


def test_read_points_counts_in_words(tmp_path):
    """One feature, one column: singular in the messages."""
    wide = tmp_path / "wide.csv"
    wide.write_text("1,2,3\n")
    with pytest.raises(RkgenError) as e:
        predict_cli.read_points(wide, 1)
    assert str(e.value).endswith(
        "line 1 has 3 columns; the run's data has 1 feature, so give 1 column (the feature) or 2 columns "
        "(the feature and a label)"
    )
    one = tmp_path / "one.csv"
    one.write_text("0.5\n")
    with pytest.raises(RkgenError, match="the file has no label column: its 1 column is the feature$"):
        predict_cli.read_points(one, 1, 0, given=True)
    x, labels, where = predict_cli.read_points(one, 1)
    assert x.tolist() == [[0.5]] and labels is None and where.points == ["line 1"]
