-- Fleetgate cloud schema, version 6: trips, and what tells the trip job to
-- recompute them.
--
-- Ingest does not know about trips. Statement-level AFTER INSERT triggers
-- with a transition table on positions, events (ignition on and off) and
-- obd_samples (the fuel PIDs) append, per statement and vehicle, the time
-- range of the rows really inserted (a replay skipped by ON CONFLICT DO
-- NOTHING inserts nothing) to trip_dirty. They fire for COPY into the
-- partitioned parents as for INSERT, once per statement, not per row; rows
-- moved between partitions by partition maintenance are inserted into a
-- partition directly and fire nothing. The trip job claims a vehicle's rows
-- (FOR UPDATE SKIP LOCKED, under a per-vehicle advisory lock), recomputes
-- its trips over the ranges and deletes the rows in the same transaction:
-- a replica that dies mid-way leaves them for another.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE trips (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vehicle_id       text        NOT NULL,
    start_time       timestamptz NOT NULL,
    end_time         timestamptz NOT NULL,
    start_lat        double precision,
    start_lon        double precision,
    end_lat          double precision,
    end_lon          double precision,
    open             boolean     NOT NULL,
    distance_m       double precision NOT NULL,
    driving_us       bigint      NOT NULL,
    idle_us          bigint      NOT NULL,
    stopped_us       bigint      NOT NULL,
    max_speed_mps    double precision NOT NULL,
    avg_speed_mps    double precision NOT NULL,
    fixes            integer     NOT NULL,
    fuel_l           double precision,
    fuel_source      text        NOT NULL DEFAULT '',
    -- map matching: pending, matched, unmatched (the matcher was down; try
    -- again at match_next_at), failed (no road near the track)
    match_status     text        NOT NULL DEFAULT 'pending',
    match_distance_m double precision,
    match_confidence double precision,
    match_geometry   jsonb,      -- the coordinates of a GeoJSON MultiLineString
    match_error      text        NOT NULL DEFAULT '',
    match_attempts   integer     NOT NULL DEFAULT 0,
    match_next_at    timestamptz,
    -- bumped by every recompute that changes the trip, so that a match
    -- computed for an older extent is not stored
    revision         bigint      NOT NULL DEFAULT 1,
    updated_at       timestamptz NOT NULL,
    CHECK (end_time >= start_time),
    -- Two trips of a vehicle never overlap: a trip computed twice fails
    -- the transaction that would store it.
    EXCLUDE USING gist (vehicle_id WITH =, tstzrange(start_time, end_time, '[]') WITH &&) DEFERRABLE INITIALLY DEFERRED
);

CREATE INDEX trips_vehicle_start ON trips (vehicle_id, start_time, id);
CREATE INDEX trips_open ON trips (vehicle_id) WHERE open;
CREATE INDEX trips_to_match ON trips (match_next_at NULLS FIRST, end_time)
    WHERE NOT open AND match_status IN ('pending', 'unmatched');

-- Retention deletes events by record time.
CREATE INDEX events_time ON events (time);

CREATE TABLE trip_dirty (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vehicle_id text        NOT NULL,
    from_time  timestamptz NOT NULL,
    to_time    timestamptz NOT NULL
);

CREATE INDEX trip_dirty_vehicle ON trip_dirty (vehicle_id, id);

CREATE FUNCTION trips_mark_positions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trip_dirty (vehicle_id, from_time, to_time)
    SELECT vehicle_id, min(time), max(time) FROM new_rows GROUP BY vehicle_id;
    RETURN NULL;
END $$;

-- Ignition on (2) and off (3).
CREATE FUNCTION trips_mark_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trip_dirty (vehicle_id, from_time, to_time)
    SELECT vehicle_id, min(time), max(time) FROM new_rows WHERE type IN (2, 3) GROUP BY vehicle_id;
    RETURN NULL;
END $$;

-- Fuel level 012F, air flow 0110, fuel rate 015E.
CREATE FUNCTION trips_mark_obd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trip_dirty (vehicle_id, from_time, to_time)
    SELECT vehicle_id, min(time), max(time) FROM new_rows WHERE pid IN (303, 272, 350) GROUP BY vehicle_id;
    RETURN NULL;
END $$;

CREATE TRIGGER positions_trips AFTER INSERT ON positions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION trips_mark_positions();
CREATE TRIGGER events_trips AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION trips_mark_events();
CREATE TRIGGER obd_samples_trips AFTER INSERT ON obd_samples
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION trips_mark_obd();
