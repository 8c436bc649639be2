-- Archive status of a run's artifacts, and the record of SIRA export batches.

-- Set when the log/report could not be archived: the run keeps its result and its log in the
-- database, and people can see that the archive is missing and why.
ALTER TABLE sdk_simulation_runs ADD COLUMN artifact_error text;

CREATE TABLE sdk_sira_exports (
    id            uuid PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL,
    row_count     integer NOT NULL CHECK (row_count >= 0),
    payload_sha256 text NOT NULL CHECK (payload_sha256 ~ '^[0-9a-f]{64}$'),
    destination   text
);

ALTER TABLE sdk_anonymized_errors
    ADD CONSTRAINT sdk_anon_errors_batch_fk FOREIGN KEY (export_batch_id)
        REFERENCES sdk_sira_exports (id);
CREATE INDEX sdk_anon_errors_run_idx ON sdk_anonymized_errors (run_id);
