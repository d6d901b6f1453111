-- Fleetgate cloud schema, version 2: commands to agents and their results;
-- device_status learns when the current connection began, so that an agent's
-- last will (made when it connected, so older than its later reports) is
-- applied to the connection it belongs to and to no later one.

ALTER TABLE device_status ADD COLUMN online_since timestamptz;

CREATE TABLE commands (
    id                 text        PRIMARY KEY,
    vehicle_id         text        NOT NULL,
    type               text        NOT NULL,
    interval_ms        bigint,
    pids               integer[],
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    sent_at            timestamptz,
    result_ok          boolean,
    result_error       text,
    result_dtcs        text[],
    result_time        timestamptz,
    result_received_at timestamptz
);

CREATE INDEX commands_vehicle_created ON commands (vehicle_id, created_at);
