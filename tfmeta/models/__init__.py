"""Models: the base recommenders that update strategies and meta-learners train.

`MODELS` and `make_model` (the protocol A recommenders by name, tfmeta.models.registry)
load on first use, so that importing a protocol B model does not import TF-GNN.
"""

_REGISTRY_NAMES = ("MODELS", "make_model")


def __getattr__(name):
    if name in _REGISTRY_NAMES:
        from tfmeta.models import registry
        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
