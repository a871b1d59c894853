-- Plugin administration. Unlike restore points these are decisions of the admin on this
-- workstation, not derived from a repository: losing them only means plugins are denied
-- again until re-granted (deny by default).
CREATE TABLE plugin_grants (
    plugin_id  TEXT NOT NULL,
    grant_spec TEXT NOT NULL,            -- kind[:scope], e.g. files:/srv/data
    granted_at TEXT NOT NULL,
    PRIMARY KEY (plugin_id, grant_spec)
);

CREATE TABLE trusted_publishers (
    publisher TEXT NOT NULL,
    key       TEXT NOT NULL,             -- ed25519 public key, hex
    added_at  TEXT NOT NULL,
    PRIMARY KEY (publisher, key)
);

CREATE TABLE plugin_audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time       TEXT NOT NULL,
    plugin_id  TEXT NOT NULL,
    verb       TEXT NOT NULL,
    capability TEXT NOT NULL,
    target     TEXT NOT NULL,
    allowed    INTEGER NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX plugin_audit_plugin ON plugin_audit(plugin_id, id);
