-- The log of each job run: engine warnings, plugin log lines (including the ARM requests
-- a rehydration made), copy and check results, one row per line, in order. Shown by
-- `rehydra catalog log RUN` and the desktop app's job history. Never holds secrets:
-- plugins never see credentials, and the host logs no password or token.
CREATE TABLE job_log (
    run_id INTEGER NOT NULL REFERENCES job_runs(id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    line   TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
