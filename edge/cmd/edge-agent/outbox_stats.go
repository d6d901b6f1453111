package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/edge/bolt"
)

// outboxCmd is `edge-agent outbox stats --data DIR`: the outbox's state as
// JSON. With no agent running it opens the file read-only; while an agent
// has it open (bbolt's lock keeps a second process out) it asks that
// agent's HTTP endpoint, whose address the agent leaves in DIR/agent.http.
func outboxCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const use = "usage: edge-agent outbox stats --data DIR [--timeout 2s]\n"
	if len(args) == 0 || args[0] != "stats" {
		fmt.Fprint(stderr, use)
		return 2
	}
	fs := flag.NewFlagSet("outbox stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "the agent's data_dir")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the file or the agent")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *dir == "" || fs.NArg() != 0 {
		fmt.Fprint(stderr, use)
		return 2
	}
	out, err := outboxStats(ctx, *dir, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "edge-agent outbox stats: %v\n", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
	return 0
}

func outboxStats(ctx context.Context, dir string, timeout time.Duration) (outboxJSON, error) {
	if addr, err := os.ReadFile(filepath.Join(dir, HTTPAddrFile)); err == nil {
		out, herr := askAgent(ctx, strings.TrimSpace(string(addr)), timeout)
		if herr == nil {
			return out, nil
		}
		// A stale file from an agent that was killed: try the file itself.
		if o, ferr := readOnly(ctx, dir, timeout); ferr == nil {
			return o, nil
		}
		return outboxJSON{}, fmt.Errorf("the agent at %s did not answer: %w", addr, herr)
	}
	return readOnly(ctx, dir, timeout)
}

func readOnly(ctx context.Context, dir string, timeout time.Duration) (outboxJSON, error) {
	o, err := bolt.Open(filepath.Join(dir, OutboxFile), &bolt.Options{ReadOnly: true, LockTimeout: timeout})
	if err != nil {
		return outboxJSON{}, err
	}
	defer o.Close()
	st, err := o.Stats(ctx)
	if err != nil {
		return outboxJSON{}, err
	}
	return newOutboxJSON(st, time.Now()), nil
}

func askAgent(ctx context.Context, addr string, timeout time.Duration) (outboxJSON, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/outbox", nil)
	if err != nil {
		return outboxJSON{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return outboxJSON{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return outboxJSON{}, fmt.Errorf("GET /outbox: %s: %s", resp.Status, b)
	}
	var out outboxJSON
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return outboxJSON{}, errors.Join(errors.New("GET /outbox: bad JSON"), err)
	}
	return out, nil
}
