-- The journal without a global lock: entries are written unsealed, a sealer chains them later.
--
-- Until now every append took one transaction-level advisory lock to read the last hash and
-- chain to it, and kept it through commit (WAL flush included): every writer of the system
-- queued behind one lock, twice per run. Now:
--
-- * An append is a plain INSERT that takes no lock. A BEFORE INSERT trigger stamps the entry's
--   content hash at once (what it says is covered from the start), and leaves its chain
--   columns (seq, prev_hash, hash) empty: the entry is unsealed.
-- * Sealing gives the committed unsealed entries their place in the chain, in batches. One
--   sealer at a time: pg_try_advisory_xact_lock, so a second sealer skips instead of waiting
--   (whoever holds the lock takes the other's entries too). Each entry gets the next position
--   `seq`, the hash of the entry before it and its own chain hash; the batch is recorded in
--   sdk_simulation_journal_seals. Workers seal after finishing runs (every half second at
--   most, not on every run), and `simcore journal verify` seals before it walks.
--
-- Why a chain in seal order and not in id order: an entry with a smaller id can commit after
-- one with a larger id. A chain by id would have to wait for it or skip it; the sealer only
-- sees committed entries and puts each after those already sealed, so it never waits and
-- never leaves a hole. Ids still order a run's own entries (one run's changes are sequential).
--
-- Why an UPDATE of the chain columns rather than a separate seal table: whoever reads
-- sdk_simulation_journal (the dashboard, psql) keeps finding prev_hash and hash on the row.
-- The immutability trigger allows that one update and nothing else: from unsealed to sealed,
-- the chain columns only, with the chain hash that fits; DELETE and TRUNCATE stay refused.
--
-- Why a seal log: a chain alone cannot show that entries were cut from its end. Each batch
-- records where the chain ended (position, entry, hash); verify checks every record against
-- the entries, and the next batch continues from the last record, not from whatever happens
-- to be last in the table, so a removed tail leaves a visible gap.
--
-- Between its commit and its sealing (a fraction of a second while workers run) an entry is
-- covered by its content hash only: a superuser who deleted it in that window would not be
-- seen. That is the price of not serialising writers; verify reports such entries as pending.
--
-- Encoding, version 2 (simcore.journal recomputes both in Python; change only with a v3):
--   content_hash = sha256('v2' \n id \n run_id \n simulation_id \n approval_id \n action \n
--                         actor \n details::text \n created_at as UTC ISO-8601 with µs)
--   hash         = sha256('v2' \n seq \n prev_hash \n content_hash)
-- Entries written before this migration keep their version 1 hashes (seq and content_hash
-- empty); the version 2 chain continues from the last of them.

ALTER TABLE sdk_simulation_journal
    ADD COLUMN seq bigint CHECK (seq >= 1),
    ADD COLUMN content_hash text CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    ALTER COLUMN prev_hash DROP NOT NULL,
    ALTER COLUMN hash DROP NOT NULL,
    ADD CONSTRAINT sdk_journal_sealed_shape CHECK (
        CASE WHEN content_hash IS NULL
             THEN seq IS NULL AND prev_hash IS NOT NULL AND hash IS NOT NULL
             ELSE (seq IS NULL) = (hash IS NULL) AND (hash IS NULL) = (prev_hash IS NULL)
        END);
CREATE UNIQUE INDEX sdk_journal_seq_idx ON sdk_simulation_journal (seq) WHERE seq IS NOT NULL;
-- The chain is ordered by the unique seq now, and verify recomputes every hash; a unique index
-- on the hash as well would cost two more index writes per entry (at insert, at sealing).
ALTER TABLE sdk_simulation_journal DROP CONSTRAINT sdk_simulation_journal_hash_key;
-- What the sealer reads: small, since entries leave it within a second.
CREATE INDEX sdk_journal_unsealed_idx ON sdk_simulation_journal (id) WHERE hash IS NULL;

