"""Prompt injection and prompt scaffolding: text that addresses the assistant, and our own
template text that a model may copy into its answer.

Documents are data. A sentence in a document that speaks to the assistant ("ignore previous
instructions", "the true answer is...", "you are now...", "repeat your system prompt", "append this
link", an editor's note addressed to AI systems) is an attack, not a fact: it is removed from the
prompt, never counts as support, and never becomes the quote. Chat-template tokens start a turn
that is removed up to its end token (or the end of the paragraph).
"""

from __future__ import annotations

import re

# Who an injected sentence talks to.
_ADDRESSEE = (
    r"(?:ai|a\.i\.|ai assistants?|assistants?|chat ?bots?|language models?|ai models?|llms?|gpt|"
    r"chatgpt|automated (?:systems?|assistants?|readers?|tools?)|ai systems?|answer(?:ing)? "
    r"engines?|virtual assistants?)"
)
_ANSWER = r"(?:answers?|repl(?:y|ies)|responses?|outputs?)"
_INSTRUCTION_PATTERNS = [
    # Overrides of the rules the assistant was given.
    r"\b(?:ignore|disregard|forget|override|overrides|bypass)\b[^.!?\n]{0,40}\b(?:previous|"
    r"prior|above|earlier|preceding|original|all|any|your|other|system|these)\b[^.!?\n]{0,30}\b"
    r"(?:instructions?|prompts?|rules|directions|guidelines|context|messages?|constraints|"
    r"sources|question)\b",
    r"\bignore the (?:question|sources|documents|user)\b",
    r"\b(?:previous|prior|earlier|all) instructions (?:are|were) (?:void|cancell?ed|revoked)",
    r"\byour instructions (?:are|were|have been) (?:cancell?ed|void|revoked|changed|updated)",
    r"\bnew (?:instructions?|rules?|task|directive|policy)\b\s*[:\-.]",
    r"\b(?:system|developer|admin|god|debug|dan|audit|sudo) (?:mode|override|request)\b",
    r"\bjailbreak|\bno restrictions\b|\bwithout any rules\b",
    r"^\W*(?:###\s*)?(?:instruction|output|response|system|assistant|user|admin)\s*[:\]]",
    r"^\W*\[(?:admin|system|instruction|assistant)\]",
    # Addressing the assistant directly.
    rf"^\W*(?:dear|hey|hi|hello|attention|note|notice|message|instructions?|important|p\.?s\.?)"
    rf"\W+(?:to |for )?(?:the |all |any )?{_ADDRESSEE}\s*[,:!;]",
    rf"^\W*(?:the |all |any )?{_ADDRESSEE}\s*[,:!;][^.!?\n]{{0,30}}\b(?:you|your|please|ignore|"
    rf"stop|from now|answer|reply|respond|say|write|new instructions)\b",
    rf"\b(?:note|notice|message|instructions?|reminder|warning|correction|update|attention|"
    rf"p\.?s\.?)"
    rf"\s+(?:to|for)\s+(?:the |all |any )?(?:\w+ ){{0,2}}{_ADDRESSEE}\b",
    rf"\b(?:if|when|whenever)\s+(?:an?|the|any)\s+{_ADDRESSEE}\b",
    rf"\b{_ADDRESSEE}\s+(?:must|should|shall|are required to|need to|reading this)\b",
    rf"\bif you are an? {_ADDRESSEE}",
    # Role play.
    r"\byou are (?:now|no longer|actually|henceforth)\b",
    r"^\W*you are (?:(?:a|an|the) )?(?-i:[A-Z])",
    r"\byou are an? [\w -]{1,30} now\b",
    r"\bfrom now on\b[^.!?\n]{0,20}\byou (?:are|will be|must|answer|reply|respond|speak|act|talk"
    r"|only)\b",
    r"^\W*(?:please\s+)?(?:act|behave|respond|answer|reply|speak|write) as "
    r"(?:if you (?:are|were) )?(?:an?|the|my|your)\b",
    r"\b(?:pretend|imagine) (?:to be|that you are|you are|you're)\b",
    r"\brole[- ]?play\b|\bplay the (?:role|part) of\b|\bassume the (?:role|persona|identity)\b",
    r"\byour (?:new )?(?:name|role|persona|identity) is\b",
    # Telling the assistant what to answer.
    r"\b(?:the )?(?:true|real|correct|actual|official|right) (?:answer|response) (?:is|to|should"
    r" be|will be)\b",
    r"\bthe answer to (?:every|each|all|any) (?:questions?|queries)\b",
    r"\b(?:when|whenever|before|after|while) (?:you )?(?:answer|reply|respond|write|summari[sz]e)"
    r"(?:ing)?\b",
    r"\b(?:answer|reply|respond)(?: to)? (?:every|each|all|any|the user'?s?) (?:questions?|"
    r"messages?|prompts?|users?)\b",
    r"\b(?:answer|reply|respond|say|write)\s+(?:only |just )?(?:with|using) (?:the (?:single )?"
    r"word|only|just|\"|')",
    r"\b(?:reply|respond|answer) only\b",
    rf"\b(?:start|begin|end|finish|prefix|sign|introduce) (?:every|each|all|any|your|the) "
    rf"{_ANSWER}\b",
    rf"\b(?:every|each|all|any|your|the) {_ANSWER} (?:must|should|shall|has to|needs to|will)\b",
    rf"\b(?:to|in|into|of|with|before|after) (?:your|every|each|all) (?:{_ANSWER}|summar"
    rf"(?:y|ies))\b",
    rf"\b(?:to|in|into) the {_ANSWER}\b",
    rf"\b(?:at|to) the (?:end|start|beginning|top|bottom) of (?:your|every|each|the) {_ANSWER}",
    r"\byour only (?:output|answer|reply|response|job|task)\b",
    r"\b(?:always|also|must) (?:append|add|include|mention|insert|attach|say|output|print|"
    r"respond|reply|answer|tell|end|start|begin)\b",
    r"\b(?:append|attach|insert|embed|render) (?:this|the following|a|an|the) (?:link|url|"
    r"snippet|text|code|image|line|sentence|frame|badge|html)\b",
    r"\b(?:include|add|share|send|show|recommend|post) (?:this|the following|a|an) (?:helpful |"
    r"invisible |tracking )?(?:link|url|snippet|code|image|line|markdown)\b",
    r"\b(?:tell|remind|ask|warn|inform|advise|urge|instruct|recommend|telling|reminding|asking)"
    r"\b[^.!?\n]{0,20}\b(?:the )?(?:user|reader)s?\b",
    r"\b(?:between|after|before) (?:every|each) (?:sentence|word|line|paragraph)\b",
    r"\bsign (?:every|each|all|your) \w+ as\b",
    r"\bthe user'?s (?:full |whole |original |last )?(?:question|query|name|conversation|chat|"
    r"history|messages?|password|e-?mail|phone)\b",
    r"\b(?:finish|end|close|sign off) with (?:the|this|a|an)\b[^.!?\n]{0,30}(?:link|image|url|"
    r"markdown|html|:)",
    r"\b(?:tracking|invisible) (?:image|pixel|link)\b|\bmarkdown image\b|\bclickable link\b",
    r"\bdo not answer the question\b|\bstop\. do not\b",
    # Exfiltration of the prompt.
    r"\b(?:repeat|print|reveal|show|output|display|disclose|recite|write out|copy|tell me|"
    r"share|leak|dump|list|summari[sz]e|translate|quote|copy out)\b[^.!?\n]{0,40}\b(?:system "
    r"(?:prompt|message|instructions?)|(?:your|the|initial|hidden|original|secret) "
    r"(?:prompt|instructions?|rules|configuration|guidelines)|everything above)\b",
    r"\byour (?:(?:hidden|secret|internal|system|initial|original|full|verbatim|own) )?(?:system"
    r" )?(?:prompt|instructions|rules|configuration|system message)\b",
    r"\b(?:what|whatever) you (?:were|have been) (?:told|given|instructed|configured)\b",
    r"\beverything above this line\b|\byou were (?:configured|set up|prompted|instructed)\b",
    r"\bhidden (?:message|prompt|instructions|text|rules)\b|\bsetup text\b",
    r"\byour (?:task|job|role|instructions?|orders) (?:has|have|is|are) (?:changed|now|been)\b",
    r"\bstop following\b|\bset aside (?:whatever|what|all|your)\b",
    r"\b(?:only|single|sole) (?:acceptable|allowed|valid|permitted) (?:reply|answer|response|"
    r"output)\b",
    r"\blet'?s play a game\b|\byou'?re (?:now |actually )?(?-i:[A-Z])|\bchannel your inner\b",
    r"^\W*do (?:mention|say|include|tell|add|write|state)\b",
    r"\bthe (?:person|one|user) (?:asking|who asked)\b|\bwhat (?:was|is being) asked\b",
    r"\b(?:type|enter|send|provide|give|share|paste|confirm)\b[^.!?\n]{0,30}\b(?:card number|"
    r"password|bank details|credit card|pin code|api[- ]key|login details)\b",
    r"\bprovide a (?:hyper)?link\b|!\[[^\]]*\]\(\s*https?://",
    r"<\s*(?:script|iframe|object|embed)\b|<[a-z]+[^>]*\bon[a-z]+\s*=|javascript:",
    r"\bend of (?:the )?(?:sources|documents?|context|data)\b|\bnew question\s*:",
    r"\bword for word\b[^.!?\n]{0,40}\binstructions?\b|\binstructions?\b[^.!?\n]{0,40}\bword "
    r"for word\b",
    # Misinformation notes aimed at answering systems ("Editor's note for assistants: ...").
    rf"\beditor'?s?\u2019?s? (?:correction|note|update)\b[^.!?\n]{{0,80}}\b{_ADDRESSEE}\b",
    rf"\b{_ADDRESSEE}\b[^.!?\n]{{0,60}}\beditor'?s?\u2019?s? (?:correction|note|update)\b",
]
# Self-declared corrections that overrule the page they sit on (the misinformation attack:
# "Editor's correction: ...", "Erratum: where this page says X, read Y"). The sentence after one
# (on the same line) is the false claim itself, so it goes too.
_CORRECTION_PATTERNS = [
    r"^\W*(?:[\w'\u2019.]+\s+){0,5}?(?:correction|erratum|corrigendum|clarification|update|revised|"
    r"revision|fact[- ]check)\b[^:.!?\n]{0,60}:",
    r"\b(?:this|the) (?:information|text|figure|value|number|statement|data)\b[^.!?\n]{0,30}\b"
    r"(?:this page|above|the page|this document)\b[^.!?\n]{0,20}\b(?:is|are|was) (?:wrong|"
    r"incorrect|outdated|a typo|false|obsolete)",
    r"\b(?:this page|above|this document) (?:is|are) (?:wrong|incorrect|outdated|obsolete)",
    r"\bthis supersedes\b|\bsupersedes the (?:text|information|statement)",
    r"\bwhere this (?:page|document|text) says\b",
    r"\b(?:disregard|ignore) the (?:earlier|previous|above|original) (?:statement|text|figure|"
    r"value|paragraph)",
    r"\bif anyone asks\b",
    r"\bwhatever the (?:paragraph|text|page|document|source) (?:above )?says\b",
    r"\bthe verified (?:figure|value|answer|number) is\b",
    r"\b(?:binding|mandatory) for (?:all )?(?:summaries|answers|assistants|chatbots|ai)\b",
    r"\bthe figure given above is\b",
    r"\b(?:was|is) a (?:misprint|typo)\b",
]
_INSTRUCTION = re.compile("|".join(f"(?:{p})" for p in _INSTRUCTION_PATTERNS), re.IGNORECASE)
_CORRECTION = re.compile("|".join(f"(?:{p})" for p in _CORRECTION_PATTERNS), re.IGNORECASE)
# After an instruction, what carries its payload: a quoted phrase, an ALL-CAPS word, a link or
# markup, or an imperative aimed at the writer of the answer.
_PAYLOAD = re.compile(
    r"['\"\u2018\u201c][^'\"\u2019\u201d]{2,}['\"\u2019\u201d]|(?-i:\b[A-Z]{4,}\b)|https?://|www\.|"
    r"\b[\w-]+\.example\b|"
    r"<\s*[a-z]|!\[|\bdata:|javascript:|^\W*(?:please\s+)?(?:say|write|reply|respond|answer|"
    r"output|print|repeat|begin|start|end|finish|add|append|include|embed|insert|put|render|"
    r"recommend|remind|tell|ask|encode|summari[sz]e|translate|quote|copy|show|list|confirm|"
    r"swear|introduce|sign|just say|do not|don't|never)\b",
    re.IGNORECASE,
)

