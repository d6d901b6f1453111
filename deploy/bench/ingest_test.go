package bench_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/postgres"
	"github.com/fleetgate/fleetgate/deploy/bench"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// The ingest workload: vehicles each send batches of one minute of 1 Hz
// fixes (60 positions, zstd-compressed as the agent sends them), from
// publishers clients keeping at most window batches not yet acked.
const (
	fixesPerBatch = 60
	publishers    = 4
	window        = 400
)

// fleetBatches returns msgs batches for each of vehicles vehicles (ids under
// prefix), interleaved by vehicle, their fixes at 1 Hz ending before now.
func fleetBatches(tb testing.TB, ns telemetry.Namespace, prefix string, vehicles, msgs int) []message {
	tb.Helper()
	start := time.Now().Add(-time.Duration(msgs*fixesPerBatch+60) * time.Second).Truncate(time.Second)
	out := make([]message, 0, vehicles*msgs)
	drives := make([]*bench.Drive, vehicles)
	for v := range drives {
		drives[v] = bench.NewDrive(v)
	}
	for m := range msgs {
		for v := range vehicles {
			id := fmt.Sprintf("%s%04d", prefix, v)
			b := &telemetry.Batch{VehicleID: id, StreamID: uint64(v + 1)}
			for i := range fixesPerBatch {
				k := m*fixesPerBatch + i
				p := drives[v].Next(start.Add(time.Duration(k)*time.Second), time.Second)
				p.Seq = uint64(k + 1)
				b.Positions = append(b.Positions, p)
			}
			payload, err := telemetry.EncodeBatch(b, true)
			if err != nil {
				tb.Fatal(err)
			}
			topic, err := ns.Topic(id, telemetry.KindBatch)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, message{topic, payload})
		}
	}
	return out
}

// ingestRate publishes vehicles × msgs batches through the broker to the
// ingester of c and returns the positions committed per second, from the
// first publish to the last Ack.
func ingestRate(tb testing.TB, c *cloudEnv, w *ackWatch, vehicles, msgs int) float64 {
	tb.Helper()
	prefix := "v" + testenv.ID() + "-"
	batches := fleetBatches(tb, c.ns, prefix, vehicles, msgs)
	took := publishAll(tb, c.mqttURL, w, batches, publishers, window)
	want := vehicles * msgs * fixesPerBatch
	if n := c.count(tb, "SELECT count(*) FROM positions WHERE vehicle_id LIKE '"+prefix+"%'"); n != want || w.rejected.Load() != 0 {
		tb.Fatalf("%d positions stored of %d sent, %d acks rejecting records", n, want, w.rejected.Load())
	}
	return float64(want) / took.Seconds()
}

// BenchmarkIngest measures cloud ingest, MQTT → committed rows, on this
// machine through the real Mosquitto and PostgreSQL: 200 vehicles × 50
// batches of 60 fixes (600,000 positions) from 4 publishers, timed from the
// first publish to the last Ack. The skeptic's baseline is PostgreSQL's own
// COPY of the same 600,000 rows into the same table, with no MQTT, no
// decoding and no acks (target: ingest ≥ 0.8× COPY). The others run the same
// Ingester (one message per transaction, 4 at once: what it did before
// micro-batching) over a store that writes one INSERT per row, each its own
// transaction (autocommit, as a row-at-a-time tracker server does) or all of
// a message's in one transaction; they get a smaller sample of the same data
// (target ≥ 30× the autocommit one). FLEETGATE_BENCH_QUICK=1 (make
// bench-quick) sends a tenth of the main sample.
func BenchmarkIngest(b *testing.B) {
	vehicles, msgs := 200, 50
	if os.Getenv("FLEETGATE_BENCH_QUICK") == "1" { // make bench-quick: a tenth of the sample
		vehicles, msgs = 50, 20
	}
	baseline := func(tx bool, vehicles, msgs int) float64 {
		c := startCloud(b, func(c *cloudEnv) {
			c.in.Store = &rowStore{pool: c.sql, inTx: tx}
			c.in.Workers, c.in.QueueLen, c.in.MaxBatchMessages = 4, 4, 1
		})
		return ingestRate(b, c, watchAcks(b, c.mqttURL, c.ns), vehicles, msgs)
	}
	rowAuto := baseline(false, 40, 10)
	rowTx := baseline(true, 100, 20)
	copied := copyRate(b, vehicles, msgs)

	c := startCloud(b)
	w := watchAcks(b, c.mqttURL, c.ns)
	var rate float64
	for b.Loop() {
		rate = ingestRate(b, c, w, vehicles, msgs)
	}
	s := c.in.Stats()
	b.ReportMetric(rate, "positions/s")
	b.ReportMetric(copied, "copy-positions/s")
	b.ReportMetric(rate/copied, "x-of-copy")
	b.ReportMetric(rowAuto, "row-insert-positions/s")
	b.ReportMetric(rate/rowAuto, "x-vs-row-insert")
	b.ReportMetric(rate/rowTx, "x-vs-row-insert-tx")
	b.ReportMetric(float64(s.Received)/float64(s.Commits), "msgs/commit")
}

