ALTER TABLE device_status_history DROP COLUMN clock_source, DROP COLUMN clock_offset_ms,
    DROP COLUMN outbox_trouble, DROP COLUMN obd_state;
ALTER TABLE device_status DROP COLUMN clock_source, DROP COLUMN clock_offset_ms,
    DROP COLUMN outbox_trouble, DROP COLUMN obd_state;
