package firmwaresim

// monacoLoop follows the streets of the Monaco Grand Prix circuit in race
// direction, about 3.25 km: up Boulevard Albert 1er along the harbour, the
// climb of Avenue d'Ostende to the Casino, down through Mirabeau and the
// Fairmont hairpin to Portier, the tunnel of Boulevard Louis II, Quai des
// États-Unis, Route de la Piscine and Quai Antoine 1er back to the start.
// The centre line was traced from the Circuit de Monaco outline published in
// github.com/bacinger/f1-circuits (MIT License, © Tomislav Bacinger), simplified
// to about 4 m and relabelled with street names; altitudes are approximate
// (harbour ~3 m, Casino ~47 m). The stretch from Boulevard Louis II after
// Portier to its exit towards the harbour runs in the tunnel under the
// Fairmont hotel: no sky there.
var monacoLoop = &Route{
	Name:            "monaco-loop",
	Description:     "Monaco harbour loop on the Grand Prix streets: Boulevard Albert 1er, Avenue d'Ostende, Casino, Boulevard Louis II tunnel, Quai des États-Unis",
	DefaultLimitKmh: 50,
	Waypoints: []Waypoint{
		{Lat: 43.73470, Lon: 7.42138, AltM: 7, Street: "Boulevard Albert 1er"},
		{Lat: 43.73573, Lon: 7.42122, AltM: 8, Street: "Boulevard Albert 1er"},
		{Lat: 43.73689, Lon: 7.42144, AltM: 9, Stop: true, Street: "Place Sainte-Dévote"},
		{Lat: 43.73699, Lon: 7.42161, AltM: 10, Street: "Avenue d'Ostende"},
		{Lat: 43.73709, Lon: 7.42265, AltM: 13, Street: "Avenue d'Ostende"},
		{Lat: 43.73738, Lon: 7.42410, AltM: 20, Street: "Avenue d'Ostende"},
		{Lat: 43.73746, Lon: 7.42478, AltM: 24, Street: "Avenue d'Ostende"},
		{Lat: 43.73777, Lon: 7.42571, AltM: 30, Street: "Avenue d'Ostende"},
		{Lat: 43.73804, Lon: 7.42726, AltM: 38, Street: "Avenue d'Ostende"},
		{Lat: 43.73838, Lon: 7.42773, AltM: 41, Street: "Avenue de Monte-Carlo"},
		{Lat: 43.73862, Lon: 7.42779, AltM: 43, Street: "Avenue de Monte-Carlo"},
		{Lat: 43.73908, Lon: 7.42753, AltM: 45, Street: "Avenue de Monte-Carlo"},
		{Lat: 43.73944, Lon: 7.42713, AltM: 47, LimitKmh: 30, Stop: true, Street: "Place du Casino"},
		{Lat: 43.73958, Lon: 7.42716, AltM: 47, Street: "Place du Casino"},
		{Lat: 43.73984, Lon: 7.42736, AltM: 46, LimitKmh: 50, Street: "Avenue des Spélugues"},
		{Lat: 43.74105, Lon: 7.42866, AltM: 42, Street: "Avenue des Spélugues (Mirabeau)"},
		{Lat: 43.74110, Lon: 7.42886, AltM: 41, Street: "Avenue des Spélugues"},
		{Lat: 43.74100, Lon: 7.42905, AltM: 40, Street: "Avenue des Spélugues"},
		{Lat: 43.74069, Lon: 7.42913, AltM: 38, Street: "Avenue des Spélugues"},
		{Lat: 43.74020, Lon: 7.42959, AltM: 35, LimitKmh: 30, Street: "Fairmont hairpin"},
		{Lat: 43.74025, Lon: 7.42972, AltM: 34, Street: "Fairmont hairpin"},
		{Lat: 43.74036, Lon: 7.42973, AltM: 33, Street: "Avenue des Spélugues"},
		{Lat: 43.74068, Lon: 7.42934, AltM: 30, Street: "Avenue des Spélugues"},
		{Lat: 43.74085, Lon: 7.42932, AltM: 28, Street: "Avenue des Spélugues"},
		{Lat: 43.74093, Lon: 7.42944, AltM: 26, Street: "Avenue des Spélugues"},
		{Lat: 43.74109, Lon: 7.43002, AltM: 20, Stop: true, Street: "Boulevard Louis II (Portier)"},
		{Lat: 43.74105, Lon: 7.43030, AltM: 16, LimitKmh: 50, Tunnel: true, Street: "Boulevard Louis II"},
		{Lat: 43.74096, Lon: 7.43035, AltM: 14, Tunnel: true, Street: "Boulevard Louis II (tunnel)"},
		{Lat: 43.74036, Lon: 7.43033, AltM: 12, Tunnel: true, Street: "Boulevard Louis II (tunnel)"},
		{Lat: 43.73942, Lon: 7.42995, AltM: 10, Tunnel: true, Street: "Boulevard Louis II (tunnel)"},
		{Lat: 43.73852, Lon: 7.42921, AltM: 9, Tunnel: true, Street: "Boulevard Louis II (tunnel)"},
		{Lat: 43.73792, Lon: 7.42831, AltM: 8, Street: "Boulevard Louis II"},
		{Lat: 43.73747, Lon: 7.42705, AltM: 6, Street: "Quai des États-Unis"},
		{Lat: 43.73723, Lon: 7.42560, AltM: 5, Street: "Quai des États-Unis"},
		{Lat: 43.73705, Lon: 7.42539, AltM: 4, Street: "Quai des États-Unis (Tabac)"},
		{Lat: 43.73708, Lon: 7.42490, AltM: 4, Street: "Quai des États-Unis"},
		{Lat: 43.73681, Lon: 7.42241, AltM: 3, LimitKmh: 30, Street: "Route de la Piscine"},
		{Lat: 43.73667, Lon: 7.42210, AltM: 3, Street: "Route de la Piscine"},
		{Lat: 43.73620, Lon: 7.42184, AltM: 3, Street: "Route de la Piscine"},
		{Lat: 43.73581, Lon: 7.42177, AltM: 3, Street: "Route de la Piscine"},
		{Lat: 43.73534, Lon: 7.42183, AltM: 3, Street: "Route de la Piscine"},
		{Lat: 43.73500, Lon: 7.42223, AltM: 3, Street: "Route de la Piscine"},
		{Lat: 43.73431, Lon: 7.42241, AltM: 3, Street: "Quai Antoine 1er"},
		{Lat: 43.73394, Lon: 7.42220, AltM: 3, Street: "Quai Antoine 1er"},
		{Lat: 43.73318, Lon: 7.42261, AltM: 3, Street: "Quai Antoine 1er"},
		{Lat: 43.73292, Lon: 7.42291, AltM: 3, Street: "Quai Antoine 1er"},
		{Lat: 43.73274, Lon: 7.42334, AltM: 3, Street: "Quai Antoine 1er"},
		{Lat: 43.73256, Lon: 7.42347, AltM: 3, Stop: true, Street: "La Rascasse"},
		{Lat: 43.73247, Lon: 7.42341, AltM: 3, Street: "La Rascasse"},
		{Lat: 43.73240, Lon: 7.42302, AltM: 3, Street: "La Rascasse"},
		{Lat: 43.73240, Lon: 7.42251, AltM: 3, Street: "Quai Antoine 1er"},
		{Lat: 43.73268, Lon: 7.42236, AltM: 4, Street: "Boulevard Albert 1er"},
		{Lat: 43.73298, Lon: 7.42207, AltM: 5, LimitKmh: 50, Street: "Boulevard Albert 1er"},
		{Lat: 43.73360, Lon: 7.42173, AltM: 6, Street: "Boulevard Albert 1er"},
	},
}

