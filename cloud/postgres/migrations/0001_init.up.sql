-- Fleetgate cloud schema, version 1.
-- Record identity is (vehicle_id, stream_id, seq); positions and OBD samples are
-- partitioned by time, so their primary keys carry time as well. A replayed record
-- has the same time (the outbox never changes a record), so ON CONFLICT DO NOTHING
-- on the primary key deduplicates replays. stream_id holds the 64-bit id's bits as
-- a signed bigint. Measures are stored in the wire's integer units (exact).

CREATE TABLE vehicles (
    id              text        PRIMARY KEY,
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    -- latest fix by record time; NULL until the first position
    pos_stream_id   bigint,
    pos_seq         bigint,
    pos_time        timestamptz,
    pos_lat_e7      integer,
    pos_lon_e7      integer,
    pos_speed_mmps  integer,
    pos_course_cdeg integer
);

CREATE TABLE positions (
    vehicle_id   text        NOT NULL,
    stream_id    bigint      NOT NULL,
    seq          bigint      NOT NULL,
    time         timestamptz NOT NULL,
    lat_e7       integer     NOT NULL,
    lon_e7       integer     NOT NULL,
    alt_cm       integer,
    geoid_sep_cm integer,
    speed_mmps   integer,
    course_cdeg  integer,
    mode         smallint,
    quality      smallint,
    sats_used    smallint,
    sats_in_view smallint,
    hdop_c       integer,
    vdop_c       integer,
    pdop_c       integer,
    err_lat_cm   integer,
    err_lon_cm   integer,
    err_alt_cm   integer,
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (vehicle_id, stream_id, seq, time)
) PARTITION BY RANGE (time);

-- Rows outside every monthly partition land here, so an insert never fails for
-- want of a partition. Monthly partitions are created ahead by the server.
CREATE TABLE positions_default PARTITION OF positions DEFAULT;

CREATE INDEX positions_vehicle_time ON positions (vehicle_id, time, stream_id, seq);

CREATE TABLE obd_samples (
    vehicle_id  text             NOT NULL,
    stream_id   bigint           NOT NULL,
    seq         bigint           NOT NULL,
    time        timestamptz      NOT NULL,
    pid         integer          NOT NULL, -- mode << 8 | pid
    value       double precision NOT NULL,
    received_at timestamptz      NOT NULL,
    PRIMARY KEY (vehicle_id, stream_id, seq, time)
) PARTITION BY RANGE (time);

CREATE TABLE obd_samples_default PARTITION OF obd_samples DEFAULT;

CREATE INDEX obd_samples_vehicle_time ON obd_samples (vehicle_id, time, stream_id, seq);
CREATE INDEX obd_samples_vehicle_pid_time ON obd_samples (vehicle_id, pid, time, stream_id, seq);

CREATE TABLE events (
    vehicle_id  text        NOT NULL,
    stream_id   bigint      NOT NULL,
    seq         bigint      NOT NULL,
    time        timestamptz NOT NULL,
    type        integer     NOT NULL,
    code        text        NOT NULL,
    detail      text        NOT NULL,
    value       bigint      NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (vehicle_id, stream_id, seq)
);

CREATE INDEX events_vehicle_time ON events (vehicle_id, time);

CREATE TABLE dead_letters (
    id          bigserial   PRIMARY KEY,
    topic       text        NOT NULL,
    vehicle_id  text,            -- from the topic, when it had one
    stream_id   bigint,          -- from the payload, when it decoded
    payload     bytea       NOT NULL,
    reason      text        NOT NULL,
    received_at timestamptz NOT NULL
);

CREATE INDEX dead_letters_received_at ON dead_letters (received_at);

CREATE TABLE device_status (
    vehicle_id           text        PRIMARY KEY,
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
    received_at          timestamptz NOT NULL
);
