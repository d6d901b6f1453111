package cloud

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
	"time"
)

// Role is what an API token may do. Roles are ordered: each may do what the
// ones below it may.
type Role int

// The roles, lowest first.
const (
	RoleNone     Role = iota // no token: only the public endpoints
	RoleViewer               // reads the fleet
	RoleOperator             // also sends and cancels commands
	RoleAdmin                // also manages tokens and reads dead letters
)

var roleNames = [...]string{"none", "viewer", "operator", "admin"}

// String returns the role's name as the API and the command line write it.
func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return "unknown"
	}
	return roleNames[r]
}

// ParseRole reads viewer, operator or admin; anything else is EINVALID.
func ParseRole(s string) (Role, error) {
	for r := RoleViewer; r <= RoleAdmin; r++ {
		if s == r.String() {
			return r, nil
		}
	}
	return RoleNone, Errorf(EINVALID, "role %q: want viewer, operator or admin", s)
}

// TokenPrefix starts every API token, so that secret scanners and people
// recognise one.
const TokenPrefix = "fgt_"

// tokenBytes is the randomness of a token: 256 bits.
const tokenBytes = 32

// Token is an API token as stored: never the secret, only its hash.
type Token struct {
	ID        int64
	Name      string // unique among tokens not revoked
	Role      Role
	Hash      [sha256.Size]byte
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	LastUsed  time.Time // zero: never used (updated at most once a minute)
}

// Expired reports whether the token has expired at now.
func (t *Token) Expired(now time.Time) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) }

// NewTokenSecret returns a new random token secret: TokenPrefix and 256 bits
// from crypto/rand in unpadded base64url (47 characters in all).
func NewTokenSecret() string {
	var b [tokenBytes]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashToken returns the hash under which a token secret is stored: SHA-256.
// A fast hash is enough here, unlike for passwords: a secret holds 256 random
// bits, so no dictionary or brute-force search over its hash can succeed, and
// a fast hash lets every request be checked without a cost per request.
func HashToken(secret string) [sha256.Size]byte { return sha256.Sum256([]byte(secret)) }

// WellFormedToken reports whether s looks like a token NewTokenSecret made:
// the prefix and 43 base64url characters. A request with anything else is
// refused without a lookup.
func WellFormedToken(s string) bool {
	rest, ok := strings.CutPrefix(s, TokenPrefix)
	// The decoder skips CR and LF: 42 characters and a line break would pass.
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(tokenBytes) || strings.ContainsAny(rest, "\r\n") {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}

// SameHash compares two token hashes in constant time.
func SameHash(a, b [sha256.Size]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// TokenService stores API tokens. Implementations are safe for concurrent
// use.
type TokenService interface {
	// CreateToken stores t (its Hash, not a secret) and sets its ID and
	// CreatedAt. A name already used by a token not revoked is ECONFLICT.
	CreateToken(ctx context.Context, t *Token) error
	// FindTokenByHash returns the token not revoked with that hash, expired
	// or not, or ENOTFOUND.
	FindTokenByHash(ctx context.Context, hash [sha256.Size]byte) (*Token, error)
	// FindTokens returns the tokens not revoked, by name.
	FindTokens(ctx context.Context) ([]*Token, error)
	// RevokeToken revokes the token of that name at once; ENOTFOUND when
	// there is none.
	RevokeToken(ctx context.Context, name string) error
	// TouchToken records that the token was used at (a no-op when it was
	// recorded less than a minute before).
	TouchToken(ctx context.Context, id int64, at time.Time) error
}

// ValidTokenName checks a token's name: 1 to 64 of A-Z a-z 0-9 . _ - @.
func ValidTokenName(name string) error {
	if len(name) == 0 || len(name) > 64 || strings.TrimLeft(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-@") != "" {
		return Errorf(EINVALID, "token name %q: want 1 to 64 of A-Z a-z 0-9 . _ - @", name)
	}
	return nil
}
