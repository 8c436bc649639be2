-- The runbook's schema (names as the runbook writes them), plus the columns the queue needs.
-- Enumerations are CHECK constraints rather than enum types: adding a value later is a plain
-- ALTER of a constraint, and psql users compare with ordinary strings.
-- gen_random_uuid() is built in since PostgreSQL 13: no extension needed.


-- Patches that SDKs run when they meet a known error.
CREATE TABLE sdk_self_healing_registry (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug            text UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9._-]{0,79}$'),
    description     text NOT NULL DEFAULT '',
    sdk_language    text NOT NULL CHECK (sdk_language IN
                        ('node', 'php', 'python', 'ruby', 'woocommerce', 'shopify')),
    error_signature text NOT NULL CHECK (length(error_signature) BETWEEN 1 AND 200),
    patch_code      text NOT NULL CHECK (length(patch_code) <= 65536),
    rollback_code   text NOT NULL DEFAULT '' CHECK (length(rollback_code) <= 65536),
    version         text NOT NULL DEFAULT '1.0.0',
    severity        text NOT NULL DEFAULT 'medium'
                        CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    source          text NOT NULL DEFAULT 'ops'
                        CHECK (source IN ('builtin', 'ops', 'sira', 'crowd')),
    active          boolean NOT NULL DEFAULT true,
    sandbox_tested  boolean NOT NULL DEFAULT false,
    created_by      text NOT NULL DEFAULT 'system',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sdk_registry_lookup_idx
    ON sdk_self_healing_registry (sdk_language, error_signature) WHERE active;

-- A simulation: a scenario, an SDK language, a patch, in a tenant's scope.
CREATE TABLE sdk_simulations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_type     text NOT NULL CHECK (tenant_type IN ('merchant', 'agent', 'internal')),
    tenant_id       text NOT NULL DEFAULT 'default' CHECK (length(tenant_id) BETWEEN 1 AND 200),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description     text NOT NULL DEFAULT '',
    sdk_language    text NOT NULL CHECK (sdk_language IN
                        ('node', 'php', 'python', 'ruby', 'woocommerce', 'shopify')),
    scenario        jsonb NOT NULL CHECK (jsonb_typeof(scenario) = 'object'),
    patch_reference uuid REFERENCES sdk_self_healing_registry (id),
    created_by      text NOT NULL DEFAULT 'system',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sdk_simulations_tenant_idx
    ON sdk_simulations (tenant_type, tenant_id, created_at DESC);

