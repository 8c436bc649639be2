"""The seeded workload: one payment operation per index, with synthetic but realistic data.

The personal data looks real on purpose (names from Senegal, Côte d'Ivoire, Ghana, Nigeria,
France and Germany; E.164 phone numbers; card numbers that pass Luhn; IBANs whose check
digits are right) so that logs and exports exercise the PII redaction the way production
traffic would. None of it belongs to anyone.

Customers come back: a run has a pool of ``ceil(total_requests / 3)`` customers, each with
their own card, wallet or IBAN, and every op picks one. Customers are generated lazily, each
from its own stream, so the pool costs nothing until used.

Draw order of ``STREAM_CUSTOMER`` for customer ``c`` (fixed; append only, never reorder):
 1. country (weighted)   2. first name   3. last name   4. email pattern   5. email domain
 6. email number (always drawn)   7. phone prefix   8. phone digits (one draw per group)
 9. payment method (weighted by country), then its fields: card: brand, [mastercard
    prefix], body digits, expiry month, expiry year; mobile money: provider; bank
    transfer: BBAN digits (two draws)

Draw order of ``STREAM_OP`` for op ``index``:
 1. customer   2. currency (weighted by the customer's country)   3. amount bucket
 4. amount in bucket   5. reference digits   6. description
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from simcore.gateway.faults import FaultPlan
from simcore.gateway.prng import (
    STREAM_CUSTOMER,
    STREAM_OP,
    SplitMix64,
    Weights,
    mixed_seed,
    stream_state,
)
from simcore.gateway.protocol import encode_json
from simcore.model import ErrorKind, Scenario

SUPPORTED_CURRENCIES: tuple[str, ...] = (
    "XOF", "XAF", "EUR", "USD", "GBP", "GHS", "NGN", "KES", "MAD", "ZAR",
)  # fmt: skip

_json = encode_json
# A JSON string literal exactly as ``_json`` writes it, without the encoder's set-up per call.
_json_str: Callable[[str], str] = json.encoder.encode_basestring_ascii
# ISO 4217 exponents: amounts travel in minor units, and XOF/XAF have none.
_EXPONENT = {"XOF": 0, "XAF": 0}


@dataclass(frozen=True, slots=True)
class _Country:
    code: str
    weight: int
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    domains: tuple[str, ...]
    phone_prefixes: tuple[str, ...]
    phone_format: tuple[int, ...]  # digit groups after the prefix
    dial: str
    currencies: tuple[tuple[str, int], ...]
    methods: tuple[tuple[str, int], ...]
    mobile_money: tuple[str, ...] = ()


_COUNTRIES: tuple[_Country, ...] = (
    _Country(
        "SN", 25,
        ("Aminata", "Moussa", "Fatou", "Ousmane", "Awa", "Cheikh", "Mariama", "Ibrahima",
         "Khady", "Abdoulaye", "Ndèye", "Mamadou"),
        ("Diallo", "Ndiaye", "Sow", "Fall", "Diop", "Ba", "Sy", "Gueye", "Faye", "Mbaye",
         "Sarr", "Cissé"),
        ("orange.sn", "gmail.com", "yahoo.fr"),
        ("70", "75", "76", "77", "78"), (3, 2, 2), "+221",
        (("XOF", 90), ("EUR", 6), ("USD", 4)),
        (("mobile_money", 55), ("card", 45)),
        ("orange_money", "wave", "free_money"),
    ),
    _Country(
        "CI", 20,
        ("Kouassi", "Adjoua", "Yao", "Aya", "Koffi", "Affoué", "Konan", "Akissi", "Serge",
         "Mariam", "Didier", "Assita"),
        ("Konan", "Kouadio", "N'Guessan", "Koné", "Ouattara", "Yao", "Bamba", "Kouamé",
         "Traoré", "Coulibaly", "Diabaté", "Tanoh"),
        ("gmail.com", "yahoo.fr", "aviso.ci"),
        ("01", "05", "07"), (2, 2, 2, 2), "+225",
        (("XOF", 92), ("EUR", 5), ("USD", 3)),
        (("mobile_money", 60), ("card", 40)),
        ("orange_money", "mtn_momo", "moov_money", "wave"),
    ),
    _Country(
        "GH", 15,
        ("Kwame", "Akosua", "Kofi", "Ama", "Kwabena", "Efua", "Yaw", "Abena", "Kojo",
         "Adwoa", "Kwesi", "Esi"),
        ("Mensah", "Boateng", "Asante", "Owusu", "Osei", "Agyeman", "Appiah", "Addo",
         "Amoah", "Ofori", "Darko", "Quaye"),
        ("gmail.com", "yahoo.com", "outlook.com"),
        ("20", "24", "26", "27", "50", "54", "55", "59"), (3, 4), "+233",
        (("GHS", 90), ("USD", 10)),
        (("mobile_money", 50), ("card", 50)),
        ("mtn_momo", "vodafone_cash", "airteltigo_money"),
    ),
    _Country(
        "NG", 20,
        ("Chinedu", "Ngozi", "Oluwaseun", "Adaeze", "Emeka", "Funmilayo", "Ibrahim", "Aisha",
         "Tunde", "Chiamaka", "Yusuf", "Folake"),
        ("Okafor", "Adeyemi", "Balogun", "Okonkwo", "Eze", "Bello", "Abubakar", "Ogunleye",
         "Nwosu", "Adebayo", "Obi", "Lawal"),
        ("gmail.com", "yahoo.com", "outlook.com"),
        ("803", "806", "813", "816", "703", "706", "805", "807", "905"), (3, 4), "+234",
        (("NGN", 90), ("USD", 10)),
        (("card", 80), ("mobile_money", 20)),
        ("opay", "palmpay"),
    ),
    _Country(
        "FR", 12,
        ("Camille", "Lucas", "Léa", "Hugo", "Chloé", "Louis", "Manon", "Jules", "Inès",
         "Gabriel", "Élodie", "Théo"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
         "Leroy", "Moreau", "Lefèvre", "Girard"),
        ("gmail.com", "orange.fr", "free.fr", "laposte.net"),
        ("6", "7"), (2, 2, 2, 2), "+33",
        (("EUR", 92), ("USD", 4), ("GBP", 4)),
        (("card", 75), ("bank_transfer", 25)),
    ),
    _Country(
        "DE", 8,
        ("Lukas", "Anna", "Jonas", "Lena", "Felix", "Sophie", "Maximilian", "Marie", "Paul",
         "Hannah", "Jürgen", "Greta"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
         "Schulz", "Hoffmann", "Köhler", "Schäfer"),
        ("gmx.de", "web.de", "gmail.com", "t-online.de"),
        ("151", "152", "157", "160", "170", "171", "172", "175", "176", "177", "179"), (8,),
        "+49",
        (("EUR", 95), ("USD", 5)),
        (("card", 70), ("bank_transfer", 30)),
    ),
)  # fmt: skip

# The weighted tables, summed once (``SplitMix64.pick``): they are drawn from on every op.
_COUNTRY_WEIGHTS = Weights([(c, c.weight) for c in _COUNTRIES])
_CURRENCIES = {c.code: Weights(c.currencies) for c in _COUNTRIES}
_METHODS = {c.code: Weights(c.methods) for c in _COUNTRIES}
# Minor-unit buckets before scaling: small purchases are the most common.
_AMOUNT_BUCKETS = Weights([((100, 999), 30), ((1_000, 9_999), 40), ((10_000, 99_999), 25),
                           ((100_000, 500_000), 5)])  # fmt: skip
_DESCRIPTIONS = ("Marketplace order", "Airtime top-up", "Electricity bill", "School fees",
                 "Subscription renewal", "Grocery delivery", "Ride payment",
                 "Insurance premium")  # fmt: skip
_EMAIL_PATTERNS = ("{f}.{l}", "{f}{l}", "{f}_{l}", "{fi}{l}")


@dataclass(frozen=True, slots=True)
class Customer:
    first_name: str
    last_name: str
    email: str
    phone: str
    country: str
    payment_method: dict[str, Any] = field(hash=False, compare=False)
    # The customer's part of every op's JSON, encoded once: customers come back.
    fragment: str = field(default="", compare=False, repr=False)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def to_wire(self) -> dict[str, str]:
        return {
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "country": self.country,
        }


class PaymentOp(NamedTuple):
    """One logical operation: create a payment. ``currency`` is what the SDK is asked to send;
    ``intended_currency`` is what the merchant meant (they differ on invalid_currency faults).
    A tuple because one is built per op (hot path)."""

    op_index: int
    op_id: str
    amount: int
    currency: str
    intended_currency: str
    customer: Customer
    reference: str
    description: str

    def to_json(self) -> str:
        """``to_wire()`` as compact JSON, built around the customer's pre-encoded part."""
        return (
            f'{{"amount":{self.amount},"currency":{_json_str(self.currency)},'
            f'{self.customer.fragment},"reference":{_json_str(self.reference)},'
            f'"description":{_json_str(self.description)}}}'
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "amount": self.amount,
            "currency": self.currency,
            "customer": self.customer.to_wire(),
            "payment_method": self.customer.payment_method,
            "reference": self.reference,
            "description": self.description,
        }


