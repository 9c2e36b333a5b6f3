"""Case-insensitive text: one spelling per case-fold class, the single home of Sigma's case folding.

Sigma matches plain string values case-insensitively (exact, contains, startswith, endswith,
wildcards, fieldref); `re|i` matches with RE2's `(?i)`. Both, and the candidate index that offers
rules for them, compare `fold(text)`: Unicode simple case folding as RE2 applies it, character by
character, so a rule value and an event that RE2 calls equal ignoring case fold to the same text,
and ones it keeps apart do not.

str.lower() alone falls short of that in three ways, all outside ASCII:
- it keeps apart characters that fold together: 'ſ' and 's', 'ς' and 'σ', 'µ' and 'μ', the Greek
  symbol and Cyrillic variant letters (FOLD_CLASSES, checked against RE2 by
  tests/unit/test_sigma_index_fold.py);
- it lower-cases 'Σ' by context (final 'ς' at a word's end, else 'σ'), so 'ΟΔΟΣ' lowered is 'οδος'
  and never equalled an event's 'οδοσ': after FOLD_CLASSES both are 'σ';
- it turns 'İ' (U+0130) into two characters ('i' and a combining dot), so a `?` wildcard no longer
  matched it and 'İ' equalled 'i̇'. Case folding leaves 'İ' alone (RE2 folds it with nothing; the
  Turkish 'İ'/'i' pair is a locale rule), so `fold` does too.

Text is compared as given: no Unicode normalisation (precomposed 'é' is not 'e' + U+0301), as RE2.
ASCII text, nearly every log value, costs one isascii() check on top of lower().
"""

from __future__ import annotations

FOLD_CLASSES = {
    "\u017f": "s",  # long s
    "\u00b5": "\u03bc",  # micro sign: mu
    "\u0345": "\u03b9",  # ypogegrammeni: iota
    "\u1fbe": "\u03b9",  # prosgegrammeni: iota
    "\u03c2": "\u03c3",  # final sigma
    "\u03d0": "\u03b2",  # beta symbol
    "\u03d1": "\u03b8",  # theta symbol
    "\u03d5": "\u03c6",  # phi symbol
    "\u03d6": "\u03c0",  # pi symbol
    "\u03f0": "\u03ba",  # kappa symbol
    "\u03f1": "\u03c1",  # rho symbol
    "\u03f5": "\u03b5",  # lunate epsilon
    "\u1fd3": "\u0390",  # iota with dialytika and oxia
    "\u1fe3": "\u03b0",  # upsilon with dialytika and oxia
    "\u1c80": "\u0432",  # Cyrillic small letter variants: ve, de, o, es, te, te, hard sign, yat
    "\u1c81": "\u0434",
    "\u1c82": "\u043e",
    "\u1c83": "\u0441",
    "\u1c84": "\u0442",
    "\u1c85": "\u0442",
    "\u1c86": "\u044a",
    "\u1c87": "\u0463",
    "\u1c88": "\ua64b",  # unblended uk: monograph uk
    "\u1e9b": "\u1e61",  # long s with dot above
    "\ufb05": "\ufb06",  # long s t ligature: s t ligature
}
_FOLD = str.maketrans(FOLD_CLASSES)
_DOTTED_I = "\u0130"  # the one character str.lower() makes longer
_MICRO = "\u00b5"  # the one fold class below U+0100 (test_latin1_text_folds_as_the_table_folds_it)


def fold(text: str) -> str:
    """`text` case-folded: lower-cased, each case-fold class spelled one way, as long as `text`."""
    if text.isascii():
        return text.lower()
    if _DOTTED_I in text:  # lower() the pieces around it ('Σ' before it folds the same either way)
        return _DOTTED_I.join([p.lower().translate(_FOLD) for p in text.split(_DOTTED_I)])
    low = text.lower()
    try:
        low.encode("latin-1")  # a copy at memory speed, or an error at the first wider character
    except UnicodeEncodeError:
        return low.translate(_FOLD)  # a dict probe per character: ~20 ns each
    # Latin-1 only (most non-ASCII log text: a no-break space, an accented name): of the fold
    # classes only the micro sign is below U+0100
    return low.replace(_MICRO, "\u03bc") if _MICRO in low else low
