package podman

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
)

const c = "podman"

var (
	upM         = collector.Gauge(c, "podman_up", "1 when the Podman API socket answers and its events stream is subscribed, else 0.", "socket")
	snapAgeM    = collector.Gauge(c, "podman_snapshot_age_seconds", "Seconds since the container list of this socket was last refreshed (the scrape reads this snapshot).", "socket")
	statsAgeM   = collector.Gauge(c, "podman_stats_age_seconds", "Seconds since the container stats of this socket were last taken.", "socket")
	containersM = collector.Gauge(c, "podman_containers", "Containers by state.", "socket", "state")
	infoM       = collector.Gauge(c, "podman_container_info", "Always 1; the container's id (12 characters), image and pod.", "socket", "name", "id", "image", "pod")
	stateM      = collector.Gauge(c, "podman_container_state", "1 for the container's current state, 0 for the other usual states.", "socket", "name", "state")
	healthM     = collector.Gauge(c, "podman_container_health", "1 for the container's healthcheck status (healthy, unhealthy, starting), 0 for the others; containers without a healthcheck have none.", "socket", "name", "health")
	restartsM   = collector.Counter(c, "podman_container_restarts_total", "Restarts by the container's restart policy (podman inspect RestartCount).", "socket", "name")
	exitCodeM   = collector.Gauge(c, "podman_container_exit_code", "Exit code of the container's last run (0 while it never exited).", "socket", "name")
	createdM    = collector.Gauge(c, "podman_container_created_timestamp_seconds", "Unix time the container was created.", "socket", "name")
	startedM    = collector.Gauge(c, "podman_container_started_timestamp_seconds", "Unix time the container last started (absent while it never started).", "socket", "name")
	finishedM   = collector.Gauge(c, "podman_container_finished_timestamp_seconds", "Unix time the container last exited (only for exited containers).", "socket", "name")
	cpuM        = collector.Counter(c, "podman_container_cpu_seconds_total", "CPU time the running container used.", "socket", "name")
	memM        = collector.Gauge(c, "podman_container_memory_usage_bytes", "Memory the running container uses.", "socket", "name")
	memLimitM   = collector.Gauge(c, "podman_container_memory_limit_bytes", "Memory limit of the running container (the host's memory when unlimited, as podman stats says).", "socket", "name")
	pidsM       = collector.Gauge(c, "podman_container_pids", "Processes in the running container.", "socket", "name")
	netRxM      = collector.Counter(c, "podman_container_network_receive_bytes_total", "Bytes the running container received over its networks.", "socket", "name")
	netTxM      = collector.Counter(c, "podman_container_network_transmit_bytes_total", "Bytes the running container sent over its networks.", "socket", "name")
	blockRM     = collector.Counter(c, "podman_container_block_read_bytes_total", "Bytes the running container read from block devices.", "socket", "name")
	blockWM     = collector.Counter(c, "podman_container_block_written_bytes_total", "Bytes the running container wrote to block devices.", "socket", "name")
	oomM        = collector.Counter(c, "podman_container_oom_kills_total", "OOM kills of the container seen since the exporter started (a death event whose inspect says OOMKilled, or an oom event).", "socket", "name")
	exitsM      = collector.Counter(c, "podman_container_nonzero_exits_total", "Deaths of the container with a non-zero exit code seen on the events stream since the exporter started.", "socket", "name")
	restartEvM  = collector.Counter(c, "podman_container_restart_events_total", "Restart events of the container seen on the events stream since the exporter started.", "socket", "name")
	podsM       = collector.Gauge(c, "podman_pods", "Pods by state.", "socket", "state")
	podStateM   = collector.Gauge(c, "podman_pod_state", "1 for the pod's current state.", "socket", "name", "state")
	podCtrsM    = collector.Gauge(c, "podman_pod_containers", "Containers in the pod, its infra container included.", "socket", "name")
	imagesM     = collector.Gauge(c, "podman_images", "Images in the socket's storage.", "socket")
	imageBytesM = collector.Gauge(c, "podman_images_size_bytes", "Total size of the images in the socket's storage (shared layers counted once per image).", "socket")
	volumesM    = collector.Gauge(c, "podman_volumes", "Volumes of the socket.", "socket")
)

