"""Command-line tools over the training core: dry-run planner, predict, tables."""
