package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

var _ edge.CommandLog = (*Outbox)(nil)

// maxCommands bounds the command log; past it the entries that expire first
// are forgotten.
const maxCommands = 10000

// commandMemory is how long past its expiry a command id is remembered
// (an expired command is refused anyway, but clocks differ).
const commandMemory = 24 * time.Hour

// CommandResult returns the stored result of command id; see
// edge.CommandLog.
func (o *Outbox) CommandResult(ctx context.Context, id string) (*telemetrypb.CommandResult, bool, error) {
	if err := o.check(ctx, "command log"); err != nil {
		return nil, false, err
	}
	var (
		res   *telemetrypb.CommandResult
		found bool
	)
	err := o.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCommands)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(id))
		if len(v) < 8 {
			return nil
		}
		res = new(telemetrypb.CommandResult)
		if err := proto.Unmarshal(v[8:], res); err != nil {
			return fmt.Errorf("%w: stored result of command %q: %v", edge.ErrCorrupt, id, err)
		}
		found = true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("command log: %w", err)
	}
	return res, found, nil
}

// SaveCommandResult stores res under id in one durable transaction, and
// forgets commands that expired more than a day ago; see edge.CommandLog.
func (o *Outbox) SaveCommandResult(ctx context.Context, id string, expires time.Time, res *telemetrypb.CommandResult) error {
	if err := o.check(ctx, "command log"); err != nil {
		return err
	}
	p, err := proto.Marshal(res)
	if err != nil {
		return fmt.Errorf("command log: %w", err)
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(expires.UnixMilli()))
	v = append(v, p...)
	forget := o.now().Add(-commandMemory).UnixMilli()
	err = o.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCommands)
		var old [][]byte
		oldest, oldestKey := int64(1<<62), []byte(nil)
		n := 0
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			n++
			if len(v) < 8 {
				old = append(old, append([]byte(nil), k...))
				continue
			}
			exp := int64(binary.BigEndian.Uint64(v))
			if exp < forget {
				old = append(old, append([]byte(nil), k...))
			} else if exp < oldest {
				oldest, oldestKey = exp, append([]byte(nil), k...)
			}
		}
		if n-len(old) >= maxCommands && oldestKey != nil {
			old = append(old, oldestKey)
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return b.Put([]byte(id), v)
	})
	if err != nil {
		return fmt.Errorf("command log: %w", err)
	}
	o.commits.Add(1)
	return nil
}
