"""Redaction, kind by kind: what must go, and the look-alikes that must stay."""

from __future__ import annotations

import pytest

from simcore.redact import (
    Finding,
    PiiKind,
    find_pii,
    iban_valid,
    luhn_valid,
    pan_valid,
    redact_json,
    redact_text,
)


def _kinds(text: str) -> list[PiiKind]:
    return [f.kind for f in find_pii(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("contact awa.ndiaye@gmail.com now", "contact <EMAIL> now"),
        ("To: <KOFI.MENSAH+shop@mtn.com.gh>", "To: <<EMAIL>>"),
        ("email=fatou_sow%40orange.sn&page=2", "email=<EMAIL>&page=2"),
        ("user jürgen.müller@web.de failed", "user <EMAIL> failed"),
    ],
)
def test_email(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "phone",
    [
        "+221 77 123 45 67",
        "+221771234567",
        "+225 07 07 12 34 56",
        "+2250707123456",
        "+233 24 123 4567",
        "+233241234567",
        "+234 803 123 4567",
        "+2348031234567",
        "+33 6 12 34 56 78",
        "+33612345678",
        "+49 151 23456789",
        "+44 7700 900123",
        "+44 (0)20 7946 0958",
        "+32 470 12 34 56",
        "00221 77 123 45 67",
        "%2B221771234567",
        "+221-77-123-45-67",
        "06 12 34 56 78",
        "0612345678",
        "0803 123 4567",
    ],
)
def test_phone(phone: str) -> None:
    assert redact_text(f"appel de {phone} refusé") == "appel de <PHONE> refusé"


def test_phone_stops_where_the_number_ends() -> None:
    # The amount after the number is a separate datum: the numbering plan says where to stop.
    assert redact_text("+221 77 123 45 67 15000 XOF") == "<PHONE> 15000 XOF"
    assert redact_text("msisdn: 771234567, amount: 15000") == "msisdn: <PHONE>, amount: 15000"


@pytest.mark.parametrize(
    "pan",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5500 0055 5555 5559",
        "2223 0031 2200 3222",
        "3782 822463 10005",
        "6011 1111 1111 1117",
        "5061 0000 0000 0000 015",
        "4222222222222",
    ],
)
def test_card_number(pan: str) -> None:
    assert pan_valid(pan)
    assert redact_text(f"card {pan} declined") == "card <PAN> declined"


def test_card_number_next_to_other_numbers() -> None:
    assert redact_text("15000 4111111111111111") == "15000 <PAN>"
    assert redact_text('"number":4111111111111111,') == '"number":<PAN>,'


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # fails Luhn
        "1718000000000",  # epoch in ms: no issuer starts with 1
        "411111******1111",  # masked, as PCI DSS allows it to be shown
        "12345678901234567890123",  # too long
    ],
)
def test_not_a_card_number(number: str) -> None:
    assert redact_text(f"value {number} here") == f"value {number} here"


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert not luhn_valid("7992a398713")


@pytest.mark.parametrize(
    "iban",
    [
        "FR76 3000 6000 0112 3456 7890 189",
        "FR7630006000011234567890189",
        "DE89 3704 0044 0532 0130 00",
        "GB29 NWBK 6016 1331 9268 19",
        "BE68 5390 0754 7034",
    ],
)
def test_iban(iban: str) -> None:
    assert iban_valid(iban)
    assert redact_text(f"virement vers {iban} EUR") == "virement vers <IBAN> EUR"


def test_iban_needs_its_check_digits_and_length() -> None:
    assert redact_text("FR77 3000 6000 0112 3456 7890 189") == "FR77 3000 6000 0112 3456 7890 189"
    assert redact_text("DE89 3704 0044 0532 0130") == "DE89 3704 0044 0532 0130"


@pytest.mark.parametrize(
    "ip",
    ["192.168.1.10", "41.82.10.3", "2001:db8:85a3::8a2e:370:7334", "2c0f:f248::1", "::1"],
)
def test_ip(ip: str) -> None:
    assert redact_text(f"from {ip} refused") == "from <IP> refused"
    assert redact_text(f"from [{ip}]:443") == "from [<IP>]:443"


