package scenario

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Error is a problem in a scenario file, at a line and column (column 0 when
// the YAML parser did not say).
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *Error) Error() string {
	if e.File == "" {
		return e.Msg
	}
	if e.Column > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// parser walks a YAML document and collects every error it finds.
type parser struct {
	file       string
	errs       []error
	vehicleOf  []*yaml.Node // the node of each vehicle, in Scenario.Vehicles order
	faultNodes []*yaml.Node // the node of each fault, in Scenario.Faults order
}

func (p *parser) errorf(n *yaml.Node, format string, a ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, a...)})
}

// err returns the errors found, joined, or nil.
func (p *parser) err() error { return errors.Join(p.errs...) }

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntax turns an error of the YAML parser into Errors.
func (p *parser) syntax(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, e := range te.Errors {
			p.syntaxLine(e)
		}
		return p.err()
	}
	p.syntaxLine(err.Error())
	return p.err()
}

func (p *parser) syntaxLine(msg string) {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: m[2]})
		return
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: 1, Msg: strings.TrimPrefix(msg, "yaml: ")})
}

// fields are the handlers of a mapping's keys.
type fields map[string]func(val *yaml.Node)

// mapping checks that n is a mapping of known keys, each given once, and
// calls their handlers in file order. It returns the keys present.
func (p *parser) mapping(n *yaml.Node, what string, fs fields) map[string]*yaml.Node {
	seen := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping of %s", what, keys(fs))
		return seen
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := fs[k.Value]
		switch {
		case !ok:
			p.errorf(k, "%s: unknown field %q (want %s)", what, k.Value, keys(fs))
		case seen[k.Value] != nil:
			p.errorf(k, "%s: %s given twice", what, k.Value)
		default:
			seen[k.Value] = k
			h(v)
		}
	}
	return seen
}

func keys(fs fields) string {
	var ks []string
	for k := range fs {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ", ")
}

// scalar returns the value of a scalar node, or reports what was wanted.
func (p *parser) scalar(n *yaml.Node, what, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s: want %s", what, want)
		return "", false
	}
	return n.Value, true
}

func (p *parser) str(n *yaml.Node, what string) string {
	s, _ := p.scalar(n, what, "a string")
	return s
}

func (p *parser) integer(n *yaml.Node, what string, lo, hi int) (int, bool) {
	s, ok := p.scalar(n, what, "a whole number")
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		p.errorf(n, "%s %q: want a whole number from %d to %d", what, s, lo, hi)
		return 0, false
	}
	return v, true
}

func (p *parser) number(n *yaml.Node, what string, lo, hi float64) (float64, bool) {
	s, ok := p.scalar(n, what, "a number")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > lo && v <= hi) {
		p.errorf(n, "%s %q: want a number above %v and at most %v", what, s, lo, hi)
		return 0, false
	}
	return v, true
}

func (p *parser) boolean(n *yaml.Node, what string) bool {
	s, ok := p.scalar(n, what, "true or false")
	if !ok {
		return false
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	p.errorf(n, "%s %q: want true or false", what, s)
	return false
}

// duration parses a Go duration ("10s", "1h30m"); negative ones only when
// allowed. It reports zero when zero is not allowed.
func (p *parser) duration(n *yaml.Node, what string, negative, zero bool) (time.Duration, bool) {
	s, ok := p.scalar(n, what, "a duration")
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.errorf(n, "%s %q: want a duration such as 10s, 5m or 1h30m", what, s)
		return 0, false
	case d < 0 && !negative:
		p.errorf(n, "%s %s: must not be negative", what, s)
		return 0, false
	case d == 0 && !zero:
		p.errorf(n, "%s %s: must not be zero", what, s)
		return 0, false
	}
	return d, true
}

func (p *parser) strings(n *yaml.Node, what string) []string {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: want a list such as [RMC, GGA]", what)
		return nil
	}
	var out []string
	for _, c := range n.Content {
		if s, ok := p.scalar(c, what, "a string"); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) sequence(n *yaml.Node, what string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: want a list", what)
		return nil
	}
	return n.Content
}
