"""Converters of published checkpoints into our parameter trees (docs/method.md 'Pretrained weights')."""
