-- Which API key a global dispatch pause (a 401/403) was caused by: a short
-- SHA-256 fingerprint ("sha256:" and 16 hex digits), never the key. A daemon
-- that starts, or reloads, with a different key clears such a pause itself;
-- with the same key the pause stays until `dialerd dispatch resume`. NULL for
-- pauses recorded before this column existed (they need the manual resume).
ALTER TABLE daemon ADD COLUMN dispatch_paused_key TEXT;
