"""The served classes (order is the bundle contract) and how data-set names map onto them."""

from __future__ import annotations

import re

LABELS = ["USD-1", "USD-2", "USD-5", "USD-10", "USD-20", "USD-50", "USD-100", "none"]
NONE = LABELS.index("none")
VALUES = [1, 2, 5, 10, 20, 50, 100, None]
DISPLAY = [
    {"en": "One dollar", "es": "Un dólar"},
    {"en": "Two dollars", "es": "Dos dólares"},
    {"en": "Five dollars", "es": "Cinco dólares"},
    {"en": "Ten dollars", "es": "Diez dólares"},
    {"en": "Twenty dollars", "es": "Veinte dólares"},
    {"en": "Fifty dollars", "es": "Cincuenta dólares"},
    {"en": "One hundred dollars", "es": "Cien dólares"},
    {"en": "No banknote found", "es": "No se encontró ningún billete"},
]
_WORDS = {"one": 1, "two": 2, "five": 5, "ten": 10, "twenty": 20, "fifty": 50, "hundred": 100,
          "onehundred": 100}
_NONE_NAMES = {"none", "negative", "negatives", "background", "nobill", "nobanknote", "other"}


def class_index(name: str) -> int:
    """Map a data-set class name ('Twenty', 'USD-20', '20', '$20', 'none', ...) to our index."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    if key in _NONE_NAMES:
        return NONE
    key = key.removeprefix("usd").removesuffix("dollars").removesuffix("dollar")
    value = _WORDS.get(key)
    if value is None and key.isdigit():
        value = int(key)
    if value is None or value not in VALUES[:NONE]:
        raise ValueError(f"unknown class name {name!r}: expected one of {', '.join(LABELS)}")
    return VALUES.index(value)
