"""The generation step served by an OpenAI-compatible server (vLLM or TGI serving the merged tuned model).

Chosen by a setting: ``MRA_LLM_ENDPOINT=http://gpu-box:8000/v1`` (and ``MRA_LLM_MODEL``, the name the server
serves the model under). It is langchain-openai's completions `OpenAI`, not `ChatOpenAI`: the prompt is fitted
and templated here, with the model's own tokenizer, exactly as in training (the chat template for SmolLM2, the
plain template for GPT-2, which has none), and the completions endpoint takes that text as it is. A chat endpoint
would apply the server's template to a message instead, so the model would read a different prompt than the one
the reply reports. The same prompt template and review chain serve both; only the LLM differs.

What the server cannot do: sentiment guidance (it needs the opposite prompt's logits at every step) and
best-of-n drafts ranked by the embedding probe. The chat says so in the reply's notes.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.outputs import GenerationChunk
from langchain_openai import OpenAI
from pydantic import Field

from assistant.model.generation import context_window
from assistant.model.llm import DEFAULTS, StopCut, clean_generated
from assistant.model.prompts import plan_budget
from assistant.settings import Sampling

REMOTE_CANNOT = ("guidance", "drafts")


class RemoteReviewLLM(OpenAI):
    """A completions endpoint as the review model. `guidance` and `drafts` are accepted, so one configuration
    serves local and remote models alike, and ignored (`unsupported` says which were asked for)."""

    # The review chain's configurable ids -> this class's fields (the completions API calls the budget max_tokens).
    CONFIG_FIELDS: ClassVar[dict[str, str]] = {"temperature": "temperature", "max_new_tokens": "max_tokens",
                                               "guidance": "guidance", "drafts": "drafts", "seed": "seed"}
    tokenizer: Any = Field(default=None, exclude=True)  # the served model's, for the review budget
    window: int = 1024
    guidance: float = 1.0
    drafts: int = 1
    repetition_penalty: float = DEFAULTS.repetition_penalty

    @classmethod
    def from_sampling(cls, endpoint: str, model: str, sampling: Sampling, *, tokenizer: Any, window: int,
                      api_key: str = "EMPTY", **fields: Any) -> RemoteReviewLLM:
        return cls(openai_api_base=endpoint, model_name=model, openai_api_key=api_key, streaming=True,
                   temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_new_tokens,
                   guidance=sampling.guidance, drafts=sampling.drafts, tokenizer=tokenizer, window=window,
                   repetition_penalty=sampling.repetition_penalty, max_retries=1, **fields)

    @property
    def _llm_type(self) -> str:
        return "openai-compatible-review-server"

    def unsupported(self) -> list[str]:
        """The sampling asked for that this server cannot give."""
        return [name for name in REMOTE_CANNOT if getattr(self, name) > 1]

    @property
    def _default_params(self) -> dict[str, Any]:
        params = super()._default_params
        # vLLM and TGI read the same repetition penalty the local model samples with
        return {**params, "extra_body": {"repetition_penalty": self.repetition_penalty, **(self.extra_body or {})}}

    def _stream(self, prompt: str, stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[GenerationChunk]:
        if self.tokenizer is not None:  # the budget the prompt was fitted with (prompts.plan_budget)
            kwargs.setdefault("max_tokens", plan_budget(self.tokenizer, self.window, self.max_tokens)[0])
        started, cut = False, StopCut(stop or [])  # cut here too, should a server write a stop sequence out
        for chunk in super()._stream(prompt, stop, None, **kwargs):
            text = cut.feed(clean_generated(chunk.text))
            if not started:
                text = text.lstrip()
                started = bool(text)
            piece = GenerationChunk(text=text, generation_info=chunk.generation_info)
            if text and run_manager:
                run_manager.on_llm_new_token(text, chunk=piece)
            yield piece
            if cut.done:
                break
        rest = cut.flush()
        if rest and started:
            yield GenerationChunk(text=rest)
        yield GenerationChunk(text="", generation_info={"guidance": 1.0, "remote": self.model_name})


def load_remote(settings: Any, model_dir: Path) -> tuple[RemoteReviewLLM, dict[str, Any]]:
    """The endpoint named in the settings, with the served model's tokenizer and window read from `model_dir`
    (its weights are not loaded here)."""
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    window = context_window(SimpleNamespace(config=AutoConfig.from_pretrained(str(model_dir))))
    llm = RemoteReviewLLM.from_sampling(settings.llm_endpoint, settings.llm_model, settings.sampling,
                                        tokenizer=tokenizer, window=window,
                                        api_key=settings.llm_api_key.get_secret_value())
    return llm, {"name": f"{settings.llm_model} at {settings.llm_endpoint}", "device": "remote",
                 "endpoint": settings.llm_endpoint}
