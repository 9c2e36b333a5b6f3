r"""An upper bound on the size of RE2's program for a regex, read from its text (pure, no RE2 call).

RE2 refuses a pattern ("pattern too large") only when its compiled program needs more instructions than
re2_options()' max_mem leaves room for (~700,000 on the installed build, 12 bytes of max_mem an
instruction; typed.py's deferral assumes ~87,000). typed.compile_regex compiles a pattern at load when it
cannot tell from the text that it fits; compiling in full costs ~0.5 us an instruction (RE2 flattens
the program and builds its byte map), so a rule's `[\s\S]{0,600}?` (600 copies of a class) costs ~5 ms
of a cold start. program_bound() prices such a pattern the way RE2 builds it, instead of weighing every
character of the text by the costliest one (typed.surely_fits):

- a literal character is one instruction (a case-folded ASCII letter too: one folding byte range), `k`
  and `s` at most 8 (their case folds include U+212A and U+017F), a non-ASCII one at most
  NON_ASCII_RUNE (up to four bytes, and its case variants);
- a class (`[...]`, `\d`, `\s`, `\w` and their negations, `.`) two instructions per range of
  consecutive ASCII characters in it (a byte range and its alternation), worked out exactly from RE2's
  definitions with and without case folding (the larger is taken), plus its non-ASCII part:
  FULL_NON_ASCII for all of U+0080-U+10FFFF, HOLE more for each character a negated class (or \W under
  folding) leaves out of it, NON_ASCII_RUNE for each one a class holds;
- a group is its content (a capture two instructions more), an alternation its branches plus one each,
  an empty branch one no-op, `^ $ \b \B \A \z` one each;
- a repetition as RE2's simplifier expands it: x* and x+ c+2, x? c+1, x{n} n copies, x{n,} n copies
  and a loop, x{n,m} m copies each under its own alternation, m(c+1)+1; nested ones multiply.

RE2's own rewrites (factoring common prefixes of alternations, merging runs of repetitions, dropping
anchors at the ends) only make the program smaller. Anything else in the text - an inline flag group
after the start, `\p`, `\Q`, `\C`, `\x{...}`, POSIX classes, a non-ASCII range, a `{` that is not a
count, a backslash before a letter or digit not listed above - is not priced (None), and the pattern is
compiled at load as before. The bound is not a syntax check: a priced pattern is still parsed by RE2.
test_sigma_regex_price compiles priced patterns (rule sets, edge cases, generated ones) with room for
exactly their bound's number of instructions.
"""

from __future__ import annotations

import re

__all__ = ["FITS_BOUND", "program_bound"]

FITS_BOUND = 28_000  # instructions: about a third of what re2_options()' 8 MiB allow
NON_ASCII_RUNE = 20
FULL_NON_ASCII = 12  # RE2 compiles U+0080-U+10FFFF as 6 byte ranges and 3 alternations
HOLE = 32  # a character taken out of it: ~25 instructions at most (U+41234), fewer for more of them
_OVERHEAD = 8  # the fail and match instructions, the unanchored start's loop


def _bits(codes: object) -> int:
    return sum(1 << c for c in codes)  # type: ignore[attr-defined]


_ASCII = (1 << 128) - 1
_DIGIT = _bits(range(48, 58))
_UPPER = _bits(range(65, 91))
_LOWER = _bits(range(97, 123))
_SPACE = _bits((9, 10, 12, 13, 32))
_WORD = _DIGIT | _UPPER | _LOWER | 1 << 95
_K = 1 << ord("k") | 1 << ord("K")  # fold to U+212A (Kelvin sign) and back
_S = 1 << ord("s") | 1 << ord("S")  # fold to U+017F (long s) and back
_EVERY, _EVERY_BUT_FOLDS = 1, 2
# \d \s \w and their negations: (ASCII members as bits, the non-ASCII characters in it: see _class_cost)
_CATEGORIES = {
    "d": (_DIGIT, 0),
    "D": (_ASCII ^ _DIGIT, _EVERY),
    "s": (_SPACE, 0),
    "S": (_ASCII ^ _SPACE, _EVERY),
    "w": (_WORD, 0),
    "W": (_ASCII ^ _WORD, _EVERY_BUT_FOLDS),
}
_CHAR_ESCAPES = {"n": 10, "t": 9, "r": 13, "f": 12, "v": 11, "a": 7}
_EMPTY_WIDTH_ESCAPES = "bBAz"
_COUNT = re.compile(r"\{([0-9]{1,4})(?:(,)([0-9]{0,4}))?\}")
_FLAGS = re.compile(r"\(\?[imsU]+\)")
_FLAG_GROUP = re.compile(r"\(\?[imsU]*(?:-[imsU]+)?:")
_LITERAL_RUN = re.compile(r"[^\\\\\[\](){}|*+?.^$]+")
_NAME = re.compile(r"\(\?P<[A-Za-z0-9_]+>")


