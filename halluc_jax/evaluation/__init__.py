"""Evaluation: multi-view scoring, metrics, run summaries and table rows."""
