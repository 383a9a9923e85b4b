//! The journal's schema, versioned: each backend's migrations in order, recorded in a
//! `schema_version` table and applied on first use. A database written by a newer
//! glidepath (a version this binary does not know) is refused, never changed.

/// The newest schema version this binary writes.
pub const LATEST: i64 = 4;

/// SQLite: version 1 is the schema before versioning (hence `IF NOT EXISTS`: a journal from
/// then is at version 1 already); version 2 names the driver's host and user and its heartbeat;
/// version 3 keeps who sent each command in full (`inbox.sender`, JSON); version 4 the
/// release train's member a command is for (`inbox.member`).
pub const SQLITE: &[(i64, &str)] = &[
    (
        1,
        "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline TEXT NOT NULL,
    service TEXT NOT NULL,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    sets TEXT NOT NULL,
    stage TEXT,
    started_ms INTEGER NOT NULL,
    finished_ms INTEGER,
    status TEXT NOT NULL,
    exit_code INTEGER,
    pid INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    type TEXT NOT NULL,
    stage TEXT,
    step TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    at_ms INTEGER NOT NULL,
    command TEXT NOT NULL,
    who TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS gate_results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    stage TEXT NOT NULL,
    step TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    service TEXT NOT NULL,
    stage TEXT NOT NULL,
    step TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    result TEXT NOT NULL,
    score REAL NOT NULL,
    sli_values TEXT NOT NULL,
    invalid INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS evaluations_by_service ON evaluations (service, stage, id);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    command TEXT NOT NULL,
    who TEXT NOT NULL,
    taken_ms INTEGER
);
",
    ),
    (
        2,
        "
ALTER TABLE runs ADD COLUMN driver_host TEXT;
ALTER TABLE runs ADD COLUMN driver_user TEXT;
ALTER TABLE runs ADD COLUMN heartbeat_ms INTEGER;
",
    ),
    (3, "ALTER TABLE inbox ADD COLUMN sender TEXT;"),
    (4, "ALTER TABLE inbox ADD COLUMN member TEXT;"),
];

/// PostgreSQL, the same tables and versions.
pub const POSTGRES: &[(i64, &str)] = &[
    (
        1,
        "
CREATE TABLE runs (
    id BIGSERIAL PRIMARY KEY,
    pipeline TEXT NOT NULL,
    service TEXT NOT NULL,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    sets TEXT NOT NULL,
    stage TEXT,
    started_ms BIGINT NOT NULL,
    finished_ms BIGINT,
    status TEXT NOT NULL,
    exit_code INTEGER,
    pid BIGINT
);
CREATE TABLE events (
    run_id BIGINT NOT NULL REFERENCES runs(id),
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    type TEXT NOT NULL,
    stage TEXT,
    step TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE actions (
    id BIGSERIAL PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES runs(id),
    at_ms BIGINT NOT NULL,
    command TEXT NOT NULL,
    who TEXT NOT NULL,
    accepted BOOLEAN NOT NULL,
    reason TEXT
);
CREATE TABLE gate_results (
    run_id BIGINT NOT NULL REFERENCES runs(id),
    stage TEXT NOT NULL,
    step TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    verdict TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE TABLE evaluations (
    id BIGSERIAL PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES runs(id),
    service TEXT NOT NULL,
    stage TEXT NOT NULL,
    step TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    result TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    sli_values TEXT NOT NULL,
    invalid BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX evaluations_by_service ON evaluations (service, stage, id);
CREATE TABLE inbox (
    id BIGSERIAL PRIMARY KEY,
    run_id BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    command TEXT NOT NULL,
    who TEXT NOT NULL,
    taken_ms BIGINT
);
CREATE INDEX inbox_open ON inbox (run_id) WHERE taken_ms IS NULL;
",
    ),
    (
        2,
        "
ALTER TABLE runs ADD COLUMN driver_host TEXT;
ALTER TABLE runs ADD COLUMN driver_user TEXT;
ALTER TABLE runs ADD COLUMN heartbeat_ms BIGINT;
",
    ),
    (3, "ALTER TABLE inbox ADD COLUMN sender TEXT;"),
    (4, "ALTER TABLE inbox ADD COLUMN member TEXT;"),
];

/// The table that records which versions are applied.
pub const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_migrate_to_the_same_latest_version() {
        assert_eq!(SQLITE.last().map(|m| m.0), Some(LATEST));
        assert_eq!(POSTGRES.last().map(|m| m.0), Some(LATEST));
        let versions: Vec<i64> = SQLITE.iter().map(|m| m.0).collect();
        assert_eq!(versions, (1..=LATEST).collect::<Vec<_>>());
    }
}
