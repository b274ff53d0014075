"""The request language: which words ask for which sentiment, tone, kind of answer, title or topic.

Keyword tables and regexes only; `intent` applies them. Negation ("not a positive one") is handled there.
"""
from __future__ import annotations

import re

from assistant.data.titles import COMMON_WORDS


def _alts(*words: str) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


# (pattern, polarity, weight): explicit asks outweigh everyday adjectives ("a good negative review" is negative).
SENTIMENT_WORDS: list[tuple[str, int, int]] = [
    (_alts("positive", "glowing", "raves?", "raving", "favou?rable", "fresh", r"thumbs?[- ]?up", "gushing",
           "rapturous", "enthusiastic", "complimentary", "flattering", "adoring", "admiring", "approving",
           "celebratory", "ecstatic", "loved it", "who loved", "love letter", r"(?:5|five)[- ]stars?",
           "praise", "praising", "praises", "positively", "upbeat", "optimistic"), +1, 2),
    (_alts("negative", "scathing", "pan", "panning", "pans", "rotten", r"thumbs?[- ]?down", "unfavou?rable",
           "damning", "hatchet job", "take ?down", "trash", "trashing", "roast", "roasting", "withering",
           "blistering", "savage", "brutal", "vicious", "caustic", "acerbic", "hated it", "who hated",
           r"(?:1|one|zero|0)[- ]stars?", "slam", "slamming", "bash", "bashing", r"rips? (?:it )?apart",
           r"tears? (?:it )?apart", "negatively", "pessimistic", "scornful", "dismissive", "snarky",
           "sarcastic", "mocking", "cynical", "unimpressed", "disappointed", "harsh", "harshest",
           r"critical(?! acclaim)(?!ly acclaimed)"), -1, 2),
    (_alts("good", "great", "excellent", "wonderful", "amazing", "nice", "warm", "sweet", r"kind (?:one|review|words)",
           "happy", "generous", "brilliant", "fantastic", "lovely", "charming", "glorious"), +1, 1),
    (_alts("bad", "terrible", "awful", "horrible", "nasty", "cruel", "angry", "furious", "grumpy", "sour",
           "biting", "cutting", "bitter", r"mean (?:one|review|take)", "worst", "worse", "rant", "hateful",
           "dreadful", "boring"), -1, 1),
]
SENTIMENT_RE = [(re.compile(rf"\b(?:{p})\b", re.IGNORECASE), pol, w) for p, pol, w in SENTIMENT_WORDS]
NEGATOR_RE = re.compile(
    r"\b(?:not|no|don'?t|do not|never|isn'?t|wasn'?t|nothing|without|less|anything but|rather than|instead of|"
    r"other than|nor|neither|stop being)\s+(?:\w+\s+){0,2}$", re.IGNORECASE)
TONE_RE = [
    (re.compile(r"\b(?:harsher|meaner|nastier|crueler|crueller|angrier|more (?:scathing|negative|brutal|savage|"
                r"critical|harsh|cutting|biting|vicious|cynical)|even worse|tougher|less (?:kind|nice|positive|"
                r"generous|gentle))\b", re.IGNORECASE), "harsher", -1),
    (re.compile(r"\b(?:kinder|nicer|gentler|softer|warmer|sweeter|happier|more (?:positive|generous|kind|"
                r"gentle|upbeat|enthusiastic|glowing)|less (?:harsh|negative|mean|scathing|brutal|critical))\b",
                re.IGNORECASE), "kinder", +1),
]

READABLE = re.compile(r"[^\W_]{2,}")  # a word of two letters or digits, in any script
HELP_RE = re.compile(
    r"^(?:/?help|\?+|commands?|usage|options|menu|examples?)\W*$|\bwhat (?:can|do|should) (?:you|i) (?:do|say|ask)\b|"
    r"\bhow (?:do(?:es)?|can|should) (?:i|you|this|it) (?:use|work|ask)\b|\bhow does this work\b|"
    r"\bwhat (?:are|is) (?:the|your) (?:commands?|options|features)\b|\bhelp me\b|\bwhat is this\b|"
    r"\bwhat are you for\b|\bhow to use\b|\bcan you help\b",
    re.IGNORECASE)
