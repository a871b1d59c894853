-- Protection policies: what to back up, how often, how many restore points to keep
-- (GFS). Admin decisions kept locally; `rehydra policy run --due` (from a timer) and the
-- desktop app run them.
CREATE TABLE policies (
    name       TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,            -- JSON: what, schedule, retention, repository, tags
    updated_at TEXT NOT NULL,
    last_run   TEXT                      -- RFC 3339 time of the last successful run
);
