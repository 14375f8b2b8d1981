//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// hangingProc makes a copy of the system collector's fixture /proc in which
// loadavg is a FIFO: a read of it blocks until someone writes, like a read
// from a hung device. Release writes a valid loadavg and unblocks it.
type hangingProc struct {
	Dir  string
	fifo string
}

func newHangingProc(t testing.TB) *hangingProc {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "proc")
	if err := os.CopyFS(dst, os.DirFS("../exporter/collector/system/testdata/proc")); err != nil {
		t.Fatal(err)
	}
	h := &hangingProc{Dir: dst, fifo: filepath.Join(dst, "loadavg")}
	os.Remove(h.fifo)
	if err := syscall.Mkfifo(h.fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Release) // never leave a reader blocked behind
	return h
}

// Release unblocks a reader stuck on the FIFO, if any, and puts a regular
// file in its place so later reads do not hang.
func (h *hangingProc) Release() {
	f, err := os.OpenFile(h.fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err == nil {
		f.WriteString("0.10 0.20 0.30 1/100 4242\n")
		f.Close()
	}
	tmp := h.fifo + ".new"
	os.WriteFile(tmp, []byte("0.10 0.20 0.30 1/100 4242\n"), 0o644)
	os.Rename(tmp, h.fifo)
}

// 200 concurrent scrapes against --web.max-requests=10, while the system
// collector hangs (so the ten admitted scrapes stay in flight): the rest get
// 503 at once, nothing crashes, and the exporter serves normally after.
func TestConcurrentScrapesBeyondLimitGet503(t *testing.T) {
	serial(t)
	h := newHangingProc(t)
	e := startExporter(t, "--collector.disable-defaults", "--collector.system",
		"--path.procfs="+h.Dir, "--collector.timeout=3s", "--web.max-requests=10")

	var mu sync.Mutex
	codes := map[int]int{}
	var errs []error
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(e.URL + "/metrics")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[resp.StatusCode]++
		}()
	}
	wg.Wait()
	t.Logf("200 concurrent scrapes, limit 10: %v", codes)
	if len(errs) > 0 {
		t.Fatalf("%d scrapes failed at the connection: %v", len(errs), errs[0])
	}
	for code := range codes {
		if code != 200 && code != 503 {
			t.Errorf("answer %d: want only 200 or 503", code)
		}
	}
	if codes[503] == 0 || codes[200] < 10 {
		t.Errorf("want at least 10 answers 200 and some 503, got %v", codes)
	}
	if e.Exited() {
		t.Fatal("exporter exited")
	}
	h.Release()
	eventually(t, 20*time.Second, "system collector recovers", func() error {
		fams := e.Scrape(t)
		if v, _ := fams.Value("panther_scrape_collector_success", map[string]string{"collector": "system"}); v != 1 {
			return fmt.Errorf("success = %v", v)
		}
		return nil
	})
}

// selfSigned writes a key and certificate for 127.0.0.1 and returns their
// paths and a pool trusting the certificate.
func selfSigned(t *testing.T, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "panther-e2e"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

// TLS and basic auth through --web.config.file: the right password gets
// metrics, a wrong one 401, plain HTTP on the TLS port no metrics; and
// Debian's Prometheus scrapes it over TLS with the password.
func TestTLSAndBasicAuth(t *testing.T) {
	serial(t)
	dir := t.TempDir()
	certPath, keyPath, pool := selfSigned(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := filepath.Join(dir, "web.yml")
	os.WriteFile(webCfg, []byte(fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  prometheus: %s\n",
		certPath, keyPath, hash)), 0o644)

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProcess(t, nil, binary(t), "--web.listen-address="+addr, "--web.config.file="+webCfg,
		"--collector.disable-defaults", "--collector.system")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(user, pass string) (int, string, error) {
		req, _ := http.NewRequest("GET", "https://"+addr+"/metrics", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	eventually(t, 20*time.Second, "TLS exporter answers", func() error {
		if p.Exited() {
			t.Fatalf("exporter exited: %s", p.Output())
		}
		code, _, err := get("prometheus", "s3cret")
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("status %d", code)
		}
		return nil
	})
	if code, body, _ := get("prometheus", "s3cret"); code != 200 || !strings.Contains(body, "panther_cpus ") {
		t.Errorf("right password: %d", code)
	}
	if code, body, _ := get("prometheus", "wrong"); code != 401 || strings.Contains(body, "panther_") {
		t.Errorf("wrong password: %d, want 401 without metrics", code)
	}
	if code, _, _ := get("", ""); code != 401 {
		t.Errorf("no password: %d, want 401", code)
	}
	// Plain HTTP to the TLS port: the server refuses it (400 from Go's TLS
	// server, or a closed connection), and never serves metrics.
	resp, err := http.Get("http://" + addr + "/metrics")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(b), "panther_") {
			t.Errorf("plain HTTP to the TLS port served %d", resp.StatusCode)
		}
	}

	// Prometheus scrapes it over TLS with basic auth.
	passFile := filepath.Join(dir, "pass")
	os.WriteFile(passFile, []byte("s3cret"), 0o600)
	prom := startPrometheus(t, PromConfig{ExtraScrape: fmt.Sprintf(`  - job_name: panther-tls
    scheme: https
    tls_config:
      ca_file: %s
    basic_auth:
      username: prometheus
      password_file: %s
    static_configs:
      - targets: [%q]
`, certPath, passFile, addr)})
	prom.WaitForSeries(t, 60*time.Second, `up{job="panther-tls"} == 1`)
	prom.WaitForSeries(t, 30*time.Second, `panther_cpus{job="panther-tls"}`)
}