-- The two hashes of version 2, for psql users and tests; the triggers and the sealer write the
-- same expressions out, which spares a function call per entry.
CREATE FUNCTION sdk_journal_content_hash(
    p_id bigint, p_run uuid, p_sim uuid, p_approval uuid, p_action text, p_actor text,
    p_details jsonb, p_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(concat_ws(E'\n', 'v2', p_id::text,
               coalesce(p_run::text, ''), coalesce(p_sim::text, ''),
               coalesce(p_approval::text, ''), p_action, p_actor, p_details::text,
               to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
           'UTF8')), 'hex')
$$;

CREATE FUNCTION sdk_journal_chain_hash(p_seq bigint, p_prev text, p_content text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(
               concat_ws(E'\n', 'v2', p_seq::text, p_prev, p_content), 'UTF8')), 'hex')
$$;

-- Whoever inserts (sdk_journal_append, or a person in psql) gets an unsealed, hashed entry:
-- chain columns come from the sealer only.
CREATE FUNCTION sdk_journal_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL
       OR NEW.content_hash IS NOT NULL THEN
        RAISE EXCEPTION 'a journal entry is written unsealed: sdk_journal_seal() chains it'
            USING ERRCODE = 'insufficient_privilege';
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
CREATE TRIGGER sdk_journal_stamp
    BEFORE INSERT ON sdk_simulation_journal
    FOR EACH ROW EXECUTE FUNCTION sdk_journal_stamp();

-- The same refusal for the journal and its seal log, naming the table.
CREATE OR REPLACE FUNCTION sdk_journal_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- UPDATE: sealing an unsealed entry, and nothing else.
CREATE FUNCTION sdk_journal_seal_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.hash IS NULL AND OLD.content_hash IS NOT NULL
       AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL
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
DROP TRIGGER sdk_journal_no_update_delete ON sdk_simulation_journal;
CREATE TRIGGER sdk_journal_seal_only
    BEFORE UPDATE ON sdk_simulation_journal
    FOR EACH ROW EXECUTE FUNCTION sdk_journal_seal_only();
CREATE TRIGGER sdk_journal_no_delete
    BEFORE DELETE ON sdk_simulation_journal
    FOR EACH ROW EXECUTE FUNCTION sdk_journal_refuse_change();

