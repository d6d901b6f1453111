DROP TABLE IF EXISTS device_status, dead_letters, events, obd_samples, positions, vehicles;