// copyRate writes the rows of vehicles × msgs batches straight into a fresh
// database's positions table with one COPY and returns the rows per second.
func copyRate(tb testing.TB, vehicles, msgs int) float64 {
	tb.Helper()
	ctx := context.Background()
	url := testenv.Postgres(tb)
	if err := postgres.Migrate(ctx, url); err != nil {
		tb.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	start := time.Now().Add(-time.Duration(msgs*fixesPerBatch+60) * time.Second).Truncate(time.Second)
	received := time.Now()
	rows := make([][]any, 0, vehicles*msgs*fixesPerBatch)
	for v := range vehicles {
		d := bench.NewDrive(v)
		id := fmt.Sprintf("copy%04d", v)
		for k := range msgs * fixesPerBatch {
			p := d.Next(start.Add(time.Duration(k)*time.Second), time.Second)
			rows = append(rows, []any{id, int64(v + 1), int64(k + 1), time.UnixMilli(p.UnixMs), p.LatE7, p.LonE7,
				p.AltCm, p.GeoidSepCm, p.SpeedMmps, p.CourseCdeg, p.Mode, p.Quality, p.SatsUsed, p.HDOPc, received})
		}
	}
	began := time.Now()
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"positions"}, []string{"vehicle_id", "stream_id", "seq", "time", "lat_e7", "lon_e7",
		"alt_cm", "geoid_sep_cm", "speed_mmps", "course_cdeg", "mode", "quality", "sats_used", "hdop_c", "received_at"},
		pgx.CopyFromRows(rows))
	took := time.Since(began)
	if err != nil || int(n) != len(rows) {
		tb.Fatalf("COPY: %d of %d rows: %v", n, len(rows), err)
	}
	return float64(n) / took.Seconds()
}

// rowStore is the baseline: it writes every record with its own INSERT, each
// in its own transaction (inTx false) or all of a commit's in one.
type rowStore struct {
	pool *pgxpool.Pool
	inTx bool
}

const insertPosition = `INSERT INTO positions (vehicle_id, stream_id, seq, time, lat_e7, lon_e7,
	alt_cm, geoid_sep_cm, speed_mmps, course_cdeg, mode, quality, sats_used, sats_in_view,
	hdop_c, vdop_c, pdop_c, err_lat_cm, err_lon_cm, err_alt_cm, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
ON CONFLICT DO NOTHING`

const insertOBD = `INSERT INTO obd_samples (vehicle_id, stream_id, seq, time, pid, value, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`

// execer is a connection pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

const upsertVehicle = `INSERT INTO vehicles (id, first_seen, last_seen) VALUES ($1, $2, $2)
ON CONFLICT (id) DO UPDATE SET last_seen = GREATEST(vehicles.last_seen, excluded.last_seen)`

// Commit writes c row by row; see rowStore.
func (s *rowStore) Commit(ctx context.Context, c *cloud.Commit) (cloud.CommitResult, error) {
	var res cloud.CommitResult
	run := func(db execer) error {
		for _, b := range c.Batches {
			for i := range b.Positions {
				p := &b.Positions[i]
				opt := func(f telemetry.Field, v int32) any {
					if p.Has&f == 0 {
						return nil
					}
					return v
				}
				tag, err := db.Exec(ctx, insertPosition, b.VehicleID, int64(b.StreamID), int64(p.Seq), time.UnixMilli(p.UnixMs),
					p.LatE7, p.LonE7, opt(telemetry.HasAlt, p.AltCm), opt(telemetry.HasGeoidSep, p.GeoidSepCm),
					opt(telemetry.HasSpeed, p.SpeedMmps), opt(telemetry.HasCourse, p.CourseCdeg), opt(telemetry.HasMode, p.Mode),
					opt(telemetry.HasQuality, p.Quality), opt(telemetry.HasSatsUsed, p.SatsUsed), opt(telemetry.HasSatsInView, p.SatsInView),
					opt(telemetry.HasHDOP, p.HDOPc), opt(telemetry.HasVDOP, p.VDOPc), opt(telemetry.HasPDOP, p.PDOPc),
					opt(telemetry.HasErrLat, p.ErrLatCm), opt(telemetry.HasErrLon, p.ErrLonCm), opt(telemetry.HasErrAlt, p.ErrAltCm),
					c.ReceivedAt)
				if err != nil {
					return err
				}
				res.Inserted += tag.RowsAffected()
			}
			for i := range b.OBD {
				o := &b.OBD[i]
				tag, err := db.Exec(ctx, insertOBD, b.VehicleID, int64(b.StreamID), int64(o.Seq), time.UnixMilli(o.UnixMs), int32(o.PID), o.Value, c.ReceivedAt)
				if err != nil {
					return err
				}
				res.Inserted += tag.RowsAffected()
			}
			if _, err := db.Exec(ctx, upsertVehicle, b.VehicleID, c.ReceivedAt); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if s.inTx {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return run(tx) })
	} else {
		err = run(s.pool)
	}
	if err != nil {
		return cloud.CommitResult{}, cloud.Errorf(cloud.EUNAVAILABLE, "row inserts: %w", err)
	}
	return res, nil
}
