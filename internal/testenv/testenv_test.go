package testenv_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fleetgate/fleetgate/internal/testenv"
)

func TestPostgresIsFreshAndReal(t *testing.T) {
	url := testenv.Postgres(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("new database has %d tables", n)
	}
}

func TestNamespacesDiffer(t *testing.T) {
	_, a := testenv.MQTT(t)
	_, b := testenv.MQTT(t)
	_, p := testenv.Redis(t)
	if a == b || p == "" {
		t.Errorf("namespaces %q %q, prefix %q", a, b, p)
	}
}
