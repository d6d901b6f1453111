// Package cloud is the fleet domain of the cloud server: vehicles, positions, OBD
// samples, trips and the services over them, with error codes that the HTTP API
// maps to status codes. Adapters live in subpackages (postgres, redis, osrm, mqtt,
// httpapi); the cloud-server command wires them. This package imports none of them.
package cloud
