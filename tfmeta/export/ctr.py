"""SavedModels of protocol B CTR models (EmbeddingMLP with the parameters a method served).

    server = CtrServer(model, assets_dir)
    tf.saved_model.save(server, path, signatures=server.signatures())

Signatures (the serving contract; README "Serving"):
  serving_default  user_id string [B], item_id string [B], history string [B, L]
                   -> probability float32 [B]
  score_items      user_id [B], history [B, L], item_ids string [B, C]
                   -> probability [B, C] (C candidates per user, its side computed once;
                   the same values as serving_default row by row)
  predict_examples examples string [B] (tf.Example with user_id / user, item_id / item,
                   history: a protocol B period's examples score as they are)
                   -> probability [B]

Item categories need no input: the model reads each item's categories from its own
table (EmbeddingMLP), shipped inside the export. The vocabularies (assets) hold the ids
the model knew when it was served: later ids, like unknown ones, take the OOV row 0;
'' history entries are padding wherever they stand; the most recent `history_len`
present entries are read.
"""
from __future__ import annotations

import tensorflow as tf

from tfmeta.export import examples
from tfmeta.export.untracked import Untracked
from tfmeta.export.vocabulary import VocabularyTable, write_vocabulary
from tfmeta.export.warmup import sample_ids
from tfmeta.models.embedding_mlp import EmbeddingMLP

_STRINGS = tf.TensorSpec([None], tf.string)


class CtrServer(tf.Module):
    """The exportable form of an EmbeddingMLP."""

    def __init__(self, model: EmbeddingMLP, assets_dir: str):
        super().__init__(name="ctr_server")
        known_users, known_items = int(model.known_users), int(model.known_items)
        self.user_table = VocabularyTable(
            write_vocabulary(assets_dir, "users", model.users[:known_users]))
        self.item_table = VocabularyTable(
            write_vocabulary(assets_dir, "items", model.items[:known_items]))
        self._held = Untracked(model)
        self._warmup_ids = Untracked(sample_ids(model.users[:known_users], 1)[0],
                                     sample_ids(model.items[:known_items], 4))
        self.model_variables = list(model.trainable_variables)
        if model.item_category_rows is not None:
            self.item_category_rows = model.item_category_rows

    def probability(self, user_id, item_id, history) -> dict:
        model, = self._held.objects
        logits = model.logits_from_rows(
            self.user_table.lookup(user_id), self.item_table.lookup(item_id),
            self.item_table.lookup(history), tf.not_equal(history, ""))
        return {"probability": tf.sigmoid(logits)}

    @tf.function(input_signature=[_STRINGS, _STRINGS, tf.TensorSpec([None, None], tf.string)])
    def serve(self, user_id, item_id, history):
        return self.probability(user_id, item_id, history)

    @tf.function(input_signature=[_STRINGS, tf.TensorSpec([None, None], tf.string),
                                  tf.TensorSpec([None, None], tf.string)])
    def score_items(self, user_id, history, item_ids):
        return self.probability(user_id, item_ids, history)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def predict_examples(self, examples_):
        parsed = examples.parse(examples_, ("user_id", "item_id"), ("history",))
        return self.probability(parsed["user_id"], parsed["item_id"], parsed["history"])

    def warmup_inputs(self) -> dict:
        """A request per signature (tfmeta.export.warmup): a known user and item beside
        unknown ones with a padded history."""
        user, items = self._warmup_ids.objects
        rows = {"user_id": [user, ""], "item_id": [items[0], ""],
                "history": [items[1:3], ["", ""]]}
        return {"serving_default": rows,
                "score_items": {"user_id": rows["user_id"], "history": rows["history"],
                                "item_ids": [items[:2], [items[3], ""]]},
                "predict_examples": {"examples": examples.serialize(rows)}}

    def signatures(self) -> dict:
        return {"serving_default": self.serve.get_concrete_function(),
                "score_items": self.score_items.get_concrete_function(),
                "predict_examples": self.predict_examples.get_concrete_function()}
