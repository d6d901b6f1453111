DROP INDEX dead_letters_received_at;
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);
DROP INDEX events_vehicle_time;
CREATE INDEX events_vehicle_time ON events (vehicle_id, time);
DROP INDEX events_dtc;
DROP INDEX commands_vehicle_created;
CREATE INDEX commands_vehicle_created ON commands (vehicle_id, created_at);
DROP INDEX commands_pending;
DROP INDEX commands_idempotency;
ALTER TABLE commands
    DROP COLUMN cancelled_at,
    DROP COLUMN idempotency_key,
    DROP COLUMN request_hash,
    DROP COLUMN token_name,
    DROP COLUMN attempted_at;
DROP TABLE device_status_history;
DROP TABLE api_tokens;
