-- Times are INTEGER Unix milliseconds (UTC); NULL means the zero time.
-- Slices and maps are JSON text; NULL means nil.

CREATE TABLE deliveries (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	source          TEXT    NOT NULL,
	delivery_id     TEXT    NOT NULL,
	event_key       TEXT    NOT NULL DEFAULT '',
	body            BLOB    NOT NULL,
	received_at     INTEGER NOT NULL,
	state           TEXT    NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER,
	claimed_by      TEXT    NOT NULL DEFAULT '',
	claimed_until   INTEGER,
	last_error      TEXT    NOT NULL DEFAULT '',
	done_at         INTEGER,
	UNIQUE (source, delivery_id)
);
CREATE INDEX deliveries_due   ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_lease ON deliveries (state, claimed_until);

CREATE TABLE decisions (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	kind          TEXT    NOT NULL DEFAULT '',
	repository    TEXT    NOT NULL DEFAULT '',
	pr            INTEGER NOT NULL DEFAULT 0,
	commit_sha    TEXT    NOT NULL DEFAULT '',
	issue_key     TEXT    NOT NULL DEFAULT '',
	team          TEXT    NOT NULL DEFAULT '',
	trigger_event TEXT    NOT NULL DEFAULT '',
	delivery_id   TEXT    NOT NULL DEFAULT '',
	summary       TEXT    NOT NULL DEFAULT '',
	decision      TEXT,
	snapshot      TEXT,
	outcome       TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL
);
CREATE INDEX decisions_created ON decisions (created_at, id);
CREATE INDEX decisions_pr      ON decisions (repository, pr, created_at, id);
CREATE INDEX decisions_issue   ON decisions (issue_key, created_at, id);
CREATE INDEX decisions_kind    ON decisions (kind, created_at, id);

CREATE TABLE pull_requests (
	repository         TEXT    NOT NULL,
	id                 INTEGER NOT NULL,
	team               TEXT    NOT NULL DEFAULT '',
	title              TEXT    NOT NULL DEFAULT '',
	author_account_id  TEXT    NOT NULL DEFAULT '',
	state              TEXT    NOT NULL DEFAULT '',
	draft              INTEGER NOT NULL DEFAULT 0,
	source_commit      TEXT    NOT NULL DEFAULT '',
	destination_branch TEXT    NOT NULL DEFAULT '',
	merge_commit       TEXT    NOT NULL DEFAULT '',
	closed_by          TEXT    NOT NULL DEFAULT '',
	diff_commit        TEXT    NOT NULL DEFAULT '',
	changed_files      TEXT,
	reviewers          TEXT,
	requested          TEXT,
	approvals          TEXT,
	comment_id         TEXT    NOT NULL DEFAULT '',
	statuses           TEXT,
	review_met         INTEGER NOT NULL DEFAULT 0,
	created_at         INTEGER,
	updated_at         INTEGER,
	first_review_at    INTEGER,
	approved_at        INTEGER,
	closed_at          INTEGER,
	seen_at            INTEGER,
	PRIMARY KEY (repository, id)
);
CREATE INDEX pull_requests_state   ON pull_requests (state);
CREATE INDEX pull_requests_created ON pull_requests (created_at);
CREATE INDEX pull_requests_updated ON pull_requests (updated_at);
CREATE INDEX pull_requests_closed  ON pull_requests (closed_at);

CREATE TABLE findings (
	finding_key TEXT    PRIMARY KEY,
	kind        TEXT    NOT NULL DEFAULT '',
	rule_id     TEXT    NOT NULL DEFAULT '',
	team        TEXT    NOT NULL DEFAULT '',
	subject     TEXT    NOT NULL DEFAULT '',
	ref         TEXT    NOT NULL DEFAULT '',
	url         TEXT    NOT NULL DEFAULT '',
	reason      TEXT    NOT NULL DEFAULT '',
	held        INTEGER NOT NULL DEFAULT 0,
	occurred_at INTEGER NOT NULL,
	recorded_at INTEGER,
	actor       TEXT    NOT NULL DEFAULT '',
	details     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX findings_occurred ON findings (occurred_at, finding_key);
CREATE INDEX findings_team     ON findings (team, occurred_at);

CREATE TABLE gates (
	id            TEXT    PRIMARY KEY,
	dedupe_key    TEXT    NOT NULL UNIQUE,
	repository    TEXT    NOT NULL DEFAULT '',
	commit_sha    TEXT    NOT NULL DEFAULT '',
	environment   TEXT    NOT NULL DEFAULT '',
	team          TEXT    NOT NULL DEFAULT '',
	rule_id       TEXT    NOT NULL DEFAULT '',
	state         TEXT    NOT NULL DEFAULT '',
	approvers     TEXT,
	excluded      TEXT,
	prs           TEXT,
	pipeline_uuid TEXT    NOT NULL DEFAULT '',
	build_number  INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	expires_at    INTEGER,
	decided_by    TEXT    NOT NULL DEFAULT '',
	decided_at    INTEGER,
	reason        TEXT    NOT NULL DEFAULT '',
	break_glass   INTEGER NOT NULL DEFAULT 0,
	notified      INTEGER NOT NULL DEFAULT 0,
	follow_up     TEXT    NOT NULL DEFAULT '',
	data          TEXT,
	version       INTEGER NOT NULL
);
CREATE INDEX gates_created ON gates (created_at, id);
CREATE INDEX gates_state   ON gates (state, created_at);
CREATE INDEX gates_repo    ON gates (repository, created_at);

CREATE TABLE kv (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE leases (
	name       TEXT    PRIMARY KEY,
	holder     TEXT    NOT NULL,
	expires_at INTEGER NOT NULL
);
