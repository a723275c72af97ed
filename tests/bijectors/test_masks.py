import numpy as np
import pytest

from tfp_realnvp import alternating_mask, channel_mask, checkerboard_mask, half_mask
from tfp_realnvp.bijectors import validate_mask

# masks: the Keras version changes nothing here
pytestmark = pytest.mark.one_pass


def test_half_mask_default_and_explicit():
    np.testing.assert_array_equal(half_mask(4), [True, True, False, False])
    np.testing.assert_array_equal(half_mask(5, num_masked=3), [True, True, True, False, False])


@pytest.mark.parametrize("num_masked", [0, 4, -1])
def test_half_mask_rejects_degenerate_splits(num_masked):
    with pytest.raises(ValueError, match=r"`num_masked` must be between 1 and event_size - 1"):
        half_mask(4, num_masked)


def test_alternating_mask_parities_complement():
    a, b = alternating_mask(5, 0), alternating_mask(5, 1)
    np.testing.assert_array_equal(a, [True, False, True, False, True])
    np.testing.assert_array_equal(a, ~b)


def test_checkerboard_mask_neighbours_differ_and_channels_agree():
    m = checkerboard_mask(4, 6, 3)
    assert m.shape == (4, 6, 3)
    assert not np.any(m[1:, :, 0] == m[:-1, :, 0])
    assert not np.any(m[:, 1:, 0] == m[:, :-1, 0])
    assert np.all(m == m[:, :, :1])
    np.testing.assert_array_equal(checkerboard_mask(4, 6, 3, parity=1), ~m)


def test_channel_mask_splits_channels():
    m = channel_mask(2, 2, 4)
    np.testing.assert_array_equal(m[1, 1], [True, True, False, False])
    np.testing.assert_array_equal(channel_mask(2, 2, 4, parity=1), ~m)
    with pytest.raises(ValueError, match="at least 2 channels"):
        channel_mask(2, 2, 1)


@pytest.mark.parametrize(
    "mask, shape, message",
    [
        ([1, 0, 1], None, "must be a boolean array"),
        ([True, True], None, "masks every unit"),
        ([False, False], None, "masks no unit"),
        ([True, False, True], (4,), r"must have the event's shape \(4,\); got shape \(3,\)"),
        (True, None, "got a scalar"),
    ],
)
def test_validate_mask_errors_name_the_problem(mask, shape, message):
    with pytest.raises(ValueError, match=message):
        validate_mask(mask, shape)


def test_masks_reject_bad_sizes():
    with pytest.raises(ValueError, match="`event_size` must be a positive integer; got 0"):
        half_mask(0)
    with pytest.raises(ValueError, match="`height` must be a positive integer"):
        checkerboard_mask(0, 2, 2)
