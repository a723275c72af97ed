"""Train, export a SavedModel, and serve it with plain TensorFlow (no TFP, no tfp_realnvp).

Run: python examples/export_and_serve.py [--quick] [--out DIR]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import tfp_realnvp as trn
from tfp_realnvp import keras
from tfp_realnvp.data import make_dataset

SERVER = """
import json, sys
sys.modules["tensorflow_probability"] = None   # prove the SavedModel does not need them
sys.modules["tfp_realnvp"] = None
import tensorflow as tf
served = tf.saved_model.load(sys.argv[1])
x = tf.constant([[0.0, 0.5], [1.0, -0.5]])
log_prob = served.signatures["log_prob"](x=x)["log_prob"].numpy().tolist()
samples = served.signatures["sample"](count=tf.constant(3), seed=tf.constant([0, 1]))
print(json.dumps({"log_prob": log_prob, "samples": samples["samples"].numpy().tolist()}))
"""


def main(quick: bool = False, out: str | None = None) -> dict:
    """Returns the served ``log_prob`` and ``samples`` beside the in-process model's."""
    keras.utils.set_random_seed(0)
    data = make_dataset("moons", num_samples=1000 if quick else 10000)
    model = trn.FlowModel(trn.real_nvp([2], num_couplings=2 if quick else 6, hidden_units=[32, 32]))
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    model.fit(data, epochs=1 if quick else 30, batch_size=256, verbose=0)
    path = Path(out or tempfile.mkdtemp()) / "flow_saved_model"
    trn.export_saved_model(model, path, overwrite=True)
    local = {
        "log_prob": model.log_prob(np.array([[0.0, 0.5], [1.0, -0.5]])).numpy(),
        "samples": model.sample(3, seed=[0, 1]).numpy(),
    }
    run = subprocess.run([sys.executable, "-c", SERVER, str(path)], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(run.stderr)
    served = {k: np.array(v) for k, v in json.loads(run.stdout.strip().splitlines()[-1]).items()}
    for name in ("log_prob", "samples"):
        print(f"{name}: in-process {local[name].tolist()}, served {served[name].tolist()}")
    return {"local": local, "served": served, "path": path}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for tests")
    parser.add_argument("--out", default=None, help="where to write the SavedModel")
    args = parser.parse_args()
    main(args.quick, args.out)
