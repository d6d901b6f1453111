DROP TRIGGER obd_samples_trips ON obd_samples;
DROP TRIGGER events_trips ON events;
DROP TRIGGER positions_trips ON positions;
DROP FUNCTION trips_mark_obd(), trips_mark_events(), trips_mark_positions();
DROP TABLE trip_dirty, trips;
DROP INDEX events_time;
