// Package rules holds the Prometheus alerting and recording rules of
// pantherOS (rules/prometheus), their promtool tests, the example
// Alertmanager configuration (rules/alertmanager) and the Datadog monitors.
// Its Go tests lint the rules offline, the way cloudflare/pint would.
package rules
