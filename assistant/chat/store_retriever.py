"""The store's LangChain retriever, behind one call, until `ReviewStore` is a LangChain `VectorStore`.

    as_retriever(store, search_type="mmr", search_kwargs={"k": 4, "fetch_k": 20, "lambda_mult": 0.6,
                 "filter": {"kind": "review", "movie_key": "gigli", "sentiment": "negative"}})

A `VectorStore` answers with its own `as_retriever`; any other store (today's `ReviewStore`) gets
`StoreRetriever`, which reads the same arguments and gives the same documents, each with its cosine to the
query in `metadata["similarity"]`. Once the store is a VectorStore this module goes.
"""
from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import Field

FILTER_KEYS = ("kind", "movie_key", "sentiment")


def as_retriever(store: Any, *, search_type: str = "similarity", search_kwargs: dict[str, Any] | None = None
                 ) -> BaseRetriever:
    if isinstance(store, VectorStore):
        return store.as_retriever(search_type=search_type, search_kwargs=dict(search_kwargs or {}))
    return StoreRetriever(store=store, search_type=search_type, search_kwargs=dict(search_kwargs or {}))


class StoreRetriever(BaseRetriever):
    """Similarity or MMR search over `ReviewStore.search`, filtered by kind, movie and sentiment."""

    store: Any
    search_type: str = "similarity"
    search_kwargs: dict[str, Any] = Field(default_factory=dict)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        if self.search_type not in ("similarity", "mmr"):
            raise ValueError(f"search_type must be 'similarity' or 'mmr', not {self.search_type!r}")
        options = self.search_kwargs | kwargs
        given = dict(options.get("filter") or {})
        unknown = set(given) - set(FILTER_KEYS)
        if unknown:
            raise ValueError(f"the review store filters on {', '.join(FILTER_KEYS)}, not {', '.join(sorted(unknown))}")
        hits = self.store.search(query, int(options.get("k", 4)), kind=given.get("kind"),
                                 movie_key=given.get("movie_key"), sentiment=given.get("sentiment"),
                                 mmr=self.search_type == "mmr", fetch_k=int(options.get("fetch_k", 20)),
                                 lambda_mult=float(options.get("lambda_mult", 0.5)))
        return [Document(page_content=doc.page_content, id=doc.id, metadata={**doc.metadata, "similarity": score})
                for doc, score in hits]