class _Unpriced(Exception):
    pass


def program_bound(source: str) -> int | None:
    """At least the number of instructions RE2 compiles `source` into (under re2_options(), whatever
    the case folding flag), or None when the text holds a construct this does not price."""
    pricer = _Pricer(source)
    try:
        cost = pricer.alternation()
    except (_Unpriced, IndexError, RecursionError):  # groups nested past Python's stack: RE2 takes ~1000
        return None
    if pricer.i != len(source):  # a `)` closing nothing: RE2's syntax error
        return None
    return cost + _OVERHEAD


def _runs(m: int) -> int:
    return (m & ~(m << 1)).bit_count()  # ranges of consecutive ASCII characters


def _class_cost(members: int, every: int, listed: tuple[int, ...], negated: bool) -> int:
    """A class's instructions: `members` its ASCII characters as written (bits), `every` which non-ASCII
    characters its categories hold (0: none, _EVERY: all, from \\D or \\S; _EVERY_BUT_FOLDS: \\W,
    all but what \\w's k and s fold to, under case folding), `listed` the non-ASCII characters it
    names; before `negated`. Priced with and without case folding, the larger taken."""
    key = (members, every, listed, negated)
    cost = _CLASS_COSTS.get(key)
    if cost is not None:
        return cost
    n = len(listed)
    cost = 0
    for fold in (False, True):
        m = members
        if fold:  # a letter's other case; k, K, s and S with U+212A and U+017F (RE2 folds, then negates)
            m |= (m & _UPPER) << 32 | (m & _LOWER) >> 32
            if every == _EVERY or 0x212A in listed:
                m |= _K
            if every == _EVERY or 0x17F in listed:
                m |= _S
        # what the class names, each with up to three case variants, and U+212A and U+017F with k and s
        out = 4 * n + bool(m & _K) + bool(m & _S) if fold else n
        if negated:
            m ^= _ASCII
        runs = _runs(m)
        if every == _EVERY:
            non_ascii = 0 if negated else FULL_NON_ASCII
        elif every == _EVERY_BUT_FOLDS:
            if negated:
                non_ascii = NON_ASCII_RUNE * 2 if fold else 0
            else:
                non_ascii = FULL_NON_ASCII + (HOLE * 2 if fold else 0)
        elif negated:
            non_ascii = FULL_NON_ASCII + HOLE * out
        else:
            non_ascii = NON_ASCII_RUNE * out
        cost = max(cost, 2 * runs + non_ascii + 1)
    if len(_CLASS_COSTS) < 4096:
        _CLASS_COSTS[key] = cost
    return cost


_CLASS_COSTS: dict[tuple[int, int, tuple[int, ...], bool], int] = {}
_DOT = _class_cost(1 << 10, 0, (), True)  # `.`: [^\n], more than (?s)'s every character


