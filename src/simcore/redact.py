"""Redaction of personal data and secrets in free text and in JSON.

SDK logs and error bodies carry customer data (names, emails, phones, cards, IBANs, IPs) and
credentials (API keys, bearer tokens, HMAC signatures). Nothing of that may reach SIRA, so
every exported field goes through here first (DESIGN.md, Security model).

How it decides: detectors propose spans, each with a rank; the best-ranked span wins where
spans overlap. Field-aware rules (``password=...``, ``"customer_name": ...``) rank first,
because the field name is the strongest evidence there is. Next come shapes that cannot be
anything else (JWTs, API keys, emails), then look-alikes that must survive (UUIDs, ISO
timestamps, long hashes outside secret fields), and only then the shapes that need a checksum
or a numbering plan to be told apart from ordinary numbers (IBAN, card numbers, IPs, phones).
A detected span becomes a typed placeholder such as ``<EMAIL>``; the output of a redaction
is stable under a second redaction.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TypeAlias

JsonValue: TypeAlias = "dict[str, JsonValue] | list[JsonValue] | str | int | float | bool | None"


class PiiKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    PAN = "pan"
    IBAN = "iban"
    IP = "ip"
    JWT = "jwt"
    TOKEN = "token"
    SECRET = "secret"
    NAME = "name"

    @property
    def placeholder(self) -> str:
        return f"<{self.name}>"


PLACEHOLDERS = frozenset(kind.placeholder for kind in PiiKind)


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal or secret data: its kind and ``(start, end)`` in the text."""

    kind: PiiKind
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int
    end: int
    kind: PiiKind | None  # None: a look-alike that must stay as it is
    rank: int


# Ranks: lower wins an overlap.
_R_FIELD, _R_SHAPE, _R_EMAIL, _R_KEEP, _R_IBAN, _R_PAN, _R_IP, _R_PHONE, _R_NAME_ECHO = range(9)

# ---------------------------------------------------------------------------------------------
# Field names
# ---------------------------------------------------------------------------------------------


class _Field(StrEnum):
    NAME = "name"
    PERSON = "person"  # a role (customer, payer...): a name when the value reads like one
    SECRET = "secret"  # any non-empty value is a secret (password, pin, client_secret...)
    CREDENTIAL = "credential"  # a secret only when the value looks like one (key, signature)
    TOKEN = "token"  # the same rule, for ``*_token`` fields
    AUTH = "auth"  # "<scheme> <credentials>" (Authorization, Cookie)
    PHONE = "phone"
    EMAIL = "email"
    IBAN = "iban"
    PAN = "pan"


