"""The review path as one LCEL runnable: retriever -> context formatting -> prompt -> LLM -> parser.

    retrieval = ReviewRetrieval(store=store, settings=settings)
    chain = build_review_chain(llm, ReviewPrompt.for_generator(generator), retrieval)
    chain.invoke({"sentiment": "positive", "movie": "Toy Story"})["answer"]                    # RAG on
    chain.with_config(configurable={"rag": "off", "temperature": 0.5}).stream({...})         # RAG off
    chain.batch([{...}, {...}])

Input: {sentiment, movie?, movie_key?, topic?, tone?, k?, exclude_ids?}. Output: the input plus `retrieval`
(a `retrieval.Retrieval`, None with RAG off), `context` (the formatted context items), `prompt` (a
`FittedPromptValue`: the text the model was given and how it was fitted) and `answer` (the review, streamed
token by token: `.stream()` yields {"answer": token} chunks after the others; `.pick("answer")` yields the
tokens alone). RAG on/off is one configurable alternative of the retrieval step (`rag`: "on" | "off"); the
sampling settings are configurable fields shared by the prompt and the model (`temperature`,
`max_new_tokens`, `guidance`, `praise_guidance`, `drafts`, `seed`).
"""
from __future__ import annotations

from operator import itemgetter
from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import (
    ConfigurableField,
    Runnable,
    RunnableLambda,
    RunnablePassthrough,
)

SAMPLING_FIELDS = {  # configurable id -> what it sets
    "temperature": "Sampling temperature (0 = always the most likely token).",
    "max_new_tokens": "The review's length budget in tokens; the prompt is fitted to leave room for it.",
    "guidance": "Sentiment guidance scale (1 = off); a remote server cannot guide.",
    "praise_guidance": "Added to the guidance scale for positive reviews while guidance is on.",
    "drafts": "Drafts written and ranked by the sentiment probe (1 = one, streamed live).",
    "seed": "Makes sampling repeatable.",
}
RAG = ConfigurableField(id="rag", name="RAG", description="on: retrieved reviews go into the prompt; off: none.")
# A model whose fields are named otherwise (langchain-openai's max_tokens) maps them in CONFIG_FIELDS.
DEFAULT_FIELD_NAMES = {name: name for name in SAMPLING_FIELDS}


def _field(config_id: str) -> ConfigurableField:
    return ConfigurableField(id=config_id, name=config_id, description=SAMPLING_FIELDS[config_id])


def configurable_model(llm: Any) -> Runnable:
    """The LLM with its sampling settings open to `configurable` (fields it lacks are left out)."""
    names = getattr(llm, "CONFIG_FIELDS", None) or DEFAULT_FIELD_NAMES
    fields = {names[cid]: _field(cid) for cid in SAMPLING_FIELDS if names.get(cid) in type(llm).model_fields}
    return llm.configurable_fields(**fields) if fields else llm


def configurable_prompt(prompt: Any) -> Runnable:
    """The prompt with its review budget open to `configurable`, under the same id as the model's."""
    if "max_new_tokens" not in type(prompt).model_fields:
        return prompt
    return prompt.configurable_fields(max_new_tokens=_field("max_new_tokens"))


def _no_retrieval(_ask: dict[str, Any]) -> None:
    return None


def context_items(inputs: dict[str, Any]) -> list[str]:
    """Context formatting: the retrieved documents as context lines, laid out as in training."""
    retrieval = inputs.get("retrieval")
    return retrieval.context_items() if retrieval is not None and not retrieval.failed else []


def build_review_chain(llm: Any, prompt: Any, retrieval: Runnable, *, stop: list[str] | None = None) -> Runnable:
    """One runnable for a review, RAG on (the default) or off (`configurable={"rag": "off"}`).

    `llm`: a LangChain LLM (`ReviewLLM`, `RemoteReviewLLM` or any fake); `prompt`: a prompt template over
    {sentiment, movie, topic, context} (`ReviewPrompt`); `retrieval`: {ask} -> Retrieval."""
    no_retrieval = RunnableLambda(_no_retrieval, name="no_retrieval")
    retrieve = retrieval.with_config(run_name="retrieval").configurable_alternatives(RAG, default_key="on",
                                                                                    off=no_retrieval)
    model = configurable_model(llm)
    if stop:
        model = model.bind(stop=stop)
    chain = (RunnablePassthrough.assign(retrieval=retrieve)
             | RunnablePassthrough.assign(context=RunnableLambda(context_items, name="format_context"))
             | RunnablePassthrough.assign(prompt=configurable_prompt(prompt))
             | RunnablePassthrough.assign(answer=itemgetter("prompt") | model | StrOutputParser()))
    return chain.with_config(run_name="review_chain")
