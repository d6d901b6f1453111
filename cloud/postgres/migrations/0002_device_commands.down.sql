DROP TABLE commands;
ALTER TABLE device_status DROP COLUMN online_since;
