-- SQL Server instances plugins may use (`sql:<server>`), and how the host signs in to
-- them. The spec names where the password is kept (a file, an environment variable, the
-- OS keychain), never the password itself.
CREATE TABLE sql_servers (
    name     TEXT PRIMARY KEY,
    spec     TEXT NOT NULL,              -- JSON: address, login kind and name, password source, CA file
    added_at TEXT NOT NULL
);
