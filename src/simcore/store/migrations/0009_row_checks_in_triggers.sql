-- The row rules of the two tables a worker writes for every run, checked by their row
-- triggers instead of CHECK constraints; the generated success rate, set by the same trigger.
--
-- Why: PostgreSQL 16 rebuilds a table's CHECK constraints and stored generated expressions
-- from their stored text (stringToNode) for every statement that writes the table, once per
-- table the statement writes, however few rows it writes. A worker's step writes runs twice
-- (the finish, the claim) and the journal once, then the sealer writes the journal again,
-- so 9 + 9 + 8 + 8 constraints were parsed and compiled per run, and the journal's three
-- hash-shape checks ran a regular expression on every entry, four times over its life. In a
-- profile of the queue benchmark (no-op runs) that was 10-15% of the server's CPU per run; a
-- trigger's PL/pgSQL expressions are compiled once per connection.
--
-- What stays the same: the rules, the error class (check_violation, SQLSTATE 23514) and the
-- constraint names in the errors' details, so clients and the API's error answers are
-- unchanged. NOT NULL, foreign keys and unique indexes are untouched. The other tables keep
-- their CHECK constraints: none of them is written on every run.
--
-- What is different: a superuser who disables the triggers (session_replication_role =
-- replica) skips these rules as well. For the journal this changes nothing that matters:
-- such a person could already edit entries, and `simcore journal verify` recomputes every
-- hash and walks the chain, so a malformed hash or a broken shape is found either way. The
-- three hash-shape checks are gone rather than moved: content_hash and hash are computed by
-- the triggers themselves (sha256 in hex, by construction), and a prev_hash that is not the
-- previous entry's hash breaks the chain, which verify reports.

-- sdk_simulation_runs ---------------------------------------------------------------------

ALTER TABLE sdk_simulation_runs
    DROP CONSTRAINT sdk_simulation_runs_attempts_check,
    DROP CONSTRAINT sdk_simulation_runs_check,
    DROP CONSTRAINT sdk_simulation_runs_check1,
    DROP CONSTRAINT sdk_simulation_runs_idempotency_key_check,
    DROP CONSTRAINT sdk_simulation_runs_log_bytes_check,
    DROP CONSTRAINT sdk_simulation_runs_log_lines_check,
    DROP CONSTRAINT sdk_simulation_runs_max_attempts_check,
    DROP CONSTRAINT sdk_simulation_runs_status_check,
    DROP CONSTRAINT sdk_simulation_runs_tenant_type_check;
-- A plain column from now on, kept up to date by sdk_runs_stamp (values are kept).
ALTER TABLE sdk_simulation_runs ALTER COLUMN metrics_success_rate DROP EXPRESSION;

