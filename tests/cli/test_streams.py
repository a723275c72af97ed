"""The command line's training stream (cli/streams.py): each epoch's batches a function of
``(seed, epoch)`` alone, so a resumed run sees the batches the uninterrupted one saw."""

import numpy as np
import tensorflow as tf

from tfp_realnvp.cli.streams import epoch_batches, for_workers


def _epochs(dataset, steps: int) -> list[list[np.ndarray]]:
    batches = [b.numpy() for b in dataset]
    assert len(batches) % steps == 0
    return [batches[i : i + steps] for i in range(0, len(batches), steps)]


def test_every_epoch_is_a_permutation_of_its_own_in_batches_with_the_remainder_last():
    x = np.arange(10, dtype=np.float32).reshape(10, 1) * [1.0, -1.0]  # row i holds i, -i
    dataset, steps = epoch_batches(x, 4, seed=7, epochs=3)
    assert steps == 3
    epochs = _epochs(dataset, steps)
    assert len(epochs) == 3
    for batches in epochs:
        assert [len(b) for b in batches] == [4, 4, 2]
        rows = np.concatenate(batches)
        np.testing.assert_array_equal(rows[:, 1], -rows[:, 0])  # whole rows, unchanged
        assert sorted(rows[:, 0]) == list(range(10))  # every row once
    orders = {tuple(np.concatenate(b)[:, 0]) for b in epochs}
    assert len(orders) == 3  # each epoch drew its own order


def test_a_stream_resumed_at_an_epoch_is_the_rest_of_the_whole_one():
    x = np.random.default_rng(0).integers(0, 5, size=(9, 2)).astype(np.float32)
    mask = np.array([1.0, 0.0])  # float64: taken in the rows' dtype
    whole, steps = epoch_batches(x, 4, seed=3, epochs=4, noise_mask=mask)
    resumed, _ = epoch_batches(x, 4, seed=3, epochs=4, first_epoch=2, noise_mask=mask)
    full, rest = _epochs(whole, steps), _epochs(resumed, steps)
    assert len(rest) == 2
    for a, b in zip(full[2:], rest, strict=True):
        for p, q in zip(a, b, strict=True):
            np.testing.assert_array_equal(p, q)
    # Another seed, another stream.
    other, _ = epoch_batches(x, 4, seed=4, epochs=4, noise_mask=mask)
    assert not np.array_equal(np.concatenate(full[0]), np.concatenate(_epochs(other, steps)[0]))


def test_noise_is_fresh_in_every_batch_on_the_masked_values_only():
    # Images of 2 x 1 pixels: the mask has an example's shape.
    x = np.full((64, 2, 1), 3.0, np.float32)
    mask = np.array([[1.0], [0.0]], np.float32)
    dataset, steps = epoch_batches(x, 16, seed=0, epochs=2, noise_mask=mask)
    batches = [b.numpy() for b in dataset]
    assert len(batches) == 2 * steps == 8
    noise = np.stack([b[:, 0, 0] - 3.0 for b in batches])
    assert all(np.all(b[:, 1, 0] == 3.0) for b in batches)
    assert noise.min() >= -0.5 and noise.max() < 0.5
    assert noise.min() < -0.4 and noise.max() > 0.4 and abs(noise.mean()) < 0.1
    # Every batch of every epoch draws its own: no two batches share their noise.
    assert len({tuple(np.sort(n)) for n in noise}) == len(noise)
    plain, _ = epoch_batches(x, 16, seed=0, epochs=1)
    assert all(np.all(b.numpy() == 3.0) for b in plain)


def test_workers_shard_the_stream_by_data():
    dataset = for_workers(tf.data.Dataset.range(4))
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA
    assert list(dataset.as_numpy_iterator()) == [0, 1, 2, 3]
    streamed, _ = epoch_batches(np.zeros((4, 2), np.float32), 2, seed=0, epochs=1)
    assert streamed.options().experimental_distribute.auto_shard_policy == policy
