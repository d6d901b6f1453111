-- Fleetgate cloud schema, version 8: the agent's newer health fields
-- (Status fields 16 to 19): where its own time stamps come from and how far
-- its clock is from GNSS time, what is wrong with its outbox (a full disk),
-- and the state of its OBD adapter. Kept in the latest status and in the
-- history, like the older fields; NULL or '' for statuses of agents that do
-- not report them.
ALTER TABLE device_status
    ADD COLUMN clock_source    integer,
    ADD COLUMN clock_offset_ms bigint,
    ADD COLUMN outbox_trouble  text NOT NULL DEFAULT '',
    ADD COLUMN obd_state       text NOT NULL DEFAULT '';

ALTER TABLE device_status_history
    ADD COLUMN clock_source    integer,
    ADD COLUMN clock_offset_ms bigint,
    ADD COLUMN outbox_trouble  text NOT NULL DEFAULT '',
    ADD COLUMN obd_state       text NOT NULL DEFAULT '';
