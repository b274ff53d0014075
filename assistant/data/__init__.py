"""Data: review files in many formats -> clean records -> chunks -> embeddings -> the FAISS store on disk.

readers/ (one per file format, plus detection), records (Review, MovieFacts), text (cleaning), titles (known
movie titles, fuzzy matching), ingestion (the pipeline), embeddings (the one embedding model), store (the
store, read and written), ngrams (n-gram helpers shared by training and evaluation), safe_arrays (pickle-free
JSON + npz files). Imports nothing from the other layers.
"""