_NAME_FIELDS = frozenset(
    {
        "name", "names", "full_name", "fullname", "first_name", "firstname", "given_name",
        "givenname", "last_name", "lastname", "family_name", "familyname", "surname",
        "middle_name", "display_name", "holder", "holder_name", "cardholder", "card_holder",
        "cardholder_name", "card_holder_name", "account_holder", "account_holder_name",
        "account_name", "beneficiary", "username", "user_name", "login_name",
        # French field names, as they appear in francophone merchants' integrations.
        "nom", "prenom", "prénom", "nom_complet", "nom_client", "titulaire", "beneficiaire",
        "bénéficiaire",
    }
)  # fmt: skip
# "<role>_name" is a person's name when the role is a person (customer_name, payer_name...).
_NAME_ROLES = frozenset(
    {
        "customer", "client", "payer", "payee", "sender", "recipient", "receiver",
        "beneficiary", "billing", "shipping", "contact", "owner", "holder", "cardholder",
        "card_holder", "account_holder", "user", "merchant_contact", "customer_full",
    }
)  # fmt: skip
_PERSON_FIELDS = frozenset(
    {
        "customer", "client", "payer", "payee", "sender", "recipient", "receiver", "owner",
        "contact", "buyer", "debtor", "creditor", "destinataire", "expediteur", "expéditeur",
    }
)  # fmt: skip
_SECRET_FIELD = re.compile(
    r"(?:^|_)(?:password|passwd|pwd|passphrase|pass|secret|secret_key|private_key|client_secret"
    r"|pin|cvv|cvv2|cvc|cvc2|csc|otp|credentials?|mot_de_passe|mdp|code_secret)$"
)
_TOKEN_FIELD = re.compile(r"(?:^|_)token$")
_CREDENTIAL_FIELD = re.compile(
    r"(?:^|_)(?:signature|sig|hmac|api_?key|apikey|access_?key|signing_key|session_?key|key)$"
)
_AUTH_FIELDS = frozenset({"authorization", "proxy_authorization", "cookie", "set_cookie"})
# Named like a secret but holding public, non-personal values the error analysis needs.
_NOT_SECRET_FIELDS = frozenset(
    {
        "error_signature", "signature_version", "signature_method", "signature_algorithm",
        "sig_alg", "token_type", "idempotency_key", "key_id", "api_key_id", "key_type",
        "primary_key", "foreign_key", "sort_key", "partition_key", "cache_key",
    }
)  # fmt: skip
_PHONE_FIELD = re.compile(
    r"(?:^|_)(?:phone|phone_number|phonenumber|msisdn|mobile|mobile_number|tel|telephone"
    r"|cell|cellphone|portable|numero_de_telephone|numero_telephone|whatsapp)$"
)
_EMAIL_FIELD = re.compile(r"(?:^|_)(?:email|e_mail|email_address|mail|courriel)$")
_IBAN_FIELD = re.compile(r"(?:^|_)iban$")
_PAN_FIELD = re.compile(
    r"(?:^|_)(?:pan|card_number|cardnumber|card_no|card_num|primary_account_number"
    r"|numero_carte|num_carte)$"
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_KEY_SEPARATORS = re.compile(r"[\s.\-]+")


def _normalize_key(key: str) -> str:
    """``X-Api-Key``, ``customerName``, ``card.holder`` -> ``x_api_key``, ``customer_name``..."""
    key = _CAMEL.sub("_", key.strip().lstrip(":"))
    return _KEY_SEPARATORS.sub("_", key).strip("_").lower()


@lru_cache(maxsize=4096)
def _field_class(key: str) -> _Field | None:
    k = _normalize_key(key)
    if not k or k in _NOT_SECRET_FIELDS:
        return None
    if k in _NAME_FIELDS:
        return _Field.NAME
    if k.endswith("_name") and k[: -len("_name")] in _NAME_ROLES:
        return _Field.NAME
    if k in _PERSON_FIELDS:
        return _Field.PERSON
    if k in _AUTH_FIELDS:
        return _Field.AUTH
    if _SECRET_FIELD.search(k):
        return _Field.SECRET
    if _TOKEN_FIELD.search(k):
        return _Field.TOKEN
    if _CREDENTIAL_FIELD.search(k):
        return _Field.CREDENTIAL
    if _PHONE_FIELD.search(k):
        return _Field.PHONE
    if _EMAIL_FIELD.search(k):
        return _Field.EMAIL
    if _IBAN_FIELD.search(k):
        return _Field.IBAN
    if _PAN_FIELD.search(k):
        return _Field.PAN
    return None


# ---------------------------------------------------------------------------------------------
# Values of sensitive fields
# ---------------------------------------------------------------------------------------------

_EMPTY_VALUES = frozenset({"", "null", "none", "nil", "true", "false", "undefined", "***", "-"})
# Keys, secrets and signatures are 16 characters or more; op ids ("op-000123-a1") are not.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=_.~-]{16,}")
# snake_case or dotted words: error codes and enum values, not credentials.
_IDENTIFIER = re.compile(r"[a-z]+(?:[_.-][a-z]+)+")
_EXCEPTION_NAME = re.compile(r"(?:[A-Za-z_][\w]*[.\\:]+)*[A-Z]\w*(?:Error|Exception|Warning|Fault)")
_LOWER_IDENTIFIER = re.compile(r"[a-z0-9]+(?:[_.][a-z0-9]+)+")
_DIGIT = re.compile(r"\d")
_DIGITS = re.compile(r"\d+")
_AUTH_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9-]{1,24})\s+(?=\S)")
_AUTH_SCHEMES = frozenset({"bearer", "basic", "token", "digest", "hmac", "apikey", "negotiate"})


def _is_empty(value: str) -> bool:
    stripped = value.strip()
    return stripped.lower() in _EMPTY_VALUES or stripped in PLACEHOLDERS


