// Package e2e holds the real-stack tests of panther-exporter. They are built
// only with the e2e build tag (`make e2e`) and need root and the services
// that .ci/run installs.
package e2e
