"""A Keras GRU written out as a static loop, for full-int8 TFLite Micro.

TFLite has no GRU op. Both unrolled forms Keras offers (``unroll=True`` in Keras 3 or tf_keras)
constant-fold the first step (zero state times the recurrent kernel plus the recurrent bias)
into a float constant that the graph then SPLITs: the converter leaves DEQUANTIZE/QUANTIZE around
it, which is not full int8 (seen on GRU(4) over 6 steps in Keras 3, GRU(6) over 8 in tf_keras).
Here the gates have their own constants (no constant is ever split), the input projection of all
steps is one FULLY_CONNECTED, and each step is one FULLY_CONNECTED of the state, a SPLIT of that
activation and the gate arithmetic; the first step skips the state's product, which is zero.

The math is Keras's GRU with ``reset_after=True`` (its default):
z = σ(x·Wz + bz + h·Uz + rz), r = σ(x·Wr + br + h·Ur + rr), n = tanh(x·Wn + bn + r ⊙ (h·Un + rn)),
h' = z ⊙ h + (1 - z) ⊙ n; gate order z, r, n in the kernels (keras/src/layers/rnn/gru.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mcuq.common.errors import ConversionError


def check_supported(layer: Any) -> None:
    """Refuse, naming the layer, the GRU variants this form does not compute."""
    config = layer.get_config()
    if not config.get("reset_after", True):
        raise ConversionError(f"GRU layer '{layer.name}' has reset_after=False; mcuq rebuilds Keras's default reset_after=True")
    if not config.get("use_bias", True):
        raise ConversionError(f"GRU layer '{layer.name}' has use_bias=False; mcuq rebuilds GRUs with biases (the default)")


def unrolled_gru(tfk: Any, layer: Any, go_backwards: bool | None = None) -> Any:
    """A tf_keras layer computing ``layer`` (a Keras GRU) over a fixed number of steps."""
    check_supported(layer)
    config = layer.get_config()
    kernel, recurrent, bias = (np.asarray(w, dtype=np.float32) for w in layer.get_weights())
    units = int(config["units"])
    backwards = bool(config.get("go_backwards")) if go_backwards is None else go_backwards
    sequences = bool(config.get("return_sequences"))
    activation = tfk.activations.get(config.get("activation", "tanh"))
    recurrent_activation = tfk.activations.get(config.get("recurrent_activation", "sigmoid"))

    class UnrolledGRU(tfk.layers.Layer):  # type: ignore[misc,name-defined]
        def call(self, x: Any) -> Any:
            import tensorflow as tf

            steps, features = int(x.shape[1]), int(x.shape[2])
            xs = tf.matmul(tf.reshape(x, [steps, features]), tf.constant(kernel)) + tf.constant(bias[0])
            gates_x = [xs[:, g * units : (g + 1) * units] for g in range(3)]
            rec_bias = [tf.constant(bias[1][g * units : (g + 1) * units]) for g in range(3)]
            order = range(steps - 1, -1, -1) if backwards else range(steps)
            h, outputs = None, []
            for t in order:
                zx, rx, nx = (g[t : t + 1] for g in gates_x)
                if h is None:  # zero state: h·U is zero, only the recurrent bias remains
                    zh, rh, nh = rec_bias
                else:
                    zh, rh, nh = tf.split(tf.matmul(h, tf.constant(recurrent)), 3, axis=1)
                    zh, rh, nh = zh + rec_bias[0], rh + rec_bias[1], nh + rec_bias[2]
                z = recurrent_activation(zx + zh)
                r = recurrent_activation(rx + rh)
                n = activation(nx + r * nh)
                h = (1.0 - z) * n if h is None else z * h + (1.0 - z) * n
                outputs.append(h)
            if not sequences:
                return h
            # in processing order, as Keras returns a go_backwards layer's sequence
            return tf.reshape(tf.concat(outputs, axis=0), [1, steps, units])

    return UnrolledGRU(name=layer.name)
