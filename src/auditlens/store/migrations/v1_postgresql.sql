-- auditlens store schema version 1 (postgresql), frozen as released (commit 120b965).
-- Never edit: migrations start from it. Statements are separated by '--;;' lines.
CREATE EXTENSION IF NOT EXISTS pg_trgm
--;;
CREATE TABLE alert_deliveries (
	id BIGSERIAL NOT NULL,
	alert_id VARCHAR(32) NOT NULL,
	rule VARCHAR(200) NOT NULL,
	channel VARCHAR(16) NOT NULL,
	target TEXT NOT NULL,
	status VARCHAR(16) NOT NULL,
	attempts INTEGER NOT NULL,
	last_error TEXT,
	next_attempt_ms BIGINT NOT NULL,
	payload TEXT NOT NULL,
	created_ms BIGINT NOT NULL,
	sent_ms BIGINT,
	PRIMARY KEY (id),
	CONSTRAINT uq_alert_delivery UNIQUE (alert_id, channel, target)
)
--;;
CREATE TABLE alert_state (
	rule VARCHAR(200) NOT NULL,
	group_key VARCHAR(300) NOT NULL,
	last_alert_id VARCHAR(32) NOT NULL,
	last_window_end_ms BIGINT NOT NULL,
	fired_at_ms BIGINT NOT NULL,
	PRIMARY KEY (rule, group_key)
)
--;;
CREATE TABLE audit_entries (
	id BIGSERIAL NOT NULL,
	organization_id VARCHAR(36) NOT NULL,
	seq BIGINT NOT NULL,
	audit_id VARCHAR(36) NOT NULL,
	ts BIGINT NOT NULL,
	actor_user_id VARCHAR(36),
	actor_email TEXT,
	actor_type VARCHAR(32) NOT NULL,
	action VARCHAR(128) NOT NULL,
	category VARCHAR(64) NOT NULL,
	resource_type VARCHAR(128),
	resource_id TEXT,
	resource_name TEXT,
	application_id VARCHAR(36),
	ip_address VARCHAR(64),
	ip_key VARCHAR(32),
	user_agent TEXT,
	details TEXT NOT NULL,
	result VARCHAR(16) NOT NULL,
	prev_hash VARCHAR(64) NOT NULL,
	entry_hash VARCHAR(64) NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_audit_entries_org_seq UNIQUE (organization_id, seq),
	UNIQUE (audit_id)
)
--;;
CREATE INDEX ix_audit_entries_action_ts ON audit_entries (action, ts)
--;;
CREATE INDEX ix_audit_entries_actor_user_ts ON audit_entries (actor_user_id, ts)
--;;
CREATE INDEX ix_audit_entries_email_ts ON audit_entries (lower(actor_email), ts)
--;;
CREATE INDEX ix_audit_entries_ip ON audit_entries (ip_key)
--;;
CREATE INDEX ix_audit_entries_org_ts ON audit_entries (organization_id, ts)
--;;
CREATE INDEX ix_audit_entries_resource ON audit_entries (resource_id, ts)
--;;
CREATE INDEX ix_audit_entries_ts ON audit_entries (ts)
--;;
CREATE TABLE auditlens_meta (
	key VARCHAR(64) NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (key)
)
--;;
CREATE TABLE checkpoints (
	id BIGSERIAL NOT NULL,
	organization_id VARCHAR(36) NOT NULL,
	tree_size BIGINT NOT NULL,
	root_hash VARCHAR(64) NOT NULL,
	created_ms BIGINT NOT NULL,
	note TEXT NOT NULL,
	PRIMARY KEY (id)
)
--;;
CREATE INDEX ix_checkpoints_org_size ON checkpoints (organization_id, tree_size)
--;;
CREATE TABLE export_runs (
	id BIGSERIAL NOT NULL,
	schedule VARCHAR(200) NOT NULL,
	period_start_ms BIGINT NOT NULL,
	period_end_ms BIGINT NOT NULL,
	status VARCHAR(16) NOT NULL,
	attempts INTEGER NOT NULL,
	next_attempt_ms BIGINT NOT NULL,
	started_ms BIGINT,
	finished_ms BIGINT,
	rows BIGINT,
	bytes BIGINT,
	sha256 VARCHAR(64),
	destination TEXT NOT NULL,
	location TEXT,
	error TEXT,
	PRIMARY KEY (id),
	CONSTRAINT uq_export_run_period UNIQUE (schedule, period_start_ms)
)
--;;
CREATE TABLE export_schedules (
	name VARCHAR(200) NOT NULL,
	organization_id VARCHAR(36) NOT NULL,
	every VARCHAR(16) NOT NULL,
	at VARCHAR(8) NOT NULL,
	timezone VARCHAR(64) NOT NULL,
	query TEXT,
	format VARCHAR(16) NOT NULL,
	fields TEXT,
	destination TEXT NOT NULL,
	created_ms BIGINT NOT NULL,
	report TEXT,
	PRIMARY KEY (name)
)
--;;
CREATE TABLE org_plans (
	id BIGSERIAL NOT NULL,
	organization_id VARCHAR(36) NOT NULL,
	plan VARCHAR(16) NOT NULL,
	retention_days INTEGER,
	changed_ms BIGINT NOT NULL,
	PRIMARY KEY (id)
)
--;;
CREATE INDEX ix_org_plans_org_id ON org_plans (organization_id, id)
--;;
CREATE TABLE retention_authorizations (
	organization_id VARCHAR(36) NOT NULL,
	through_seq BIGINT NOT NULL,
	reason TEXT NOT NULL,
	PRIMARY KEY (organization_id)
)
--;;
CREATE TABLE retention_log (
	id BIGSERIAL NOT NULL,
	organization_id VARCHAR(36) NOT NULL,
	first_seq BIGINT NOT NULL,
	through_seq BIGINT NOT NULL,
	last_entry_hash VARCHAR(64) NOT NULL,
	rows BIGINT NOT NULL,
	manifest TEXT NOT NULL,
	manifest_sha256 VARCHAR(64) NOT NULL,
	applied_ms BIGINT NOT NULL,
	PRIMARY KEY (id)
)
--;;
CREATE TABLE signing_keys (
	vkey VARCHAR(200) NOT NULL,
	name VARCHAR(128) NOT NULL,
	role VARCHAR(16) NOT NULL,
	first_seen_ms BIGINT NOT NULL,
	PRIMARY KEY (vkey)
)
--;;
CREATE OR REPLACE FUNCTION auditlens_refuse_mutation() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT 1 FROM retention_authorizations r
                   WHERE r.organization_id = OLD.organization_id
                     AND OLD.seq <= r.through_seq) THEN
          RETURN OLD;
        END IF;
      END IF;
      RAISE EXCEPTION 'auditlens: audit_entries is append-only; UPDATE and DELETE are refused (%)', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$