SMALLTALK_RE = re.compile(
    r"^(?:hi+|hello+|hey+|yo|hiya|howdy|greetings|good (?:morning|afternoon|evening|night)|"
    r"thanks?(?: you)?(?: so much)?|"
    r"thx|ty|cheers|cool|ok(?:ay)?|k|great|nice|awesome|lol|haha+|bye|goodbye|see (?:you|ya)|"
    r"how are you(?: doing)?|how'?s it going|what'?s up|sup|who are you|what are you|are you (?:a )?(?:bot|human|"
    r"robot|ai|real)|who made you|good (?:job|bot)|well done|(?:that|this) (?:is|was) (?:great|good|funny|cool|"
    r"awesome|weird|bad|terrible))\b",
    re.IGNORECASE)
WHY_RE = re.compile(
    r"^(?:why|how come|explain|sources?)\b|\bwhere did (?:that|this|it|you) (?:come from|get)\b|"
    r"\bwhat (?:was|is) (?:that|this|it) based on\b|\bwhat did you base\b|\bshow (?:me )?(?:the |your )?sources\b|"
    r"\bhow do you know\b|\bwhat do you mean\b|\bwhy did you (?:say|write)\b|\bexplain (?:that|this|it|yourself)\b",
    re.IGNORECASE)
OPINION_RE = re.compile(
    r"\bwhat (?:do|did|does|would|have) (?:the )?(?:critics?|reviewers|people|everyone|audiences?|the press|they)\b"
    r"|\bhow (?:do|did|does|was|were|is|are) (?:the )?(?:critics?|reviewers)\b"
    r"|\bhow (?:was|is|did|were) .{1,80}? (?:received|reviewed|rated|do with critics|go over|fare)\b"
    r"|\b(?:critics'?|critical) (?:consensus|reception|verdict|opinion|take|response|score|rating)\b"
    r"|\bconsensus\b|\btomatometer\b|\b(?:rt|rotten tomatoes) (?:score|rating)\b"
    r"|^(?:is|was|are|were)\s+.{1,80}?\s+(?:fresh|rotten|any good|good|bad|worth (?:it|watching|seeing|a watch)"
    r"|well[- ]reviewed|overrated|underrated|liked|certified fresh)\b"
    r"|\bshould i (?:watch|see|bother with|skip)\b|\bworth (?:watching|seeing)\b"
    r"|\b(?:score|rating|ratings|reception|verdict) (?:of|for|on)\b"
    r"|\bwhat(?: is|'s| was) the (?:verdict|score|rating|reception)\b"
    r"|\b(?:reviews|critics|reviewers) (?:say|said|think|thought)\b"
    r"|\bdid (?:critics|people|reviewers|audiences) (?:like|love|hate|enjoy|rate)\b"
    r"|\bhow (?:good|bad) (?:is|was)\b|\bwhat (?:is|was) .{1,80}? like\?*$",
    re.IGNORECASE)
REVIEW_RE = re.compile(
    r"\b(?:reviews?|write[- ]?up|critiques?|raves?|pan|roast|trash|takedown|hatchet job|thumbs?[- ]?(?:up|down)|"
    r"blurb|opinion piece|verdict on|take on)\b", re.IGNORECASE)
ASK_RE = re.compile(
    r"\b(?:write|give|generate|make|compose|produce|draft|create|craft|show|need|want|try|do|one)\b", re.IGNORECASE)
ANOTHER_RE = re.compile(
    r"^(?:(?:and |ok(?:ay)?,? |now )?(?:another|again|one more|once more|more|try again|regenerate|redo|re-?roll|"
    r"next|another one|give me another|do it again|same again|same thing|one more time|different one|"
    r"a different one|write another)\b)", re.IGNORECASE)
