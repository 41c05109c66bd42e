-- Times are timestamptz truncated to the millisecond; NULL means the zero
-- time. Slices, maps and raw JSON are text: raw JSON must come back byte for
-- byte (jsonb would reorder it), as it does from SQLite.

CREATE TABLE deliveries (
	seq             bigserial   PRIMARY KEY,
	source          text        NOT NULL,
	delivery_id     text        NOT NULL,
	event_key       text        NOT NULL DEFAULT '',
	body            bytea       NOT NULL,
	received_at     timestamptz NOT NULL,
	state           text        NOT NULL,
	attempts        integer     NOT NULL DEFAULT 0,
	next_attempt_at timestamptz,
	claimed_by      text        NOT NULL DEFAULT '',
	claimed_until   timestamptz,
	last_error      text        NOT NULL DEFAULT '',
	done_at         timestamptz,
	UNIQUE (source, delivery_id)
);
CREATE INDEX deliveries_due   ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_lease ON deliveries (state, claimed_until);

CREATE TABLE decisions (
	id            bigserial   PRIMARY KEY,
	kind          text        NOT NULL DEFAULT '',
	repository    text        NOT NULL DEFAULT '',
	pr            integer     NOT NULL DEFAULT 0,
	commit_sha    text        NOT NULL DEFAULT '',
	issue_key     text        NOT NULL DEFAULT '',
	team          text        NOT NULL DEFAULT '',
	trigger_event text        NOT NULL DEFAULT '',
	delivery_id   text        NOT NULL DEFAULT '',
	summary       text        NOT NULL DEFAULT '',
	decision      text,
	snapshot      text,
	outcome       text        NOT NULL DEFAULT '',
	created_at    timestamptz NOT NULL
);
CREATE INDEX decisions_created ON decisions (created_at, id);
CREATE INDEX decisions_pr      ON decisions (repository, pr, created_at, id);
CREATE INDEX decisions_issue   ON decisions (issue_key, created_at, id);
CREATE INDEX decisions_kind    ON decisions (kind, created_at, id);

CREATE TABLE pull_requests (
	repository         text        COLLATE "C" NOT NULL,
	id                 integer     NOT NULL,
	team               text        NOT NULL DEFAULT '',
	title              text        NOT NULL DEFAULT '',
	author_account_id  text        NOT NULL DEFAULT '',
	state              text        NOT NULL DEFAULT '',
	draft              boolean     NOT NULL DEFAULT false,
	source_commit      text        NOT NULL DEFAULT '',
	destination_branch text        NOT NULL DEFAULT '',
	merge_commit       text        NOT NULL DEFAULT '',
	closed_by          text        NOT NULL DEFAULT '',
	diff_commit        text        NOT NULL DEFAULT '',
	changed_files      text,
	reviewers          text,
	requested          text,
	approvals          text,
	comment_id         text        NOT NULL DEFAULT '',
	statuses           text,
	review_met         boolean     NOT NULL DEFAULT false,
	created_at         timestamptz,
	updated_at         timestamptz,
	first_review_at    timestamptz,
	approved_at        timestamptz,
	closed_at          timestamptz,
	seen_at            timestamptz,
	PRIMARY KEY (repository, id)
);
CREATE INDEX pull_requests_state   ON pull_requests (state);
CREATE INDEX pull_requests_created ON pull_requests (created_at);
CREATE INDEX pull_requests_updated ON pull_requests (updated_at);
CREATE INDEX pull_requests_closed  ON pull_requests (closed_at);

CREATE TABLE findings (
	finding_key text        COLLATE "C" PRIMARY KEY,
	kind        text        NOT NULL DEFAULT '',
	rule_id     text        NOT NULL DEFAULT '',
	team        text        NOT NULL DEFAULT '',
	subject     text        NOT NULL DEFAULT '',
	ref         text        NOT NULL DEFAULT '',
	url         text        NOT NULL DEFAULT '',
	reason      text        NOT NULL DEFAULT '',
	held        boolean     NOT NULL DEFAULT false,
	occurred_at timestamptz NOT NULL,
	recorded_at timestamptz,
	actor       text        NOT NULL DEFAULT '',
	details     text        NOT NULL DEFAULT ''
);
CREATE INDEX findings_occurred ON findings (occurred_at, finding_key);
CREATE INDEX findings_team     ON findings (team, occurred_at);

CREATE TABLE gates (
	id            text        COLLATE "C" PRIMARY KEY,
	dedupe_key    text        NOT NULL UNIQUE,
	repository    text        NOT NULL DEFAULT '',
	commit_sha    text        NOT NULL DEFAULT '',
	environment   text        NOT NULL DEFAULT '',
	team          text        NOT NULL DEFAULT '',
	rule_id       text        NOT NULL DEFAULT '',
	state         text        NOT NULL DEFAULT '',
	approvers     text,
	excluded      text,
	prs           text,
	pipeline_uuid text        NOT NULL DEFAULT '',
	build_number  integer     NOT NULL DEFAULT 0,
	created_at    timestamptz NOT NULL,
	expires_at    timestamptz,
	decided_by    text        NOT NULL DEFAULT '',
	decided_at    timestamptz,
	reason        text        NOT NULL DEFAULT '',
	break_glass   boolean     NOT NULL DEFAULT false,
	notified      boolean     NOT NULL DEFAULT false,
	follow_up     text        NOT NULL DEFAULT '',
	data          text,
	version       integer     NOT NULL
);
CREATE INDEX gates_created ON gates (created_at, id);
CREATE INDEX gates_state   ON gates (state, created_at);
CREATE INDEX gates_repo    ON gates (repository, created_at);

-- Byte order ("C") so that Keys sorts as SQLite and Go do.
CREATE TABLE kv (
	name  text COLLATE "C" PRIMARY KEY,
	value text NOT NULL
);

CREATE TABLE leases (
	name       text        PRIMARY KEY,
	holder     text        NOT NULL,
	expires_at timestamptz NOT NULL
);