def _is_credential(value: str) -> bool:
    """A value of a ``token``/``signature``/``key`` field that is worth hiding.

    Such fields also hold harmless words (``signature_mismatch``, ``bearer``) and, in
    composite headers, timestamps; a credential is a long run of token characters that is
    not a snake_case identifier, and has a letter unless it is too long for a timestamp.
    """
    return any(
        not _IDENTIFIER.fullmatch(run.group())
        and (len(run.group()) >= 20 or re.search(r"[A-Za-z]", run.group()) is not None)
        for run in _TOKEN_RUN.finditer(value)
    )


_PERSON_NAME = re.compile(r"[^\W\d_][\w'\u2019.-]*(?:[ ]+[^\W\d_][\w'\u2019.-]*){1,4}")
# "t=1718000000,v1=5257a8..." (webhook signature headers): only some parts are secret.
_PARAM_LIST = re.compile(r"[\w.-]+=[^,=]*(?:,[\w.-]+=[^,=]*)+")
_PARAM = re.compile(r"[\w.-]+=([^,]*)")


def _is_person_name(value: str) -> bool:
    stripped = value.strip()
    if not stripped or stripped in PLACEHOLDERS:
        return False
    # "name" also names things: exception classes and enum-like identifiers stay readable.
    return not (_EXCEPTION_NAME.fullmatch(stripped) or _LOWER_IDENTIFIER.fullmatch(stripped))


def _field_spans(field: _Field, value: str) -> list[tuple[int, int, PiiKind]]:
    """What to redact in ``value``, found in a field of class ``field``: spans and kinds."""
    if _is_empty(value):
        return []
    whole = [(0, len(value))]
    kind: PiiKind | None = None
    digits = len(_DIGIT.findall(value))
    if field is _Field.NAME:
        kind = PiiKind.NAME if _is_person_name(value) else None
    elif field is _Field.PERSON:
        # "customer": "Awa Ndiaye" is a person; "customer": "cus_8f3a" is an id.
        words = value.strip()
        if _PERSON_NAME.fullmatch(words) and all(w[0].isupper() for w in words.split()):
            kind = PiiKind.NAME
    elif field is _Field.SECRET:
        kind = PiiKind.SECRET
    elif field is _Field.AUTH:
        kind = PiiKind.TOKEN
        # Keep the scheme ("Bearer", "Basic"): it tells what kind of credential failed.
        scheme = _AUTH_SCHEME.match(value)
        if scheme and scheme.group(1).lower() in _AUTH_SCHEMES:
            whole = [(scheme.end(), len(value))]
    elif field in (_Field.CREDENTIAL, _Field.TOKEN):
        kind = PiiKind.TOKEN if field is _Field.TOKEN else PiiKind.SECRET
        if _PARAM_LIST.fullmatch(value):
            whole = [p.span(1) for p in _PARAM.finditer(value) if _is_credential(p.group(1))]
        elif not _is_credential(value):
            kind = None
    elif field is _Field.PHONE:
        kind = PiiKind.PHONE if digits >= 6 else None
    elif field is _Field.EMAIL:
        kind = PiiKind.EMAIL if "@" in value or "%40" in value.lower() else None
    elif field is _Field.IBAN:
        kind = PiiKind.IBAN if len(re.sub(r"[^A-Za-z0-9]", "", value)) >= 12 else None
    elif field is _Field.PAN:
        # A masked number (first six and last four) is what PCI DSS allows to be shown.
        masked = re.search(r"[*xX\u2022]", value)
        kind = PiiKind.PAN if digits >= 12 and not masked else None
    if kind is None:
        return []
    return [(start, end, kind) for start, end in whole if end > start]


# ---------------------------------------------------------------------------------------------
# Field-aware detection in free text: key = value, "key": "value", key => value, Key: value
# ---------------------------------------------------------------------------------------------

# A key may follow "-" ("--api-key=..." on a command line) but not a word or a dot.
_KV = re.compile(
    r"""(?<![\w.])(?:\\?["'])?(?P<key>:?[^\W\d][\w.\-]{0,63})(?:\\?["'])?[ \t]*(?:=>|:|=)[ \t]*"""
)
_BARE_WORD = re.compile(r"""[^\s,;&"'<>(){}\[\]]+""")
_BARE_SECRET = re.compile(r"""[^\s"'<>&;]+""")
_BARE_REST = re.compile(r"""[^\r\n"']+""")
_NAME_FOLLOWER = re.compile(r"""[ ]+([^\W\d_][\w'\u2019.\-]*)(?![\w'\u2019.\-]*\s*[=:])""")


