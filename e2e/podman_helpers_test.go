//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// podmanConf is the containers.conf every e2e Podman runs with: runc (crun
// cannot run on this machine's hybrid cgroups), cgroupfs, lowered ulimits
// (the defaults fail here), and events in a file under the service's own
// --tmpdir so that two services do not see each other's events.
const podmanConf = `[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
`

// PodmanImage is the image podmanImage imports: busybox-static and its
// applet links. There is no registry on these machines.
const PodmanImage = "localhost/busybox:e2e"

// PodmanService is Debian's `podman system service` on its own unix socket
// with its own storage (--root, --runroot, --tmpdir), so that several can
// run side by side. The CLI runs against the same storage with Podman.
type PodmanService struct {
	Name    string // a socket name for --collector.podman.socket
	Dir     string // holds everything below
	Root    string // --root
	RunRoot string // --runroot
	TmpDir  string // --tmpdir (events log, exits, ...)
	Conf    string // containers.conf (CONTAINERS_CONF)
	Path    string // the socket's path
	Socket  string // unix://Path

	t    testing.TB
	mu   sync.Mutex
	proc *Process
}

// startPodmanService starts a Podman API service named name with fresh
// storage and waits until it answers. At cleanup it removes every
// container and pod, stops the service and unmounts its storage.
func startPodmanService(t testing.TB, name string) *PodmanService {
	t.Helper()
	requireRoot(t)
	requireTool(t, "podman")
	requireTool(t, "runc")
	requireTool(t, "conmon")
	dir, err := os.MkdirTemp("", "panther-podman-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	s := &PodmanService{
		Name: name, Dir: dir, t: t,
		Root:    filepath.Join(dir, "root"),
		RunRoot: filepath.Join(dir, "runroot"),
		TmpDir:  filepath.Join(dir, "tmp"),
		Conf:    filepath.Join(dir, "containers.conf"),
		Path:    filepath.Join(dir, "podman.sock"),
	}
	s.Socket = "unix://" + s.Path
	for _, d := range []string{s.Root, s.RunRoot, s.TmpDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(s.Conf, []byte(podmanConf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.cleanup)
	s.Restart()
	return s
}

// Flag is the --collector.podman.socket value for this service.
func (s *PodmanService) Flag() string { return s.Name + "=" + s.Socket }

func (s *PodmanService) env() []string {
	return []string{"CONTAINERS_CONF=" + s.Conf}
}

func (s *PodmanService) globalArgs() []string {
	return []string{"--root", s.Root, "--runroot", s.RunRoot, "--tmpdir", s.TmpDir,
		"--cgroup-manager", "cgroupfs", "--runtime", "runc", "--events-backend", "file"}
}

// Podman runs the podman CLI against the service's storage and returns its
// standard output; stderr is in the error.
func (s *PodmanService) Podman(args ...string) (string, error) {
	cmd := exec.Command("podman", append(s.globalArgs(), args...)...)
	cmd.Env = append(os.Environ(), s.env()...)
	cmd.Dir = s.Dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("podman %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// MustPodman is Podman that fails the test on error.
func (s *PodmanService) MustPodman(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.Podman(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Remove removes a container, running or not, and waits until it is gone.
// Podman 4.3 (Debian 12) can refuse `rm --force` of a container that its
// restart policy is restarting: "container not running", exit 2, 2 of 25
// tries on a loaded machine (the upstream family of podman#16142, fixed in
// 4.4 by podman#17040). A refusal is retried, the last one reported.
func (s *PodmanService) Remove(t testing.TB, name string) {
	t.Helper()
	eventually(t, 60*time.Second, "container "+name+" removed", func() error {
		if _, err := s.Podman("container", "exists", name); err != nil {
			return nil // exit 1: no such container
		}
		if out, err := s.Podman("rm", "--force", "--time", "0", name); err != nil {
			return fmt.Errorf("podman rm --force %s: %v %s", name, err, out)
		}
		return fmt.Errorf("still there after podman rm --force")
	})
}

// PodmanJSON runs the CLI and decodes its JSON output into v.
func (s *PodmanService) PodmanJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	out := s.MustPodman(t, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("podman %s: decode %q: %v", strings.Join(args, " "), out, err)
	}
}

// Run starts a detached container on the service's storage with no
// network (there is none here) and returns its full ID. args go before the
// image; cmd after it.
func (s *PodmanService) Run(t testing.TB, name string, args []string, cmd ...string) string {
	t.Helper()
	all := append([]string{"run", "-d", "--name", name}, args...)
	if !hasNetworkArg(args) {
		all = append(all, "--network", "none")
	}
	all = append(append(all, PodmanImage), cmd...)
	return strings.TrimSpace(s.MustPodman(t, all...))
}

func hasNetworkArg(args []string) bool {
	for _, a := range args {
		if a == "--pod" || strings.HasPrefix(a, "--pod=") || strings.HasPrefix(a, "--network") {
			return true
		}
	}
	return false
}

// CreatePod creates a pod whose infra container runs the e2e image (there
// is no pause image without a registry).
func (s *PodmanService) CreatePod(t testing.TB, name string) {
	t.Helper()
	s.MustPodman(t, "pod", "create", "--name", name, "--network", "none",
		"--infra-image", PodmanImage, "--infra-command", "sleep 1000000")
}

// Up reports whether the service answers on its socket.
func (s *PodmanService) Up() error {
	c, err := net.DialTimeout("unix", s.Path, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("GET /v4.0.0/libpod/_ping HTTP/1.0\r\n\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if !strings.Contains(string(buf[:n]), " 200 ") {
		return fmt.Errorf("ping answered %q", buf[:n])
	}
	return nil
}

// Kill stops the service with SIGKILL (containers keep running: conmon
// watches them, not the service).
func (s *PodmanService) Kill() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// Restart (re)starts the service on the same socket and storage and waits
// until it answers.
func (s *PodmanService) Restart() {
	t := s.t
	t.Helper()
	s.Kill()
	os.Remove(s.Path)
	args := append(s.globalArgs(), "system", "service", "--time=0", s.Socket)
	p := startProcess(t, s.env(), "podman", args...)
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	eventually(t, 30*time.Second, "podman service "+s.Name+" answers", func() error {
		if p.Exited() {
			t.Fatalf("podman service %s exited: %s", s.Name, p.Output())
		}
		return s.Up()
	})
}

func (s *PodmanService) cleanup() {
	s.Podman("rm", "--all", "--force", "--time", "0")
	s.Podman("pod", "rm", "--all", "--force")
	s.Podman("volume", "rm", "--all", "--force")
	s.Kill()
	// The overlay driver leaves its own mounts under --root and --runroot.
	if out, err := exec.Command("findmnt", "-rn", "-o", "TARGET").Output(); err == nil {
		var mine []string
		for _, m := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(m, s.Dir+"/") {
				mine = append(mine, m)
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(mine))) // deepest first
		for _, m := range mine {
			exec.Command("umount", "-l", m).Run()
		}
	}
	os.RemoveAll(s.Dir)
}

// podmanImage imports PodmanImage into the service's storage from
// busybox-static (a directory with /bin/busybox and its applet links) and
// returns its name.
func podmanImage(t testing.TB, s *PodmanService) string {
	t.Helper()
	busybox := requireTool(t, "busybox")
	if out, err := s.Podman("image", "exists", PodmanImage); err == nil {
		_ = out
		return PodmanImage
	}
	root := filepath.Join(s.Dir, "image-root")
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			os.Symlink("busybox", filepath.Join(bin, applet))
		}
	}
	for _, d := range []string{"tmp", "proc", "sys", "dev", "etc"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	tar := exec.Command("tar", "-C", root, "-c", ".")
	imp := exec.Command("podman", append(s.globalArgs(), "import", "-", PodmanImage)...)
	imp.Env = append(os.Environ(), s.env()...)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("podman import: %v: %s", err, out)
	}
	if err := tar.Wait(); err != nil {
		t.Fatalf("tar: %v", err)
	}
	return PodmanImage
}

// PodmanPS is one entry of `podman ps --all --format json` (podman 4.3).
type PodmanPS struct {
	ID        string `json:"Id"`
	Names     []string
	Image     string
	State     string
	ExitCode  int
	Exited    bool
	ExitedAt  int64
	StartedAt int64
	Created   int64
	PodName   string
	IsInfra   bool
}

// PS returns `podman ps --all --pod --format json` by container name (--pod
// fills PodName).
func (s *PodmanService) PS(t testing.TB) map[string]PodmanPS {
	t.Helper()
	var l []PodmanPS
	s.PodmanJSON(t, &l, "ps", "--all", "--pod", "--format", "json")
	out := map[string]PodmanPS{}
	for _, c := range l {
		if len(c.Names) > 0 {
			out[c.Names[0]] = c
		}
	}
	return out
}

// PodmanStat is one entry of `podman stats --no-stream --format json`.
type PodmanStat struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	CPUTime  string `json:"cpu_time"`
	MemUsage string `json:"mem_usage"`
	PIDs     string `json:"pids"`
	NetIO    string `json:"net_io"`
	BlockIO  string `json:"block_io"`
}

// Stats returns `podman stats --no-stream --format json` by name.
func (s *PodmanService) Stats(t testing.TB) map[string]PodmanStat {
	t.Helper()
	var l []PodmanStat
	s.PodmanJSON(t, &l, "stats", "--no-stream", "--format", "json")
	out := map[string]PodmanStat{}
	for _, c := range l {
		out[c.Name] = c
	}
	return out
}

// PodmanEvents returns the container events podman logged for name since
// since, as `podman events --format json` prints them.
func (s *PodmanService) PodmanEvents(t testing.TB, name string, since time.Time) []map[string]any {
	t.Helper()
	out := s.MustPodman(t, "events", "--stream=false", "--since", since.Format(time.RFC3339Nano),
		"--filter", "container="+name, "--format", "json")
	var evs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("podman events line %q: %v", l, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// RootlessPodman is a rootless Podman API service of a test user, on the
// socket --collector.podman.rootless discovers:
// /run/user/<uid>/podman/podman.sock.
type RootlessPodman struct {
	User    string
	UID     string
	Home    string
	Runtime string // XDG_RUNTIME_DIR, /run/user/<uid>
	Socket  string // unix:///run/user/<uid>/podman/podman.sock
	proc    *Process
}

// startRootlessPodman creates the user (with subordinate ids, as useradd
// does on Debian) if it does not exist, starts its rootless service and
// imports PodmanImage into its storage. At cleanup it removes the user's
// containers, stops its service and pause process and deletes the user.
func startRootlessPodman(t testing.TB, user string) *RootlessPodman {
	t.Helper()
	requireRoot(t)
	requireTool(t, "podman")
	requireTool(t, "newuidmap")
	requireTool(t, "runuser")
	busybox := requireTool(t, "busybox")
	created := false
	if err := exec.Command("id", "-u", user).Run(); err != nil {
		if out, err := exec.Command("useradd", "-m", user).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v: %s", user, err, out)
		}
		created = true
	}
	uid, err := exec.Command("id", "-u", user).Output()
	if err != nil {
		t.Fatal(err)
	}
	r := &RootlessPodman{User: user, UID: strings.TrimSpace(string(uid)), Home: "/home/" + user}
	r.Runtime = "/run/user/" + r.UID
	r.Socket = "unix://" + filepath.Join(r.Runtime, "podman", "podman.sock")
	if err := os.MkdirAll(r.Runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	exec.Command("chown", user+":", r.Runtime).Run()
	conf := filepath.Join(r.Home, "panther-containers.conf")
	if err := os.WriteFile(conf, []byte(podmanConf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Podman("rm", "--all", "--force", "--time", "0")
		if r.proc != nil {
			r.proc.Kill()
		}
		if b, err := os.ReadFile(filepath.Join(r.Runtime, "libpod", "tmp", "pause.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		os.RemoveAll(r.Runtime)
		if created {
			exec.Command("userdel", "-r", "-f", user).Run()
		}
	})
	// The image: busybox-static and its applet links, imported as the user.
	img := filepath.Join(r.Home, "panther-image")
	os.MkdirAll(filepath.Join(img, "bin"), 0o755)
	os.MkdirAll(filepath.Join(img, "tmp"), 0o755)
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(img, "bin", "busybox"), data, 0o755)
	list, _ := exec.Command(busybox, "--list").Output()
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" {
			os.Symlink("busybox", filepath.Join(img, "bin", a))
		}
	}
	exec.Command("chown", "-R", user+":", conf, img).Run()
	if out, err := r.shell("tar -C " + img + " -c . | podman import - " + PodmanImage); err != nil {
		t.Fatalf("rootless podman import: %v: %s", err, out)
	}
	r.proc = startProcess(t, nil, "runuser", append([]string{"-u", user, "--"}, append(r.env(), "podman", "system", "service", "--time=0")...)...)
	path := strings.TrimPrefix(r.Socket, "unix://")
	eventually(t, 30*time.Second, "rootless podman service answers", func() error {
		if r.proc.Exited() {
			t.Fatalf("rootless podman service exited: %s", r.proc.Output())
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err != nil {
			return err
		}
		c.Close()
		return nil
	})
	return r
}

func (r *RootlessPodman) env() []string {
	return []string{"env", "HOME=" + r.Home, "XDG_RUNTIME_DIR=" + r.Runtime,
		"CONTAINERS_CONF=" + filepath.Join(r.Home, "panther-containers.conf")}
}

func (r *RootlessPodman) shell(script string) (string, error) {
	cmd := exec.Command("runuser", append([]string{"-u", r.User, "--"}, append(r.env(), "sh", "-c", "cd && "+script)...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Podman runs the podman CLI as the user and returns its standard output.
func (r *RootlessPodman) Podman(args ...string) (string, error) {
	cmd := exec.Command("runuser", append([]string{"-u", r.User, "--"}, append(r.env(), append([]string{"podman"}, args...)...)...)...)
	cmd.Dir = "/"
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("podman (as %s) %s: %v: %s", r.User, strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}
