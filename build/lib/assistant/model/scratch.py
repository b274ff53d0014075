"""A small GPT-2 pretrained from zero on the reviews, with a byte-level BPE tokenizer trained on them.

The fallback when no pretrained base can be had. Real and tested, but on two CPU cores it learns
review-flavoured word salad (validation perplexity in the hundreds after 12 minutes), not prose.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from assistant.model.prompts import END_MARKER

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScratchConfig:
    vocab_size: int = 8192
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    n_positions: int = 512


TINY = ScratchConfig(vocab_size=512, n_layer=2, n_head=2, n_embd=64, n_positions=256)  # tests


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8192) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on the given texts, with GPT-2's end-of-text token as eos/bos/pad."""
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, show_progress=False,
                            special_tokens=[END_MARKER])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=END_MARKER,
                                        bos_token=END_MARKER, pad_token=END_MARKER, unk_token=END_MARKER)
    tokenizer.model_max_length = 1024
    log.info("trained a byte-level BPE tokenizer: %d tokens", len(tokenizer))
    return tokenizer


def build_model(tokenizer: PreTrainedTokenizerFast, config: ScratchConfig = ScratchConfig()) -> GPT2LMHeadModel:
    """A randomly initialized GPT-2 sized by `config`, its vocabulary matched to the tokenizer."""
    eos = tokenizer.convert_tokens_to_ids(END_MARKER)
    gpt2_config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=config.n_positions, n_embd=config.n_embd,
        n_layer=config.n_layer, n_head=config.n_head, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,  # too little compute here for dropout to pay
    )
    model = GPT2LMHeadModel(gpt2_config)
    log.info("scratch GPT-2: %.1fM parameters", sum(p.numel() for p in model.parameters()) / 1e6)
    return model
