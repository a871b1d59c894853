-- LDAP directories plugins may use (`ldap:<server>`), and how the host reaches and binds
-- to them. The spec names where the bind password is kept (a file, an environment
-- variable, the OS keychain), never the password itself.
CREATE TABLE directories (
    name     TEXT PRIMARY KEY,
    spec     TEXT NOT NULL,              -- JSON: address, StartTLS, bind account, password source, CA file
    added_at TEXT NOT NULL
);
