"""A redaction corpus: realistic SDK log lines with planted personal data and look-alikes.

Built from templates and a seeded RNG, so it is the same on every run and every value's
position is known: the test measures how much planted data is removed (recall) and how many
look-alikes (UUIDs, hashes, amounts, dates, codes) survive untouched. ``python -m
tests.redact.corpus`` prints it.

Template slots are ``${slot}``; ``${slot|json}`` inserts the value JSON-escaped (ASCII, as
many loggers write it) and ``${slot|repr}`` as a Python literal. All data is synthetic: the
card numbers pass Luhn, the IBANs their check digits, the phones their numbering plans.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import random
import re
import string
import sys
import unicodedata
import uuid
from dataclasses import dataclass, field

SEED = 1_405_2024
SIZE = 420


@dataclass(frozen=True)
class Planted:
    kind: str  # a PiiKind value for personal data, a look-alike name otherwise
    value: str  # the text as it appears in the line
    span: tuple[int, int]


@dataclass
class Line:
    text: str
    planted: list[Planted] = field(default_factory=list)
    keep: list[Planted] = field(default_factory=list)


FIRST_NAMES = (
    "Aminata", "Moussa", "Fatou", "Ousmane", "Awa", "Cheikh", "Ndèye", "Mamadou", "Kouassi",
    "Adjoua", "Affoué", "Akissi", "Kwame", "Akosua", "Kwabena", "Efua", "Chinedu", "Ngozi",
    "Oluwaseun", "Funmilayo", "Camille", "Léa", "Chloé", "Élodie", "Théo", "Jürgen", "Greta",
    "Lukas", "Hannah", "Oliver", "Amelia",
)  # fmt: skip
LAST_NAMES = (
    "Diallo", "Ndiaye", "Sow", "Fall", "Diop", "Gueye", "Cissé", "Konan", "N'Guessan", "Koné",
    "Ouattara", "Traoré", "Mensah", "Boateng", "Asante", "Okafor", "Adeyemi", "Okonkwo",
    "Martin", "Dubois", "Lefèvre", "Girard", "Müller", "Schäfer", "Köhler", "Smith", "Taylor",
)  # fmt: skip
EMAIL_DOMAINS = (
    "gmail.com", "yahoo.fr", "orange.sn", "outlook.com", "gmx.de", "free.fr", "aviso.ci",
    "mtn.com.gh", "laposte.net", "web.de", "proton.me", "molam-merchant.africa",
)  # fmt: skip
CURRENCIES = ("XOF", "XAF", "EUR", "USD", "GHS", "NGN", "GBP", "KES")
STATUSES = ("400", "401", "402", "404", "409", "422", "429", "500", "502", "503", "504")
IBAN_FORMATS = {  # country: BBAN layout (n: digits, a: uppercase letters, c: either)
    "FR": "nnnnnnnnnnnnnnnnnnnnnnn",
    "DE": "nnnnnnnnnnnnnnnnnn",
    "GB": "aaaannnnnnnnnnnnnn",
    "BE": "nnnnnnnnnnnn",
    "ES": "nnnnnnnnnnnnnnnnnnnn",
    "IT": "annnnnnnnnnnccccccccccc",
    "NL": "aaaannnnnnnnnn",
    "SN": "SNnnnnnnnnnnnnnnnnnnnnnn",
    "CI": "CInnnnnnnnnnnnnnnnnnnnnn",
    "ML": "MLnnnnnnnnnnnnnnnnnnnnnn",
    "BJ": "BJnnnnnnnnnnnnnnnnnnnnnn",
    "CM": "nnnnnnnnnnnnnnnnnnnnnnn",
    "MA": "nnnnnnnnnnnnnnnnnnnnnnnn",
}
# (calling code, national number layouts): each layout is digit-group sizes.
PHONE_PLANS = {
    "221": ("7", ((2, 3, 2, 2),)),
    "225": ("0", ((2, 2, 2, 2, 2),)),
    "233": ("2", ((2, 3, 4),)),
    "234": ("8", ((3, 3, 4),)),
    "33": ("6", ((1, 2, 2, 2, 2),)),
    "49": ("1", ((3, 8), (4, 7))),
    "44": ("7", ((4, 6),)),
    "32": ("4", ((3, 2, 2, 2),)),
    "237": ("6", ((1, 2, 2, 2, 2),)),
}
CARD_SCHEMES = (  # (prefixes, length, layout)
    (("4",), 16, (4, 4, 4, 4)),
    (("4",), 13, (4, 4, 5)),
    (("51", "52", "53", "54", "55"), 16, (4, 4, 4, 4)),
    (("2221", "2300", "2720"), 16, (4, 4, 4, 4)),
    (("34", "37"), 15, (4, 6, 5)),
    (("6011", "65"), 16, (4, 4, 4, 4)),
    (("5061", "6500"), 19, (4, 4, 4, 4, 3)),
    (("3528", "3589"), 16, (4, 4, 4, 4)),
)


def luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def iban_complete(country: str, bban: str) -> str:
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def ascii_fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum()).lower()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Gen:
    """Values for every slot, drawn from one seeded RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    def alnum(self, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    # -- personal data ---------------------------------------------------------------------

    def first(self) -> str:
        return self.rng.choice(FIRST_NAMES)

    def last(self) -> str:
        return self.rng.choice(LAST_NAMES)

    def name(self) -> str:
        return f"{self.first()} {self.last()}"

    def name_upper(self) -> str:
        return self.name().upper()

    def email(self) -> str:
        first, last = ascii_fold(self.first()), ascii_fold(self.last())
        local = self.rng.choice(
            (f"{first}.{last}", f"{first}{last}", f"{first}_{last}", f"{first[0]}{last}"
             f"{self.rng.randint(1, 99)}", f"{first}.{last}+shop")
        )  # fmt: skip
        return f"{local}@{self.rng.choice(EMAIL_DOMAINS)}"

    def email_url(self) -> str:
        return self.email().replace("@", "%40").replace("+", "%2B")

    def phone(self) -> str:
        code = self.rng.choice(tuple(PHONE_PLANS))
        lead, layouts = PHONE_PLANS[code]
        layout = self.rng.choice(layouts)
        national = lead + self.digits(sum(layout) - 1)
        groups, pos = [], 0
        for size in layout:
            groups.append(national[pos : pos + size])
            pos += size
        style = self.rng.randrange(5)
        if style == 0:
            return f"+{code}{national}"
        if style == 1:
            return f"+{code}-" + "-".join(groups)
        if style == 2:
            return f"00{code} " + " ".join(groups)
        return f"+{code} " + " ".join(groups)

    def phone_trunk(self) -> str:
        return f"+44 (0)20 {self.digits(4)} {self.digits(4)}"

    def phone_url(self) -> str:
        code = self.rng.choice(("221", "225", "233", "234"))
        return f"%2B{code}" + self.digits(9 if code in ("221", "233") else 10)

    def phone_national(self) -> str:
        kind = self.rng.randrange(3)
        if kind == 0:  # France / Côte d'Ivoire: 10 digits in pairs
            pairs = ["0" + self.rng.choice("67"), *(self.digits(2) for _ in range(4))]
            return self.rng.choice((" ", ".", "")).join(pairs)
        if kind == 1:  # Nigeria
            return f"0{self.rng.choice('789')}0{self.digits(1)} {self.digits(3)} {self.digits(4)}"
        return f"0{self.rng.choice('25')}{self.digits(1)} {self.digits(3)} {self.digits(4)}"

    def pan(self) -> str:
        prefixes, length, layout = self.rng.choice(CARD_SCHEMES)
        prefix = self.rng.choice(prefixes)
        number = luhn_complete(prefix + self.digits(length - len(prefix) - 1))
        sep = self.rng.choice(("", " ", "-", " "))
        if not sep:
            return number
        groups, pos = [], 0
        for size in layout:
            groups.append(number[pos : pos + size])
            pos += size
        return sep.join(groups)

    def pan_digits(self) -> str:
        prefix = self.rng.choice(("4", "51", "55", "2221"))
        return luhn_complete(prefix + self.digits(15 - len(prefix)))

    def cvc(self) -> str:
        return self.digits(3)

    def email_upper(self) -> str:
        return self.email().upper()

    def iban(self) -> str:
        country = self.rng.choice(tuple(IBAN_FORMATS))
        bban = "".join(
            self.rng.choice(string.digits)
            if c == "n"
            else self.rng.choice(string.ascii_uppercase)
            if c == "a"
            else self.rng.choice(string.digits + string.ascii_uppercase)
            if c == "c"
            else c
            for c in IBAN_FORMATS[country]
        )
        iban = iban_complete(country, bban)
        if self.rng.random() < 0.5:
            return iban
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))

    def ipv4(self) -> str:
        first = self.rng.choice((10, 41, 102, 154, 172, 192, 196, 197, 41, 105))
        return ".".join(str(x) for x in (first, *(self.rng.randint(0, 255) for _ in range(3))))

    def ipv6(self) -> str:
        prefix = self.rng.choice((0x2001, 0x2A01, 0x2C0F, 0x2605))
        bits = self.rng.getrandbits(112)
        if self.rng.random() < 0.5:
            bits &= ~(0xFFFF_FFFF_FFFF << 16)  # a run of zero groups, written "::"
        address = ipaddress.IPv6Address(prefix << 112 | bits)
        return address.compressed if self.rng.random() < 0.7 else address.exploded

    def jwt(self) -> str:
        header = b64url(
            json.dumps({"alg": self.rng.choice(("HS256", "RS256")), "typ": "JWT"}).encode()
        )
        claims = {"sub": f"cus_{self.alnum(12)}", "iat": 1718000000 + self.rng.randint(0, 10**6)}
        payload = b64url(json.dumps(claims).encode())
        return f"{header}.{payload}.{b64url(self.rng.randbytes(32))}"

    def bearer(self) -> str:
        return self.rng.choice(("mlm_at_", "ya29.", "")) + b64url(self.rng.randbytes(30))

    def apikey(self) -> str:
        kind = self.rng.randrange(6)
        if kind == 0:
            return "sk_live_" + self.alnum(24)
        if kind == 1:
            return "sk_test_" + self.alnum(24)
        if kind == 2:
            return "pk_live_" + self.alnum(24)
        if kind == 3:
            return "ak_" + self.alnum(24, "0123456789abcdef")
        if kind == 4:
            return "pk_sim_" + self.alnum(16, "0123456789abcdef")
        return "sk_sim_" + self.alnum(32, "0123456789abcdef")

    def whsec(self) -> str:
        return "whsec_" + base64.b64encode(self.rng.randbytes(24)).decode()

    def hexsecret(self) -> str:
        return self.rng.randbytes(self.rng.choice((16, 20, 32))).hex()

    def b64secret(self) -> str:
        return base64.b64encode(self.rng.randbytes(self.rng.choice((18, 24, 33)))).decode()

    def password(self) -> str:
        return self.rng.choice(("Dakar", "Abidjan", "Soleil", "Passw0rd", "teranga")) + (
            self.alnum(4) + self.rng.choice("!@#%*")
        )

    # -- look-alikes -------------------------------------------------------------------------

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ts(self) -> str:
        d = self.date()
        t = f"{self.time()}:{self.rng.randint(0, 59):02d}"
        return self.rng.choice(
            (f"{d}T{t}.{self.digits(3)}Z", f"{d}T{t}+00:00", f"{d} {t}", f"{d}T{t}+01:00")
        )

    def date(self) -> str:
        year, month, day = (
            self.rng.randint(2023, 2026),
            self.rng.randint(1, 12),
            self.rng.randint(1, 28),
        )
        return f"{year}-{month:02d}-{day:02d}"

    def amount(self) -> str:
        return str(self.rng.choice((100, 500, 1000, 1500, 2500, 5000, 15000, 25000, 150000))
                   + 5 * self.rng.randint(0, 2000))  # fmt: skip

    def amount_dec(self) -> str:
        return f"{self.rng.randint(1, 99999)}.{self.rng.randint(0, 99):02d}"

    def amount_fr(self) -> str:
        return f"{self.rng.randint(1, 2000) * 500:,}".replace(",", " ")

    def date_fr(self) -> str:
        year, month, day = self.date().split("-")
        return f"{day}/{month}/{year}"

    def time(self) -> str:
        return f"{self.rng.randint(0, 23):02d}:{self.rng.randint(0, 59):02d}"

    def masked_pan(self) -> str:
        return self.rng.choice(("411111", "535522", "222100")) + "******" + self.digits(4)

    def cur(self) -> str:
        return self.rng.choice(CURRENCIES)

    def status(self) -> str:
        return self.rng.choice(STATUSES)

    def sha256(self) -> str:
        return hashlib.sha256(self.rng.randbytes(16)).hexdigest()

    def opid(self) -> str:
        suffix = f"{self.rng.choice('abcdef')}{self.rng.randint(0, 9)}"
        return f"op-{self.rng.randint(1, 999999):06d}-{suffix}"

    def idem(self) -> str:
        return self.rng.choice((self.opid(), f"idem_{self.alnum(10, string.ascii_lowercase)}"))

    def reqid(self) -> str:
        return f"req_{self.alnum(2, string.ascii_lowercase)}{self.rng.randint(0, 99999999):08d}"

    def epoch_ms(self) -> str:
        return str(1_700_000_000_000 + self.rng.randint(0, 10**11))

    def payid(self) -> str:
        return f"pay_{self.alnum(2, string.ascii_lowercase)}{self.rng.randint(0, 9999999):07d}"

    def ref(self) -> str:
        return f"ORD-{self.rng.randint(1, 999999):06d}-{self.digits(4)}"

    def version(self) -> str:
        return f"{self.rng.randint(1, 5)}.{self.rng.randint(0, 20)}.{self.rng.randint(0, 9)}"

    def lineno(self) -> str:
        return str(self.rng.randint(12, 900))

    def trace(self) -> str:
        return self.rng.randbytes(16).hex()

    def elapsed(self) -> str:
        return str(self.rng.randint(40, 30000))