def op_id_for(index: int) -> str:
    return f"op-{index + 1:06d}"


# A digit doubled, minus 9 when that makes two digits (Luhn).
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body + digit`` pass the Luhn check."""
    backwards = body[::-1]
    # Doubled: the digits that sit at odd positions once the check digit is appended.
    total = sum([_LUHN_DOUBLED[int(ch)] for ch in backwards[0::2]])
    total += sum([int(ch) for ch in backwards[1::2]])
    return str((10 - total % 10) % 10)


def iban_check_digits(country: str, bban: str) -> str:
    """ISO 13616 check digits (mod 97) for ``country`` + ``bban``."""
    rearranged = bban + country + "00"
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return f"{98 - int(numeric) % 97:02d}"


@functools.cache
def _ascii(text: str) -> str:
    # Cached: names come from the fixed lists above, and customers are made by the thousand.
    decomposed = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum()).lower()


def _customer(rng: SplitMix64) -> Customer:
    country = rng.pick(_COUNTRY_WEIGHTS)
    first = rng.choice(country.first_names)
    last = rng.choice(country.last_names)
    pattern = rng.choice(_EMAIL_PATTERNS)
    domain = rng.choice(country.domains)
    number = rng.randint(1, 99)
    ascii_first = _ascii(first)
    local = pattern.format(f=ascii_first, l=_ascii(last), fi=ascii_first[:1])
    if pattern == "{fi}{l}":
        local += str(number)  # short handles are usually taken: people add digits
    prefix = rng.choice(country.phone_prefixes)
    groups = [rng.digits(n) for n in country.phone_format]
    phone = " ".join([country.dial, prefix, *groups])
    method = _payment_method(rng, country, f"{first} {last}", phone)
    email = f"{local}@{domain}"
    wire = {"name": f"{first} {last}", "email": email, "phone": phone, "country": country.code}
    # One encoder call for both parts: ``"customer":{...},"payment_method":{...}``.
    fragment = _json({"customer": wire, "payment_method": method})[1:-1]
    return Customer(first, last, email, phone, country.code, method, fragment)


def _amount(rng: SplitMix64, currency: str) -> int:
    lo, hi = rng.pick(_AMOUNT_BUCKETS)
    minor = rng.randint(lo, hi)
    if _EXPONENT.get(currency, 2) == 0:
        # Francs CFA: prices are whole multiples of 5 F and rarely below 100 F.
        return max(100, minor // 5 * 5)
    if currency == "NGN":
        return minor * 10  # kobo: naira prices are larger numbers
    return minor


def _payment_method(rng: SplitMix64, country: _Country, holder: str, phone: str) -> dict[str, Any]:
    kind = rng.pick(_METHODS[country.code])
    if kind == "card":
        brand = rng.choice(("visa", "mastercard"))
        prefix = "4" if brand == "visa" else rng.choice(("51", "52", "53", "54", "55"))
        body = prefix + rng.digits(15 - len(prefix))
        return {
            "type": "card",
            "card": {
                "brand": brand,
                "number": body + luhn_check_digit(body),
                "exp_month": rng.randint(1, 12),
                "exp_year": rng.randint(2026, 2031),
                "holder": holder,
            },
        }
    if kind == "mobile_money":
        return {
            "type": "mobile_money",
            "provider": rng.choice(country.mobile_money),
            "phone": phone,
        }
    # FR: bank 5, branch 5, account 11, key 2; DE: bank code 8, account 10 (all digits here).
    bban = (
        rng.digits(12) + rng.digits(11) if country.code == "FR" else rng.digits(9) + rng.digits(9)
    )
    iban = country.code + iban_check_digits(country.code, bban) + bban
    return {
        "type": "bank_transfer",
        "iban": " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)),
    }


def malformed_currency(intended: str, variant: int) -> str:
    """The way a merchant's form or an old integration mangles ``intended``."""
    variants = [intended.lower(), f" {intended}", f"{intended} ", intended.title()]
    if intended == "XOF":
        variants += ["FCFA", "CFA", "F CFA"]
    return variants[variant % len(variants)]


