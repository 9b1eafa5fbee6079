"""PROTOCOLS.md A.6-A.8: score a window's candidate lists, sampled and full ranking.

    figures = evaluate(scorer, data, "test", timelines, warm_items)

`scorer(users, history, items)` -> [B, C] scores and `scorer.all_items(users,
history)` -> [B, 1 + num_items] (column = item row) come from the trained model;
`timelines` (every user's items in time order, all windows) gives the items each
user touched before t, which full ranking leaves out along with the items that are
not warm (not seen before the window).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfmeta.data.periods import PeriodDataset
from tfmeta.evaluation.metrics import (RankingAccumulator, full_ranking_ranks,
                                       ranks_from_scores)
from tfmeta.data.interactions import UserTimelines, string_lookup

FULL_KEYS = ("HR@10", "NDCG@10", "MRR")


def evaluate(scorer, data: PeriodDataset, window: str, timelines: UserTimelines,
             warm_items: np.ndarray, batch_size: int = 256, full_ranking: bool = True) -> dict:
    """{sampled, full, instances, excluded} of a window; `full` is absent when
    full_ranking is False (the cheaper sampled figures alone, e.g. for a curve)."""
    items = data.vocabulary("items")
    users_lookup, items_lookup = string_lookup(data.vocabulary("users")), string_lookup(items)
    num_columns = 1 + len(items)
    cold = np.ones(num_columns, bool)
    cold[warm_items] = False
    sampled, full = RankingAccumulator(), RankingAccumulator()
    instances = 0
    for batch in data.candidates(window, batch_size=batch_size):
        users = users_lookup(batch["user"])
        history = items_lookup(batch["history"])
        positive = items_lookup(batch["positive"])
        negatives = items_lookup(batch["negatives"])
        scores = scorer(users, history, tf.concat([positive[:, None], negatives], axis=1))
        # Short candidate lists are padded with '' (row 0): never counted.
        sampled.update(ranks_from_scores(scores[:, 0], scores[:, 1:], negatives > 0))
        instances += int(tf.shape(users)[0])
        if not full_ranking:
            continue
        exclude = timelines.mask(users.numpy(), batch["ts"].numpy(), num_columns) | cold
        exclude[:, 0] = True
        full.update(full_ranking_ranks(None, scorer.all_items(users, history), positive,
                                       exclude))
    figures = {"sampled": sampled.result(), "instances": instances,
               "excluded": data.manifest.get("excluded", {}).get(window, {})}
    if full_ranking:
        full_figures = full.result()
        figures["full"] = {k: full_figures[k] for k in FULL_KEYS}
    return figures
