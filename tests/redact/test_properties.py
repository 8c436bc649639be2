"""Property: planted personal data never survives redaction, hashing input or SIRA export.

For every kind of datum, random values (Hypothesis) are planted in random log templates; the
redacted text, the text a ``context_hash`` is computed from, and the export batch must not
contain the datum.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
import json
import re
import string
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings, strategies as st

from simcore.redact import find_pii, redact_json, redact_text
from simcore.sira import anonymize_errors, build_export_batch, hash_input
from tests.redact.corpus import FIRST_NAMES, IBAN_FORMATS, LAST_NAMES, iban_complete, luhn_complete

DIGITS = string.digits
ALNUM = string.ascii_letters + string.digits


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def emails(draw: st.DrawFn) -> str:
    local = draw(st.text(ALNUM.lower() + "._+-", min_size=0, max_size=20))
    first = draw(st.sampled_from(ALNUM.lower()))
    labels = draw(st.lists(st.text(ALNUM.lower(), min_size=1, max_size=10), min_size=1, max_size=3))
    tld = draw(st.text(string.ascii_lowercase, min_size=2, max_size=6))
    address = f"{first}{local}@{'.'.join(labels)}.{tld}"
    return address.upper() if draw(st.booleans()) and draw(st.booleans()) else address


_PLANS = (("221", 9), ("225", 10), ("233", 9), ("234", 10), ("33", 9), ("49", 11), ("44", 10),
          ("32", 9), ("237", 9), ("1", 10), ("212", 9), ("229", 10))  # fmt: skip


@st.composite
def phones(draw: st.DrawFn) -> str:
    code, length = draw(st.sampled_from(_PLANS))
    national = draw(st.sampled_from("123456789")) + draw(
        st.text(DIGITS, min_size=length - 1, max_size=length - 1)
    )
    size = draw(st.sampled_from((0, 2, 3, 4)))
    sep = draw(st.sampled_from((" ", "-")))
    if size:
        national = sep.join(national[i : i + size] for i in range(0, len(national), size))
    lead = draw(st.sampled_from(("+", "+", "00", "%2B")))
    joiner = draw(st.sampled_from(("", " "))) if lead != "%2B" else ""
    return f"{lead}{code}{joiner}{national}"


_CARDS = (("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16),
          ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("5061", 19), ("3528", 16),
          ("36", 14), ("62", 17))  # fmt: skip


@st.composite
def pans(draw: st.DrawFn) -> str:
    prefix, length = draw(st.sampled_from(_CARDS))
    body = prefix + draw(st.text(DIGITS, min_size=length - len(prefix) - 1, max_size=19))
    number = luhn_complete(body[: length - 1])
    sep = draw(st.sampled_from(("", " ", "-")))
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4)) if sep else number


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(sorted(IBAN_FORMATS)))
    bban = "".join(
        draw(st.sampled_from(DIGITS if c == "n" else string.ascii_uppercase if c == "a" else
                             DIGITS + string.ascii_uppercase))
        if c in "nac" else c
        for c in IBAN_FORMATS[country]
    )  # fmt: skip
    iban = iban_complete(country, bban)
    if draw(st.booleans()):
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


ipv4s = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))


@st.composite
def ipv6s(draw: st.DrawFn) -> str:
    # Global unicast (2000::/3): what a client address is.
    address = ipaddress.IPv6Address(draw(st.integers(0x2000 << 112, (0x4000 << 112) - 1)))
    return address.compressed if draw(st.booleans()) else address.exploded


@st.composite
def jwts(draw: st.DrawFn) -> str:
    header = {"alg": draw(st.sampled_from(("HS256", "RS256", "ES256"))), "typ": "JWT"}
    claims = draw(st.dictionaries(st.sampled_from(("sub", "iat", "exp", "scope")),
                                  st.integers(0, 2**40) | st.text(ALNUM, max_size=12)))  # fmt: skip
    signature = _b64url(draw(st.binary(min_size=16, max_size=64)))
    return ".".join((_b64url(json.dumps(header).encode()),
                     _b64url(json.dumps(claims).encode()), signature))  # fmt: skip


API_KEY_PREFIXES = ("sk_live_", "sk_test_", "pk_live_", "pk_test_", "ak_", "ak_live_",
                    "rk_live_", "pk_sim_", "sk_sim_", "whsec_")  # fmt: skip
bearer_tokens = st.binary(min_size=16, max_size=48).map(_b64url)
api_keys = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(API_KEY_PREFIXES),
    st.text(ALNUM, min_size=16, max_size=40),
)
webhook_secrets = st.binary(min_size=16, max_size=32).map(
    lambda b: "whsec_" + base64.b64encode(b).decode()
)
field_secrets = st.binary(min_size=16, max_size=48).map(lambda b: b.hex()) | st.binary(
    min_size=16, max_size=48
).map(lambda b: base64.b64encode(b).decode())
_EMPTYISH = {"null", "none", "nil", "true", "false", "undefined", "-", "***"}
passwords = st.text(
    string.ascii_letters + string.digits + "!@#$%*()-_+=.:/?~^", min_size=4, max_size=24
).filter(lambda p: p.lower() not in _EMPTYISH)
names = st.builds(
    lambda first, last: f"{first} {last}",
    st.sampled_from(FIRST_NAMES) | st.from_regex(r"[A-Z][a-z]{2,10}", fullmatch=True),
    st.sampled_from(LAST_NAMES) | st.from_regex(r"[A-Z][a-z]{2,10}", fullmatch=True),
)

ANYWHERE = (
    "{ts} ERROR POST /v1/payments status=401 op=op-000123-a1 detail={x} amount=15000",
    "Échec du paiement de 15000 XOF pour {x} (code 402)",
    '{{"error":{{"code":"card_declined","message":"declined: {x}"}},"amount":1500.50}}',
    "molam.errors.ApiError: 400 invalid request for {x} at 2024-05-14T10:22:31Z",
    "  at MolamClient.request (/app/dist/client.js:214:19) ctx=[{x}]",
    "PHP Warning: Molam\\Client::post(): {x} rejected in /var/www/src/Client.php:88",
    "> GET /v1/customers?q={x}&page=2 HTTP/1.1",
    "contact <{x}> request 550e8400-e29b-41d4-a716-446655440000",
)
SECRET_FIELDS = (
    "> X-Signature: {x}",
    '{{"api_key":"{x}","mode":"live"}}',
    "level=debug signature={x} status=401",
    "client_secret={x} token_type=bearer",
    "{{'webhook_secret': '{x}', 'idempotency_key': 'op-000123-a1'}}",
    "access_token: {x}",
)
PASSWORD_FIELDS = ("password={x} user=ops", '{{"password": "{x}"}}', "mot_de_passe: {x}")
AUTH_FIELDS = ("> Authorization: Bearer {x}", "Jeton refusé : Bearer {x}", "Cookie: sid={x}")
NAME_FIELDS = (
    'customer_name="{x}" amount=15000',
    '{{"customer":{{"name":"{x}","email":"<EMAIL>"}}}}',
    "cardholder={x} status=402",
    "{{'holder': '{x}', 'currency': 'XOF'}}",
    'params: {{:name=>"{x}", :currency=>"EUR"}}',
    "titulaire: {x}, montant 15000 XOF",
    '{{"body":"{{\\"full_name\\":\\"{x}\\"}}"}}',
    "payer={x!r} reference=ORD-000123-4821",
)

KINDS = {
    "email": (emails(), ANYWHERE),
    "phone": (phones(), ANYWHERE),
    "pan": (pans(), ANYWHERE),
    "iban": (ibans(), ANYWHERE),
    "ipv4": (ipv4s, ANYWHERE),
    "ipv6": (ipv6s(), ANYWHERE),
    "jwt": (jwts(), ANYWHERE),
    "bearer": (bearer_tokens, AUTH_FIELDS),
    "api_key": (api_keys, ANYWHERE),
    "webhook_secret": (webhook_secrets, ANYWHERE),
    "field_secret": (field_secrets, SECRET_FIELDS),
    "password": (passwords, PASSWORD_FIELDS),
    "name": (names, NAME_FIELDS),
}


def _plant(template: str, datum: str) -> str:
    return template.format(x=datum, ts="2024-05-14T10:22:31.123Z")


def _contains(haystack: str, datum: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(datum)}(?![\w])", haystack) is not None


# Where each kind lives in a JSON document. Shapes are recognised in any field; secrets of
# no particular shape only in fields named for them.
NATURAL_FIELD = {
    "email": "note", "phone": "phone", "pan": "card_number", "iban": "iban", "ipv4": "note",
    "ipv6": "note", "jwt": "note", "bearer": "access_token", "api_key": "note",
    "webhook_secret": "note", "field_secret": "signature", "password": "password",
    "name": "name",
}  # fmt: skip


def _event(line: str, kind: str, datum: str) -> dict[str, object]:
    """An error event as the worker records it, with the datum in text and in its field."""
    field = NATURAL_FIELD[kind]
    return {
        "code": "card_declined",
        "status": 402,
        "message": line,
        "body": {"error": {"code": "card_declined", "message": line}, "customer": {field: datum}},
        "headers": {"Authorization": f"Bearer {datum}", "X-Request-Id": "req_ab00000012"},
        "op": {"customer": {field: datum}, "amount": 15000, "currency": "XOF"},
    }


def _outputs(template: str, kind: str, datum: str) -> tuple[str, str, str, str]:
    """What must not leak: redacted text and JSON, hash input, SIRA batch."""
    line = _plant(template, datum)
    document = json.dumps(redact_json({"line": line, "customer": {NATURAL_FIELD[kind]: datum}}))
    event = _event(line, kind, datum)
    records = anonymize_errors([event], total_requests=10, sdk_language="node")
    batch = build_export_batch(records, batch_id=BATCH_ID, generated_at=GENERATED_AT)
    return redact_text(line), document, hash_input(event), json.dumps(batch, ensure_ascii=False)


BATCH_ID = uuid.UUID(int=1)
GENERATED_AT = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_planted_data_never_survives(kind: str, data: st.DataObject) -> None:
    strategy, templates = KINDS[kind]
    datum = data.draw(strategy, label="datum")
    template = data.draw(st.sampled_from(templates), label="template")
    # The check is "the datum is gone": a datum that the output holds without it (a password
    # "1500" or "node") would be there for reasons that have nothing to do with it.
    assume(not any(_contains(text, datum) for text in _outputs(template, kind, "")))

    redacted, document, material, batch = _outputs(template, kind, datum)
    assert not _contains(redacted, datum), redacted
    assert redact_text(redacted) == redacted  # stable: placeholders are never redacted again
    assert not _contains(document, datum), document
    assert not _contains(material, datum), material
    assert not _contains(batch, datum), batch


@settings(max_examples=60, deadline=None)
@given(line=st.text(max_size=200))
def test_findings_are_ordered_and_disjoint_on_any_text(line: str) -> None:
    findings = find_pii(line)
    for before, after in itertools.pairwise(findings):
        assert before.span[1] <= after.span[0]
    assert all(0 <= f.span[0] < f.span[1] <= len(line) for f in findings)
    assert redact_text(redact_text(line)) == redact_text(line)