def _quoted_span(text: str, pos: int) -> tuple[int, int] | None:
    """The content span of a quoted value starting at ``pos``, if one starts there."""
    if text.startswith('\\"', pos):  # JSON encoded inside a JSON string
        end = text.find('\\"', pos + 2)
        return (pos + 2, end) if end >= 0 else None
    if pos >= len(text) or text[pos] not in "\"'":
        return None
    quote = text[pos]
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == quote:
            return (pos + 1, i)
        if ch == "\n":
            return None
        i += 1
    return None


def _bare_span(text: str, pos: int, field: _Field) -> tuple[int, int] | None:
    if field is _Field.AUTH:
        m = _BARE_REST.match(text, pos)
        if not m:
            return None
        return (pos, pos + len(m.group().rstrip(" \t,;")))
    if field in (_Field.SECRET, _Field.CREDENTIAL, _Field.TOKEN):
        m = _BARE_SECRET.match(text, pos)
        return (pos, m.end()) if m else None
    if field in (_Field.IBAN, _Field.PAN):
        # Unquoted, these are often spaced; the shape detectors read the whole number.
        return None
    m = _BARE_WORD.match(text, pos)
    if not m:
        return None
    if field is _Field.PHONE and re.match(r"\+|00|%2[Bb]", m.group()):
        return None  # international: the phone detector reads every digit group
    end = m.end()
    if field in (_Field.NAME, _Field.PERSON):
        while (follower := _NAME_FOLLOWER.match(text, end)) and follower.group(1)[0].isupper():
            end = follower.end()
    return (pos, end)


def _field_hits(text: str) -> Iterator[_Hit]:
    for m in _KV.finditer(text):
        field = _field_class(m.group("key"))
        if field is None:
            continue
        pos = m.end()
        span = _quoted_span(text, pos) or _bare_span(text, pos, field)
        if span is None or span[0] >= span[1]:
            continue
        for start, end, kind in _field_spans(field, text[span[0] : span[1]]):
            yield _Hit(span[0] + start, span[0] + end, kind, _R_FIELD)


# ---------------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------------

# header.payload.signature; the header is base64url JSON, so it starts "eyJ" ('{"').
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*(?![\w-])")
_API_KEY = re.compile(
    r"(?<![\w-])(?:"
    r"(?:sk|pk|rk|ak)_(?:live|test|prod|sandbox|sim)_[A-Za-z0-9]{8,}"
    r"|(?:sk|pk|rk|ak)_[A-Za-z0-9]{12,}"
    r"|whsec_[A-Za-z0-9+/=_-]{8,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r")(?![\w-])"
)
_BEARER = re.compile(r"(?<![\w-])[Bb]earer\s+([A-Za-z0-9._~+/-]{8,}=*)(?![\w.~+/=-])")
_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]{1,64}(?:@|%40)[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,24}(?![\w-])"
)


def _shape_hits(text: str) -> Iterator[_Hit]:
    for m in _JWT.finditer(text):
        yield _Hit(m.start(), m.end(), PiiKind.JWT, _R_SHAPE)
    for m in _API_KEY.finditer(text):
        yield _Hit(m.start(), m.end(), PiiKind.SECRET, _R_SHAPE)
    for m in _BEARER.finditer(text):
        token = m.group(1)
        # "Bearer authentication failed" is prose; real tokens mix in digits or punctuation.
        if len(token) >= 20 or re.search(r"[\d._~+/-]", token):
            yield _Hit(m.start(1), m.end(1), PiiKind.TOKEN, _R_SHAPE)
    for m in _EMAIL.finditer(text):
        yield _Hit(m.start(), m.end(), PiiKind.EMAIL, _R_EMAIL)


# ---------------------------------------------------------------------------------------------
# Look-alikes that must stay
# ---------------------------------------------------------------------------------------------

_KEEP = re.compile(
    r"(?<![\w-])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"(?![\w-])"  # UUID
    r"|(?<![\w-])\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?(?![\w-])"  # ISO 8601 date or timestamp
    r"|(?<![\w-])[0-9A-Fa-f]{32,}(?![\w-])"  # digests (SHA-256...), trace ids
    r"|<(?:EMAIL|PHONE|PAN|IBAN|IP|JWT|TOKEN|SECRET|NAME)>"  # already redacted
)