class _Pricer:
    def __init__(self, source: str) -> None:
        self.s = source
        self.i = 0
        while m := _FLAGS.match(source, self.i):  # flags for the whole pattern, at its start
            self.i = m.end()

    def alternation(self) -> int:
        s = self.s
        cost = self.sequence()
        while self.i < len(s) and s[self.i] == "|":
            self.i += 1
            cost += self.sequence() + 1
        return cost

    def sequence(self) -> int:
        s, n = self.s, len(self.s)
        cost = 0
        while self.i < n and s[self.i] not in "|)":
            run = _LITERAL_RUN.match(s, self.i)
            if run is not None:  # literal characters, but the last one when a repetition follows it
                end = run.end()
                if end < n and s[end] in "*+?{":
                    end -= 1
                text = s[self.i : end]
                cost += len(text) + 7 * sum(map(text.count, "KSks"))
                if not text.isascii():
                    cost += sum(NON_ASCII_RUNE - 1 for c in text if c >= "\x80")
                self.i = end
                if self.i >= n or s[self.i] in "|)":
                    break
            cost += self.repeat(self.atom())
        return cost or 1  # an empty branch: a no-op

    def repeat(self, c: int) -> int:
        s, n = self.s, len(self.s)
        if self.i >= n or s[self.i] not in "*+?{":
            return c
        op = s[self.i]
        if op == "{":
            m = _COUNT.match(s, self.i)
            if m is None:
                raise _Unpriced  # a literal `{` to RE2
            low = int(m.group(1))
            if not m.group(2):
                cost = low * c if low else 1
            elif not m.group(3):
                cost = max(low, 1) * c + 2
            else:
                high = int(m.group(3))
                cost = high * (c + 1) + 1 if high else 1
            self.i = m.end()
        else:
            cost = c + 1 if op == "?" else c + 2
            self.i += 1
        if self.i < n and s[self.i] == "?":  # non-greedy: the same instructions
            self.i += 1
        if self.i < n and s[self.i] in "*+?{":
            raise _Unpriced  # a repetition of a repetition
        return cost

    def atom(self) -> int:
        s = self.s
        ch = s[self.i]
        if ch == "(":
            extra = 2
            if s.startswith("(?", self.i):
                if s.startswith("(?:", self.i):
                    self.i += 3
                    extra = 0
                elif m := _NAME.match(s, self.i):
                    self.i = m.end()
                elif m := _FLAG_GROUP.match(s, self.i):
                    self.i = m.end()
                    extra = 0
                else:
                    raise _Unpriced  # flags set mid-pattern, or syntax RE2 does not have
            else:
                self.i += 1
            cost = self.alternation()
            if s[self.i] != ")":
                raise _Unpriced
            self.i += 1
            return cost + extra
        if ch == "[":
            return self.char_class()
        if ch == "\\":
            value = self.escape()
            if isinstance(value, tuple):
                return _class_cost(value[0], value[1], (), False)
            return 1 if value < 0 else _literal(value)
        if ch in "*+?{":
            raise _Unpriced
        self.i += 1
        if ch in "^$":
            return 1
        if ch == ".":
            return _DOT
        return _literal(ord(ch))

    def escape(self) -> int | tuple[int, int]:
        """The escape at self.i: a category's (ASCII members, non-ASCII ones: see _class_cost), a
        character's code point, or -1 for an empty-width one."""
        s = self.s
        d = s[self.i + 1]
        self.i += 2
        if d in _CATEGORIES:
            return _CATEGORIES[d]
        if d in _CHAR_ESCAPES:
            return _CHAR_ESCAPES[d]
        if d in _EMPTY_WIDTH_ESCAPES:
            return -1
        if d == "x":
            digits = s[self.i : self.i + 2]
            if len(digits) != 2 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise _Unpriced  # \x{...}
            self.i += 2
            return int(digits, 16)
        if d.isascii() and not d.isalnum() and d != "_":
            return ord(d)  # escaped punctuation
        raise _Unpriced

    def char_class(self) -> int:
        s = self.s
        self.i += 1
        negated = s[self.i] == "^"
        if negated:
            self.i += 1
        members = 0
        every = 0
        listed: list[int] = []
        first = True
        while True:
            ch = s[self.i]
            if ch == "]" and not first:
                self.i += 1
                break
            first = False
            if ch == "[" and s[self.i + 1 : self.i + 2] == ":":
                raise _Unpriced  # a POSIX class
            item = self.class_char()
            if isinstance(item, tuple):
                members |= item[0]
                every = _EVERY if _EVERY in (every, item[1]) else every or item[1]
                continue
            low = high = item
            if s[self.i] == "-" and s[self.i + 1] != "]":
                self.i += 1
                end = self.class_char()
                if isinstance(end, tuple) or end < low:
                    raise _Unpriced
                high = end
            if high >= 128:
                if high != low:
                    raise _Unpriced  # a non-ASCII range
                listed.append(high)
            else:
                members |= (1 << (high + 1)) - (1 << low)
        return _class_cost(members, every, tuple(sorted(set(listed))), negated)

    def class_char(self) -> int | tuple[int, int]:
        s = self.s
        ch = s[self.i]
        if ch != "\\":
            self.i += 1
            return ord(ch)
        value = self.escape()
        if isinstance(value, int) and value < 0:
            raise _Unpriced  # \b in a class
        return value


def _literal(code: int) -> int:
    if code >= 128:
        return NON_ASCII_RUNE
    return 8 if code in (75, 83, 107, 115) else 1  # K S k s: their case folds include a non-ASCII character
