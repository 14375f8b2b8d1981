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
	stateM      = collector.Gauge(c, "podman_container_state", "Always 1, labelled with the container's current state (created, running, paused, stopped, exited, ...): one series per container.", "socket", "name", "state")
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

// emitAges sends the snapshot's age, the only figures that change between
// two refreshes.
func emitAges(ch chan<- prometheus.Metric, sock string, snap *Snapshot, now time.Time) {
	if snap != nil && !snap.ListedAt.IsZero() {
		ch <- snapAgeM.Const(now.Sub(snap.ListedAt).Seconds(), sock)
	}
	if snap != nil && !snap.StatsAt.IsZero() {
		ch <- statsAgeM.Const(now.Sub(snap.StatsAt).Seconds(), sock)
	}
}

// build returns one socket's metrics (all but the ages). The result is
// cached until the snapshot, the counters or the status change, so that a
// scrape only sends ready-made metrics. While the socket is down, only up
// and the event counters are sent: a stale list would look like live
// containers.
func build(sock string, snap *Snapshot, counts map[string]*Counts, st status) []prometheus.Metric {
	n := 1 + 3*len(counts)
	if snap != nil {
		n += 24*len(snap.Containers) + 2*len(snap.Pods) + 20
	}
	out := make([]prometheus.Metric, 0, n)
	ch := sliceSink{&out}
	up := 0.0
	if st.up {
		up = 1
	}
	ch.send(upM.Const(up, sock))
	emitStatic(ch, sock, snap, counts, st)
	return out
}

type sliceSink struct{ s *[]prometheus.Metric }

func (k sliceSink) send(m prometheus.Metric) { *k.s = append(*k.s, m) }

func emitStatic(k sliceSink, sock string, snap *Snapshot, counts map[string]*Counts, st status) {
	ch := k
	for name, n := range counts {
		ch.send(oomM.Const(n.OOMKills, sock, name))
		ch.send(exitsM.Const(n.NonZeroExits, sock, name))
		ch.send(restartEvM.Const(n.RestartEvents, sock, name))
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
		ch.send(infoM.Const(1, sock, n, shortID(ct.ID), ct.Image, ct.Pod))
		ch.send(stateM.Const(1, sock, n, ct.State))
		if ct.Health != "" {
			for _, h := range withState(healthStates, ct.Health) {
				v := 0.0
				if h == ct.Health {
					v = 1
				}
				ch.send(healthM.Const(v, sock, n, h))
			}
		}
		ch.send(restartsM.Const(ct.Restarts, sock, n))
		ch.send(exitCodeM.Const(ct.ExitCode, sock, n))
		if ct.Created > 0 {
			ch.send(createdM.Const(ct.Created, sock, n))
		}
		if ct.Started > 0 {
			ch.send(startedM.Const(ct.Started, sock, n))
		}
		if ct.Finished > 0 && ct.State == "exited" {
			ch.send(finishedM.Const(ct.Finished, sock, n))
		}
		if _, seen := counts[n]; !seen {
			// Every container has its event counters, from zero.
			ch.send(oomM.Const(0, sock, n))
			ch.send(exitsM.Const(0, sock, n))
			ch.send(restartEvM.Const(0, sock, n))
		}
		if ct.State != "running" && ct.State != "paused" {
			continue
		}
		s, ok := snap.Stats[ct.ID]
		if !ok {
			continue
		}
		ch.send(cpuM.Const(s.CPUSeconds, sock, n))
		ch.send(memM.Const(s.MemUsage, sock, n))
		ch.send(memLimitM.Const(s.MemLimit, sock, n))
		ch.send(pidsM.Const(s.PIDs, sock, n))
		ch.send(netRxM.Const(s.NetRxBytes, sock, n))
		ch.send(netTxM.Const(s.NetTxBytes, sock, n))
		ch.send(blockRM.Const(s.BlockRead, sock, n))
		ch.send(blockWM.Const(s.BlockWritten, sock, n))
	}
	for s, n := range byState {
		ch.send(containersM.Const(float64(n), sock, s))
	}
	podByState := map[string]int{}
	for _, s := range podStates {
		podByState[s] = 0
	}
	for _, p := range snap.Pods {
		podByState[p.State]++
		ch.send(podStateM.Const(1, sock, p.Name, p.State))
		ch.send(podCtrsM.Const(float64(p.Containers), sock, p.Name))
	}
	for s, n := range podByState {
		ch.send(podsM.Const(float64(n), sock, s))
	}
	ch.send(imagesM.Const(float64(snap.Images), sock))
	ch.send(imageBytesM.Const(snap.ImageBytes, sock))
	ch.send(volumesM.Const(float64(snap.Volumes), sock))
}