PII_SLOTS = {
    "email": "email", "email_url": "email", "phone": "phone", "phone_url": "phone",
    "phone_national": "phone", "phone_trunk": "phone", "pan": "pan", "pan_digits": "pan",
    "cvc": "secret", "email_upper": "email", "iban": "iban", "ipv4": "ip", "ipv6": "ip",
    "jwt": "jwt", "bearer": "token", "apikey": "secret", "whsec": "secret",
    "hexsecret": "secret", "b64secret": "secret", "password": "secret", "name": "name",
    "name_upper": "name", "first": "name", "last": "name",
}  # fmt: skip
KEEP_SLOTS = (
    "uuid", "ts", "date", "amount", "amount_dec", "cur", "status", "sha256", "opid", "idem",
    "reqid", "epoch_ms", "payid", "ref", "version", "lineno", "trace", "elapsed", "amount_fr",
    "date_fr", "time", "masked_pan",
)  # fmt: skip

TEMPLATES = (
    # Node SDK, plain text
    "${ts} [molam-node ${version}] ERROR POST /v1/payments -> ${status} (${elapsed} ms) "
    "op=${opid} request_id=${reqid} customer_email=${email} amount=${amount} currency=${cur}",
    "${ts} [molam-node] WARN signature_mismatch attempt=2 X-Request-Id: ${uuid} "
    "client_ip=${ipv4} server_time=${epoch_ms}",
    "${ts} [molam-node] DEBUG > Authorization: Bearer ${jwt}",
    "${ts} [molam-node] DEBUG > authorization: Bearer ${bearer}",
    "${ts} [molam-node] DEBUG > X-Api-Key: ${apikey}",
    "${ts} [molam-node] DEBUG > X-Signature: ${hexsecret}",
    "${ts} [molam-node] DEBUG > X-Body-Sha256: ${sha256}",
    "${ts} [molam-node] DEBUG > Idempotency-Key: ${idem}",
    "    at MolamClient.request (/app/node_modules/@molam/sdk/dist/client.js:${lineno}:17) "
    "while charging ${pan} for ${email}",
    "Error: card_declined (${status}) for card ${pan}, amount ${amount_dec} ${cur}, "
    "trace_id=${trace}",
    # JSON bodies
    '{"error":{"code":"invalid_currency","message":"currency \'xof\' is not supported",'
    '"param":"currency"},"request_id":"${uuid}","customer":{"name":"${name}",'
    '"email":"${email}","phone":"${phone}"},"amount":${amount},"currency":"${cur}"}',
    '{"type":"card","card":{"brand":"visa","number":"${pan}","exp_month":12,'
    '"exp_year":2029,"holder":"${name|json}"},"created_at":"${ts}"}',
    '{"type":"bank_transfer","iban":"${iban}","account_holder":"${name}",'
    '"reference":"${ref}","amount":${amount},"currency":"${cur}"}',
    '{"type":"mobile_money","provider":"orange_money","phone":"${phone}",'
    '"status":${status},"payment_id":"${payid}"}',
    '{"level":"error","msg":"webhook rejected","ip":"${ipv6}","event_id":"${uuid}",'
    '"signature":"${hexsecret}","body_sha256":"${sha256}"}',
    '{"level":"debug","body":"{\\"customer\\":{\\"first_name\\":\\"${first|json}\\",'
    '\\"last_name\\":\\"${last|json}\\",\\"email\\":\\"${email}\\"}}","op":"${opid}"}',
    '{"api_key":"${apikey}","secret":"${b64secret}","mode":"live","ts":"${ts}"}',
    '{"error":{"code":"signature_mismatch","message":"request timestamp outside the 300 s '
    'tolerance; re-sync the clock","server_time_ms":${epoch_ms}},"status":${status}}',
    '{"event":"retry","attempt":3,"idempotency_key":"${idem}","elapsed_ms":${elapsed},'
    '"customer_name":"${name}","msisdn":"${phone}"}',
    # HTTP header dumps
    "< HTTP/1.1 ${status} Unauthorized\r\n< X-Request-Id: ${reqid}\r\n< X-Server-Time: "
    "${epoch_ms}\r\n< Set-Cookie: session=${bearer}; Path=/; HttpOnly",
    "> GET /v1/customers?email=${email_url}&phone=${phone_url}&page=2 HTTP/1.1 (${status})",
    "> X-Forwarded-For: ${ipv4}, ${ipv4} host=api.molam.io trace=${trace}",
    "> Stripe-Signature: t=${epoch_ms},v1=${hexsecret} event=${uuid}",
    # Python SDK
    '  File "/usr/lib/python3.11/site-packages/molam/client.py", line ${lineno}, in _request',
    "molam.errors.CardDeclined: ${status} card ${pan} refused for ${email} at ${ts}",
    "payload={'customer_name': ${name|repr}, 'msisdn': '${phone}', 'amount': ${amount}, "
    "'currency': '${cur}', 'idempotency_key': '${idem}'}",
    "DEBUG molam.http: POST https://api.molam.io/v1/payments headers={'X-Api-Key': "
    "'${apikey}', 'X-Timestamp': '${epoch_ms}'} status=${status}",
    # PHP SDK
    "PHP Fatal error:  Uncaught Molam\\Exception\\ApiException: IBAN ${iban} rejected "
    "(${status}) in /var/www/vendor/molam/sdk/src/Client.php:${lineno}",
    "#0 /var/www/vendor/molam/sdk/src/Client.php(${lineno}): Molam\\Client->request('POST', "
    "'/v1/payments', Array) client ${ipv6}",
    '[${ts}] production.ERROR: payment ${payid} failed {"cardholder":"${name_upper}",'
    '"card_number":"${pan}","amount":${amount_dec}}',
    # Ruby SDK
    "/usr/local/bundle/gems/molam-${version}/lib/molam/client.rb:${lineno}:in 'post': "
    "Molam::SignatureMismatch (${status}, server_time=${epoch_ms})",
    'params: {:name=>"${name}", :card_number=>"${pan}", :currency=>"${cur}", :reference=>"${ref}"}',
    # logfmt and key=value
    'level=error msg="payment failed" cardholder="${name_upper}" amount=${amount_dec} '
    "currency=${cur} trace_id=${trace}",
    "level=warn msg=retry password=${password} user_email=${email} op=${opid}",
    "level=info msg=webhook signing_secret=${whsec} event=${uuid} status=${status}",
    "level=debug client_secret=${b64secret} access_token=${bearer} token_type=bearer",
    "level=info phone=${phone_national} amount=${amount} currency=${cur} date=${date}",
    # French messages
    "Échec du paiement ${payid} de ${amount} ${cur} : carte ${pan} refusée, "
    'titulaire="${name}", le ${date}',
    "Remboursement vers l'IBAN ${iban} (réf ${ref}) programmé le ${date} pour "
    'nom_client="${name}"',
    "Appel du client ${phone} depuis ${ipv6} — statut ${status}, durée ${elapsed} ms",
    "Nouveau client : prénom=${first} nom=${last} courriel ${email} tél ${phone}",
    "Clé API compromise détectée : ${apikey} (requête ${uuid})",
    "Jeton expiré pour ${email} : Bearer ${jwt}",
    # English messages
    "Paid by customer=${name|repr} (${email}): ${amount} ${cur} from ${ipv4} at ${ts}",
    "Refund to account ${iban} for ${amount_dec} ${cur} queued, reference ${ref}",
    "Rate limited (${status}): retry after 3 s, request ${reqid}, idempotency key ${idem}",
    "SMS OTP sent to ${phone} for payment ${payid} (checksum ${sha256})",
    "Paiement ${payid} : montant ${amount_fr} F CFA, le ${date_fr} à ${time}, carte "
    "${masked_pan}, statut ${status}",
    "upstream ${ipv4}:8443 timed out after ${elapsed} ms (attempt 2/3) host=api.molam.io",
    "Connection from [${ipv6}]:443 reset by peer; request ${uuid}",
    '{"amount":${amount},"currency":"${cur}","card":{"number":${pan_digits},"cvc":"${cvc}",'
    '"exp":"12/29"},"three_ds":{"version":"${version}"}}',
    "Reply-To: ${email_upper} (ticket ${ref}) London office ${phone_trunk}",
)


