-- After approval: the staged canary rollout, and the approval's state machine enforced for
-- every writer, simcore or a person in psql running the runbook's
--     UPDATE sdk_patch_approvals SET status = 'staged' WHERE simulation_run_id = 'RUN_ID';
--
-- simcore.rollout owns the transition table; the copy below exists so that the database can
-- refuse an illegal change made by hand. tests/rollout checks that the two are equal.

CREATE TABLE sdk_approval_transitions (
    from_status text NOT NULL,
    to_status   text NOT NULL,
    action      text NOT NULL CHECK (action IN
                    ('approve', 'reject', 'stage', 'promote', 'rollback')),
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO sdk_approval_transitions (from_status, to_status, action) VALUES
    ('pending',  'approved',    'approve'),
    ('pending',  'rejected',    'reject'),
    ('approved', 'staged',      'stage'),
    ('staged',   'staged',      'promote'),
    ('staged',   'deployed',    'promote'),
    ('staged',   'rolled_back', 'rollback'),
    ('deployed', 'rolled_back', 'rollback');

-- Increasing percentages from 1 to 100 that end at 100 (simcore.config checks the same).
CREATE FUNCTION sdk_rollout_steps_valid(steps integer[]) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT steps IS NOT NULL
       AND array_ndims(steps) = 1
       AND array_lower(steps, 1) = 1
       AND steps[array_upper(steps, 1)] = 100
       AND NOT EXISTS (
           SELECT 1 FROM unnest(steps) WITH ORDINALITY AS s(v, i)
            WHERE v IS NULL OR v < 1 OR v > 100 OR (i > 1 AND v <= steps[i - 1]))
$$;

-- The step after `current` in `steps` (NULL at the last one).
CREATE FUNCTION sdk_rollout_next_step(steps integer[], current integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT min(v) FROM unnest(steps) AS s(v) WHERE v > current
$$;

-- The plan is kept with the approval: set from SIMTUI_ROLLOUT_STEPS when simcore stages it,
-- the runbook's 5 % then 100 % when a person stages it by hand. A change of configuration
-- in the middle of a rollout therefore never moves a patch to a step off its plan.
ALTER TABLE sdk_patch_approvals
    ADD COLUMN rollout_steps          integer[] NOT NULL DEFAULT '{5,100}'
        CONSTRAINT sdk_approvals_rollout_steps_valid CHECK (sdk_rollout_steps_valid(rollout_steps)),
    ADD COLUMN staged_at              timestamptz,
    ADD COLUMN deployed_at            timestamptz,
    ADD COLUMN rolled_back_at         timestamptz,
    -- When the current percentage was reached: the canary's "for 1 hour" counts from here.
    ADD COLUMN step_started_at        timestamptz,
    ADD COLUMN last_transition_by     text,
    ADD COLUMN last_transition_reason text,
    ADD COLUMN canary_status          text CHECK (canary_status IN ('promote', 'wait', 'rollback')),
    ADD COLUMN last_hook_status       text,
    ADD COLUMN last_hook_at           timestamptz;

-- Rows written before this migration (e.g. staged by hand at 0 %) are brought to the
-- invariants below before they are enforced.
UPDATE sdk_patch_approvals SET
    rollout_percentage = CASE status
        WHEN 'staged' THEN CASE WHEN rollout_percentage = ANY (rollout_steps)
                                 AND rollout_percentage < 100
                                THEN rollout_percentage ELSE rollout_steps[1] END
        WHEN 'deployed' THEN 100
        ELSE 0 END,
    staged_at = CASE WHEN status IN ('staged', 'deployed', 'rolled_back') THEN updated_at END,
    deployed_at = CASE WHEN status = 'deployed' THEN updated_at END,
    rolled_back_at = CASE WHEN status = 'rolled_back' THEN updated_at END,
    step_started_at = CASE WHEN status IN ('staged', 'deployed') THEN updated_at END;

ALTER TABLE sdk_patch_approvals ADD CONSTRAINT sdk_approvals_rollout_consistent CHECK (
    CASE status
        WHEN 'staged' THEN rollout_percentage = ANY (rollout_steps)
                       AND (rollout_percentage < 100 OR cardinality(rollout_steps) = 1)
                       AND staged_at IS NOT NULL AND step_started_at IS NOT NULL
        WHEN 'deployed' THEN rollout_percentage = 100 AND step_started_at IS NOT NULL
        WHEN 'rolled_back' THEN rollout_percentage = 0 AND rolled_back_at IS NOT NULL
        ELSE rollout_percentage = 0
    END);
CREATE INDEX sdk_approvals_rollout_idx ON sdk_patch_approvals (status)
    WHERE status IN ('staged', 'deployed');

-- What the canary's production traffic did: scraped from the SDK service's metrics
-- (`patch_success_rate`) or posted through the API.
CREATE TABLE sdk_canary_observations (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    approval_id  uuid NOT NULL REFERENCES sdk_patch_approvals (id),
    observed_at  timestamptz NOT NULL,
    success_rate double precision NOT NULL CHECK (success_rate BETWEEN 0 AND 1),
    requests     bigint CHECK (requests >= 0),
    rollout_percentage integer NOT NULL CHECK (rollout_percentage BETWEEN 0 AND 100),
    source       text NOT NULL CHECK (source IN ('scrape', 'api', 'cli')),
    recorded_by  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sdk_canary_obs_approval_idx ON sdk_canary_observations (approval_id, observed_at);

-- Refuses what the transition table does not allow, whoever writes; fills in what a person in
-- psql leaves out (the percentage of the step, who, when). simcore sets every column itself
-- and says so with simtui.journaled (see simcore.journal.mark_journaled).
CREATE FUNCTION sdk_approvals_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_by_hand boolean := coalesce(current_setting('simtui.journaled', true), '') <> 'on';
    v_who     text := 'sql:' || session_user;
    v_allowed text;
    v_next    integer;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- An approval starts pending: anything else would skip the decision.
        IF NEW.status IS DISTINCT FROM 'pending' THEN
            RAISE EXCEPTION 'an approval is created pending, not %', NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.status IS NOT DISTINCT FROM OLD.status
       AND NEW.rollout_percentage IS NOT DISTINCT FROM OLD.rollout_percentage THEN
        RETURN NEW;
    END IF;
    PERFORM 1 FROM sdk_approval_transitions
     WHERE from_status = OLD.status AND to_status = NEW.status;
    IF NOT FOUND THEN
        SELECT string_agg(to_status, ', ' ORDER BY to_status) INTO v_allowed
          FROM sdk_approval_transitions WHERE from_status = OLD.status;
        RAISE EXCEPTION 'approval of run %: % -> % is not allowed', NEW.simulation_run_id,
                OLD.status, coalesce(NEW.status, 'NULL')
            USING ERRCODE = 'check_violation',
                  HINT = CASE WHEN v_allowed IS NULL
                              THEN OLD.status || ' is final: nothing can follow it'
                              ELSE 'from ' || OLD.status || ' only: ' || v_allowed END;
    END IF;

    v_next := sdk_rollout_next_step(NEW.rollout_steps, OLD.rollout_percentage);
    IF NEW.status = 'staged' AND OLD.status = 'approved' THEN
        IF v_by_hand AND NEW.rollout_percentage = OLD.rollout_percentage THEN
            NEW.rollout_percentage := NEW.rollout_steps[1];
        END IF;
        IF NEW.rollout_percentage <> NEW.rollout_steps[1] THEN
            RAISE EXCEPTION 'staging starts at the first step of the plan %: %',
                    NEW.rollout_steps, NEW.rollout_steps[1] || '%'
                USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NEW.status = 'staged' THEN
        -- A promotion inside the canary: one step at a time, and 100 % is `deployed`.
        IF v_next IS NULL OR v_next = 100 OR NEW.rollout_percentage <> v_next THEN
            RAISE EXCEPTION 'staged at %: the next step of the plan % is %',
                    OLD.rollout_percentage || '%', NEW.rollout_steps,
                    CASE WHEN v_next IS NULL OR v_next = 100
                         THEN 'deployed (SET status = ''deployed'')'
                         ELSE v_next || '%' END
                USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NEW.status = 'deployed' THEN
        IF v_next IS DISTINCT FROM 100 AND OLD.rollout_percentage <> 100 THEN
            RAISE EXCEPTION 'staged at %: the next step of the plan % is %, not deployed',
                    OLD.rollout_percentage || '%', NEW.rollout_steps, v_next || '%'
                USING ERRCODE = 'check_violation';
        END IF;
        IF v_by_hand THEN
            NEW.rollout_percentage := 100;
        END IF;
    ELSIF v_by_hand THEN
        -- approved, rejected, rolled_back: no traffic.
        NEW.rollout_percentage := 0;
    END IF;

    IF v_by_hand THEN
        NEW.updated_at := now();
        NEW.last_transition_by := v_who;
        NEW.last_transition_reason := 'changed by hand in SQL';
        CASE NEW.status
            WHEN 'approved', 'rejected' THEN
                NEW.decided_by := v_who;
                NEW.decided_at := now();
            WHEN 'staged' THEN
                IF OLD.status <> 'staged' THEN
                    NEW.staged_at := now();
                END IF;
                NEW.step_started_at := now();
                NEW.canary_status := 'wait';
            WHEN 'deployed' THEN
                NEW.deployed_at := now();
                NEW.step_started_at := now();
                NEW.canary_status := 'wait';
            WHEN 'rolled_back' THEN
                NEW.rolled_back_at := now();
                NEW.step_started_at := NULL;
                NEW.canary_status := NULL;
            ELSE
                NULL;
        END CASE;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER sdk_approvals_guard
    BEFORE INSERT OR UPDATE ON sdk_patch_approvals
    FOR EACH ROW EXECUTE FUNCTION sdk_approvals_guard();

-- A change made by hand is journaled like simcore's own, with the person's database role.
CREATE FUNCTION sdk_approvals_journal_by_hand() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('simtui.journaled', true), '') <> 'on' THEN
        PERFORM sdk_journal_append(
            NEW.simulation_run_id,
            (SELECT simulation_id FROM sdk_simulation_runs WHERE id = NEW.simulation_run_id),
            NEW.id,
            NEW.status,
            'sql:' || session_user,
            jsonb_build_object(
                'from', OLD.status, 'to', NEW.status,
                'from_percent', OLD.rollout_percentage, 'to_percent', NEW.rollout_percentage,
                'rollout_steps', to_jsonb(NEW.rollout_steps), 'patch_id', NEW.patch_id,
                'reason', NEW.last_transition_reason, 'by_hand', true));
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER sdk_approvals_journal_by_hand
    AFTER UPDATE ON sdk_patch_approvals
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       OR OLD.rollout_percentage IS DISTINCT FROM NEW.rollout_percentage)
    EXECUTE FUNCTION sdk_approvals_journal_by_hand();
