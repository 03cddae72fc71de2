"""Turn a model name into the prefix of every generated C symbol, macro and type.

The prefix must be a valid C identifier that no C99/C11/C23 implementation reserves once the generated suffixes
(``_step``, ``_state_t``, ``_INPUT_SIZE``, ``_H``) are appended, so that several models link into one firmware:

* only ASCII letters, digits and single underscores (accented letters lose their accent, other characters become
  ``_``); never a leading or double underscore (reserved everywhere);
* never a leading digit, never a keyword;
* none of the prefixes the standard library reserves for its future use: ``is``/``to``/``str``/``mem``/``wcs``
  + lower-case letter (functions), ``int``/``uint`` ... ``_t`` (stdint types), ``E`` + digit or capital (errno
  macros), ``LC_``, ``SIG``, ``PRI``/``SCN``, ``FE_``, ``FLT_``/``DBL_``/``LDBL_``, ``TIME_``, ``ATOMIC_``,
  ``atomic_``, ``memory_order_``, ``cnd_``/``mtx_``/``thrd_``/``tss_``;
* lower case (macros use the upper-case form: two names differing only in case would collide there);
* at most 21 characters, so the longest external name, ``<prefix>_set_state``, fits the 31 significant
  characters C99 guarantees for external names.

Offending names get an ``m_`` prefix rather than being rejected; an empty result becomes ``model``.

Text from a checkpoint or the file system (the model name, its path, a module key) also appears in comments of
the generated files: the templates pass it through :func:`comment_text` (the ``comment`` filter), which makes it
inert there.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LENGTH = 31 - len("_set_state")
FALLBACK = "model"
_ESCAPE = "m_"

C_KEYWORDS = frozenset("""
    auto break case char const continue default do double else enum extern float for goto if inline int long
    register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
    _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local
    alignas alignof bool constexpr false nullptr static_assert thread_local true typeof typeof_unqual
    _BitInt _Decimal32 _Decimal64 _Decimal128
""".split())

# Checked on the lower-case prefix (function and type names) and on its upper-case form (macros).
_RESERVED_LOWER = re.compile(r"^((is|to|str|mem|wcs)[a-z]|u?int|atomic_|memory_order_|(cnd|mtx|thrd|tss)_)")
_RESERVED_UPPER = re.compile(r"^(E[0-9A-Z]|LC_[A-Z]|SIG|PRI|SCN|FE_|FLT_|DBL_|LDBL_|TIME_|ATOMIC_)")


def c_identifier(name: str) -> str:
    """The C prefix for a model name, e.g. ``"Wind sensor #2"`` -> ``"wind_sensor_2"``."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if not text:
        return FALLBACK
    if text in C_KEYWORDS or text[0].isdigit() or _RESERVED_LOWER.match(text) or _RESERVED_UPPER.match(
            text.upper()):
        text = _ESCAPE + text
    return text[:MAX_LENGTH].rstrip("_")


_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")


def comment_text(text: str) -> str:
    """``text`` as it may stand inside a C or Make comment: printable ASCII on one line (anything else becomes
    ``?``), with no ``*/`` or ``/*`` to end or nest a C comment."""
    flat = _NOT_PRINTABLE_ASCII.sub("?", str(text))
    while "*/" in flat or "/*" in flat:
        flat = flat.replace("*/", "*?").replace("/*", "?*")
    return flat