def render(template: str, gen: Gen) -> Line:
    out: list[str] = []
    line = Line("")
    pos = 0
    length = 0
    for m in re.finditer(r"\$\{(\w+)(?:\|(\w+))?\}", template):
        literal = template[pos : m.start()]
        out.append(literal)
        length += len(literal)
        slot, mode = m.group(1), m.group(2)
        value = getattr(gen, slot)()
        if mode == "json":
            text = json.dumps(value)[1:-1]
            inner = (0, len(text))
        elif mode == "repr":
            text = repr(value)
            inner = (1, len(text) - 1)
        else:
            text = value
            inner = (0, len(text))
        span = (length + inner[0], length + inner[1])
        planted = Planted(PII_SLOTS.get(slot, slot), text[inner[0] : inner[1]], span)
        (line.planted if slot in PII_SLOTS else line.keep).append(planted)
        out.append(text)
        length += len(text)
        pos = m.end()
    out.append(template[pos:])
    line.text = "".join(out)
    return line


def build_corpus(seed: int = SEED, size: int = SIZE) -> list[Line]:
    """``size`` lines; every template is used, in turn, with fresh values."""
    gen = Gen(random.Random(seed))
    return [render(TEMPLATES[i % len(TEMPLATES)], gen) for i in range(size)]


if __name__ == "__main__":
    for corpus_line in build_corpus():
        sys.stdout.write(corpus_line.text.replace("\r\n", "\\r\\n") + "\n")