-- One refusal, shaped as the CHECK constraint it replaces would have raised it.
CREATE FUNCTION sdk_refuse_row(p_table text, p_constraint text, p_column text, p_rule text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'new row for relation "%" violates check constraint "%"', p_table,
                    p_constraint
        USING ERRCODE = 'check_violation', TABLE = p_table, CONSTRAINT = p_constraint,
              COLUMN = coalesce(p_column, ''), DETAIL = p_rule;
END;
$$;

-- Which rule a run breaks, once sdk_runs_stamp has found that it breaks one. Each IF mirrors
-- one former CHECK: "IF NOT (rule)" refuses a false rule only, and lets a NULL through, as
-- CHECK did (NOT NULL columns keep their NOT NULL constraints).
CREATE FUNCTION sdk_runs_refuse(r sdk_simulation_runs) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT (r.status IN ('queued', 'running', 'success', 'partial_success', 'failed',
                         'timeout', 'cancelled', 'error')) THEN
        PERFORM sdk_refuse_row('sdk_simulation_runs', 'sdk_simulation_runs_status_check',
            'status', format('status %L is not a run status', r.status));
    ELSIF NOT (r.tenant_type IN ('merchant', 'agent', 'internal')) THEN
        PERFORM sdk_refuse_row('sdk_simulation_runs', 'sdk_simulation_runs_tenant_type_check',
            'tenant_type', format('tenant_type %L is not merchant, agent or internal',
                                  r.tenant_type));
    ELSIF NOT (length(r.idempotency_key) BETWEEN 1 AND 255) THEN
        PERFORM sdk_refuse_row('sdk_simulation_runs',
            'sdk_simulation_runs_idempotency_key_check', 'idempotency_key',
            'an idempotency key has 1 to 255 characters');
    ELSIF NOT (r.attempts >= 0) THEN
        PERFORM sdk_refuse_row('sdk_simulation_runs', 'sdk_simulation_runs_attempts_check',
            'attempts', 'attempts is never negative');
    ELSIF NOT (r.max_attempts >= 1) THEN
        PERFORM sdk_refuse_row('sdk_simulation_runs', 'sdk_simulation_runs_max_attempts_check',
            'max_attempts', 'max_attempts is at least 1');
    ELSIF NOT (r.log_lines >= 0) THEN
        PERFORM sdk_refuse_row('sdk_simulation_runs', 'sdk_simulation_runs_log_lines_check',
            'log_lines', 'log_lines is never negative');
    ELSIF NOT (r.log_bytes >= 0) THEN
        PERFORM sdk_refuse_row('sdk_simulation_runs', 'sdk_simulation_runs_log_bytes_check',
            'log_bytes', 'log_bytes is never negative');
    ELSIF NOT (r.status <> 'running' OR (r.worker_id IS NOT NULL
                                         AND r.lease_until IS NOT NULL)) THEN
        PERFORM sdk_refuse_row('sdk_simulation_runs', 'sdk_simulation_runs_check', NULL,
            'a running run has a worker and a lease');
    ELSIF NOT (r.completed_at IS NULL OR r.status NOT IN ('queued', 'running')) THEN
        PERFORM sdk_refuse_row('sdk_simulation_runs', 'sdk_simulation_runs_check1', NULL,
            'only a finished run has a completion time');
    END IF;
END;
$$;

-- Few expressions on purpose: PL/pgSQL prepares each expression of a trigger anew in every
-- transaction, and a worker's transactions are one statement each. So the rules are one
-- test on the path every row takes, and sdk_runs_refuse names the broken one.
CREATE OR REPLACE FUNCTION sdk_runs_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
        IF NEW.status NOT IN ('queued', 'running') THEN
            -- Completed-at is always set when a run reaches a final status, whoever sets it.
            IF NEW.completed_at IS NULL THEN
                NEW.completed_at := now();
            END IF;
            NEW.lease_until := NULL;
        ELSIF NEW.status = 'queued' THEN
            NEW.lease_until := NULL;
        END IF;
    END IF;
    -- What the generated column computed: the number at metrics.success_rate, else NULL.
    IF TG_OP = 'INSERT' OR NEW.metrics IS DISTINCT FROM OLD.metrics
       OR NEW.metrics_success_rate IS DISTINCT FROM OLD.metrics_success_rate THEN
        NEW.metrics_success_rate := CASE
            WHEN jsonb_typeof(NEW.metrics -> 'success_rate') = 'number'
            THEN (NEW.metrics ->> 'success_rate')::double precision END;
    END IF;
    IF (NEW.status IN ('queued', 'running', 'success', 'partial_success', 'failed',
                       'timeout', 'cancelled', 'error')) IS FALSE
       OR (NEW.tenant_type IN ('merchant', 'agent', 'internal')) IS FALSE
       OR (length(NEW.idempotency_key) BETWEEN 1 AND 255) IS FALSE
       OR NEW.attempts < 0 OR NEW.max_attempts < 1 OR NEW.log_lines < 0 OR NEW.log_bytes < 0
       OR (NEW.status = 'running' AND (NEW.worker_id IS NULL OR NEW.lease_until IS NULL))
       OR (NEW.completed_at IS NOT NULL AND NEW.status IN ('queued', 'running')) THEN
        PERFORM sdk_runs_refuse(NEW);
    END IF;
    RETURN NEW;
END;
$$;
DROP TRIGGER sdk_runs_stamp ON sdk_simulation_runs;
CREATE TRIGGER sdk_runs_stamp
    BEFORE INSERT OR UPDATE ON sdk_simulation_runs
    FOR EACH ROW EXECUTE FUNCTION sdk_runs_stamp();

-- sdk_simulation_journal ------------------------------------------------------------------

ALTER TABLE sdk_simulation_journal
    DROP CONSTRAINT sdk_journal_sealed_shape,
    DROP CONSTRAINT sdk_simulation_journal_action_check,
    DROP CONSTRAINT sdk_simulation_journal_actor_check,
    DROP CONSTRAINT sdk_simulation_journal_content_hash_check,
    DROP CONSTRAINT sdk_simulation_journal_hash_check,
    DROP CONSTRAINT sdk_simulation_journal_prev_hash_check,
    DROP CONSTRAINT sdk_simulation_journal_seq_check;

-- An entry is written unsealed (sdk_journal_seal() chains it), with a known action and actor;
-- its content hash is stamped at once. As for runs: one test on the common path.
CREATE OR REPLACE FUNCTION sdk_journal_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL
       OR NEW.content_hash IS NOT NULL
       OR (NEW.action IN ('queued', 'started', 'applied_patch', 'rollback', 'completed',
                          'failed', 'timeout', 'killed', 'cancelled', 'released', 'error',
                          'approved', 'rejected', 'staged', 'deployed', 'rolled_back',
                          'exported')) IS FALSE
       OR (length(NEW.actor) BETWEEN 1 AND 200) IS FALSE THEN
        IF NEW.seq IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL
           OR NEW.content_hash IS NOT NULL THEN
            RAISE EXCEPTION 'a journal entry is written unsealed: sdk_journal_seal() chains it'
                USING ERRCODE = 'insufficient_privilege';
        ELSIF NOT (length(NEW.actor) BETWEEN 1 AND 200) THEN
            PERFORM sdk_refuse_row('sdk_simulation_journal',
                'sdk_simulation_journal_actor_check', 'actor',
                'an actor has 1 to 200 characters');
        ELSE
            PERFORM sdk_refuse_row('sdk_simulation_journal',
                'sdk_simulation_journal_action_check', 'action',
                format('action %L is not a journal action', NEW.action));
        END IF;
    END IF;
    -- sdk_journal_content_hash, written out: an expression here costs no function call.
    NEW.content_hash := encode(sha256(convert_to(concat_ws(E'\n', 'v2', NEW.id::text,
            coalesce(NEW.run_id::text, ''), coalesce(NEW.simulation_id::text, ''),
            coalesce(NEW.approval_id::text, ''), NEW.action, NEW.actor, NEW.details::text,
            to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
        'UTF8')), 'hex');
    RETURN NEW;
END;
$$;

-- UPDATE: sealing an unsealed entry, and nothing else. The chain hash is recomputed here, so
-- it is a sha256 in hex. The previous hash only needs its length checked: it is some entry's
-- chain hash, and verify walks the chain.
CREATE OR REPLACE FUNCTION sdk_journal_seal_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.hash IS NULL AND OLD.content_hash IS NOT NULL
       AND NEW.seq >= 1
       AND octet_length(NEW.prev_hash) = 64
       AND NEW.hash = encode(sha256(convert_to('v2' || E'\n' || NEW.seq || E'\n'
                                               || NEW.prev_hash || E'\n' || OLD.content_hash,
                                               'UTF8')), 'hex')
       AND (NEW.id, NEW.run_id, NEW.simulation_id, NEW.approval_id, NEW.action, NEW.actor,
            NEW.details, NEW.created_at, NEW.content_hash)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.run_id, OLD.simulation_id, OLD.approval_id, OLD.action, OLD.actor,
            OLD.details, OLD.created_at, OLD.content_hash) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'sdk_simulation_journal is append-only: UPDATE refused'
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'only sdk_journal_seal() may fill in the chain of an unsealed entry';
END;
$$;
