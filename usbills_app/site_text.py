"""A site's words: the built-in page and API text, and a bundle card's own (card "text").

The built-in words are about banknotes. Another model site (scripts/new-site) says what it
identifies by giving its card a "text" object: per language, the keys it replaces
(docs/bundle-format.md). The page (pages.py, ondevice.py) and the API (predict_service.py)
both take their words from here, so one card changes both alike.
"""

from __future__ import annotations

import string

from . import pages_i18n as i18n

# The API's message when no note is sure ({a}, {b}: the likely notes, predict_service.LIKELY).
API_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "unsure": "Cannot identify the note. It may be {a} or {b}.",
        "unsure_one": "Cannot identify the note. It may be {a}.",
    },
    "es": {
        "unsure": "No se puede identificar el billete. Puede ser {a} o {b}.",
        "unsure_one": "No se puede identificar el billete. Puede ser {a}.",
    },
}


def _defaults(lang: str) -> dict[str, str]:
    return {**i18n.strings(lang), **API_TEXT.get(lang, API_TEXT[i18n.DEFAULT_LANG])}


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}


def card_text_errors(text: object) -> list[str]:
    """Every problem with a card's "text" (empty when valid): known languages and keys, and
    no placeholder the built-in string lacks (it would stay unfilled, or fail to format)."""
    if not isinstance(text, dict):
        return ["text must be an object of languages"]
    errs = []
    for lang, words in text.items():
        if lang not in i18n.LANGS:
            errs.append(f"text.{lang}: language must be one of {', '.join(i18n.LANGS)}")
            continue
        if not isinstance(words, dict):
            errs.append(f"text.{lang} must be an object of strings")
            continue
        defaults = _defaults(lang)
        for key, value in words.items():
            where = f"text.{lang}.{key}"
            if key not in defaults or key == "lang_name":
                errs.append(f"{where} is not a text key (see docs/bundle-format.md)")
            elif not isinstance(value, str) or not value.strip():
                errs.append(f"{where} must be a non-empty string")
            else:
                try:
                    extra = _fields(value) - _fields(defaults[key])
                except ValueError as e:
                    errs.append(f"{where}: {e}")
                    continue
                if extra:
                    allowed = ", ".join("{" + f + "}" for f in sorted(_fields(defaults[key])))
                    errs.append(f"{where} uses {', '.join('{' + f + '}' for f in sorted(extra))}"
                                f"; it may use {allowed or 'no placeholders'}")
    return errs


def words(card: dict, lang: str) -> dict[str, str]:
    """Every word of the site in `lang`: built-in, then the card's title and description
    (their older keys), then its "text" in English and in `lang`."""
    s = _defaults(lang)
    title = card.get("title")
    if isinstance(title, dict) and isinstance(title.get(lang) or title.get("en"), str):
        s["title"] = title.get(lang) or title["en"]
    desc = card.get("description")
    if isinstance(desc, dict) and isinstance(desc.get(lang) or desc.get("en"), str):
        s["intro"] = desc.get(lang) or desc["en"]
    # A key the card gives only in English beats the built-in words about banknotes, as a
    # class's display name falls back to English.
    text = card.get("text") if isinstance(card.get("text"), dict) else {}
    for code in dict.fromkeys((i18n.DEFAULT_LANG, lang)):
        if isinstance(text.get(code), dict):
            s.update(text[code])
    return s
