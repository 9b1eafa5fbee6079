"""SavedModels of protocol A ranking models (every model alone, LeapRec's GTL + OTL).

    server = RankingServer(scorer.models, users, items, assets_dir, top_k=100)
    tf.saved_model.save(server, path, signatures=server.signatures())

Signatures (the serving contract; README "Serving"):
  serving_default  user_id string [B], history string [B, L], item_ids string [B, C]
                   -> scores float32 [B, C]
  top_k            user_id [B], history [B, L] -> item_ids string [B, K], scores [B, K]
                   over every item of the vocabulary (K fixed at export)
  predict_examples examples string [B] (tf.Example with user_id / user, history,
                   item_ids) -> scores [B, C]

A graph model's propagation is computed here, once: the export holds each model's node
representations as constants, and the signatures run only the lookups, the user
encoder (self-attention, GRU, or none) and dot products: no GraphTensor, no custom op.
Every model scores dot(query, item representation); the parts of a LeapRec model
(GTL, OTL) sum their scores, which is the dot product of the concatenated queries and
item representations: one item table serves both scoring and top-k (TFRS BruteForce).
Unknown users and items take row 0 (padding: a zero or learned-padding
representation), '' history entries are ignored wherever they stand, histories longer
than the model's max_len keep their most recent items.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfmeta.export import examples
from tfmeta.export.untracked import Untracked
from tfmeta.export.vocabulary import VocabularyTable, write_vocabulary

DEFAULT_TOP_K = 100
_STRINGS = tf.TensorSpec([None], tf.string)
_STRING_LISTS = tf.TensorSpec([None, None], tf.string)


class RankingServer(tf.Module):
    """The exportable form of one or more RankingModels whose scores add up."""

    def __init__(self, models: Sequence[tf.keras.Model], users: Sequence[str],
                 items: Sequence[str], assets_dir: str, top_k: int = DEFAULT_TOP_K):
        super().__init__(name="ranking_server")
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        self.user_table = VocabularyTable(write_vocabulary(assets_dir, "users", users))
        self.item_table = VocabularyTable(write_vocabulary(assets_dir, "items", items))
        self._models = Untracked(*models)
        nodes = [m.node_representations(training=False) for m in models]
        self.nodes = [tf.Variable(n, trainable=False, name=f"nodes_{i}")
                      for i, n in enumerate(nodes)]
        # The encoders' weights (the embedding table itself is replaced by `nodes`).
        self.encoder_variables = [v for m in models for v in m.trainable_variables
                                  if v is not getattr(m, "embeddings", None)]
        rows = tf.range(len(items) + 1, dtype=tf.int64)
        self.item_representations = tf.Variable(
            tf.concat([tf.gather(n, m.item_nodes(rows)) for m, n in zip(models, nodes)],
                      axis=1), trainable=False, name="item_representations")
        self.top_k_index = tfrs.layers.factorized_top_k.BruteForce(
            k=min(int(top_k), len(items)), name="top_k")
        self.top_k_index.index(self.item_representations[1:],
                               identifiers=tf.constant([str(i) for i in items]))

    def queries(self, user_id: tf.Tensor, history: tf.Tensor) -> tf.Tensor:
        """[B, sum of the parts' dims]: the parts' user encodings side by side."""
        users = self.user_table.lookup(tf.reshape(user_id, [-1]))
        rows = self.item_table.lookup(history)
        return tf.concat([m.encode_users(users, rows, n, training=False)
                          for m, n in zip(self._models.objects, self.nodes)], axis=1)

    def scores(self, user_id, history, item_ids) -> dict:
        candidates = tf.gather(self.item_representations, self.item_table.lookup(item_ids))
        return {"scores": tf.einsum("bd,bcd->bc", self.queries(user_id, history),
                                    candidates)}

    @tf.function(input_signature=[_STRINGS, _STRING_LISTS, _STRING_LISTS])
    def serve(self, user_id, history, item_ids):
        return self.scores(user_id, history, item_ids)

    @tf.function(input_signature=[_STRINGS, _STRING_LISTS])
    def top_k(self, user_id, history):
        scores, ids = self.top_k_index(self.queries(user_id, history))
        return {"item_ids": ids, "scores": scores}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def predict_examples(self, examples_):
        parsed = examples.parse(examples_, ("user_id",), ("history", "item_ids"))
        return self.scores(parsed["user_id"], parsed["history"], parsed["item_ids"])

    def signatures(self) -> dict:
        return {"serving_default": self.serve.get_concrete_function(),
                "top_k": self.top_k.get_concrete_function(),
                "predict_examples": self.predict_examples.get_concrete_function()}
