"""The language model: bases (GPT-2, SmolLM2, scratch), the one prompt format, generation, sentiment guidance,
best-of-n drafts and the sentiment probe that ranks them, and the model card file. Builds on `assistant.data`.
"""
