package bolt

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/fleetgate/fleetgate/edge"
)

// The settings bucket holds edge.Settings: small named values that survive
// a restart, such as the report interval the cloud commanded. It is made by
// the first SaveSetting, so older files need nothing.
var bucketSettings = []byte("settings")

var _ edge.Settings = (*Outbox)(nil)

// Setting returns the value saved under name; see edge.Settings.
func (o *Outbox) Setting(ctx context.Context, name string) ([]byte, bool, error) {
	if err := o.check(ctx, "settings"); err != nil {
		return nil, false, err
	}
	var v []byte
	err := o.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketSettings); b != nil {
			if x := b.Get([]byte(name)); x != nil {
				v = append([]byte{}, x...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("settings: %w", err)
	}
	return v, v != nil, nil
}

// SaveSetting stores value under name in one durable transaction; see
// edge.Settings.
func (o *Outbox) SaveSetting(ctx context.Context, name string, value []byte) error {
	if err := o.check(ctx, "settings"); err != nil {
		return err
	}
	err := o.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSettings)
		if err != nil {
			return err
		}
		return b.Put([]byte(name), value)
	})
	if err != nil {
		return fmt.Errorf("settings: save %s: %w", name, err)
	}
	return nil
}
