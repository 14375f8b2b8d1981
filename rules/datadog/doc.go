// Package datadog holds the Datadog monitors of pantherOS as API v1 bodies
// (monitors/*.json), one for each Prometheus alert of rules/prometheus.
//
// Conventions, checked by the tests of this package:
//   - a monitor carries the tag alert:<AlertName> of the Prometheus alert it
//     mirrors, and severity:<severity> with the alert's severity label; its
//     file is monitors/<alert_name>.json (AlertName in snake case);
//   - critical monitors notify @pagerduty-pantheros, warnings
//     @slack-pantheros-alerts; the handle stands outside every {{#...}}
//     block, so the recovery notification reaches PagerDuty and resolves the
//     incident;
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
