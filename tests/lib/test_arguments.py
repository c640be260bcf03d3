import numpy as np
import pytest

from recs_assets.arguments import is_number, number_in, positive_int, whole_number


@pytest.mark.parametrize("bad", [True, False, 0, -1, 2.0, "3", None])
def test_positive_int_refuses_non_positive_and_non_integers(bad):
    with pytest.raises(ValueError, match="N must be a positive integer"):
        positive_int(bad, "N")


def test_positive_int_accepts_numpy_integers_and_returns_python_int():
    value = positive_int(np.int64(3), "N")
    assert value == 3 and type(value) is int


def test_whole_number_minimum_is_named():
    assert whole_number(0, "seed", minimum=0) == 0
    with pytest.raises(ValueError, match="seed must be at least 0"):
        whole_number(-1, "seed", minimum=0)
    with pytest.raises(ValueError, match="seed must be a whole number"):
        whole_number(True, "seed")


def test_number_in_open_and_closed_ends():
    assert number_in(1, "ratio", 0, 1) == 1.0
    with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\)"):
        number_in(1, "ratio", 0, 1, open_low=True, open_high=True)
    with pytest.raises(ValueError, match="ratio must be a number"):
        number_in(float("nan"), "ratio", 0, 1)
    assert not is_number(True) and is_number(np.float32(0.5))
