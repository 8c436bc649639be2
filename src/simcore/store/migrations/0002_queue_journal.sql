-- The queue's live log, change notifications, and the hash-chained journal's append function.

-- The run log (the sandbox's stderr), streamed in small batches while the run goes on.
CREATE TABLE sdk_simulation_run_logs (
    run_id     uuid NOT NULL REFERENCES sdk_simulation_runs (id),
    seq        integer NOT NULL CHECK (seq >= 0),
    line       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);

ALTER TABLE sdk_simulation_runs
    ADD COLUMN log_lines     integer NOT NULL DEFAULT 0 CHECK (log_lines >= 0),
    ADD COLUMN log_bytes     bigint NOT NULL DEFAULT 0 CHECK (log_bytes >= 0),
    ADD COLUMN log_truncated boolean NOT NULL DEFAULT false;

-- Listeners (dashboard, API streams, idle workers) wake on these instead of polling.
CREATE FUNCTION sdk_runs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status
       OR OLD.cancel_requested IS DISTINCT FROM NEW.cancel_requested THEN
        PERFORM pg_notify('simtui_runs', json_build_object(
            'id', NEW.id, 'simulation_id', NEW.simulation_id, 'status', NEW.status,
            'cancel_requested', NEW.cancel_requested)::text);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER sdk_runs_notify
    AFTER INSERT OR UPDATE ON sdk_simulation_runs
    FOR EACH ROW EXECUTE FUNCTION sdk_runs_notify();

-- The journal's canonical encoding, version 1. simcore.journal recomputes the same bytes in
-- Python to verify the chain, so the two must stay in step: change it only with a new version.
CREATE FUNCTION sdk_journal_canonical(
    p_prev text, p_run uuid, p_sim uuid, p_approval uuid, p_action text, p_actor text,
    p_details jsonb, p_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT concat_ws(E'\n', 'v1', p_prev, coalesce(p_run::text, ''), coalesce(p_sim::text, ''),
                     coalesce(p_approval::text, ''), p_action, p_actor, p_details::text,
                     to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
$$;

-- Appends one entry. One chain for the whole journal: the transaction-level advisory lock
-- orders appenders, and it is held until commit, so the next appender reads this hash.
CREATE FUNCTION sdk_journal_append(
    p_run uuid, p_sim uuid, p_approval uuid, p_action text, p_actor text, p_details jsonb)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_prev text;
    v_at   timestamptz := date_trunc('microseconds', clock_timestamp());
    v_id   bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7521993411);
    SELECT hash INTO v_prev FROM sdk_simulation_journal ORDER BY id DESC LIMIT 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    INSERT INTO sdk_simulation_journal
        (run_id, simulation_id, approval_id, action, actor, details, prev_hash, hash, created_at)
    VALUES (p_run, p_sim, p_approval, p_action, p_actor, coalesce(p_details, '{}'::jsonb),
            v_prev,
            encode(sha256(convert_to(sdk_journal_canonical(
                v_prev, p_run, p_sim, p_approval, p_action, p_actor,
                coalesce(p_details, '{}'::jsonb), v_at), 'UTF8')), 'hex'),
            v_at)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;

-- Status changes made by hand (the runbook's purge, a psql session) are journaled too.
-- simcore journals its own changes with more detail and says so with simtui.journaled.
CREATE FUNCTION sdk_runs_journal_by_hand() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('simtui.journaled', true), '') <> 'on' THEN
        PERFORM sdk_journal_append(
            NEW.id, NEW.simulation_id, NULL,
            CASE NEW.status
                WHEN 'running' THEN 'started'
                WHEN 'success' THEN 'completed'
                WHEN 'partial_success' THEN 'completed'
                ELSE NEW.status
            END,
            'sql:' || session_user,
            jsonb_build_object('from', OLD.status, 'to', NEW.status, 'by_hand', true));
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER sdk_runs_journal_by_hand
    AFTER UPDATE OF status ON sdk_simulation_runs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION sdk_runs_journal_by_hand();

-- Completed-at is always set when a run reaches a final status, whoever sets it.
CREATE FUNCTION sdk_runs_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    IF NEW.status NOT IN ('queued', 'running') AND NEW.completed_at IS NULL THEN
        NEW.completed_at := now();
    END IF;
    IF NEW.status NOT IN ('running') THEN
        NEW.lease_until := NULL;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER sdk_runs_stamp
    BEFORE UPDATE ON sdk_simulation_runs
    FOR EACH ROW EXECUTE FUNCTION sdk_runs_stamp();

-- Workers announce themselves and heartbeat, so that people (and `sim run --wait`) can tell
-- whether anything is consuming the queue.
CREATE TABLE sdk_simulation_workers (
    worker_id    text PRIMARY KEY,
    hostname     text NOT NULL,
    pid          integer NOT NULL,
    concurrency  integer NOT NULL CHECK (concurrency >= 1),
    sandbox      text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz,
    runs_done    integer NOT NULL DEFAULT 0
);
CREATE INDEX sdk_workers_alive_idx ON sdk_simulation_workers (heartbeat_at)
    WHERE stopped_at IS NULL;
