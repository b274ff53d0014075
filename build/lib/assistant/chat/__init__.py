"""The chat: reading a message (intent, vocabulary), retrieval through the store's retriever, the critics'
opinion from the data, and the LangChain pipeline that answers: the review chain (review_chain: retriever ->
context -> prompt -> LLM -> parser), the router over every kind of answer (router, replies), the LangGraph chat
with its memory (graph, memory) and the `Assistant` facade the CLI and the page use (assistant, loading).
Builds on `assistant.model` and `assistant.data`.
"""
