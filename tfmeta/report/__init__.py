"""`tfmeta report`: one self-contained HTML page from runs, searches and benchmark results."""
from tfmeta.report.html import collect, render, write_report  # noqa: F401
