-- The first schema of the licensekit history store. One text for SQLite and PostgreSQL: the only
-- dialect difference, the auto-numbered key, is the token {{serial_pk}} (see migrate.rs).
-- Integers are BIGINT (PostgreSQL would not decode INT4 as i64), booleans 0/1, timestamps TEXT in
-- one fixed UTC format that sorts as it reads (2026-12-01T02:00:00.000000Z).

CREATE TABLE snapshots (
    id {{serial_pk}},
    run_id TEXT NOT NULL UNIQUE,
    taken_at TEXT NOT NULL,
    report_schema_version BIGINT NOT NULL,
    label TEXT
);

CREATE INDEX snapshots_taken_at ON snapshots (taken_at, id);

-- One row per provider in a snapshot: its identity, and whether it could be read. A failed
-- provider has status 'failed', its error, and no figures (never zero seats).
CREATE TABLE snapshot_providers (
    snapshot_id BIGINT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    identity TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    products BIGINT,
    seats_total BIGINT,
    seats_assigned BIGINT,
    assignments BIGINT,
    holders_in_directory BIGINT,
    changed_during_listing BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (snapshot_id, provider)
);

CREATE TABLE snapshot_products (
    snapshot_id BIGINT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    product_id TEXT NOT NULL,
    name TEXT NOT NULL,
    total BIGINT,
    unlimited BIGINT NOT NULL,
    total_source TEXT NOT NULL,
    assigned BIGINT NOT NULL,
    assigned_source TEXT NOT NULL,
    changed_during_listing BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (snapshot_id, provider, product_id)
);

-- Who holds what. holder_kind: 'person' (matched across vendors by email; holder_key is the
-- canonical email, holder_ids the vendor account ids), 'user' (no usable email; holder_key is the
-- vendor's id) or 'device' (holder_key is the serial).
CREATE TABLE snapshot_holdings (
    snapshot_id BIGINT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    product_id TEXT NOT NULL,
    holder_kind TEXT NOT NULL,
    holder_key TEXT NOT NULL,
    holder_ids TEXT,
    display_name TEXT,
    active BIGINT,
    last_activity TEXT
);

CREATE INDEX snapshot_holdings_snapshot ON snapshot_holdings (snapshot_id, provider, product_id);
