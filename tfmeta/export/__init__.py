"""SavedModel export for TF Serving: signatures, raw-id lookups, atomic versions."""
from tfmeta.export.run import build_server, export_run, export_server  # noqa: F401
from tfmeta.export.versions import publish, versions  # noqa: F401
