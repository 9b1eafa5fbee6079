"""TF Serving warmup requests, shipped inside every exported version.

    write_warmup(version_dir, server.warmup_inputs())     # tfmeta.export.run does this
    replay_warmup(tf.saved_model.load(version_dir), version_dir)   # what TF Serving does

TF Serving reads `assets.extra/tf_serving_warmup_requests` (a TFRecord file of
PredictionLog protos, at most 1000) when it loads a version and runs each request
before the version takes traffic ("SavedModel Warmup" in its docs). Without it the
first requests pay for what TensorFlow initialises lazily: the vocabulary tables
(read from assets on first lookup) and each signature's first run. Every signature gets
a request of real ids from the export's vocabularies, a known user beside an unknown one
with padded lists, so the paths a live request takes are all warm.
"""
from __future__ import annotations

import os

import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def prediction_logs(inputs: dict) -> list:
    """{signature: {input: array-like}} -> one PredictionLog (a PredictRequest) each."""
    logs = []
    for signature, tensors in inputs.items():
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(signature_name=signature))
        for name, value in tensors.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        logs.append(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write_warmup(version_dir: str, inputs: dict) -> str:
    """Writes the warmup file into a SavedModel directory; returns its path."""
    path = os.path.join(version_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in prediction_logs(inputs):
            writer.write(log.SerializeToString())
    return path


def read_warmup(version_dir: str) -> list:
    """[(signature, {input: ndarray})] in the file's order."""
    requests = []
    for record in tf.data.TFRecordDataset(os.path.join(version_dir, WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        requests.append((request.model_spec.signature_name or "serving_default",
                         {k: tf.make_ndarray(v) for k, v in request.inputs.items()}))
    return requests


def replay_warmup(loaded, version_dir: str) -> list:
    """Runs each warmup request on a loaded export, as TF Serving does at load time;
    returns the outputs ([{output: ndarray}]). Raises if a request does not fit its
    signature."""
    return [{k: v.numpy() for k, v in loaded.signatures[signature](
                **{k: tf.constant(v) for k, v in tensors.items()}).items()}
            for signature, tensors in read_warmup(version_dir)]


def sample_ids(ids, count: int) -> list:
    """`count` ids of a vocabulary (cycled if it is shorter; '' if it is empty)."""
    ids = list(ids)
    return [str(ids[i % len(ids)]) if ids else "" for i in range(count)]
