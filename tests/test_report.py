"""What sktag tells its user while it works (``sktag._runtime.report``): progress bars, and warnings that point at the
user's code."""

import os
import warnings

import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

import sktag
from conftest import CNO, Y_CNO
from conftest import quick_reg
from sktag._runtime.report import progress, user_stacklevel

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_no_progress_bar_gives_back_the_iterable_itself():
    items = [3, 1, 2]
    assert progress(items, False) is items
    assert progress(items, 0, desc="ignored") is items


def test_a_progress_bar_yields_the_same_items_and_writes_to_stderr(capsys):
    from tqdm.auto import tqdm

    bar = progress(iter([3, 1, 2]), True, desc="counting", total=3)
    assert isinstance(bar, tqdm)
    assert list(bar) == [3, 1, 2]
    bar.close()
    assert "counting" in capsys.readouterr().err


def test_verbose_progress_bar(make_reg, length_task, capsys):
    X, y = length_task
    make_reg(max_iter=2, verbose=1).fit(X, y)
    err = capsys.readouterr().err
    assert "fit" in err and "epoch" in err


def test_the_stack_level_of_a_caller_outside_the_package_is_one():
    assert user_stacklevel() == 1

    def nested():
        return user_stacklevel()

    assert nested() == 1  # a caller outside sktag: itself


def test_the_stack_level_skips_every_frame_inside_the_package():
    """Code compiled as if it were a module of sktag counts as the package: its frames are skipped."""
    package = os.path.dirname(os.path.abspath(sktag.__file__))
    namespace = {"user_stacklevel": user_stacklevel}
    code = "def inner():\n    return user_stacklevel()\n\ndef outer():\n    return inner()\n"
    exec(compile(code, os.path.join(package, "_as_if_inside.py"), "exec"), namespace)
    assert namespace["inner"]() == 2
    assert namespace["outer"]() == 3


def _caught(category, call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, category)]


def test_a_convergence_warning_of_fit_points_at_the_callers_line(tiny_model):
    est = quick_reg(tiny_model, max_iter=1)
    caught = _caught(ConvergenceWarning, lambda: est.fit(CNO, Y_CNO))
    assert caught and caught[0].filename == __file__


def test_a_warning_of_predict_points_at_the_callers_line(tiny_model):
    X = pd.DataFrame({"a": CNO})
    est = quick_reg(tiny_model, domains={"a": "Text"}).fit(X, Y_CNO)
    caught = _caught(UserWarning, lambda: est.predict(X.to_numpy()))
    assert [str(w.message) for w in caught] == [
        "X has no column names, but this TagRegressor was fitted with a DataFrame; columns are matched by position."]
    assert caught[0].filename == __file__
