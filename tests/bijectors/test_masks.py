import numpy as np
import pytest

from tfp_realnvp import alternating_mask, channel_mask, checkerboard_mask, half_mask
from tfp_realnvp.bijectors import validate_mask


def test_half_mask_default_and_explicit():
    np.testing.assert_array_equal(half_mask(4), [True, True, False, False])
    np.testing.assert_array_equal(half_mask(5, num_masked=3), [True, True, True, False, False])
    np.testing.assert_array_equal(half_mask(4, num_masked=1), [True, False, False, False])


@pytest.mark.parametrize("num_masked", [0, 4, -1])
def test_half_mask_rejects_degenerate_splits(refusal, num_masked):
    assert refusal(ValueError, half_mask, 4, num_masked) == (
        "`num_masked` must be between 1 and event_size - 1 = 3, so that some units condition "
        f"and some are transformed; got {num_masked}."
    )


@pytest.mark.parametrize("parity", [0, 1, 2, 3])
def test_alternating_mask_is_the_documented_parity(parity):
    """Even units masked for an even ``parity``, odd ones for an odd one."""
    np.testing.assert_array_equal(alternating_mask(5, parity), np.arange(5) % 2 == parity % 2)
    np.testing.assert_array_equal(alternating_mask(5, parity), ~alternating_mask(5, parity + 1))


@pytest.mark.parametrize("parity", [0, 1, 2, 3])
def test_checkerboard_mask_is_realnvps_board(parity):
    """``(i + j) % 2 == parity % 2`` on every channel: the top-left pixel is masked for an even
    parity (as the module's doctest shows), neighbours differ."""
    m = checkerboard_mask(3, 4, 2, parity)
    i, j = np.meshgrid(np.arange(3), np.arange(4), indexing="ij")
    want = (i + j) % 2 == parity % 2
    np.testing.assert_array_equal(m, np.repeat(want[:, :, None], 2, axis=2))
    assert m[0, 0, 0] == (parity % 2 == 0)
    np.testing.assert_array_equal(checkerboard_mask(3, 4, 2, parity + 1), ~m)


@pytest.mark.parametrize("channels, first", [(2, 1), (4, 2), (5, 2)])
@pytest.mark.parametrize("parity", [0, 1, 2, 3])
def test_channel_mask_masks_the_first_half_of_the_channels_for_an_even_parity(
    channels, first, parity
):
    """The first ``channels // 2`` channels masked (an odd count leaves the larger half
    transformed) for an even ``parity``, the others for an odd one, at every pixel."""
    m = channel_mask(2, 3, channels, parity)
    per_channel = np.arange(channels) < first
    want = per_channel if parity % 2 == 0 else ~per_channel
    np.testing.assert_array_equal(m, np.broadcast_to(want, (2, 3, channels)))


@pytest.mark.parametrize(
    "mask, shape, message",
    [
        (
            [1, 0, 1],
            None,
            "`mask` must be a boolean array (True = passed through and conditioned on); got "
            "dtype int64.",
        ),
        (
            [True, True],
            None,
            "`mask` masks every unit of the event (shape (2,)); a coupling needs at least one "
            "masked (True) and one transformed (False) unit.",
        ),
        (
            [[False], [False]],
            None,
            "`mask` masks no unit of the event (shape (2, 1)); a coupling needs at least one "
            "masked (True) and one transformed (False) unit.",
        ),
        (
            [True, False, True],
            (4,),
            "`mask` must have the event's shape (4,); got shape (3,).",
        ),
        (True, None, "`mask` must have the event's shape; got a scalar."),
    ],
)
def test_validate_mask_errors_name_the_problem(refusal, mask, shape, message):
    assert refusal(ValueError, validate_mask, mask, shape) == message


def test_validate_mask_returns_a_copy():
    mask = np.array([True, False])
    checked = validate_mask(mask, [2])
    checked[0] = False
    assert mask[0]


@pytest.mark.parametrize(
    "call, args, name",
    [
        (half_mask, (0,), "event_size"),
        (half_mask, (4, 1.5), "num_masked"),
        (alternating_mask, (0,), "event_size"),
        (checkerboard_mask, (0, 2, 2), "height"),
        (checkerboard_mask, (2, 0, 2), "width"),
        (checkerboard_mask, (2, 2, 0), "channels"),
        (channel_mask, (0, 2, 2), "height"),
        (channel_mask, (2, 0, 2), "width"),
        (channel_mask, (2, 2, 0), "channels"),
    ],
)
def test_masks_name_the_bad_size(refusal, call, args, name):
    bad = next(a for a in args if a in (0, 1.5))
    message = refusal(ValueError, call, *args)
    assert message.startswith(f"`{name}` must be ")
    assert message.endswith(f"; got {bad}.")


def test_a_channel_mask_needs_two_channels(refusal):
    assert refusal(ValueError, channel_mask, 2, 2, 1) == (
        "a channel-wise mask needs at least 2 channels; got 1."
    )


def test_every_mask_masks_the_even_units_or_first_channels_by_default():
    np.testing.assert_array_equal(alternating_mask(4), [True, False, True, False])
    np.testing.assert_array_equal(
        checkerboard_mask(2, 2, 1)[..., 0], [[True, False], [False, True]]
    )
    np.testing.assert_array_equal(channel_mask(1, 1, 2)[0, 0], [True, False])