// Usual states, always exported so that absent means "no such container".
var (
	containerStates = []string{"created", "running", "paused", "stopped", "exited"}
	podStates       = []string{"Created", "Running", "Degraded", "Paused", "Stopped", "Exited", "Dead"}
	healthStates    = []string{"healthy", "unhealthy", "starting"}
)

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func withState(states []string, s string) []string {
	for _, x := range states {
		if x == s {
			return states
		}
	}
	return append(append([]string{}, states...), s)
}

// emit sends one socket's metrics. While the socket is down, only up, the
// snapshot's age and the event counters are sent: a stale list would look
// like live containers.
func emit(ch chan<- prometheus.Metric, sock string, snap *Snapshot, counts map[string]Counts, st status, now time.Time) {
	up := 0.0
	if st.up {
		up = 1
	}
	ch <- upM.Const(up, sock)
	if snap != nil && !snap.ListedAt.IsZero() {
		ch <- snapAgeM.Const(now.Sub(snap.ListedAt).Seconds(), sock)
	}
	if snap != nil && !snap.StatsAt.IsZero() {
		ch <- statsAgeM.Const(now.Sub(snap.StatsAt).Seconds(), sock)
	}
	for name, n := range counts {
		ch <- oomM.Const(n.OOMKills, sock, name)
		ch <- exitsM.Const(n.NonZeroExits, sock, name)
		ch <- restartEvM.Const(n.RestartEvents, sock, name)
	}
	if !st.up || snap == nil || snap.ListedAt.IsZero() {
		return
	}
	byState := map[string]int{}
	for _, s := range containerStates {
		byState[s] = 0
	}
	for _, ct := range snap.Containers {
		n := ct.Name
		byState[ct.State]++
		ch <- infoM.Const(1, sock, n, shortID(ct.ID), ct.Image, ct.Pod)
		for _, s := range withState(containerStates, ct.State) {
			v := 0.0
			if s == ct.State {
				v = 1
			}
			ch <- stateM.Const(v, sock, n, s)
		}
		if ct.Health != "" {
			for _, h := range withState(healthStates, ct.Health) {
				v := 0.0
				if h == ct.Health {
					v = 1
				}
				ch <- healthM.Const(v, sock, n, h)
			}
		}
		ch <- restartsM.Const(ct.Restarts, sock, n)
		ch <- exitCodeM.Const(ct.ExitCode, sock, n)
		if ct.Created > 0 {
			ch <- createdM.Const(ct.Created, sock, n)
		}
		if ct.Started > 0 {
			ch <- startedM.Const(ct.Started, sock, n)
		}
		if ct.Finished > 0 && ct.State == "exited" {
			ch <- finishedM.Const(ct.Finished, sock, n)
		}
		if _, seen := counts[n]; !seen {
			// Every container has its event counters, from zero.
			ch <- oomM.Const(0, sock, n)
			ch <- exitsM.Const(0, sock, n)
			ch <- restartEvM.Const(0, sock, n)
		}
		if ct.State != "running" && ct.State != "paused" {
			continue
		}
		s, ok := snap.Stats[ct.ID]
		if !ok {
			continue
		}
		ch <- cpuM.Const(s.CPUSeconds, sock, n)
		ch <- memM.Const(s.MemUsage, sock, n)
		ch <- memLimitM.Const(s.MemLimit, sock, n)
		ch <- pidsM.Const(s.PIDs, sock, n)
		ch <- netRxM.Const(s.NetRxBytes, sock, n)
		ch <- netTxM.Const(s.NetTxBytes, sock, n)
		ch <- blockRM.Const(s.BlockRead, sock, n)
		ch <- blockWM.Const(s.BlockWritten, sock, n)
	}
	for s, n := range byState {
		ch <- containersM.Const(float64(n), sock, s)
	}
	podByState := map[string]int{}
	for _, s := range podStates {
		podByState[s] = 0
	}
	for _, p := range snap.Pods {
		podByState[p.State]++
		ch <- podStateM.Const(1, sock, p.Name, p.State)
		ch <- podCtrsM.Const(float64(p.Containers), sock, p.Name)
	}
	for s, n := range podByState {
		ch <- podsM.Const(float64(n), sock, s)
	}
	ch <- imagesM.Const(float64(snap.Images), sock)
	ch <- imageBytesM.Const(snap.ImageBytes, sock)
	ch <- volumesM.Const(float64(snap.Volumes), sock)
}
