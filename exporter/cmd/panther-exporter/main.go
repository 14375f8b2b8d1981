// Command panther-exporter collects system, Btrfs, Podman, boot and Nix
// metrics once and serves them to Prometheus (and DogStatsD).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/pantheros/monitoring/exporter/collector"
	_ "github.com/pantheros/monitoring/exporter/collector/all" // every collector registers itself
	"github.com/pantheros/monitoring/exporter/datadog"
	"github.com/pantheros/monitoring/exporter/server"
)

// gcPercent replaces Go's default GOGC of 100. What an exporter keeps
// between scrapes is small and nearly all a scrape allocates is garbage at
// once, so collecting sooner keeps resident memory at node_exporter's level
// for some CPU (about 2 ms per 1000 scrapes of the system collector; see
// docs/benchmarks.md). Prometheus itself defaults to 75 for the same reason.
// GOGC in the environment still wins.
const gcPercent = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "panther-exporter: error:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		webFlags      = kingpinflag.AddFlags(kingpin.CommandLine, ":9567")
		telemetryPath = kingpin.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		maxRequests   = kingpin.Flag("web.max-requests", "Maximum number of parallel scrape requests; beyond it the answer is 503. 0 disables the limit.").Default("40").Int()
		logConfig     = &promslog.Config{}
	)
	promslogflag.AddFlags(kingpin.CommandLine, logConfig)
	kingpin.Version(version.Print("panther-exporter"))
	kingpin.HelpFlag.Short('h')
	// --help is the answer asked for, so it goes to stdout (`| less` works);
	// errors stay on stderr.
	kingpin.CommandLine.UsageWriter(os.Stdout)
	kingpin.Parse()
	logger := promslog.New(logConfig)

	// A broken web config must stop us before we listen, with the file named.
	if err := web.Validate(*webFlags.WebConfigFile); err != nil {
		return fmt.Errorf("--web.config.file=%s: %w", *webFlags.WebConfigFile, err)
	}

	scraper, exporterMetrics, err := build(logger)
	if err != nil {
		return err
	}
	logger.Info("Starting panther-exporter", "version", version.Info(), "collectors", scraper.Names())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// The DogStatsD sink gathers what /metrics serves (collectors and the
	// exporter's own metrics) and exports its telemetry on /metrics.
	if ddOpts, on, err := datadog.FromFlags(); err != nil {
		return err
	} else if on {
		collectorMetrics := prometheus.NewRegistry()
		collectorMetrics.MustRegister(scraper)
		sink, err := datadog.New(logger, prometheus.Gatherers{collectorMetrics, exporterMetrics}, ddOpts)
		if err != nil {
			return err
		}
		exporterMetrics.MustRegister(sink)
		go sink.Run(ctx)
	}

	srv := &http.Server{
		Handler:           handler(logger, scraper, exporterMetrics, *telemetryPath, *maxRequests),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- web.ListenAndServe(srv, webFlags, logger) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
		logger.Info("Shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			return err
		}
		// Collectors with background work stop it (the journal collector
		// saves its cursor); a collector stuck in I/O must not hold up the exit.
		closed := make(chan error, 1)
		go func() { closed <- scraper.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				logger.Error("Closing collectors", "err", err)
			}
		case <-shutdownCtx.Done():
			logger.Error("Closing collectors: still busy after the shutdown deadline")
		}
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// build constructs the enabled collectors from the parsed flags, and the
// registry of the exporter's own metrics (build info, Go, process).
func build(logger *slog.Logger) (*collector.Scraper, *prometheus.Registry, error) {
	cfg, opts := collector.FromFlags()
	cfg.Logger = logger
	scraper, err := collector.Build(cfg, opts)
	if err != nil {
		return nil, nil, err
	}
	own := prometheus.NewRegistry()
	own.MustRegister(
		versioncollector.NewCollector("panther_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return scraper, own, nil
}

// handler is the exporter's HTTP handler: metrics and landing page.
func handler(logger *slog.Logger, scraper *collector.Scraper, own prometheus.Gatherer, telemetryPath string, maxRequests int) http.Handler {
	return server.New(server.Config{
		Logger:        logger,
		Scraper:       scraper,
		Exporter:      own,
		TelemetryPath: telemetryPath,
		MaxRequests:   maxRequests,
		AllCollectors: collector.Names(),
		Version:       version.Info(),
	})
}