def _keep_hits(text: str) -> Iterator[_Hit]:
    for m in _KEEP.finditer(text):
        yield _Hit(m.start(), m.end(), None, _R_KEEP)


# ---------------------------------------------------------------------------------------------
# IBAN (ISO 13616: length per country, mod-97 check)
# ---------------------------------------------------------------------------------------------

_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
    # Africa outside the SWIFT registry: the BCEAO/BEAC zones and neighbours use IBANs too.
    "AO": 25, "BF": 28, "BJ": 28, "CF": 27, "CG": 27, "CI": 28, "CM": 27, "CV": 25, "DZ": 26,
    "GA": 27, "GQ": 27, "GW": 25, "IR": 26, "KM": 27, "MA": 28, "MG": 27, "ML": 28, "MZ": 25,
    "NE": 28, "SN": 28, "TD": 27, "TG": 28,
}  # fmt: skip
_IBAN = re.compile(r"(?<![\w-])[A-Za-z]{2}\d{2}[A-Za-z0-9]*(?:[ ][A-Za-z0-9]+)*")


def iban_valid(iban: str) -> bool:
    """ISO 13616: known country, its length, check digits (mod 97 == 1)."""
    compact = re.sub(r"\s+", "", iban).upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _iban_hits(text: str) -> Iterator[_Hit]:
    pos = 0
    while m := _IBAN.search(text, pos):
        pos = m.start() + 1
        expected = _IBAN_LENGTHS.get(m.group()[:2].upper())
        if expected is None:
            continue
        # The run swallows the words that follow ("... 0189 EUR and ..."): read only as many
        # characters as the country's IBANs have, then look again right after them.
        compact, end = "", m.start()
        for token in re.finditer(r"[A-Za-z0-9]+", m.group()):
            compact += token.group()
            end = m.start() + token.end()
            if len(compact) >= expected:
                break
        if len(compact) == expected and iban_valid(compact) and not _word_char_at(text, end):
            yield _Hit(m.start(), end, PiiKind.IBAN, _R_IBAN)
            pos = end


def _word_char_at(text: str, index: int) -> bool:
    return index < len(text) and (text[index].isalnum() or text[index] == "_")


# ---------------------------------------------------------------------------------------------
# Card numbers (PAN): 13-19 digits, an issuer prefix, Luhn
# ---------------------------------------------------------------------------------------------

_DIGIT_RUN = re.compile(r"(?<![\w.,+/%-])\d+(?:[ -]\d+)*(?!\w|[.,:/]\d)")


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or len(number) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _issuer_prefix(number: str) -> bool:
    """Payment-card issuer prefixes (2-series Mastercard, Amex/Diners/JCB, Visa, 5, 6).

    Luhn alone passes one random number in ten; a 13-digit epoch in milliseconds starts
    with 1, phone numbers without their "+" rarely start like a card, so the prefix keeps
    those out.
    """
    first = number[0]
    if first == "2":
        return 2221 <= int(number[:4]) <= 2720
    if first == "3":
        return number[:2] in ("30", "34", "35", "36", "37", "38", "39")
    return first in "456"


def pan_valid(number: str) -> bool:
    digits = re.sub(r"[ -]", "", number)
    return 13 <= len(digits) <= 19 and _issuer_prefix(digits) and luhn_valid(digits)


def _window_score(groups: list[str]) -> int:
    """Prefer windows laid out like a printed card number: one block, 4-4-4-4(-3), 4-6-5."""
    sizes = [len(g) for g in groups]
    if len(sizes) == 1:
        return 2
    if all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4:
        return 2
    if sizes[:2] == [4, 6] and len(sizes) == 3:
        return 2
    return 1


def _pan_hits(text: str) -> Iterator[_Hit]:
    for m in _DIGIT_RUN.finditer(text):
        run = m.group()
        if len(run) < 13:  # most numbers in a log: amounts, statuses, line numbers
            continue
        groups = [(g.start(), g.end(), g.group()) for g in _DIGITS.finditer(run)]
        base = m.start()
        yield from _pan_windows(groups, base)


