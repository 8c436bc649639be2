-- API tokens: who may call the HTTP API, with which role and in which tenant scope.
--
-- Only the SHA-256 of a token is stored: a leaked table (or backup) gives no usable token.
-- The secret is printed once, when the token is created; `prefix` is its first characters,
-- kept so people can tell their tokens apart in `simcore token list`.
CREATE TABLE sdk_simulator_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    token_hash   text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    prefix       text NOT NULL CHECK (length(prefix) BETWEEN 4 AND 32),
    role         text NOT NULL CHECK (role IN ('ops', 'dev', 'auditor', 'sira')),
    -- NULL tenant_type: every tenant. NULL tenant_id with a type: every tenant of that type.
    tenant_type  text CHECK (tenant_type IN ('merchant', 'agent', 'internal')),
    tenant_id    text CHECK (length(tenant_id) BETWEEN 1 AND 200),
    -- Who acts with this token: the journal records `<role>:<identity>`, and four-eyes
    -- approval compares it with the launcher of the run.
    identity     text NOT NULL CHECK (length(identity) BETWEEN 1 AND 200),
    created_by   text NOT NULL DEFAULT 'system',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CHECK (tenant_id IS NULL OR tenant_type IS NOT NULL),
    -- A developer works inside one tenant; an unscoped dev token would see every tenant.
    CHECK (role <> 'dev' OR (tenant_type IS NOT NULL AND tenant_id IS NOT NULL))
);
CREATE INDEX sdk_tokens_created_idx ON sdk_simulator_tokens (created_at DESC);
