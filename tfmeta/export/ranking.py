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
(GTL, OTL) sum their scores. The export holds each part's node table once (scoring and
top-k read it) and only the encoder weights the queries read. `top_k` computes what
TFRS's BruteForce layer does (all scores, tf.math.top_k) without its copy of the
item table; it ranks every item, the user's history included (filter client-side).
Unknown users and items take row 0 (padding: a zero or learned-padding
representation), '' history entries are ignored wherever they stand, histories longer
than the model's max_len keep their most recent items.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from tfmeta.export import examples
from tfmeta.export.untracked import Untracked
from tfmeta.export.vocabulary import VocabularyTable, write_vocabulary
from tfmeta.export.warmup import sample_ids

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
        self.item_ids = tf.constant([str(i) for i in items])
        self.k = min(int(top_k), len(items))
        self._models = Untracked(*models)
        self._warmup_ids = Untracked(sample_ids(users, 1)[0], sample_ids(items, 4))
        nodes = [m.node_representations(training=False) for m in models]
        # Each part's node table is the only copy of its item representations: scoring
        # gathers from it, top_k multiplies by its item rows (contiguous, item row 1 on).
        self.nodes = [tf.Variable(n, trainable=False, name=f"nodes_{i}")
                      for i, n in enumerate(nodes)]
        self._first_item = [int(m.item_nodes(tf.constant(1, tf.int64))) for m in models]
        # Only the weights the user encoders read (not the GCN's, whose output `nodes`
        # holds, nor the embedding tables): the variables a traced query captures.
        probe = tf.function(lambda u, h: [m.encode_users(u, h, tf.convert_to_tensor(n))
                                          for m, n in zip(models, nodes)])
        read = {v.ref() for v in probe.get_concrete_function(
            tf.TensorSpec([None], tf.int64), tf.TensorSpec([None, None], tf.int64)).variables}
        self.encoder_variables = [v for m in models for v in m.variables if v.ref() in read]

    def _parts(self):
        # Dense reads: a gather on the variable itself (ResourceGather) would put it in
        # copy-on-read mode, after which every read copies the whole table (measured:
        # top_k 3.5 ms instead of about 1.3 over 100k items).
        return zip(self._models.objects, [tf.convert_to_tensor(n) for n in self.nodes],
                   self._first_item)

    def _queries(self, user_id: tf.Tensor, history: tf.Tensor) -> list:
        """Each part's user encodings [B, d_p]."""
        users = self.user_table.lookup(tf.reshape(user_id, [-1]))
        rows = self.item_table.lookup(history)
        return [m.encode_users(users, rows, n, training=False) for m, n, _ in self._parts()]

    def scores(self, user_id, history, item_ids) -> dict:
        rows = self.item_table.lookup(item_ids)
        return {"scores": tf.add_n([
            tf.einsum("bd,bcd->bc", q, tf.gather(n, m.item_nodes(rows)))
            for q, (m, n, _) in zip(self._queries(user_id, history), self._parts())])}

    def top(self, user_id, history) -> dict:
        """TFRS BruteForce's computation (every item's score, tf.math.top_k) on the
        node tables themselves, so the export holds the item table once."""
        count = tf.shape(self.item_ids)[0]
        scores = tf.add_n([tf.matmul(q, n[first:first + count], transpose_b=True)
                           for q, (_, n, first) in zip(self._queries(user_id, history),
                                                       self._parts())])
        values, indices = tf.math.top_k(scores, k=self.k)
        return {"item_ids": tf.gather(self.item_ids, indices), "scores": values}

    @tf.function(input_signature=[_STRINGS, _STRING_LISTS, _STRING_LISTS])
    def serve(self, user_id, history, item_ids):
        return self.scores(user_id, history, item_ids)

    @tf.function(input_signature=[_STRINGS, _STRING_LISTS])
    def top_k(self, user_id, history):
        return self.top(user_id, history)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def predict_examples(self, examples_):
        parsed = examples.parse(examples_, ("user_id",), ("history", "item_ids"))
        return self.scores(parsed["user_id"], parsed["history"], parsed["item_ids"])

    def warmup_inputs(self) -> dict:
        """A request per signature (tfmeta.export.warmup): a known user with a history
        and candidates beside an unknown one with padding."""
        user, items = self._warmup_ids.objects
        rows = {"user_id": [user, ""], "history": [items[:2], ["", ""]],
                "item_ids": [items[2:], [items[0], ""]]}
        return {"serving_default": rows,
                "top_k": {"user_id": rows["user_id"], "history": rows["history"]},
                "predict_examples": {"examples": examples.serialize(rows)}}

    def signatures(self) -> dict:
        return {"serving_default": self.serve.get_concrete_function(),
                "top_k": self.top_k.get_concrete_function(),
                "predict_examples": self.predict_examples.get_concrete_function()}
