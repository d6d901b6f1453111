// Package cloud is the fleet domain of the cloud server: vehicles, positions,
// OBD samples and device status, the interfaces of the services over them,
// the validation of incoming batches, and error codes that the HTTP API maps
// to status codes. Adapters live in subpackages (postgres, redis, mqtt,
// httpapi); the cloud-server command wires them. This package imports none of
// them.
package cloud
