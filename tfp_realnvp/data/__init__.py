"""The library's data I/O, in numpy alone (no TensorFlow is imported here).

- `tfp_realnvp.data.tables`: the user's ``.csv`` / ``.npy`` files, read by one set of rules,
  with their column names (`load_table`, `match_columns`);
- `tfp_realnvp.data.datasets`: the bundled toy densities and digits (`load_data`);
- `tfp_realnvp.data.splits`: shuffled splits and evaluation's fixed dequantisation;
- `tfp_realnvp.data.domain`: data against a flow's bounded domain;
- `tfp_realnvp.data.shards`: the plan of a sharded run's files (checked headers);
- `tfp_realnvp.data.streaming`: `shard_dataset`, the shards as a `tf.data.Dataset` (this one
  imports TensorFlow, so it is not loaded here).

Every problem raises `DataError`, a ``ValueError`` whose one-line message names the file.
"""

from tfp_realnvp.data.datasets import DATASETS, load_data, load_named_data, make_dataset
from tfp_realnvp.data.domain import check_in_domain
from tfp_realnvp.data.splits import dequantized, random_split, train_validation_split
from tfp_realnvp.data.tables import DataError, Table, load_array, load_table, match_columns

__all__ = [
    "DATASETS",
    "DataError",
    "Table",
    "check_in_domain",
    "dequantized",
    "load_array",
    "load_data",
    "load_named_data",
    "load_table",
    "make_dataset",
    "match_columns",
    "random_split",
    "train_validation_split",
]