def _pan_windows(groups: list[tuple[int, int, str]], base: int) -> Iterator[_Hit]:
    """Card numbers among digit groups; a card may sit next to other numbers ("15000 4111...")."""
    best: tuple[int, int, int, int] | None = None  # (score, length, -i, j)
    for i in range(len(groups)):
        length = 0
        for j in range(i, len(groups)):
            length += len(groups[j][2])
            if length > 19:
                break
            digits = "".join(g[2] for g in groups[i : j + 1])
            if length >= 13 and pan_valid(digits):
                key = (_window_score([g[2] for g in groups[i : j + 1]]), length, -i, j)
                if best is None or key > best:
                    best = key
    if best is None:
        return
    i, j = -best[2], best[3]
    yield _Hit(base + groups[i][0], base + groups[j][1], PiiKind.PAN, _R_PAN)
    yield from _pan_windows(groups[:i], base)
    yield from _pan_windows(groups[j + 1 :], base)


# ---------------------------------------------------------------------------------------------
# IP addresses
# ---------------------------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.:+-]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w-]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:)[0-9A-Fa-f:]{2,39}"
    r"(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?![\w:]|\.\d)"
)


def _ip_hits(text: str) -> Iterator[_Hit]:
    for m in _IPV6.finditer(text):
        candidate = m.group()
        # Ruby/PHP scopes ("Dead::Beef") parse as IPv6; client addresses carry digits.
        if not _DIGIT.search(candidate):
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield _Hit(m.start(), m.end(), PiiKind.IP, _R_IP)
    for m in _IPV4.finditer(text):
        yield _Hit(m.start(), m.end(), PiiKind.IP, _R_IP)


# ---------------------------------------------------------------------------------------------
# Phone numbers
# ---------------------------------------------------------------------------------------------

# National significant number lengths (min, max) by calling code; E.164 codes are prefix-free
# so the first one to match is the right one. Unknown codes fall back to 8-15 digits in all.
_NSN_LENGTHS: dict[str, tuple[int, int]] = {
    "1": (10, 10), "7": (10, 10), "20": (9, 10), "27": (9, 9), "30": (10, 10), "31": (9, 9),
    "32": (8, 9), "33": (9, 9), "34": (9, 9), "36": (8, 9), "39": (6, 11), "40": (9, 9),
    "41": (9, 9), "43": (4, 13), "44": (9, 10), "45": (8, 8), "46": (7, 10), "47": (8, 8),
    "48": (9, 9), "49": (6, 13), "212": (9, 9), "213": (8, 9), "216": (8, 8), "220": (7, 7),
    "221": (9, 9), "222": (8, 8), "223": (8, 8), "224": (8, 9), "225": (8, 10), "226": (8, 8),
    "227": (8, 8), "228": (8, 8), "229": (8, 10), "230": (7, 8), "231": (7, 9), "232": (8, 8),
    "233": (9, 9), "234": (7, 10), "235": (8, 8), "236": (8, 8), "237": (9, 9), "238": (7, 7),
    "240": (9, 9), "241": (7, 8), "242": (9, 9), "243": (9, 9), "244": (9, 9), "245": (7, 9),
    "250": (9, 9), "251": (9, 9), "254": (9, 10), "255": (9, 9), "256": (9, 9), "260": (9, 9),
    "261": (9, 9), "263": (9, 9), "351": (9, 9), "352": (4, 11), "353": (7, 9),
}  # fmt: skip
_PHONE_START = re.compile(r"(?<![\w+%])(?:\+|%2[Bb]|(?<![\d.,:/-])00)(?=[ ]?\(?[1-9])")
_PHONE_GROUP = re.compile(r"\((\d{1,4})\)|(\d{1,15})")
# National formats: France and Côte d'Ivoire (10 digits), Nigeria and the UK (11),
# Ghana (10), Germany's mobiles, Senegal (9, written in groups).
_PHONE_NATIONAL = re.compile(
    r"(?<![\w.,+/:%-])(?:"
    r"0[1-9](?:[ .-]?\d{2}){4}"
    r"|0[7-9][01]\d[ -]?\d{3}[ -]?\d{4}"
    r"|0[235]\d[ -]?\d{3}[ -]?\d{4}"
    r"|07\d{3}[ ]?\d{6}"
    r"|01[5-7]\d{1,2}[ /-]?\d{7,8}"
    r"|7[05-8] \d{3} \d{2} \d{2}"
    r")(?!\w|[.,:-]\d)"
)


