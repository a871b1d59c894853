-- Failed policy runs in a row and when the next attempt may start, shared by every runner
-- (the service, the app, `policy run --due` from a timer), so a broken policy is retried
-- with a growing pause instead of at every look, and does not notify at every look.
ALTER TABLE policies ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE policies ADD COLUMN retry_after TEXT; -- RFC 3339; NULL = no pause
