// Package datadog holds the Datadog monitors of pantherOS as API v1 bodies
// (monitors/*.json), one for each Prometheus alert of rules/prometheus.
//
// Conventions, checked by the tests of this package:
//   - a monitor carries the tag alert:<AlertName> of the Prometheus alert it
//     mirrors, and severity:<severity> with the alert's severity label; its
//     file is monitors/<alert_name>.json (AlertName in snake case);
//   - a message names who to notify with one placeholder,
//     {{panther.notify.critical}}, {{panther.notify.warning}} or
//     {{panther.notify.data_loss}} (the alert's severity, or data_loss when
//     its condition means data is lost), never with a handle:
//     cmd/panther-datadog fills in the handles of notify.yaml per class and
//     host role. The placeholder stands outside every {{#...}} block, so the
//     recovery notification reaches PagerDuty and resolves the incident;
//   - the query ends with the critical threshold of options.thresholds;
//   - every metric queried is sent by the DogStatsD sink with its default
//     include and exclude (exporter/datadog), or is one of the Agent core
//     metrics listed in exporter/datadog/ddcheck.AgentMetrics (the system
//     metrics the sink leaves to the Agent).
//
// Where Datadog cannot say what PromQL says, the monitor keeps the intent and
// the threshold and its message says what differs: Datadog has no time(),
// so ages come from the *_age_seconds series the sink derives from
// timestamp gauges; "and" of two conditions becomes a product where one
// side is 0/1, or is dropped with a note (BtrfsMetadataNearlyFull,
// CPUSaturation, FilesystemFillingUp); a 14-day median becomes week_before().
package datadog
