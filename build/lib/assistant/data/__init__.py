"""Data: review files in many formats -> clean records -> chunks -> embeddings -> the review store on disk.

readers/ (one per file format, detection, and any other review table read through columns inferred from
names and values, with a dry-run preview), records (Review, MovieFacts), text (cleaning), titles (known
movie titles, fuzzy matching), ingestion (the pipeline), embeddings (the one embedding model), store (the
store as a LangChain VectorStore, read side), store_writer (its next generation), store_layout (its files),
store_filter (its metadata filter), vectors (where its vectors live: vectors_faiss or vectors_qdrant), ngrams
(n-gram helpers shared by training and evaluation), safe_arrays (pickle-free JSON + npz files). Imports nothing
from the other layers.
"""
