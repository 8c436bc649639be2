-- API processes cache the tokens they verified (simcore.tokens.TokenCache). A token revoked,
-- deleted or re-scoped must still be refused from the very next request, by every process,
-- whoever changed it (the API, `simcore token revoke`, SQL by hand): such a change moves this
-- generation on in its own transaction, so it is visible exactly when the change is. A cached
-- verification holds only at the generation it was made at, and the API reads the generation
-- after each request arrived (one small read, shared by the requests that arrived meanwhile).
-- last_used_at is not among the columns: refreshing it invalidates nothing.
CREATE TABLE sdk_simulator_tokens_generation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation bigint NOT NULL DEFAULT 0
);
INSERT INTO sdk_simulator_tokens_generation DEFAULT VALUES;

CREATE FUNCTION sdk_simulator_tokens_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sdk_simulator_tokens_generation SET generation = generation + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER sdk_simulator_tokens_changed
    AFTER UPDATE OF token_hash, role, tenant_type, tenant_id, identity, revoked_at
    ON sdk_simulator_tokens
    FOR EACH ROW
    WHEN (OLD.token_hash IS DISTINCT FROM NEW.token_hash
          OR OLD.role IS DISTINCT FROM NEW.role
          OR OLD.tenant_type IS DISTINCT FROM NEW.tenant_type
          OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id
          OR OLD.identity IS DISTINCT FROM NEW.identity
          OR OLD.revoked_at IS DISTINCT FROM NEW.revoked_at)
    EXECUTE FUNCTION sdk_simulator_tokens_changed();

CREATE TRIGGER sdk_simulator_tokens_deleted
    AFTER DELETE ON sdk_simulator_tokens
    FOR EACH ROW EXECUTE FUNCTION sdk_simulator_tokens_changed();

CREATE TRIGGER sdk_simulator_tokens_truncated
    AFTER TRUNCATE ON sdk_simulator_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION sdk_simulator_tokens_changed();
