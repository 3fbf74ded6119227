-- auditlens store schema version 1 (sqlite), frozen as released (commit 120b965).
-- Never edit: migrations start from it. Statements are separated by '--;;' lines.
CREATE TABLE alert_deliveries (
	id INTEGER NOT NULL,
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
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
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
	"key" VARCHAR(64) NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY ("key")
)
--;;
CREATE TABLE checkpoints (
	id INTEGER NOT NULL,
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
	id INTEGER NOT NULL,
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
	"query" TEXT,
	format VARCHAR(16) NOT NULL,
	fields TEXT,
	destination TEXT NOT NULL,
	created_ms BIGINT NOT NULL,
	report TEXT,
	PRIMARY KEY (name)
)
--;;
CREATE TABLE org_plans (
	id INTEGER NOT NULL,
	organization_id VARCHAR(36) NOT NULL,
	"plan" VARCHAR(16) NOT NULL,
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
	id INTEGER NOT NULL,
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
CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries
    BEGIN SELECT RAISE(ABORT, 'auditlens: audit_entries is append-only; UPDATE and DELETE are refused'); END
--;;
CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries
    WHEN NOT EXISTS (SELECT 1 FROM retention_authorizations r
                     WHERE r.organization_id = OLD.organization_id AND OLD.seq <= r.through_seq)
    BEGIN SELECT RAISE(ABORT, 'auditlens: audit_entries is append-only; UPDATE and DELETE are refused'); END
--;;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'auditlens: checkpoints is append-only; UPDATE is refused'); END
--;;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'auditlens: checkpoints is append-only; DELETE is refused'); END
--;;
CREATE TRIGGER IF NOT EXISTS signing_keys_no_update BEFORE UPDATE ON signing_keys
    BEGIN SELECT RAISE(ABORT, 'auditlens: signing_keys is append-only; UPDATE is refused'); END
--;;
CREATE TRIGGER IF NOT EXISTS signing_keys_no_delete BEFORE DELETE ON signing_keys
    BEGIN SELECT RAISE(ABORT, 'auditlens: signing_keys is append-only; DELETE is refused'); END
--;;
CREATE TRIGGER IF NOT EXISTS retention_log_no_update BEFORE UPDATE ON retention_log
    BEGIN SELECT RAISE(ABORT, 'auditlens: retention_log is append-only; UPDATE is refused'); END
--;;
CREATE TRIGGER IF NOT EXISTS retention_log_no_delete BEFORE DELETE ON retention_log
    BEGIN SELECT RAISE(ABORT, 'auditlens: retention_log is append-only; DELETE is refused'); END
--;;
CREATE TRIGGER IF NOT EXISTS org_plans_no_update BEFORE UPDATE ON org_plans
    BEGIN SELECT RAISE(ABORT, 'auditlens: org_plans is append-only; UPDATE is refused'); END
--;;
CREATE TRIGGER IF NOT EXISTS org_plans_no_delete BEFORE DELETE ON org_plans
    BEGIN SELECT RAISE(ABORT, 'auditlens: org_plans is append-only; DELETE is refused'); END
--;;
DROP TRIGGER IF EXISTS audit_entries_fts_delete
--;;
DROP TABLE IF EXISTS audit_fts
--;;
CREATE VIRTUAL TABLE IF NOT EXISTS audit_search USING fts5(
        actor_email, resource_name, action, details, tokenize='trigram')
--;;
CREATE TRIGGER IF NOT EXISTS audit_entries_search_delete AFTER DELETE ON audit_entries
    BEGIN DELETE FROM audit_search WHERE rowid = OLD.id; END
--;;
INSERT INTO audit_search(rowid, actor_email, resource_name, action, details) SELECT id, auditlens_fold(actor_email), auditlens_fold(resource_name), auditlens_fold(action), auditlens_details_text(details) FROM audit_entries WHERE id >= (SELECT coalesce((SELECT rowid FROM audit_search ORDER BY rowid DESC LIMIT 1), 0) + 1)
--;;
INSERT INTO auditlens_meta (key, value) VALUES ('schema_version', '1')
--;;
INSERT INTO auditlens_meta (key, value) VALUES ('created_at', '2026-01-01T00:00:00+00:00')
