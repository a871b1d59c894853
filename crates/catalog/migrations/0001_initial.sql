-- Rehydra catalog v1. A cache: everything here can be rebuilt from the repositories.
CREATE TABLE repositories (
    id         TEXT PRIMARY KEY,          -- repository id from its config
    location   TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen  TEXT NOT NULL
);

CREATE TABLE restore_points (
    id             TEXT PRIMARY KEY,      -- manifest id (hex)
    repository_id  TEXT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    time           TEXT NOT NULL,
    workload       TEXT NOT NULL,
    asset          TEXT NOT NULL,
    plugin_id      TEXT NOT NULL,
    plugin_version TEXT NOT NULL,
    consistency    TEXT NOT NULL,
    hostname       TEXT NOT NULL,
    parent         TEXT,
    tags           TEXT NOT NULL,         -- JSON array
    items          TEXT NOT NULL,         -- JSON array of {name, kind, size}
    bytes          INTEGER NOT NULL,
    new_bytes      INTEGER NOT NULL,
    stored_bytes   INTEGER NOT NULL
);
CREATE INDEX restore_points_asset ON restore_points(repository_id, asset, time);

CREATE TABLE job_runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    repository_id    TEXT,
    kind             TEXT NOT NULL,       -- backup, restore, check, prune, forget
    started          TEXT NOT NULL,
    finished         TEXT,
    status           TEXT NOT NULL,       -- running, succeeded, failed, cancelled
    message          TEXT NOT NULL DEFAULT '',
    restore_point_id TEXT,
    bytes            INTEGER NOT NULL DEFAULT 0
);