--;;
DROP TRIGGER IF EXISTS audit_entries_no_update ON audit_entries
--;;
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION auditlens_refuse_mutation()
--;;
DROP TRIGGER IF EXISTS audit_entries_no_delete ON audit_entries
--;;
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION auditlens_refuse_mutation()
--;;
DROP TRIGGER IF EXISTS audit_entries_no_truncate ON audit_entries
--;;
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION auditlens_refuse_mutation()
--;;
CREATE OR REPLACE FUNCTION auditlens_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'auditlens: % is append-only (%)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END $$
--;;
DROP TRIGGER IF EXISTS checkpoints_no_change ON checkpoints
--;;
CREATE TRIGGER checkpoints_no_change BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION auditlens_refuse_change()
--;;
DROP TRIGGER IF EXISTS checkpoints_no_truncate ON checkpoints
--;;
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION auditlens_refuse_change()
--;;
DROP TRIGGER IF EXISTS signing_keys_no_change ON signing_keys
--;;
CREATE TRIGGER signing_keys_no_change BEFORE UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION auditlens_refuse_change()
--;;
DROP TRIGGER IF EXISTS signing_keys_no_truncate ON signing_keys
--;;
CREATE TRIGGER signing_keys_no_truncate BEFORE TRUNCATE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION auditlens_refuse_change()
--;;
DROP TRIGGER IF EXISTS retention_log_no_change ON retention_log
--;;
CREATE TRIGGER retention_log_no_change BEFORE UPDATE OR DELETE ON retention_log
    FOR EACH ROW EXECUTE FUNCTION auditlens_refuse_change()
--;;
DROP TRIGGER IF EXISTS retention_log_no_truncate ON retention_log
--;;
CREATE TRIGGER retention_log_no_truncate BEFORE TRUNCATE ON retention_log
    FOR EACH STATEMENT EXECUTE FUNCTION auditlens_refuse_change()
--;;
DROP TRIGGER IF EXISTS org_plans_no_change ON org_plans
--;;
CREATE TRIGGER org_plans_no_change BEFORE UPDATE OR DELETE ON org_plans
    FOR EACH ROW EXECUTE FUNCTION auditlens_refuse_change()
--;;
DROP TRIGGER IF EXISTS org_plans_no_truncate ON org_plans
--;;
CREATE TRIGGER org_plans_no_truncate BEFORE TRUNCATE ON org_plans
    FOR EACH STATEMENT EXECUTE FUNCTION auditlens_refuse_change()
--;;
CREATE OR REPLACE FUNCTION auditlens_details_text(details text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN strpos(details, '\u0000') > 0 THEN details ELSE (
      SELECT coalesce(string_agg(replace(coalesce(item #>> '{}', 'null'), chr(31), ' '),
                                 chr(31)), '')
      FROM (
        SELECT jsonb_path_query(details::jsonb,
                                'strict $.** ? (@.type() == "object").keyvalue().key') AS item
        UNION ALL
        SELECT jsonb_path_query(details::jsonb,
                                'strict $.** ? (@.type() != "object" && @.type() != "array")')
      ) AS parts) END
    $$
--;;
DROP INDEX IF EXISTS ix_audit_entries_search_trgm
--;;
CREATE INDEX IF NOT EXISTS ix_audit_entries_text_trgm ON audit_entries
    USING gin ((coalesce(actor_email, '') || chr(31) || coalesce(resource_name, '') || chr(31) || action || chr(31) || auditlens_details_text(details)) gin_trgm_ops)
--;;
INSERT INTO auditlens_meta (key, value) VALUES ('schema_version', '1')
--;;
INSERT INTO auditlens_meta (key, value) VALUES ('created_at', '2026-01-01T00:00:00+00:00')
