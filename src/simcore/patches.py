"""The built-in patch registry: a good patch per fault and language, and a few bad ones.

The bad patches are real mistakes seen in self-healing code, kept (inactive) so the
simulator can show what it catches: a timeout retry without the Idempotency-Key (duplicate
charges), a currency "fix" that maps everything to XOF (wrong payments), a signature retry
that never re-syncs the clock (no improvement).

Ids are ``uuid5(NAMESPACE, slug)``: stable across releases and databases, so a report, a
journal entry or a ``patch_reference`` written today still names the same patch tomorrow.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from simcore.errors import InvalidInput
from simcore.model import ErrorKind, Patch, PatchSeverity, PatchSource, SdkLanguage

NAMESPACE = uuid.UUID("52f40c40-8da7-4463-bdf7-c36694699d87")
LANGUAGES = (SdkLanguage.PYTHON, SdkLanguage.NODE)


@dataclass(frozen=True)
class _Entry:
    error: ErrorKind
    name: str
    description: str
    good: bool
    severity: PatchSeverity
    python: tuple[str, str]  # (patch_code, rollback_code)
    node: tuple[str, str]


_ENTRIES: tuple[_Entry, ...] = (
    _Entry(
        ErrorKind.SIGNATURE_MISMATCH,
        "resync-clock",
        "Re-sync the client clock offset from the server time in the 401, then retry (re-signed).",
        True,
        PatchSeverity.HIGH,
        (
            'server_ms = ctx.error.body["error"]["server_time_ms"]\n'
            "ctx.client.clock_offset_ms = server_ms - ctx.now()\n"
            'ctx.log("clock re-synced, offset_ms=" + str(ctx.client.clock_offset_ms))\n'
            "ctx.retry()\n",
            "ctx.client.clock_offset_ms = 0\n",
        ),
        (
            "const serverMs = ctx.error.body.error.server_time_ms;\n"
            "ctx.client.clock_offset_ms = serverMs - ctx.now();\n"
            'ctx.log("clock re-synced, offset_ms=" + String(ctx.client.clock_offset_ms));\n'
            "ctx.retry();\n",
            "ctx.client.clock_offset_ms = 0;\n",
        ),
    ),
    _Entry(
        ErrorKind.TIMEOUT,
        "retry-idempotent",
        "Retry a timed-out payment with the same Idempotency-Key: if the first attempt was "
        "charged, the gateway replays it instead of charging twice.",
        True,
        PatchSeverity.HIGH,
        (
            'ctx.log("timed out after", ctx.client.timeout_ms, "ms; retrying with key",\n'
            '        ctx.request.headers["Idempotency-Key"])\n'
            "ctx.retry()\n",
            "",
        ),
        (
            'ctx.log("timed out after", ctx.client.timeout_ms, "ms; retrying with key",\n'
            '        ctx.request.headers["Idempotency-Key"]);\n'
            "ctx.retry();\n",
            "",
        ),
    ),
    _Entry(
        ErrorKind.INVALID_CURRENCY,
        "normalize-currency",
        "Normalise a mangled ISO 4217 code (case, spaces, 'FCFA' for XOF) and retry only if "
        "the result is a currency the gateway supports.",
        True,
        PatchSeverity.MEDIUM,
        (
            'aliases = {"FCFA": "XOF", "CFA": "XOF", "F CFA": "XOF"}\n'
            'raw = str(ctx.request.body["currency"])\n'
            "code = raw.strip().upper()\n"
            "code = aliases.get(code, code)\n"
            'supported = ctx.error.body["error"].get("supported", [])\n'
            "if code != raw and code in supported:\n"
            '    ctx.log("currency normalised: \\"" + raw + "\\" -> " + code)\n'
            '    ctx.request.body["currency"] = code\n'
            "    ctx.retry()\n"
            "else:\n"
            '    ctx.log("currency \\"" + raw + "\\" cannot be normalised; giving up")\n',
            "",
        ),
        (
            'const aliases = { FCFA: "XOF", CFA: "XOF", "F CFA": "XOF" };\n'
            "const raw = String(ctx.request.body.currency);\n"
            "let code = raw.trim().toUpperCase();\n"
            "code = Object.prototype.hasOwnProperty.call(aliases, code) ? aliases[code] : code;\n"
            "const supported = ctx.error.body.error.supported || [];\n"
            "if (code !== raw && supported.includes(code)) {\n"
            '  ctx.log("currency normalised: \\"" + raw + "\\" -> " + code);\n'
            "  ctx.request.body.currency = code;\n"
            "  ctx.retry();\n"
            "} else {\n"
            '  ctx.log("currency \\"" + raw + "\\" cannot be normalised; giving up");\n'
            "}\n",
            "",
        ),
    ),
    _Entry(
        ErrorKind.RATE_LIMITED,
        "honour-retry-after",
        "Wait for the Retry-After the 429 asks for, then retry with the same key.",
        True,
        PatchSeverity.MEDIUM,
        (
            'wait_ms = int(ctx.error.headers.get("Retry-After", "1")) * 1000\n'
            'ctx.log("rate limited; waiting", wait_ms, "ms")\n'
            "ctx.sleep(wait_ms)\n"
            "ctx.retry()\n",
            "",
        ),
        (
            'const waitMs = parseInt(ctx.error.headers["Retry-After"] || "1", 10) * 1000;\n'
            'ctx.log("rate limited; waiting", waitMs, "ms");\n'
            "ctx.sleep(waitMs);\n"
            "ctx.retry();\n",
            "",
        ),
    ),
    _Entry(
        ErrorKind.SERVER_ERROR,
        "backoff-retry",
        "Back off 250 ms after a 502/503 and retry once with the same Idempotency-Key (a 502 "
        "may have charged).",
        True,
        PatchSeverity.MEDIUM,
        (
            'ctx.log("upstream", ctx.error.status, "; retrying in 250 ms")\n'
            "ctx.sleep(250)\n"
            "ctx.retry()\n",
            "",
        ),
        (
            'ctx.log("upstream", ctx.error.status, "; retrying in 250 ms");\n'
            "ctx.sleep(250);\n"
            "ctx.retry();\n",
            "",
        ),
    ),
    # Deliberately harmful: what the simulator exists to catch.
    _Entry(
        ErrorKind.TIMEOUT,
        "retry-without-key",
        "BAD: retries a timed-out payment after dropping the Idempotency-Key; a first attempt "
        "that was charged is charged again.",
        False,
        PatchSeverity.HIGH,
        ('del ctx.request.headers["Idempotency-Key"]\nctx.retry()\n', ""),
        ('delete ctx.request.headers["Idempotency-Key"];\nctx.retry();\n', ""),
    ),
    _Entry(
        ErrorKind.INVALID_CURRENCY,
        "force-xof",
        "BAD: 'fixes' any rejected currency by sending XOF, so a EUR or NGN payment is taken "
        "in francs CFA.",
        False,
        PatchSeverity.MEDIUM,
        ('ctx.request.body["currency"] = "XOF"\nctx.retry()\n', ""),
        ('ctx.request.body.currency = "XOF";\nctx.retry();\n', ""),
    ),
    _Entry(
        ErrorKind.SIGNATURE_MISMATCH,
        "retry-without-resync",
        "BAD: retries a 401 signature_mismatch as is; the clock is still off, so the retry "
        "fails the same way.",
        False,
        PatchSeverity.LOW,
        ('ctx.log("401, retrying")\nctx.retry()\n', ""),
        ('ctx.log("401, retrying");\nctx.retry();\n', ""),
    ),
)


def patch_id(slug: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, slug)


def _build() -> tuple[Patch, ...]:
    patches = []
    for entry in _ENTRIES:
        for language in LANGUAGES:
            code, rollback = entry.python if language is SdkLanguage.PYTHON else entry.node
            slug = f"{entry.error.value}-{entry.name}-{language.value}"
            patches.append(
                Patch(
                    id=patch_id(slug),
                    slug=slug,
                    description=entry.description,
                    sdk_language=language,
                    error_signature=entry.error.value,
                    patch_code=code,
                    rollback_code=rollback,
                    version="1.0.0",
                    severity=entry.severity,
                    source=PatchSource.BUILTIN,
                    active=entry.good,
                )
            )
    return tuple(patches)


_PATCHES = _build()


def builtin_patches() -> tuple[Patch, ...]:
    """Every built-in patch, both languages; the harmful examples have ``active=False``."""
    return _PATCHES


def default_patch(error: ErrorKind | str, language: SdkLanguage | str) -> Patch | None:
    """The good built-in patch for ``error`` in ``language``, if there is one."""
    for patch in _PATCHES:
        if (
            patch.active
            and patch.error_signature == str(error)
            and patch.sdk_language == str(language)
        ):
            return patch
    return None


def find_patch(ref: str, language: SdkLanguage | str) -> Patch:
    """A built-in patch by UUID, slug, or slug without its language suffix."""
    ref, lang = ref.strip(), str(language)
    try:
        ref = str(uuid.UUID(ref))
    except ValueError:
        pass
    for patch in _PATCHES:
        if ref in (str(patch.id), patch.slug):
            if patch.sdk_language != lang:
                raise InvalidInput("patch", f"{ref} is a {patch.sdk_language} patch, not {lang}")
            return patch
    for patch in _PATCHES:
        if patch.sdk_language == lang and patch.slug == f"{ref}-{lang}":
            return patch
    known = ", ".join(
        sorted({p.slug.removesuffix(f"-{p.sdk_language}") for p in _PATCHES if p.slug})
    )
    raise InvalidInput("patch", f"no built-in patch {ref!r} (known: {known})")
