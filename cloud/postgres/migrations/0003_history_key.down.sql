CREATE INDEX obd_samples_vehicle_time ON obd_samples (vehicle_id, time, stream_id, seq);
ALTER TABLE obd_samples DROP CONSTRAINT obd_samples_pkey;
ALTER TABLE obd_samples ADD PRIMARY KEY (vehicle_id, stream_id, seq, time);

CREATE INDEX positions_vehicle_time ON positions (vehicle_id, time, stream_id, seq);
ALTER TABLE positions DROP CONSTRAINT positions_pkey;
ALTER TABLE positions ADD PRIMARY KEY (vehicle_id, stream_id, seq, time);