-- One execution of a simulation. The queue lives in this table.
CREATE TABLE sdk_simulation_runs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    simulation_id     uuid NOT NULL REFERENCES sdk_simulations (id),
    -- Copied from the simulation so that tenant scope and idempotency need no join.
    tenant_type       text NOT NULL CHECK (tenant_type IN ('merchant', 'agent', 'internal')),
    tenant_id         text NOT NULL DEFAULT 'default',
    idempotency_key   text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    seed              bigint NOT NULL,
    status            text NOT NULL DEFAULT 'queued' CHECK (status IN
                          ('queued', 'running', 'success', 'partial_success', 'failed',
                           'timeout', 'cancelled', 'error')),
    -- The patch as it was at launch (the registry row may change later).
    patch_id          uuid REFERENCES sdk_self_healing_registry (id),
    metrics           jsonb,
    reasons           jsonb NOT NULL DEFAULT '[]'::jsonb,
    artifact_s3_key   text,
    run_at            timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    completed_at      timestamptz,
    worker_id         text,
    lease_until       timestamptz,
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts      integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    cancel_requested  boolean NOT NULL DEFAULT false,
    error_message     text,
    sandbox_backend   text,
    simulator_version text,
    launched_by       text NOT NULL DEFAULT 'system',
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'running' OR (worker_id IS NOT NULL AND lease_until IS NOT NULL)),
    CHECK (completed_at IS NULL OR status NOT IN ('queued', 'running'))
);
-- An idempotency key is unique within a tenant (not globally: tenants must not collide).
CREATE UNIQUE INDEX sdk_runs_idempotency_idx
    ON sdk_simulation_runs (tenant_type, tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- The claim reads the oldest queued run: a small partial index keeps it cheap at any size.
CREATE INDEX sdk_runs_queued_idx ON sdk_simulation_runs (run_at, id) WHERE status = 'queued';
CREATE INDEX sdk_runs_running_lease_idx
    ON sdk_simulation_runs (lease_until) WHERE status = 'running';
CREATE INDEX sdk_runs_simulation_idx ON sdk_simulation_runs (simulation_id, run_at DESC);
CREATE INDEX sdk_runs_recent_idx ON sdk_simulation_runs (run_at DESC);
CREATE INDEX sdk_runs_tenant_idx ON sdk_simulation_runs (tenant_type, tenant_id, run_at DESC);

-- Append-only audit journal; each entry carries the hash of the one before it.
CREATE TABLE sdk_simulation_journal (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        uuid REFERENCES sdk_simulation_runs (id),
    simulation_id uuid REFERENCES sdk_simulations (id),
    approval_id   uuid,
    action        text NOT NULL CHECK (action IN
                      ('queued', 'started', 'applied_patch', 'rollback', 'completed', 'failed',
                       'timeout', 'killed', 'cancelled', 'released', 'error', 'approved',
                       'rejected', 'staged', 'deployed', 'rolled_back', 'exported')),
    actor         text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    details       jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash     text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash          text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sdk_journal_run_idx ON sdk_simulation_journal (run_id, id);
CREATE INDEX sdk_journal_approval_idx ON sdk_simulation_journal (approval_id, id)
    WHERE approval_id IS NOT NULL;

CREATE FUNCTION sdk_journal_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'sdk_simulation_journal is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER sdk_journal_no_update_delete
    BEFORE UPDATE OR DELETE ON sdk_simulation_journal
    FOR EACH ROW EXECUTE FUNCTION sdk_journal_refuse_change();
CREATE TRIGGER sdk_journal_no_truncate
    BEFORE TRUNCATE ON sdk_simulation_journal
    FOR EACH STATEMENT EXECUTE FUNCTION sdk_journal_refuse_change();

-- A decision on the patch of a successful run, then its rollout.
CREATE TABLE sdk_patch_approvals (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    simulation_run_id  uuid NOT NULL UNIQUE REFERENCES sdk_simulation_runs (id),
    patch_id           uuid NOT NULL REFERENCES sdk_self_healing_registry (id),
    tenant_type        text NOT NULL CHECK (tenant_type IN ('merchant', 'agent', 'internal')),
    tenant_id          text NOT NULL DEFAULT 'default',
    status             text NOT NULL DEFAULT 'pending' CHECK (status IN
                           ('pending', 'approved', 'rejected', 'staged', 'deployed',
                            'rolled_back')),
    rollout_percentage integer NOT NULL DEFAULT 0
                           CHECK (rollout_percentage BETWEEN 0 AND 100),
    approval_notes     text,
    requested_by       text NOT NULL DEFAULT 'system',
    decided_by         text,
    decided_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sdk_approvals_status_idx ON sdk_patch_approvals (status, created_at);

-- Error signatures met in runs, anonymised, waiting for (or sent to) SIRA.
CREATE TABLE sdk_anonymized_errors (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id           uuid REFERENCES sdk_simulation_runs (id),
    error_signature  text NOT NULL CHECK (length(error_signature) BETWEEN 1 AND 200),
    category         text NOT NULL DEFAULT 'unknown',
    sdk_language     text NOT NULL CHECK (sdk_language IN
                         ('node', 'php', 'python', 'ruby', 'woocommerce', 'shopify')),
    frequency        double precision NOT NULL CHECK (frequency BETWEEN 0 AND 1),
    context_hash     text NOT NULL CHECK (context_hash ~ '^[0-9a-f]{64}$'),
    exported_to_sira boolean NOT NULL DEFAULT false,
    exported_at      timestamptz,
    export_batch_id  uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (exported_to_sira = (exported_at IS NOT NULL))
);
CREATE INDEX sdk_anon_errors_pending_idx
    ON sdk_anonymized_errors (created_at) WHERE NOT exported_to_sira;

-- One row per run with what an on-call engineer reads first.
CREATE VIEW sdk_simulation_runs_summary AS
SELECT
    r.id,
    r.simulation_id,
    s.name                                             AS simulation_name,
    r.tenant_type,
    r.tenant_id,
    s.sdk_language,
    s.scenario ->> 'error'                             AS error,
    r.status,
    r.seed,
    r.patch_id,
    (r.metrics ->> 'success_rate')::numeric            AS success_rate,
    (r.metrics ->> 'avg_latency_ms')::numeric          AS avg_latency_ms,
    (r.metrics ->> 'total_requests')::integer          AS total_requests,
    (r.metrics ->> 'failed_requests')::integer         AS failed_requests,
    (r.metrics ->> 'regressions')::integer             AS regressions,
    (r.metrics -> 'baseline' ->> 'success_rate')::numeric AS baseline_success_rate,
    round(extract(epoch FROM (r.completed_at - r.started_at)) * 1000)::bigint AS duration_ms,
    r.attempts,
    r.worker_id,
    r.error_message,
    r.artifact_s3_key,
    a.status                                           AS approval_status,
    r.run_at,
    r.started_at,
    r.completed_at
FROM sdk_simulation_runs r
JOIN sdk_simulations s ON s.id = r.simulation_id
LEFT JOIN sdk_patch_approvals a ON a.simulation_run_id = r.id;
