// Package datadog holds the Datadog dashboards of pantherOS as API v1 bodies
// (*.json: host, storage, containers, boot). Its test decodes each strictly
// into the datadog-api-client-go Dashboard model and checks that every
// metric a widget queries is one the DogStatsD sink sends with its defaults,
// or an Agent core metric (exporter/datadog/ddcheck).
package datadog
