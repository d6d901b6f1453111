package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// healthcheckTimeout bounds the whole check: Docker's HEALTHCHECK and a
// systemd watchdog want an answer, not a hang.
const healthcheckTimeout = 5 * time.Second

// healthcheck is `edge-agent healthcheck --config FILE | --url URL`: it asks
// the running agent's /health and returns 0 when it answers 200, 1 when it
// answers anything else or not at all, 2 for a usage or configuration error.
// It is the Docker image's HEALTHCHECK (the image has no shell or curl).
func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the agent's configuration file: check http.listen's /health")
	rawURL := fs.String("url", "", "check this URL instead, e.g. http://127.0.0.1:9100/health")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*path == "") == (*rawURL == "") || fs.NArg() != 0 {
		fmt.Fprint(stderr, "usage: edge-agent healthcheck --config FILE | --url URL\n")
		return 2
	}
	u := *rawURL
	if *path != "" {
		cfg, err := LoadConfig(*path, os.LookupEnv)
		if err != nil {
			fmt.Fprintf(stderr, "edge-agent healthcheck: %v\n", err)
			return 2
		}
		if u, err = HealthURL(cfg.HTTP.Listen); err != nil {
			fmt.Fprintf(stderr, "edge-agent healthcheck: %v\n", err)
			return 2
		}
	} else if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		fmt.Fprintf(stderr, "edge-agent healthcheck: --url %q: want http://host:port/health\n", u)
		return 2
	}
	if err := getHealth(ctx, u); err != nil {
		fmt.Fprintf(stderr, "edge-agent healthcheck: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", u)
	return 0
}

// HealthURL returns the URL of /health for the agent's http.listen address.
// An unspecified host (":9100", "0.0.0.0:9100", "[::]:9100") is asked on
// loopback. An empty address (the endpoint disabled) is an error.
func HealthURL(listen string) (string, error) {
	if listen == "" {
		return "", errors.New(`http.listen is "": the health endpoint is disabled, nothing to check`)
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("http.listen %q: %v", listen, err)
	}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.Equal(net.IPv4zero)):
		host = "127.0.0.1"
	case ip != nil && ip.Equal(net.IPv6unspecified):
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/health", nil
}

// getHealth GETs u within healthcheckTimeout; any status but 200 is an error
// that carries it.
func getHealth(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512)) // only for the message
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return nil
}