class Workload:
    """The ops of one run; ``op(i)`` is the same in the baseline and the patched phase."""

    def __init__(self, seed: int, scenario: Scenario) -> None:
        self.seed = seed
        self.error = scenario.error
        self.pool_size = max(1, -(-scenario.total_requests // 3))
        self._customers: dict[int, Customer] = {}
        self._mixed_seed = mixed_seed(seed)  # see ``prng.stream_state``

    def customer(self, number: int) -> Customer:
        found = self._customers.get(number)
        if found is None:
            found = _customer(SplitMix64(stream_state(self._mixed_seed, number, STREAM_CUSTOMER)))
            self._customers[number] = found
        return found

    def op(self, index: int, plan: FaultPlan) -> PaymentOp:
        rng = SplitMix64(stream_state(self._mixed_seed, index, STREAM_OP))
        customer = self.customer(rng.randint(0, self.pool_size - 1))
        intended = rng.pick(_CURRENCIES[customer.country])
        amount = _amount(rng, intended)
        reference = f"ORD-{index + 1:06d}-{rng.digits(4)}"
        description = rng.choice(_DESCRIPTIONS)
        sent = intended
        if plan.faulty and self.error is ErrorKind.INVALID_CURRENCY:
            sent = malformed_currency(intended, plan.currency_variant)
        # Positional: keywords cost a NamedTuple several times as much, once per op.
        return PaymentOp(index, op_id_for(index), amount, sent, intended, customer, reference,
                         description)  # fmt: skip
