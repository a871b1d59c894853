-- Machines plugins may run granted commands on (`command:<program>@<target>`), and how
-- the host reaches them. Admin decisions like grants: losing them only means remote
-- commands fail with "target not configured" until re-added.
CREATE TABLE command_targets (
    name     TEXT PRIMARY KEY,
    spec     TEXT NOT NULL,              -- JSON: ssh destination, port, identity file, known-hosts file, shell
    added_at TEXT NOT NULL
);
