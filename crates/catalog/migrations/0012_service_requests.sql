-- Work handed to the always-on service (`rehydra service`) by the desktop app or by
-- `rehydra policy run --service`: the service takes a waiting request within a second or
-- two, runs its policy as if it were due, and writes how far it got and how it ended, so
-- whoever asked may close its window and look again later. A request is cancelled by
-- setting its state; the service sees that within a second and stops the job.
CREATE TABLE service_requests (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    policy    TEXT NOT NULL,
    asked     TEXT NOT NULL,   -- RFC 3339
    asked_by  TEXT NOT NULL,   -- who handed it over ("the desktop app", a command line)
    state     TEXT NOT NULL,   -- waiting | running | stopping | succeeded | failed | cancelled
    started   TEXT,
    finished  TEXT,
    progress  TEXT,            -- the running job's last progress line
    message   TEXT             -- how it ended, in one line
);
CREATE INDEX service_requests_state ON service_requests(state);
