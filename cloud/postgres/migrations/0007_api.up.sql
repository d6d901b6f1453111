-- Fleetgate cloud schema, version 7: what the operator API needs. (It was
-- planned as version 5; version 6 landed first, and a database already at 6
-- would never apply a 5.)
--
-- API tokens are stored only as the SHA-256 of their secret (256 random
-- bits: a fast hash is safe for them), with a name unique among the tokens
-- not revoked, a role, an optional expiry and when each was last used.
CREATE TABLE api_tokens (
    id           bigserial   PRIMARY KEY,
    name         text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    hash         bytea       NOT NULL UNIQUE CHECK (length(hash) = 32),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE UNIQUE INDEX api_tokens_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- Every status an agent reported, once each (the broker hands a retained
-- status again to every replica at each start: the key keeps one copy),
-- partitioned by month like the records, for the device health history.
CREATE TABLE device_status_history (
    vehicle_id           text        NOT NULL,
    online               boolean     NOT NULL,
    time                 timestamptz NOT NULL,
    agent_version        text        NOT NULL DEFAULT '',
    stream_id            bigint,
    next_seq             bigint,
    outbox_depth         bigint,
    outbox_bytes         bigint,
    oldest_unsent_age_ms bigint,
    dropped              bigint,
    fix_mode             integer,
    no_fix_since         timestamptz,
    rtt_ms               bigint,
    counters             jsonb       NOT NULL DEFAULT '{}',
    uptime_ms            bigint,
    received_at          timestamptz NOT NULL,
    PRIMARY KEY (vehicle_id, time, online)
) PARTITION BY RANGE (time);
CREATE TABLE device_status_history_default PARTITION OF device_status_history DEFAULT;

INSERT INTO device_status_history (vehicle_id, online, time, agent_version, stream_id, next_seq, outbox_depth,
    outbox_bytes, oldest_unsent_age_ms, dropped, fix_mode, no_fix_since, rtt_ms, counters, uptime_ms, received_at)
SELECT vehicle_id, online, time, agent_version, stream_id, next_seq, outbox_depth, outbox_bytes,
    oldest_unsent_age_ms, dropped, fix_mode, no_fix_since, rtt_ms, counters, uptime_ms, received_at
FROM device_status;

-- A vehicle that has only sent statuses is a vehicle too: it is listed and
-- can be sent commands. (Status commits now keep its row.)
INSERT INTO vehicles (id, first_seen, last_seen)
SELECT vehicle_id, least(time, received_at), least(time, received_at) FROM device_status
ON CONFLICT (id) DO NOTHING;

-- Commands: cancelled before they were sent, created with an idempotency
-- key (the same key again returns the same command), by which token, and
-- when a replica last tried to publish one still pending.
ALTER TABLE commands
    ADD COLUMN cancelled_at    timestamptz,
    ADD COLUMN idempotency_key text,
    ADD COLUMN request_hash    text,
    ADD COLUMN token_name      text,
    ADD COLUMN attempted_at    timestamptz;
CREATE UNIQUE INDEX commands_idempotency ON commands (vehicle_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX commands_pending ON commands (created_at)
    WHERE sent_at IS NULL AND cancelled_at IS NULL AND result_received_at IS NULL;
DROP INDEX commands_vehicle_created;
CREATE INDEX commands_vehicle_created ON commands (vehicle_id, created_at, id);

-- Trouble codes set and cleared (event types 4 and 5), by vehicle and code
-- in record order: the current codes of a vehicle, or of a page of them.
CREATE INDEX events_dtc ON events (vehicle_id, code, time, stream_id, seq) WHERE type IN (4, 5);
-- Events of a vehicle in record order (the keyset of the events pages).
DROP INDEX events_vehicle_time;
CREATE INDEX events_vehicle_time ON events (vehicle_id, time, stream_id, seq);

-- Dead letters newest first.
DROP INDEX dead_letters_received_at;
CREATE INDEX dead_letters_received_at ON dead_letters (received_at, id);
