"""Measurement: the model card (sentiment control, perplexity), the 2x2 fine-tuning-or-RAG evaluation, their
metrics, judges and reports. Builds on every other layer; nothing imports it but the commands at the root.
"""
