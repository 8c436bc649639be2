-- What the dashboard's home screen reads on every start, as index-only scans.
--
-- Each dashboard reads its first snapshot before it can show anything, and with no cache yet:
-- with 100,000 runs, the runbook's "success rate par SDK language" over 7 days read the
-- metrics JSON of every run in the window (23,000 rows at 100,000 runs over 30 days: most of
-- the snapshot's time), and the SIRA exports of the last 24 h scanned every anonymized error
-- ever recorded.
--
-- * metrics_success_rate: the run's own success_rate, taken out of the metrics JSON once,
--   when the run is written, instead of at every read. The expression is the one the
--   dashboard used: the value if the JSON holds a number there, else NULL.
-- * sdk_runs_recent_idx keeps its key (run_at DESC) and now carries the columns that the
--   home screen's time windows read (by language, finished runs by bucket, in a tenant's
--   scope or not), so that they never visit the table. It replaces the old index of the same
--   name rather than adding one: a run's writes maintain as many indexes as before.
-- * sdk_anon_errors_exported_idx: the exported errors by export time; the KPI counts the
--   last 24 h of it.

ALTER TABLE sdk_simulation_runs
    ADD COLUMN metrics_success_rate double precision
    GENERATED ALWAYS AS (
        CASE WHEN jsonb_typeof(metrics -> 'success_rate') = 'number'
             THEN (metrics ->> 'success_rate')::double precision END
    ) STORED;

CREATE INDEX sdk_runs_recent_cover_idx ON sdk_simulation_runs (run_at DESC)
    INCLUDE (status, simulation_id, started_at, completed_at, metrics_success_rate,
             tenant_type, tenant_id);
DROP INDEX sdk_runs_recent_idx;
ALTER INDEX sdk_runs_recent_cover_idx RENAME TO sdk_runs_recent_idx;

CREATE INDEX sdk_anon_errors_exported_idx ON sdk_anonymized_errors (exported_at)
    WHERE exported_to_sira;
