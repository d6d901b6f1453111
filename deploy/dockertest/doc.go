// Package dockertest checks Fleetgate's deployment files without a Docker
// engine (none runs on the build machines): the Dockerfiles through BuildKit's
// parser, the compose files through compose-go, the Mosquitto configuration
// and ACL by starting a private broker with them and real TLS client
// certificates, the systemd unit with systemd-analyze, and the Makefile's
// commands with make -n. Every deployment rule is a test here, and each
// checker is shown to fail on a copy of the file that breaks its rule.
//
// The package has no code of its own beyond this comment; everything is in
// the _test files.
package dockertest
