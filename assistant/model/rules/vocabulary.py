"""The vocabulary as the decoding rules see it (names.py above all): which tokens start a capitalised word, which continue
a word, which start a new one, and what word each capitalised token spells. Worked out once per vocabulary (a
second or so for SmolLM2's 49k tokens) and shared by every tokenizer object with that vocabulary.

It also holds the vocabulary's plain words: the lower-case words it spells as one token with a leading space
("Ġdespite", "Ġoverall"). A sentence's first word is capitalised whatever it is, so there the rule tells a plain
word ("Despite") from a name ("Jarmanush") by asking whether the word, lower-cased, is (the start of) one of them.
A name is rarely a single lower-case token; a long plain word sometimes is not one either ("overwrought"), and
then the model writes another opener."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

import torch

_TOKEN_WORD_RE = re.compile(r"[^\W\d_](?:[^\W\d_]|['\u2019\-])*")


@dataclass
class TokenWords:
    size: int
    cap_start: torch.Tensor  # its first non-space character is a capital letter
    lead_space: torch.Tensor  # starts with whitespace: a new word
    letter_cont: torch.Tensor  # starts with a letter, no space: continues the word being written
    cap_words: list[tuple[int, str, bool, bool]]  # capitalised tokens: (id, the word it spells, whether more follows
    # the word in the token, whether it has a leading space)
    glued: dict[str, list[int]]  # texts of tokens without leading space -> ids (continuations)
    closers: list[int]  # "," and ".": how a clause ends when every allowed token was ruled out
    cap_ids: torch.Tensor = None  # cap_words' ids, in order
    cap_spaced: torch.Tensor = None  # ... whether each has its own leading space
    whole: dict[str, list[int]] = None  # a token spelling a word and more ("Ridley's") -> its cap_words positions
    partial: dict[str, list[int]] = None  # a token that may be only the start of a word ("Rid") -> positions
    plain_words: frozenset[str] = frozenset()  # lower-case words spelled by one spaced token (the module says why)
    plain_prefixes: frozenset[str] = frozenset()  # ... and every start of them
    opener_ok: torch.Tensor = None  # over cap_words: spells a plain word, or the start of one, capitalised
    _plain_next: dict[str, torch.Tensor] = field(default_factory=dict)  # lower-case partial word -> its continuations
    _plain_lock: threading.Lock = field(default_factory=threading.Lock)
    _opening: dict[tuple[str, ...], list[int]] = field(default_factory=dict)  # marks -> tokens that open with one
    _glued_words: list[tuple[str, bool, list[int]]] = field(default_factory=list)
    by_text: dict[str, list[int]] = field(default_factory=dict)  # every token's text -> ids (spelling a phrase)
    texts: list[str] = field(default_factory=list)  # id -> the token's text ("" for special tokens and padding)

    def __post_init__(self) -> None:
        """Indexes from the text a capitalised token spells to its positions in `cap_words`, so a request's rule
        looks its few hundred words and prefixes up instead of testing each of thousands of tokens (10 ms)."""
        self.cap_ids = torch.tensor([i for i, _, _, _ in self.cap_words], dtype=torch.long)
        self.cap_spaced = torch.tensor([spaced for _, _, _, spaced in self.cap_words], dtype=torch.bool)
        self.whole, self.partial = {}, {}
        for position, (_, word, more, _) in enumerate(self.cap_words):
            if more:
                self.whole.setdefault(word.rstrip("'\u2019-"), []).append(position)
            else:
                self.partial.setdefault(word, []).append(position)
        self.plain_prefixes = frozenset(w[:i] for w in self.plain_words for i in range(1, len(w) + 1))
        self.opener_ok = torch.tensor([(word.rstrip("'\u2019-").lower() in self.plain_words) if more
                                       else word.lower() in self.plain_prefixes
                                       for _, word, more, _ in self.cap_words], dtype=torch.bool)
        # (the word each glued token spells, lower-cased; whether more follows it in the token; the token ids)
        self._glued_words = [(m[0].lower(), len(m[0]) < len(text), ids) for text, ids in self.glued.items()
                             if (m := _TOKEN_WORD_RE.match(text)) is not None]

    def plain_continuation(self, partial: str) -> torch.Tensor:
        """Tokens (without a leading space) that extend the lower-case `partial` toward a plain word, or finish one
        and go on with something else ("ly,"). Worked out once per partial word (a pass over the vocabulary)."""
        with self._plain_lock:
            found = self._plain_next.get(partial)
            if found is None:
                words, prefixes = self.plain_words, self.plain_prefixes
                ids = [i for word, more, token_ids in self._glued_words
                       if (partial + word) in (words if more else prefixes) for i in token_ids]
                found = torch.zeros(self.size, dtype=torch.bool)
                found[ids] = True
                if len(self._plain_next) < 4096:
                    self._plain_next[partial] = found
        return found

    def opening_with(self, marks: tuple[str, ...]) -> list[int]:
        """Tokens whose text, leading spaces aside, starts with one of `marks`; once per vocabulary and marks."""
        with self._plain_lock:
            found = self._opening.get(marks)
            if found is None:
                found = self._opening[marks] = [i for text, ids in self.by_text.items()
                                                if text.lstrip().startswith(marks) for i in ids]
        return found

    def continuations(self, words: set[str] | frozenset[str], partial: str,
                      texts: dict[str, list[int]] | None = None) -> set[int]:
        """Tokens that extend `partial` toward one of `words`, however the rest is split into tokens: by default the
        tokens without a leading space (`glued`); `texts=by_text` takes every token (a phrase's spaces included)."""
        texts = self.glued if texts is None else texts
        ids: set[int] = set()
        for word in words:
            if len(word) > len(partial) and word.startswith(partial):
                rest = word[len(partial):]
                for end in range(1, len(rest) + 1):
                    ids.update(texts.get(rest[:end], ()))
        return ids

    def matching(self, words: set[str], prefixes: set[str]) -> torch.Tensor:
        """Which of `cap_words` spell one of `words` (followed by more) or one of `prefixes` (the whole token)."""
        found = torch.zeros(len(self.cap_words), dtype=torch.bool)
        positions = [p for w in words for p in self.whole.get(w, ())]
        positions += [p for w in prefixes for p in self.partial.get(w, ())]
        found[positions] = True
        return found


_VOCABS: dict[tuple, TokenWords] = {}
_VOCAB_KEYS: dict[int, tuple[Any, tuple]] = {}  # id(tokenizer) -> (the tokenizer, kept so its id stays its own; key)
_VOCAB_LOCK = threading.Lock()


def token_words(tokenizer: Any, size: int) -> TokenWords:
    """The vocabulary's analysis, once per vocabulary: keyed by its content, not by the tokenizer object, so the
    base model's tokenizer reuses what the tuned model's (the same vocabulary) cost (1-1.6 s). The content key
    itself costs ~0.1 s, so it is worked out once per tokenizer."""
    with _VOCAB_LOCK:
        known = _VOCAB_KEYS.get(id(tokenizer))
        if known is None or known[0] is not tokenizer:
            content = (hash(frozenset(tokenizer.get_vocab().items())),
                       tuple(sorted(getattr(tokenizer, "all_special_ids", []) or [])))
            known = _VOCAB_KEYS[id(tokenizer)] = (tokenizer, content)
        key = (size, known[1])
        found = _VOCABS.get(key)
        if found is None:
            found = _VOCABS[key] = _analyse(tokenizer, size)
    return found


def _analyse(tokenizer: Any, size: int) -> TokenWords:
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    texts = tokenizer.batch_decode([[i] for i in range(min(size, len(tokenizer)))], clean_up_tokenization_spaces=False)
    texts += [""] * (size - len(texts))  # the model's head may be padded past the tokenizer
    cap, lead, cont = (torch.zeros(size, dtype=torch.bool) for _ in range(3))
    cap_words: list[tuple[int, str, bool, bool]] = []
    glued: dict[str, list[int]] = {}
    by_text: dict[str, list[int]] = {}
    plain: set[str] = set()
    for i, text in enumerate(texts):
        if i in special or not text:
            continue
        by_text.setdefault(text, []).append(i)
        core = text.lstrip()
        lead[i] = core != text
        if lead[i] and core.isalpha() and core.islower():
            plain.add(core)
        if core[:1].isalpha() and core[:1].isupper():
            cap[i] = True
            word = _TOKEN_WORD_RE.match(core)[0]
            cap_words.append((i, word, len(word) < len(core), bool(lead[i])))
        if not lead[i]:
            cont[i] = text[:1].isalpha()
            glued.setdefault(text, []).append(i)
    closers = [i for m in (",", ".") for i in glued.get(m, [])][:2]
    texts = [("" if i in special else text) for i, text in enumerate(texts)]
    return TokenWords(size, cap, lead, cont, cap_words, glued, closers, plain_words=frozenset(plain),
                      by_text=by_text, texts=texts)
