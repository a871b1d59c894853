-- Grants belong to (plugin id, signing key): a package from another trusted publisher that
-- claims the same id gets none of them. `signer` is the ed25519 public key (hex) that signed
-- the plugin file the grant was given to, or `unsigned` for unsigned developer-mode plugins.
--
-- Rows from before this migration have no signer yet (''). They are bound to the signer of
-- the plugin file installed at the time of their first use (the first load of that plugin
-- by the API, or `plugins install --replace` of it, whichever comes first) and apply only
-- to that signer from then on (`Catalog::claim_legacy_grants`).
CREATE TABLE plugin_grants_v2 (
    plugin_id  TEXT NOT NULL,
    signer     TEXT NOT NULL,            -- key hex, `unsigned`, or '' (legacy, unbound)
    grant_spec TEXT NOT NULL,            -- kind[:scope], e.g. files:/srv/data
    granted_at TEXT NOT NULL,
    PRIMARY KEY (plugin_id, signer, grant_spec)
);
INSERT INTO plugin_grants_v2 (plugin_id, signer, grant_spec, granted_at)
    SELECT plugin_id, '', grant_spec, granted_at FROM plugin_grants;
DROP TABLE plugin_grants;
ALTER TABLE plugin_grants_v2 RENAME TO plugin_grants;
