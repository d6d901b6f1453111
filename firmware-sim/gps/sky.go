package gps

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	firmwaresim "github.com/fleetgate/fleetgate/firmware-sim"
)

// sky is the receiver's view of the constellation and its error state:
// which satellites are up, where, how well they are heard, how far off the
// position is, and when a lost fix comes back.
type sky struct {
	rng   *rand.Rand
	sats  []Satellite // the constellation, highest first
	lost  bool        // the sky was hidden at the last epoch
	back  time.Time   // when a lost fix comes back
	e, n  float64     // position error, metres east and north
	u     float64     // altitude error, metres
	init  bool        // the errors have their first values
	speed float64     // last speed reported, for holding the course
	crs   float64     // last course reported
}

// constellation is the pool of PRNs the receiver may see.
var constellation = []int{2, 5, 7, 9, 13, 15, 18, 20, 24, 27, 29, 30, 3, 6, 10, 12, 16, 21, 26}

func newSky(seed uint64) *sky {
	sk := &sky{rng: rand.New(rand.NewPCG(seed, 0x736b795f6e6f6973))}
	for _, prn := range constellation {
		sk.sats = append(sk.sats, Satellite{PRN: prn, Elevation: 8 + sk.rng.IntN(80), Azimuth: sk.rng.IntN(360)})
	}
	slices.SortStableFunc(sk.sats, func(a, b Satellite) int { return b.Elevation - a.Elevation })
	return sk
}

// acquire reports whether the receiver has a fix at t, given whether the
// sky is clear: a fix lost to a tunnel or a fault comes back one to three
// seconds after the sky does (a hot start).
func (sk *sky) acquire(clear bool, t time.Time) bool {
	switch {
	case !clear:
		sk.lost = true
		return false
	case sk.lost:
		sk.lost = false
		sk.back = t.Add(time.Second + time.Duration(2*sk.rng.Float64()*float64(time.Second)))
	}
	return !t.Before(sk.back)
}

// inView returns the satellites in view: none in a tunnel or before the
// receiver knows the time; otherwise the highest used+3 (used: what the model
// says), azimuths turning slowly with time, signal strengths drawn around
// what the elevation gives (untracked, 0, during a cold start).
func (sk *sky) inView(s firmwaresim.State, clear bool, off, coldStart time.Duration) []Satellite {
	if !clear || off < coldStart/3 {
		return nil
	}
	n := min(len(sk.sats), s.Sats+3)
	out := make([]Satellite, n)
	for i := range n {
		sat := sk.sats[i]
		sat.Azimuth = (sat.Azimuth + int(off.Minutes()/2)) % 360
		snr := 22 + float64(sat.Elevation)/3 + 1.5*sk.rng.NormFloat64()
		if off >= coldStart {
			sat.SNR = int(max(12, min(50, math.Round(snr))))
		}
		out[i] = sat
	}
	return out
}

// perturb adds the receiver's errors to f: position and altitude errors that
// wander (first-order Gauss-Markov, 1-sigma UERE × DOP, correlation time
// noiseTau), speed noise of 0.05 m/s × HDOP, and a course that holds while
// the vehicle stands (receivers freeze it at low speed). dt is the time
// since the last epoch.
func (sk *sky) perturb(f *Fix, dt time.Duration) {
	sh, sv := UERE*f.HDOP/math.Sqrt2, UERE*f.VDOP
	phi := math.Exp(-float64(dt) / float64(noiseTau))
	q := math.Sqrt(1 - phi*phi)
	ne, nn, nu, nv, nc := sk.rng.NormFloat64(), sk.rng.NormFloat64(), sk.rng.NormFloat64(), sk.rng.NormFloat64(), sk.rng.NormFloat64()
	if !sk.init {
		sk.e, sk.n, sk.u, sk.init = sh*ne, sh*nn, sv*nu, true
	} else {
		sk.e = phi*sk.e + q*sh*ne
		sk.n = phi*sk.n + q*sh*nn
		sk.u = phi*sk.u + q*sv*nu
	}
	if !f.Valid {
		return
	}
	lat := f.Lat * math.Pi / 180
	f.Lat += sk.n / earthRadiusM * 180 / math.Pi
	f.Lon += sk.e / (earthRadiusM * math.Cos(lat)) * 180 / math.Pi
	f.AltM += sk.u
	v := f.SpeedMps
	f.SpeedMps = max(0, v+0.05*f.HDOP*nv)
	if v < 0.5 && sk.speed > 0 {
		f.CourseDeg = sk.crs
	} else {
		f.CourseDeg = math.Mod(f.CourseDeg+min(3, 1/max(v, 0.3))*nc+360, 360)
	}
	sk.speed, sk.crs = max(sk.speed, v), f.CourseDeg
}

// earthRadiusM is the mean radius the noise uses to turn metres into degrees.
const earthRadiusM = 6371008.8