def test_ip_look_alikes_stay() -> None:
    text = "Molam::Client::Error Dead::Beef at 10:22:31 version 1.4.2 mac 00:1a:2b:3c:4d:5e"
    assert redact_text(text) == text


def test_jwt_and_bearer_tokens() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjdXNfMTIzIn0.dGhpc2lzYXNpZ25hdHVyZQ"
    assert redact_text(f"token {jwt}") == "token <JWT>"
    assert redact_text(f"Authorization: Bearer {jwt}") == "Authorization: Bearer <TOKEN>"
    assert redact_text("authorization: Basic dXNlcjpwYXNz") == "authorization: Basic <TOKEN>"
    assert redact_text("sent Bearer mlm_at_8f3kd93kd0d") == "sent Bearer <TOKEN>"
    assert redact_text("Bearer authentication failed") == "Bearer authentication failed"


@pytest.mark.parametrize(
    "key",
    [
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "pk_live_51H8sXyZ0a1b2c3d4e5f6g",
        "ak_9f8e7d6c5b4a3f2e1d0c",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "pk_sim_0123456789abcdef",
        "AKIAIOSFODNN7EXAMPLE",
    ],
)
def test_api_keys(key: str) -> None:
    assert redact_text(f"key {key} leaked") == "key <SECRET> leaked"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("X-Signature: 5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
         "X-Signature: <SECRET>"),
        ('{"api_key": "9f86d081884c7d659a2feaa0c55ad015"}', '{"api_key": "<SECRET>"}'),
        ("password=hunter2 user=ops", "password=<SECRET> user=ops"),
        ("client_secret: c2VjcmV0LXZhbHVlLTEyMzQ=", "client_secret: <SECRET>"),
        ("access_token=ya29.a0AfH6SMBx3", "access_token=<TOKEN>"),
        ("Stripe-Signature: t=1718000000,v1=5257a869e7ecebeda32affa62cdca3fa",
         "Stripe-Signature: t=1718000000,v1=<SECRET>"),
        ("Cookie: session=8f3kd93kd0dk3; theme=dark", "Cookie: <TOKEN>"),
    ],
)  # fmt: skip
def test_secrets_in_secret_fields(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "signature=signature_mismatch:401",
        "error_signature: signature_mismatch:401",
        "token_type=bearer expires_in=3600",
        "Idempotency-Key: op-000123-a1",
        "X-Body-Sha256: 5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
        "idempotency_key=idem_7f3a9c2e1b api_key_id=key_42",
    ],
)
def test_secret_look_alikes_stay(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('customer_name="Awa Ndiaye" amount=15000', 'customer_name="<NAME>" amount=15000'),
        ("cardholder=JEAN DUPONT status=402", "cardholder=<NAME> status=402"),
        ("{'holder': \"Adjoua N'Guessan\"}", "{'holder': \"<NAME>\"}"),
        (':first_name=>"Kwame", :last_name=>"Mensah"',
         ':first_name=>"<NAME>", :last_name=>"<NAME>"'),
        ("titulaire: Aminata Diallo, refusé pour Aminata Diallo",
         "titulaire: <NAME>, refusé pour <NAME>"),
        ('{"body":"{\\"full_name\\":\\"Léa Girard\\"}"}',
         '{"body":"{\\"full_name\\":\\"<NAME>\\"}"}'),
        ("customer.name=Chinedu Okafor op=op-000001-a1", "customer.name=<NAME> op=op-000001-a1"),
        ("customer=Awa Ndiaye amount=15000", "customer=<NAME> amount=15000"),
    ],
)  # fmt: skip
def test_names_in_known_fields(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "name=SignatureMismatchError",
        '"name": "invalid_currency"',
        "filename=client.js hostname=api.molam.io",
        "customer=cus_8f3a9c2e amount=15000",
    ],
)
def test_name_look_alikes_stay(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "request 550e8400-e29b-41d4-a716-446655440000 failed",
        "at 2024-05-14T10:22:31.123Z and 2024-05-14 10:22:31+01:00 on 14/05/2024",
        "amount=15000 amount=1500.50 total 1 500 000 F CFA",
        "currency=XOF EUR GHS NGN status=401 429 503",
        "sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "op=op-000123-a1 idem=op-000123-a1 ref=ORD-000123-4821 pay_ab0000001 req_ab00000012",
        "server_time_ms=1736931600000 elapsed_ms=532 attempt=2/3 port 8443",
        "  at MolamClient.request (/app/node_modules/@molam/sdk/dist/client.js:214:19)",
        '  File "/usr/lib/python3.11/site-packages/molam/client.py", line 88, in _request',
    ],
)
def test_look_alikes_stay(text: str) -> None:
    assert find_pii(text) == []
    assert redact_text(text) == text