def _phone_groups(text: str, pos: int) -> list[tuple[str, int]]:
    """Digit groups of a phone number from ``pos``: ``[(digits, end), ...]``."""
    groups: list[tuple[str, int]] = []
    if text.startswith(" ", pos):
        pos += 1
    while True:
        m = _PHONE_GROUP.match(text, pos)
        if not m:
            break
        digits = m.group(1) if m.group(1) is not None else m.group(2)
        # "+44 (0)20 ..." carries the national trunk prefix, which is no part of the number.
        if not (groups and m.group(1) == "0"):
            groups.append((digits, m.end()))
        pos = m.end()
        if pos + 1 < len(text) and text[pos] in " .-" and text[pos + 1] in "0123456789(":
            pos += 1
            continue
        if text.startswith("(", pos) or (m.group(1) is not None and text[pos : pos + 1].isdigit()):
            continue  # "(0)20", "0(20)": a bracketed group needs no separator
        break
    return groups


def _phone_hits(text: str) -> Iterator[_Hit]:
    for m in _PHONE_START.finditer(text):
        groups = _phone_groups(text, m.end())
        if not groups:
            continue
        number = "".join(g for g, _ in groups)
        code = next((number[:n] for n in (1, 2, 3) if number[:n] in _NSN_LENGTHS), None)
        lo, hi = (8, 15)
        if code is not None:
            nsn_lo, nsn_hi = _NSN_LENGTHS[code]
            lo, hi = len(code) + nsn_lo, len(code) + nsn_hi
        # The last groups may be another number ("+221 77 123 45 67 15000"): drop them.
        total, end = 0, None
        for digits, group_end in groups:
            total += len(digits)
            if total > hi:
                break
            if total >= lo:
                end = group_end
        if end is not None:
            yield _Hit(m.start(), end, PiiKind.PHONE, _R_PHONE)
    for m in _PHONE_NATIONAL.finditer(text):
        yield _Hit(m.start(), m.end(), PiiKind.PHONE, _R_PHONE)


# ---------------------------------------------------------------------------------------------
# Resolution
# ---------------------------------------------------------------------------------------------

_DETECTORS = (_field_hits, _shape_hits, _keep_hits, _iban_hits, _pan_hits, _ip_hits, _phone_hits)