-- One row per sealing batch: where the chain ended when the batch committed.
CREATE TABLE sdk_simulation_journal_seals (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    first_seq     bigint NOT NULL CHECK (first_seq >= 1),
    last_seq      bigint NOT NULL UNIQUE CHECK (last_seq >= first_seq),
    last_entry_id bigint NOT NULL,
    last_hash     text NOT NULL CHECK (last_hash ~ '^[0-9a-f]{64}$'),
    sealed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER sdk_journal_seals_no_update_delete
    BEFORE UPDATE OR DELETE ON sdk_simulation_journal_seals
    FOR EACH ROW EXECUTE FUNCTION sdk_journal_refuse_change();
CREATE TRIGGER sdk_journal_seals_no_truncate
    BEFORE TRUNCATE ON sdk_simulation_journal_seals
    FOR EACH STATEMENT EXECUTE FUNCTION sdk_journal_refuse_change();

-- Appends one entry, unsealed; no lock, so appenders never wait for each other.
CREATE OR REPLACE FUNCTION sdk_journal_append(
    p_run uuid, p_sim uuid, p_approval uuid, p_action text, p_actor text, p_details jsonb)
RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO sdk_simulation_journal
        (run_id, simulation_id, approval_id, action, actor, details, created_at)
    VALUES (p_run, p_sim, p_approval, p_action, p_actor, coalesce(p_details, '{}'::jsonb),
            clock_timestamp())
    RETURNING id
$$;

-- Seals up to p_limit committed entries, oldest id first; returns how many, or NULL when
-- another sealer holds the lock (p_wait: wait for it instead, as verify does). The chain is
-- computed first, then written by one UPDATE: a batch is all or nothing.
CREATE FUNCTION sdk_journal_seal(p_limit integer DEFAULT 5000, p_wait boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_seq      bigint;
    v_prev     text;
    v_ids      bigint[];
    v_contents text[];
    v_seqs     bigint[];
    v_prevs    text[];
    v_hashes   text[];
    v_count    integer;
BEGIN
    -- Each statement below must see what the previous sealer committed before releasing the
    -- lock; a snapshot taken at the start of the transaction would not.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'sdk_journal_seal() runs in READ COMMITTED, not %',
            current_setting('transaction_isolation');
    END IF;
    IF p_wait THEN
        PERFORM pg_advisory_xact_lock(7521993412);
    ELSIF NOT pg_try_advisory_xact_lock(7521993412) THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(id ORDER BY id), array_agg(content_hash ORDER BY id)
      INTO v_ids, v_contents
      FROM (SELECT id, content_hash FROM sdk_simulation_journal
             WHERE hash IS NULL ORDER BY id LIMIT p_limit) unsealed;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    SELECT last_seq, last_hash INTO v_seq, v_prev
      FROM sdk_simulation_journal_seals ORDER BY last_seq DESC LIMIT 1;
    IF NOT FOUND THEN
        -- The first batch: after the last version 1 entry, if any.
        v_seq := 0;
        SELECT hash INTO v_prev FROM sdk_simulation_journal
         WHERE content_hash IS NULL ORDER BY id DESC LIMIT 1;
        v_prev := coalesce(v_prev, repeat('0', 64));
    END IF;
    FOR i IN 1 .. array_length(v_ids, 1) LOOP
        v_seq := v_seq + 1;
        v_seqs[i] := v_seq;
        v_prevs[i] := v_prev;
        -- sdk_journal_chain_hash, written out: an expression here costs no function call.
        v_prev := encode(sha256(convert_to(
                      'v2' || E'\n' || v_seq || E'\n' || v_prev || E'\n' || v_contents[i],
                      'UTF8')), 'hex');
        v_hashes[i] := v_prev;
    END LOOP;
    UPDATE sdk_simulation_journal j
       SET seq = u.seq, prev_hash = u.prev_hash, hash = u.hash
      FROM unnest(v_ids, v_seqs, v_prevs, v_hashes) AS u(id, seq, prev_hash, hash)
     WHERE j.id = u.id AND j.hash IS NULL;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count <> array_length(v_ids, 1) THEN
        -- Only a seal made by hand meanwhile can cause this; its entry breaks the chain and
        -- verify will say where.
        RAISE EXCEPTION 'journal entries were sealed outside sdk_journal_seal(); not sealing';
    END IF;
    INSERT INTO sdk_simulation_journal_seals (first_seq, last_seq, last_entry_id, last_hash)
    VALUES (v_seqs[1], v_seq, v_ids[v_count], v_prev);
    RETURN v_count;
END;
$$;

-- A worker sends the notifications of its own status changes itself, after commit, several
-- in one statement (simcore.queue.send_notifications): a transaction that NOTIFYs holds a
-- server-wide lock through its commit, so notifying from every claim and finish would line
-- all workers up again. It says so with simtui.notify = 'deferred'; everyone else (launches,
-- cancels, psql) notifies from here as before. The by-hand journal trigger gets the same
-- test in its WHEN clause: a trigger whose WHEN is false costs no function call, and the
-- worker changes a run's status twice per run.
DROP TRIGGER sdk_runs_notify ON sdk_simulation_runs;
CREATE TRIGGER sdk_runs_notify
    AFTER INSERT OR UPDATE ON sdk_simulation_runs
    FOR EACH ROW
    WHEN (current_setting('simtui.notify', true) IS DISTINCT FROM 'deferred')
    EXECUTE FUNCTION sdk_runs_notify();
DROP TRIGGER sdk_runs_journal_by_hand ON sdk_simulation_runs;
CREATE TRIGGER sdk_runs_journal_by_hand
    AFTER UPDATE OF status ON sdk_simulation_runs
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND current_setting('simtui.journaled', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION sdk_runs_journal_by_hand();
