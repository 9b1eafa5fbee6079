"""The protocol A recommenders by name.

    model = make_model("lightgcn", num_users=943, num_items=1682, embedding_dim=64)

`options` are the class's constructor arguments (embedding_dim, max_len, seed and the
model's own, e.g. num_layers); see each class.
"""
from __future__ import annotations

from tfmeta.models.baselines import BPRMF, GCN, GRU4Rec, NGCF, SASRec, LightGCN
from tfmeta.models.gnn_sa import GnnSaRecommender
from tfmeta.models.ranking import RankingModel

MODELS = {
    "mf": BPRMF,
    "gcn": GCN,
    "ngcf": NGCF,
    "lightgcn": LightGCN,
    "sasrec": SASRec,
    "gru4rec": GRU4Rec,
    "gnn-sa": GnnSaRecommender,
}


def make_model(name: str, num_users: int, num_items: int, **options) -> RankingModel:
    """A new model of the registered kind `name` (one of MODELS)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](num_users=num_users, num_items=num_items, **options)