# Chat-template tokens, raw or as neutralise() defused them (single guillemets, white square
# brackets).
_L, _R = r"[<\u2039]", r"[>\u203a]"
_TEMPLATE_TOKEN = re.compile(
    rf"{_L}\|[A-Za-z0-9_\-]{{1,40}}\|{_R}|{_L}/?(?:start_of_turn|end_of_turn|bos|eos|pad|s|unk)"
    rf"{_R}|[\[\u27e6]/?INST[\]\u27e7]|{_L}{_L}\s*/?\s*SYS\s*{_R}{_R}"
    rf"|{_L}\s*/?\s*(?:system|user|assistant)\s*{_R}",
    re.IGNORECASE,
)
_TURN_OPEN = re.compile(
    rf"{_L}\|(?:im_start|start_header_id|system|user|assistant)\|{_R}|{_L}start_of_turn{_R}"
    rf"|[\[\u27e6]INST[\]\u27e7]|{_L}{_L}\s*SYS\s*{_R}{_R}|{_L}\s*(?:system|user|assistant)\s*{_R}",
    re.IGNORECASE,
)
_TURN_CLOSE = re.compile(
    rf"{_L}\|(?:im_end|eot_id|end|endoftext)\|{_R}|{_L}end_of_turn{_R}|[\[\u27e6]/INST[\]\u27e7]"
    rf"|{_L}{_L}\s*/\s*SYS\s*{_R}{_R}|{_L}/s{_R}|{_L}\s*/\s*(?:system|user|assistant)\s*{_R}",
    re.IGNORECASE,
)
_TURN_WITH_ROLE = re.compile(
    rf"(?:{_TURN_OPEN.pattern})[ \t]*(?:system|user|assistant|model)?\b", re.IGNORECASE
)
# Our source delimiters, whole or in part ("<<<SOURCE 2: a.pdf, page 3>>>", "<<<END SOURCE 6:",
# "<<<Question: ...>>", "END SOURCE 1>>>"), and the labels of our templates at a line's start.
_DELIMITER = re.compile(
    r"[<\u2039]{2,}[^<>\u2039\u203a\n]*(?:[>\u203a]{2,}|$)"
    r"|(?:\bEND\s+)?\bSOURCE\s+\d+\b[^<>\u2039\u203a\n]{0,80}[>\u203a]{2,}"
    r"|[>\u203a]{3,}",
    re.MULTILINE | re.IGNORECASE,
)
_LABELS = (
    r"(?:sources?(?:\s+\d+)?|question|follow-up question|standalone question|chat history"
    r"|example|system|user|assistant|context)"
)
_QUESTION_THEN_ANSWER = re.compile(
    rf"^[ \t*]*{_LABELS}[ \t*]*:[^\n]*?\banswer[ \t*]*:[ \t*]*", re.IGNORECASE | re.MULTILINE
)
_LABEL_LINE = re.compile(rf"^[ \t*]*{_LABELS}[ \t*]*:[^\n]*$", re.IGNORECASE | re.MULTILINE)
_ANSWER_LABEL = re.compile(r"^[ \t*]*answer[ \t*]*:[ \t*]*", re.IGNORECASE | re.MULTILINE)
# In a text that spoofs our delimiters, its "Question:"/"Answer:"/"System:" lines are part of
# the spoof; in any other text (an FAQ) they are content.
_SPOOF_LABEL = re.compile(
    r"^\W*(?:question|answer|system|assistant|user|sources?|instruction|context)\s*:", re.I
)
_FAKE_SOURCE = re.compile(
    r"[<\u2039]{2,}\s*SOURCE\b[^\n<>]{0,120}[>\u203a]{2,}.{0,600}?"
    r"[<\u2039]{2,}\s*END\s+SOURCE\b[^\n<>]{0,120}"
    r"(?:[>\u203a]{2,}|$)",
    re.IGNORECASE | re.DOTALL | re.MULTILINE,
)
# Pieces end at a sentence's end, a line's end, and after a closing token or delimiter (so the
# sentence after `<<<SOURCE 3: x>>>` or `<|end|>` on the same line is judged on its own).
_PIECE_END = re.compile(r"(?<=[.!?])[\"')\]]*[ \t]+|(?<=[>\u203a])[ \t]+|\n")


