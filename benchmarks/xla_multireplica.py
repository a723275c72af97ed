"""What happens to a FlowModel train step compiled with XLA under MirroredStrategy on CPU.

Run: python benchmarks/xla_multireplica.py  (two logical CPUs of one process; prints the
outcome of compile(jit_compile=True) next to jit_compile=False).

Measured with TF 2.21 on CPU (Keras 3 and tf-keras alike):
- MirroredStrategy over two logical CPUs: the XLA cluster runs on CPU:0 and reads replica 1's
  variable on CPU:1: "Trying to access resource .../replica_1 ... located in device CPU:1 from
  device CPU:0" (https://www.tensorflow.org/xla/known_issues#tfvariable_on_a_different_device).
- MultiWorkerMirroredStrategy, two processes of one CPU each: "Collectives are not yet
  implemented for CPU devices when compiling with XLA" (b/194942685).
Hence `FlowModel.compile(jit_compile="auto")` keeps XLA for one replica and for all-GPU/TPU
replicas, and turns it off for replicas on CPUs (`tfp_realnvp.model.xla_allowed`).
"""

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import tfp_realnvp as trn  # noqa: E402
from tfp_realnvp._keras import keras  # noqa: E402

x = np.random.default_rng(0).normal(size=(256, 2)).astype("float32")
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
for jit in (False, True):
    with strategy.scope():
        model = trn.FlowModel(trn.real_nvp([2], 2, [8]))
        model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=jit)
    try:
        h = model.fit(x, epochs=2, batch_size=64, verbose=0).history["loss"]
        print(f"jit_compile={jit}: ok, losses {h}")
    except tf.errors.InvalidArgumentError as e:  # the point is to show what fails
        cause = [line for line in str(e).splitlines() if "Trying to access" in line]
        print(f"jit_compile={jit}: {type(e).__name__}: {(cause or [str(e)])[0][:300]}")
