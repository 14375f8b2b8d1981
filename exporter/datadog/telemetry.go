package datadog

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
)

// The sink's telemetry, declared in the catalog under "datadog". The client's
// figures come from statsd.Client.GetTelemetry (counted since start); for UDP
// a datagram nobody receives still counts as sent unless the kernel reports
// the refusal (ECONNREFUSED on loopback), then it counts as dropped by the
// writer.
var (
	mPacketsSent = collector.Counter("datadog", "datadog_packets_sent_total",
		"DogStatsD datagrams the client sent.")
	mPacketsDropped = collector.Counter("datadog", "datadog_packets_dropped_total",
		"DogStatsD datagrams the client dropped, by reason: writer (the socket refused or timed out) or queue_full.", "reason")
	mBytesSent = collector.Counter("datadog", "datadog_bytes_sent_total",
		"Bytes of DogStatsD datagrams the client sent.")
	mBytesDropped = collector.Counter("datadog", "datadog_bytes_dropped_total",
		"Bytes of DogStatsD datagrams the client dropped, by reason: writer or queue_full.", "reason")
	mFlushes = collector.Counter("datadog", "datadog_flushes_total",
		"Flushes of the DogStatsD sink (one gather and send each).")
	mFlushErrors = collector.Counter("datadog", "datadog_flush_errors_total",
		"Metrics or flushes the DogStatsD client refused.")
	mSeriesSent = collector.Counter("datadog", "datadog_series_sent_total",
		"Series sent to DogStatsD, summed over flushes.")
	mSeriesDropped = collector.Counter("datadog", "datadog_series_dropped_total",
		"Series not sent because of --datadog.max-series, summed over flushes.")
	mCounterResets = collector.Counter("datadog", "datadog_counter_resets_total",
		"Counters seen going down between two flushes (nothing is sent for them that flush).")
	mLastSeries = collector.Gauge("datadog", "datadog_last_flush_series",
		"Series sent by the last flush.")
	mLastFlush = collector.Gauge("datadog", "datadog_last_flush_timestamp_seconds",
		"When the last flush finished (Unix time); 0 before the first.")
	mLastDuration = collector.Gauge("datadog", "datadog_last_flush_duration_seconds",
		"How long the last flush took, gather included.")
)

// Describe sends nothing: the sink is an unchecked collector, like the
// collectors' Scraper.
func (s *Sink) Describe(chan<- *prometheus.Desc) {}

// Collect reads counters only; it never waits for a flush.
func (s *Sink) Collect(ch chan<- prometheus.Metric) {
	t := s.client.GetTelemetry()
	ch <- mPacketsSent.Const(float64(t.TotalPayloadsSent))
	ch <- mPacketsDropped.Const(float64(t.TotalPayloadsDroppedWriter), "writer")
	ch <- mPacketsDropped.Const(float64(t.TotalPayloadsDroppedQueueFull), "queue_full")
	ch <- mBytesSent.Const(float64(t.TotalBytesSent))
	ch <- mBytesDropped.Const(float64(t.TotalBytesDroppedWriter), "writer")
	ch <- mBytesDropped.Const(float64(t.TotalBytesDroppedQueueFull), "queue_full")
	ch <- mFlushes.Const(float64(s.flushes.Load()))
	ch <- mFlushErrors.Const(float64(s.flushErrors.Load()))
	ch <- mSeriesSent.Const(float64(s.seriesSent.Load()))
	ch <- mSeriesDropped.Const(float64(s.seriesDropped.Load()))
	ch <- mCounterResets.Const(float64(s.resets.Load()))
	ch <- mLastSeries.Const(float64(s.lastSeries.Load()))
	last := 0.0
	if ns := s.lastFlush.Load(); ns > 0 {
		last = float64(ns) / 1e9
	}
	ch <- mLastFlush.Const(last)
	ch <- mLastDuration.Const(time.Duration(s.lastDuration.Load()).Seconds())
}