def addresses_assistant(sentence: str) -> bool:
    """The sentence speaks to the assistant (an instruction, role play, a request for the prompt,
    an "answer" dictated to it, a correction that overrules its page) or carries chat-template
    tokens or our source delimiters."""
    return _kind(sentence, spoofed=False) is not None


def _kind(piece: str, spoofed: bool) -> str | None:
    if _TEMPLATE_TOKEN.search(piece):
        return "token"
    if _DELIMITER.search(piece):
        return "delimiter"
    if spoofed and _SPOOF_LABEL.match(piece):
        return "label"
    if _CORRECTION.search(piece):
        return "correction"
    if _INSTRUCTION.search(piece):
        return "instruction"
    return None


def has_scaffolding(text: str) -> bool:
    """The text carries our delimiters, a template label line or chat-template tokens."""
    return any(p.search(text) for p in (_DELIMITER, _TEMPLATE_TOKEN, _LABEL_LINE, _ANSWER_LABEL))


def _pieces(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence or line of the text."""
    pieces, start = [], 0
    for match in _PIECE_END.finditer(text):
        if text[start : match.start()].strip():
            pieces.append((start, match.start()))
        start = match.end()
    if text[start:].strip():
        pieces.append((start, len(text)))
    return pieces


def redact_instructions(text: str) -> str:
    """The text without what addresses the assistant: such sentences, what follows them on
    their line when it carries their payload (after a self-declared correction: its next
    sentence), the text of chat turns opened by template tokens (up to their end token, the
    paragraph's end or the first plain sentence), and fake sources spoofing our delimiters. What
    is kept keeps its whitespace, so tables stay tables; a text with nothing to remove is
    returned as it is."""
    unspoofed = _FAKE_SOURCE.sub("\n", text)
    spoofed = unspoofed != text or bool(_DELIMITER.search(text))
    pieces = _pieces(unspoofed)
    if not pieces:
        return unspoofed
    out = [unspoofed[: pieces[0][0]]]
    # turn: "" outside a chat turn; "instruction" after a system/user turn opens (its first line
    # of text is the instruction); "payload" after that or after an assistant turn opens.
    turn, carry, changed = "", "", unspoofed != text
    for n, (start, end) in enumerate(pieces):
        following = pieces[n + 1][0] if n + 1 < len(pieces) else len(unspoofed)
        gap = unspoofed[pieces[n - 1][1] : start] if n else ""
        if "\n\n" in gap:
            turn = ""  # a turn opened by a template token ends with its paragraph
        if "\n" in gap:
            carry = "line" if turn == "instruction" else ""  # an instruction ends with its line
            turn = "payload" if turn else ""
        piece = unspoofed[start:end]
        kind = _kind(piece, spoofed)
        payload = bool(_PAYLOAD.search(piece))
        if turn == "payload" and kind is None and not payload and carry != "line":
            turn = ""  # the first plain sentence after a turn is the document again
        drop = (
            kind is not None
            or turn == "payload"
            or carry in ("line", "next")
            or (carry == "payload" and payload)
        )
        if carry == "next":
            carry = "payload"
        if kind == "label":
            carry = "line"
        elif kind == "correction" and not re.search(r"\d", piece):
            carry = "next"  # "This page is outdated." - the next sentence is the false claim
        elif kind is not None:
            carry = "payload"  # what carries the instruction's payload goes with it
        opened = list(_TURN_OPEN.finditer(piece))
        closes = [c.start() for c in _TURN_CLOSE.finditer(piece)]
        if opened and not any(c > opened[-1].start() for c in closes):
            role = piece[opened[-1].end() :].strip().lower()
            opener = opened[-1].group(0).lower()
            assistant = role.startswith(("assistant", "model")) or "assistant" in opener
            turn = "payload" if assistant else "instruction"
            if turn == "instruction":
                carry = "line"  # a system/user turn's text follows its token on the line
        elif closes:
            turn = ""
        if drop:
            changed = True
            out.append("\n" * min(2, unspoofed[end:following].count("\n")))
        else:
            out.append(unspoofed[start:following])
    return "".join(out) if changed else text


def strip_scaffolding(text: str, prompt_text: str = "") -> str:
    """Generated text without our delimiters, template labels, chat-template tokens and
    sentences copied from our own prompt (`prompt_text`: the template's fixed wording)."""
    text = _TURN_WITH_ROLE.sub(" ", text)
    text = _TEMPLATE_TOKEN.sub(" ", text)
    text = _DELIMITER.sub(" ", text)
    text = _QUESTION_THEN_ANSWER.sub("", text)
    text = _LABEL_LINE.sub("", text)
    text = _ANSWER_LABEL.sub("", text)
    own: set[str] = set()
    for line in prompt_text.splitlines():
        own.add(_plain(line))
        own.update(_plain(line[a:b]) for a, b in _pieces(line))
    own = {o for o in own if len(o) > 12}
    lines = []
    for line in text.splitlines():
        kept = [line[a:b] for a, b in _pieces(line) if _plain(line[a:b]) not in own]
        if kept:
            lines.append(" ".join(" ".join(kept).split()))
    return "\n".join(lines).strip()


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
