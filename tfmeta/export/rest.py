"""TF Serving's REST predict bodies, translated to signature calls of a loaded export.

    loaded = tf.saved_model.load("saved_models/leaprec/3")
    predict(loaded, {"instances": [{"user_id": "196", "history": ["242", "302"],
                                    "item_ids": ["377", "51"]}]})
    # -> {"predictions": [[0.41, -0.07]]}     (one output: the bare value, as TF Serving)
    predict(loaded, {"signature_name": "top_k",
                     "inputs": {"user_id": ["196"], "history": [["242", "302"]]}})
    # -> {"outputs": {"item_ids": [[...]], "scores": [[...]]}}

What `POST /v1/models/NAME:predict` does with the same body (the row format
`instances`, the columnar format `inputs`, `signature_name` defaulting to
serving_default, binary strings as {"b64": ...}), so tests and users can check a
request before sending it. Like TF Serving, rows must have equal lengths: pad
histories and candidate lists with "".
"""
from __future__ import annotations

import base64

import numpy as np
import tensorflow as tf


def _decode(value):
    """JSON value -> Python value, {"b64": ...} -> bytes."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _tensor(name: str, value, spec: tf.TensorSpec) -> tf.Tensor:
    array = np.array(_decode(value), dtype=object if spec.dtype == tf.string else None)
    if array.dtype == object and array.ndim != spec.shape.rank:
        raise ValueError(f"input {name!r}: expected {spec.shape.rank} dimension(s) "
                         f"{spec.shape}, got a ragged or {array.ndim}-d value: pad lists "
                         "with \"\" to equal lengths")
    tensor = tf.constant(array.tolist() if array.dtype == object else array, spec.dtype)
    if not spec.shape.is_compatible_with(tensor.shape):
        raise ValueError(f"input {name!r}: shape {tensor.shape} does not match {spec.shape}")
    return tensor


def _to_json(value: np.ndarray):
    if value.dtype == object:
        return np.vectorize(lambda b: b.decode() if isinstance(b, bytes) else b,
                            otypes=[object])(value).tolist()
    return value.tolist()


def predict(loaded, body: dict) -> dict:
    """The response TF Serving's REST API gives for body (see the module docstring)."""
    name = body.get("signature_name", "serving_default")
    if name not in loaded.signatures:
        raise ValueError(f"unknown signature_name {name!r}: the export has "
                         f"{', '.join(sorted(loaded.signatures))}")
    function = loaded.signatures[name]
    specs = function.structured_input_signature[1]
    if ("instances" in body) == ("inputs" in body):
        raise ValueError("a request body holds exactly one of 'instances' (rows) or "
                         "'inputs' (columns)")
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise ValueError("'instances' must be a non-empty list")
        if len(specs) == 1 and not all(isinstance(r, dict) and set(r) == set(specs)
                                       for r in rows):
            rows = [{next(iter(specs)): r} for r in rows]
        if not all(isinstance(r, dict) and set(r) == set(specs) for r in rows):
            raise ValueError(f"each instance must name exactly the inputs "
                             f"{sorted(specs)}")
        columns = {k: [r[k] for r in rows] for k in specs}
    else:
        columns = body["inputs"]
        if not isinstance(columns, dict) or set(columns) != set(specs):
            if len(specs) == 1 and not isinstance(columns, dict):
                columns = {next(iter(specs)): columns}
            else:
                raise ValueError(f"'inputs' must name exactly {sorted(specs)}")
    outputs = function(**{k: _tensor(k, columns[k], specs[k]) for k in specs})
    outputs = {k: v.numpy() for k, v in outputs.items()}
    if "instances" in body:
        batch = len(body["instances"])
        predictions = [{k: _to_json(v[i]) if isinstance(v[i], np.ndarray) else
                        _to_json(np.array(v[i])) for k, v in outputs.items()}
                       for i in range(batch)]
        if len(outputs) == 1:
            predictions = [next(iter(p.values())) for p in predictions]
        return {"predictions": predictions}
    result = {k: _to_json(v) for k, v in outputs.items()}
    return {"outputs": next(iter(result.values())) if len(result) == 1 else result}
