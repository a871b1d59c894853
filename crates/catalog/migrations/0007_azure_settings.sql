-- How Rehydra signs in to Azure, as the admin chose it. No secret is kept here: a client
-- secret stays in its file, its environment variable or the OS keychain, and this table
-- says only where. Keys: `identity` (JSON), `arm-endpoint` (URL), `audience:<host>` (the
-- token scope for a host Rehydra would not otherwise know as Azure, e.g. an Azure Stack
-- Hub ARM endpoint).
CREATE TABLE azure_settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    changed_at TEXT NOT NULL
);