FLIP_RE = re.compile(r"\b(?:the opposite|opposite one|flip it|other side|other way(?: around)?|reverse it|"
                      r"the other way)\b", re.IGNORECASE)
SAME_MOVIE_RE = re.compile(r"\b(?:same (?:movie|film|one|title)|this (?:movie|film)|that (?:movie|film)|"
                            r"it|this one|that one)\b", re.IGNORECASE)
FOLLOWUP_RE = re.compile(r"\b(?:now|another|again|instead|same|this time|one more|too|also|then|it|one)\b",
                          re.IGNORECASE)
MOVIE_SWITCH_RE = re.compile(r"^(?:and |but |ok(?:ay)?,? |now )?(?:what about|how about|and|what of|same for|"
                              r"now do|do)\s+(?P<t>.+)$", re.IGNORECASE)
GENERIC_MOVIE_RE = re.compile(r"\b(?:any|a random|some|random|a) (?:movie|film|flick)\b", re.IGNORECASE)

GENRES = frozenset("""
horror comedy comedies thriller thrillers drama dramas romance romantic romcom rom-com sci-fi scifi science fiction
action animated animation cartoon cartoons documentary documentaries western westerns musical musicals superhero
war crime mystery fantasy family kids indie foreign french italian japanese korean noir slasher zombie vampire
monster disaster spy heist sequel sequels remake remakes blockbuster blockbusters biopic movie movies film films
flick flicks picture pictures show series franchise classic classics anime christmas holiday teen
""".split())
ASPECTS = frozenset("""
acting actors actor actress plot story script screenplay writing dialogue animation music score soundtrack ending
visuals effects cinematography direction director cast characters character villain hero jokes humor humour
pacing length runtime performances performance lead editing costumes sets design tone themes message
""".split())
# Words of the request language itself: a title made only of these ("Fresh", "Horror") is not spotted in passing.
VOCABULARY = COMMON_WORDS | GENRES | ASPECTS | frozenset(
    w for pattern, _, _ in SENTIMENT_WORDS for w in re.findall(r"[a-z]{3,}", pattern))
TOPIC_START = frozenset("a an some any one my this these those its".split())
FILLER = frozenset("one review reviews please pls plz instead too also again now then this time thanks".split())
TRAILING = FILLER | {"movie", "film"}
CUT_AT = re.compile(
    r"\s+(?:but|that|which|who|focusing|focused|focus|with|please|and make|in the style|instead|this time|again|"
    r"now|from|written|as if|like a|mentioning|talking|centered|centred|regarding|concerning|while|so that|"
    r"because|where)\b|[,.;!?()\"\u201c\u201d]|\s-\s|$", re.IGNORECASE)
TITLE_SLOTS = [
    re.compile(r"[\"\u201c\u201d](?P<t>[^\"\u201c\u201d]{1,120})[\"\u201c\u201d]"),
    re.compile(r"\b(?:of|for|on|about|regarding|re|to)\s+(?P<t>\S.*)$", re.IGNORECASE),
    re.compile(r"^(?:is|was|are|were)\s+(?P<t>.{1,120}?)\s+(?:fresh|rotten|any good|good|bad|worth|well[- ]reviewed|"
               r"overrated|underrated|liked|certified)\b", re.IGNORECASE),
    re.compile(r"\b(?:review|rave|pan|roast|trash|critique|watch|see|skip)\s+"
               r"(?!(?:of|for|on|about|to|a|an|me|my|it|this|that|one|please)\b)(?P<t>\S.*)$", re.IGNORECASE),
    re.compile(r"^(?P<t>.{1,120}?)\s*[:\-]?\s+(?:review|rave|pan|thumbs|please|fresh|rotten)\b", re.IGNORECASE),
    MOVIE_SWITCH_RE,
]
TOPIC_LEAD = re.compile(
    r"\b(?:of|for|about|focusing on|focused on|focus on|with a focus on|regarding|concerning|mentioning|talking about|"
    r"that talks about|centered on|centred on|praising|criticizing|criticising|slamming|on)\s+", re.IGNORECASE)