def test_find_pii_reports_kind_and_span() -> None:
    text = "mail awa@x.sn from 10.0.0.1"
    assert find_pii(text) == [Finding(PiiKind.EMAIL, (5, 13)), Finding(PiiKind.IP, (19, 27))]
    assert [text[a:b] for a, b in (f.span for f in find_pii(text))] == ["awa@x.sn", "10.0.0.1"]


def test_redaction_is_stable() -> None:
    text = 'customer_name="Awa Ndiaye" card 4111 1111 1111 1111 password=x <EMAIL>'
    once = redact_text(text)
    assert redact_text(once) == once


def test_known_names_are_removed_everywhere() -> None:
    out = redact_text("paiement refusé pour Awa Ndiaye (AWA NDIAYE)", known_names=["Awa Ndiaye"])
    assert out == "paiement refusé pour <NAME> (<NAME>)"


def test_json_is_redacted_by_field_and_by_content() -> None:
    document = {
        "error": {"code": "card_declined", "name": "CardDeclinedError", "status": 402},
        "customer": {"name": "Awa Ndiaye", "email": "awa@orange.sn", "phone": 221771234567},
        "payment_method": {"card": {"number": 4111111111111111, "cvc": 123, "holder": "AWA"}},
        "iban": "FR7630006000011234567890189",
        "headers": {"Authorization": "Bearer abc.def.ghi", "X-Request-Id": "req_ab00000012"},
        "message": "carte refusée pour Awa Ndiaye depuis 10.0.0.1",
        "name": {"first": "Awa", "last": "Ndiaye"},
        "password": "",
        "amount": 15000,
        "currency": "XOF",
        "error_signature": "signature_mismatch:401",
        "tags": ["vip", "awa@orange.sn"],
        "ok": True,
        "ratio": 0.85,
        "nothing": None,
    }
    assert redact_json(document) == {
        "error": {"code": "card_declined", "name": "CardDeclinedError", "status": 402},
        "customer": {"name": "<NAME>", "email": "<EMAIL>", "phone": "<PHONE>"},
        "payment_method": {"card": {"number": "<PAN>", "cvc": "<SECRET>", "holder": "<NAME>"}},
        "iban": "<IBAN>",
        "headers": {"Authorization": "Bearer <TOKEN>", "X-Request-Id": "req_ab00000012"},
        "message": "carte refusée pour <NAME> depuis <IP>",
        "name": {"first": "<NAME>", "last": "<NAME>"},
        "password": "",
        "amount": 15000,
        "currency": "XOF",
        "error_signature": "signature_mismatch:401",
        "tags": ["vip", "<EMAIL>"],
        "ok": True,
        "ratio": 0.85,
        "nothing": None,
    }


def test_json_keys_that_collide_after_redaction_are_both_kept() -> None:
    out = redact_json({"a@x.sn": 1, "b@x.sn": 2})
    assert out == {"<EMAIL>": 1, "<EMAIL>~": 2}


def test_json_refuses_what_is_not_json() -> None:
    with pytest.raises(TypeError, match="not a JSON value: set"):
        redact_json({"a": {1, 2}})
