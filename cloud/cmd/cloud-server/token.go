package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
	"github.com/fleetgate/fleetgate/cloud/httpapi"
	"github.com/fleetgate/fleetgate/cloud/postgres"
)

const tokenUsage = `usage:
  cloud-server token create --name NAME --role viewer|operator|admin [--ttl DURATION]
  cloud-server token list
  cloud-server token revoke NAME

create prints the new token once on standard output (the server keeps only
its hash); --ttl (e.g. 720h) makes it expire. Roles: viewer reads; operator
also sends and cancels commands; admin also manages tokens and reads dead
letters.
`

// tokenCommand runs `cloud-server token …` against the configured database
// (migrated first) and returns the exit code.
func tokenCommand(ctx context.Context, cfg *Config, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return 2
	}
	var (
		name, role string
		ttl        time.Duration
	)
	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("token create", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.StringVar(&name, "name", "", "the token's name (1 to 64 of A-Z a-z 0-9 . _ - @), unique among tokens not revoked")
		fs.StringVar(&role, "role", "", "viewer, operator or admin")
		fs.DurationVar(&ttl, "ttl", 0, "how long the token lasts, e.g. 720h (0: no expiry)")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 || name == "" || role == "" {
			fmt.Fprint(stderr, "\n", tokenUsage)
			return 2
		}
	case "list":
		if len(args) != 1 {
			fmt.Fprint(stderr, tokenUsage)
			return 2
		}
	case "revoke":
		if len(args) != 2 {
			fmt.Fprint(stderr, tokenUsage)
			return 2
		}
		name = args[1]
	default:
		fmt.Fprintf(stderr, "cloud-server token: unknown subcommand %q\n\n%s", args[0], tokenUsage)
		return 2
	}
	r := cloud.RoleNone
	if args[0] == "create" {
		var err error
		if r, err = cloud.ParseRole(role); err != nil {
			fmt.Fprintf(stderr, "cloud-server token create: %v\n", err)
			return 2
		}
		if err := cloud.ValidTokenName(name); err != nil {
			fmt.Fprintf(stderr, "cloud-server token create: %v\n", err)
			return 2
		}
		if ttl < 0 || ttl > httpapi.MaxTokenTTL {
			fmt.Fprintf(stderr, "cloud-server token create: --ttl %s: want 0 (no expiry) to %s\n", ttl, httpapi.MaxTokenTTL)
			return 2
		}
	}
	if err := postgres.Migrate(ctx, cfg.DatabaseURL); err != nil {
		fmt.Fprintf(stderr, "cloud-server token %s: %v\n", args[0], err)
		return 1
	}
	db := postgres.NewDB(cfg.DatabaseURL)
	if err := db.Open(ctx); err != nil {
		fmt.Fprintf(stderr, "cloud-server token %s: %v\n", args[0], err)
		return 1
	}
	defer db.Close()
	var err error
	switch args[0] {
	case "create":
		var t *cloud.Token
		var secret string
		if t, secret, err = httpapi.NewToken(ctx, db, name, r, ttl, time.Now()); err == nil {
			fmt.Fprintln(stdout, secret)
			exp := "never expires"
			if !t.ExpiresAt.IsZero() {
				exp = "expires " + t.ExpiresAt.Format(time.RFC3339)
			}
			fmt.Fprintf(stderr, "token %q (%s, %s) created; it is shown only now: keep it\n", t.Name, t.Role, exp)
		}
	case "list":
		var ts []*cloud.Token
		if ts, err = db.FindTokens(ctx); err == nil {
			writeTokens(stdout, ts, time.Now())
		}
	case "revoke":
		if err = db.RevokeToken(ctx, name); err == nil {
			fmt.Fprintf(stderr, "token %q revoked\n", name)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "cloud-server token %s: %s\n", args[0], cloud.ErrorMessage(err))
		if cloud.ErrorCode(err) == cloud.EINVALID || cloud.ErrorCode(err) == cloud.ECONFLICT || cloud.ErrorCode(err) == cloud.ENOTFOUND {
			return 2
		}
		return 1
	}
	return 0
}

// writeTokens writes the tokens as a table.
func writeTokens(w io.Writer, ts []*cloud.Token, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tEXPIRES\tLAST USED")
	when := func(t time.Time, zero string) string {
		if t.IsZero() {
			return zero
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, t := range ts {
		exp := when(t.ExpiresAt, "never")
		if t.Expired(now) {
			exp += " (expired)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, when(t.CreatedAt, "-"), exp, when(t.LastUsed, "never"))
	}
	tw.Flush()
}
