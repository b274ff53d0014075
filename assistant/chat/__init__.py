"""The chat: reading a message (intent), retrieval, the critics' opinion from the data, conversation memory,
and the chain that answers one message. Builds on `assistant.model` and `assistant.data`.
"""