// monacoTunnel and monacoHarbour are stretches of the same traced streets,
// driven there and back.
var (
	monacoTunnel = &Route{
		Name:            "monaco-tunnel",
		Description:     "Avenue des Spélugues, Portier, the Boulevard Louis II tunnel and Quai des États-Unis, there and back: the fix is lost twice a round",
		DefaultLimitKmh: 50,
		OutAndBack:      true,
		Waypoints:       stretch(monacoLoop, 21, 35, 30),
	}
	monacoHarbour = &Route{
		Name:            "monaco-harbour",
		Description:     "Port Hercule: Quai des États-Unis, Route de la Piscine, Quai Antoine 1er, La Rascasse, Boulevard Albert 1er to Sainte-Dévote, there and back; open sky",
		DefaultLimitKmh: 50,
		OutAndBack:      true,
		Waypoints:       append(stretch(monacoLoop, 33, len(monacoLoop.Waypoints)-1, 50), stretch(monacoLoop, 0, 2, 50)...),
	}
)

// stretch copies waypoints from..to (inclusive) of r, the first with the
// speed limit in force there.
func stretch(r *Route, from, to int, limitKmh float64) []Waypoint {
	wps := append([]Waypoint(nil), r.Waypoints[from:to+1]...)
	if wps[0].LimitKmh == 0 {
		wps[0].LimitKmh = limitKmh
	}
	return wps
}