class _Spans:
    """Accepted, non-overlapping spans kept sorted by start."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.hits: list[_Hit] = []

    def free(self, start: int, end: int) -> bool:
        i = bisect_left(self.starts, start)
        if i < len(self.hits) and self.hits[i].start < end:
            return False
        return not (i > 0 and self.hits[i - 1].end > start)

    def add(self, hit: _Hit) -> None:
        i = bisect_left(self.starts, hit.start)
        self.starts.insert(i, hit.start)
        self.hits.insert(i, hit)


def _name_parts(name: str) -> list[str]:
    return [p for p in re.split(r"[\s,]+", name.strip()) if len(p) >= 2 and p not in PLACEHOLDERS]


def _names_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """Whole-word matches of known names and of their parts (``Awa``, ``Ndiaye``)."""
    full: set[str] = set()
    parts: set[str] = set()
    for name in names:
        name = name.strip()
        if len(name) < 2 or name in PLACEHOLDERS:
            continue
        full.add(name)
        parts.update(p for p in _name_parts(name) if p[0].isalpha())
    if not full:
        return None
    # Full names match whatever the case ("AWA NDIAYE"); a lone part only as written, so a
    # surname such as "Petit" does not take the French adjective with it.
    alternatives = [f"(?i:{re.escape(n)})" for n in sorted(full, key=len, reverse=True)]
    alternatives += [re.escape(p) for p in sorted(parts - full, key=len, reverse=True)]
    # Never inside a placeholder: someone named "Email" must not turn "<EMAIL>" into a name.
    return re.compile(r"(?<![\w<])(?:" + "|".join(alternatives) + r")(?![\w>])")


def _resolve(text: str, known_names: Iterable[str] = (), extra: Iterable[_Hit] = ()) -> list[_Hit]:
    candidates = [*extra, *(hit for detect in _DETECTORS for hit in detect(text))]
    candidates.sort(key=lambda h: (h.rank, h.start, h.start - h.end))
    spans = _Spans()
    for hit in candidates:
        if hit.end > hit.start and spans.free(hit.start, hit.end):
            spans.add(hit)
    # A name read from a known field is the same person wherever it recurs in the text
    # ("customer_name=Awa Ndiaye ... refusé pour Awa Ndiaye").
    names = [text[h.start : h.end] for h in spans.hits if h.kind is PiiKind.NAME]
    pattern = _names_pattern([*names, *known_names])
    if pattern is not None:
        for m in pattern.finditer(text):
            if spans.free(m.start(), m.end()):
                spans.add(_Hit(m.start(), m.end(), PiiKind.NAME, _R_NAME_ECHO))
    return [h for h in spans.hits if h.kind is not None]


def find_pii(text: str) -> list[Finding]:
    """Personal and secret data in ``text``, in order of position."""
    return [Finding(h.kind, (h.start, h.end)) for h in _resolve(text) if h.kind is not None]


def _apply(text: str, hits: list[_Hit]) -> str:
    out: list[str] = []
    pos = 0
    for hit in hits:
        assert hit.kind is not None
        out.append(text[pos : hit.start])
        out.append(hit.kind.placeholder)
        pos = hit.end
    out.append(text[pos:])
    return "".join(out)


def redact_text(text: str, *, known_names: Iterable[str] = ()) -> str:
    """``text`` with every piece of personal or secret data replaced by its placeholder.

    ``known_names`` are people's names known from elsewhere (the op's customer): they are
    removed wherever they appear, even outside a name field.
    """
    return _apply(text, _resolve(text, known_names))


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


class _JsonRedactor:
    def __init__(self) -> None:
        self.names: list[str] = []

    def value(self, value: object, field: _Field | None) -> JsonValue:
        if isinstance(value, Mapping):
            return self.mapping(value, field)
        if isinstance(value, list | tuple):
            return [self.value(item, field) for item in value]
        if isinstance(value, str):
            return self.string(value, field)
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float):
            return self.number(value, field)
        raise TypeError(f"not a JSON value: {type(value).__name__}")

    def mapping(
        self, mapping: Mapping[object, object], parent: _Field | None
    ) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {}
        for raw_key, item in mapping.items():
            key = str(raw_key)
            # A sensitive container (``"name": {"first": ..}``) makes its leaves sensitive;
            # a role does not (``"customer": {"country": ..}`` holds more than a name).
            inherited = parent if parent is not _Field.PERSON else None
            value = self.value(item, _field_class(key) or inherited)
            safe_key = _redact_key(key)
            while safe_key in out:  # two keys redacted to the same placeholder: keep both
                safe_key += "~"
            out[safe_key] = value
        return out

    def string(self, value: str, field: _Field | None) -> str:
        # The whole string is the field's value: no need to find where it ends, as in text.
        spans = _field_spans(field, value) if field is not None else []
        hits = _resolve(value, extra=(_Hit(a, b, kind, _R_FIELD) for a, b, kind in spans))
        self.names.extend(value[h.start : h.end] for h in hits if h.kind is PiiKind.NAME)
        return _apply(value, hits)

    def number(self, value: float, field: _Field | None) -> JsonValue:
        if field in (_Field.SECRET, _Field.PHONE, _Field.PAN):
            assert field is not None
            spans = _field_spans(field, str(value))
            return spans[0][2].placeholder if spans else value
        if isinstance(value, int) and pan_valid(str(abs(value))):
            return PiiKind.PAN.placeholder
        return value


@lru_cache(maxsize=4096)
def _redact_key(key: str) -> str:
    # Documents repeat the same few keys thousands of times.
    return redact_text(key)


def _scrub_names(value: JsonValue, pattern: re.Pattern[str]) -> JsonValue:
    if isinstance(value, dict):
        return {k: _scrub_names(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_names(v, pattern) for v in value]
    if isinstance(value, str):
        return pattern.sub(PiiKind.NAME.placeholder, value)
    return value


def redact_json(value: object) -> JsonValue:
    """A redacted copy of a JSON value (dicts, lists, strings, numbers, booleans, None).

    Field names guide it (``password``, ``customer_name``, ``phone``...); every string is
    also redacted as free text; names read from name fields are removed everywhere else in
    the document too.
    """
    redactor = _JsonRedactor()
    out = redactor.value(value, None)
    pattern = _names_pattern(redactor.names)
    return _scrub_names(out, pattern) if pattern is not None else out
