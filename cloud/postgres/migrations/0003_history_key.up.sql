-- Positions and OBD samples are written far more often than any other table,
-- and every index costs each insert. Their primary key becomes
-- (vehicle_id, time, stream_id, seq): the same columns, so the same record
-- identity and the same deduplication of replays (ON CONFLICT DO NOTHING),
-- but in the order of the history queries (a vehicle, a time window, ordered
-- by time, stream_id, seq), which makes the separate (vehicle_id, time,
-- stream_id, seq) indexes redundant: they are dropped. Inserting a fix then
-- maintains one index instead of two.
ALTER TABLE positions DROP CONSTRAINT positions_pkey;
ALTER TABLE positions ADD PRIMARY KEY (vehicle_id, time, stream_id, seq);
DROP INDEX positions_vehicle_time;

ALTER TABLE obd_samples DROP CONSTRAINT obd_samples_pkey;
ALTER TABLE obd_samples ADD PRIMARY KEY (vehicle_id, time, stream_id, seq);
DROP INDEX obd_samples_vehicle_time;
