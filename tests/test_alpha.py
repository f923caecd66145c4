import math

import pytest

from multimodal_game.alpha import allocate, validate_alpha

NAMES = ["a", "b"]


@pytest.mark.parametrize(
    "alpha, message",
    [
        ([[1.0]], "1 x 1 but there are 2 players"),
        ([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], "square"),
        ([[0.5, 0.5], [math.nan, 0.5]], r"alpha\[1\]\[0\].*not finite"),
        ([[1.2, -0.2], [0.5, 0.5]], r"alpha\[0\]\[1\] = -0.2 is negative"),
        ([[0.5, 0.4], [0.5, 0.5]], "row 0 of alpha .player 'a'. sums to 0.9"),
        ([[0.5, 0.5], [1.0, 0.0]], r"alpha\[1\]\[1\] must be > 0"),
        ("abc", "numeric"),
    ],
)
def test_invalid_alpha_is_named(alpha, message):
    with pytest.raises(ValueError, match=message):
        validate_alpha(alpha, NAMES)


def test_valid_alpha_passes():
    a = validate_alpha([[0.7, 0.3], [0.25, 0.75]], NAMES)
    assert a.shape == (2, 2)


def test_allocate_sums_and_keeps_every_positive_source():
    assert allocate([0.5, 0.5], 10) == [5, 5]
    counts = allocate([0.98, 0.01, 0.01], 10)
    assert sum(counts) == 10 and min(counts) == 1
    assert allocate([1.0, 0.0], 7) == [7, 0]
    assert allocate([1 / 3, 1 / 3, 1 / 3], 10) == [4, 3, 3]
    with pytest.raises(ValueError, match="smaller than the number of data sources"):
        allocate([0.5, 0.25, 0.25], 2)
