package podman

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"

	"github.com/pantheros/monitoring/exporter/collector/inputerr"
)

// The Podman API's answers, decoded into only the fields the collector
// reads. The bindings do the connection (unix, tcp, ssh), the API version
// prefix and the error decoding; their typed calls (pkg/bindings/containers,
// pods, images, system ...) are not used because their result types live in
// pkg/domain/entities, which links most of Podman into the exporter: about
// 500 more packages and twice the binary size (13 MB -> 27 MB), resident in
// every host's memory, for a dozen fields.

// listedContainer is one entry of GET /libpod/containers/json.
type listedContainer struct {
	ID        string `json:"Id"`
	Names     []string
	Image     string
	PodName   string
	State     string
	ExitCode  int32
	Exited    bool
	ExitedAt  int64
	StartedAt int64
	Created   time.Time
	Restarts  uint // 5.x services only
	IsInfra   bool
}

// inspectedContainer is what GET /libpod/containers/{id}/json tells beyond
// the list.
type inspectedContainer struct {
	RestartCount int32
	Config       *struct {
		Healthcheck *struct{ Test []string }
	}
	State *struct {
		OOMKilled  bool
		FinishedAt time.Time
		Health     *struct{ Status string }
	}
}

// listedPod is one entry of GET /libpod/pods/json.
type listedPod struct {
	Name       string
	Status     string
	Containers []json.RawMessage
}

// listedImage is one entry of GET /libpod/images/json.
type listedImage struct {
	Size int64
}

// Event is one event of GET /libpod/events (Docker's message shape).
type Event struct {
	ID     string `json:"id,omitempty"`
	Status string `json:"status,omitempty"`
	Type   string
	Action string
	Actor  struct {
		ID         string
		Attributes map[string]string
	}
	TimeNano int64 `json:"timeNano,omitempty"`
}

// get sends GET endpoint (below /v{api}/libpod) on the connection in conn
// and decodes the JSON answer into out; a non-2xx answer becomes the
// service's error (with Code() for the status).
func get(ctx, conn context.Context, endpoint string, params url.Values, out any, pathValues ...string) error {
	client, err := bindings.GetClient(conn)
	if err != nil {
		return inputerr.Wrap("", err)
	}
	resp, err := client.DoRequest(ctx, nil, http.MethodGet, endpoint, params, nil, pathValues...)
	if err != nil {
		return inputerr.Wrap("", err)
	}
	defer resp.Body.Close()
	return process(resp, out)
}

// apiError is a non-2xx answer of the service. Only its status code and
// whether the service said "no such container" are kept: the answer's
// message quotes names, paths and commands of the host.
type apiError struct {
	code   int
	noSuch bool
}

func (e *apiError) Error() string {
	return fmt.Sprintf("API answered %d %s", e.code, http.StatusText(e.code))
}

// Code is the HTTP status, as the bindings' ErrorModel has it.
func (e *apiError) Code() int { return e.code }

// process decodes a 2xx answer into out (when not nil) and turns any other
// into an apiError. It replaces the bindings' APIResponse.Process, whose
// errors quote the answer's body ("unmarshalling into …, data %q").
func process(resp *bindings.APIResponse, out any) error {
	if !resp.IsSuccess() {
		var body struct {
			Cause string `json:"cause"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
		return &apiError{code: resp.StatusCode, noSuch: body.Cause == "no such container"}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return inputerr.Wrap("answer", err)
	}
	return nil
}

// streamEvents opens GET /libpod/events?stream=true and sends each event
// to ch until the stream ends or ctx is done; it closes ch when it returns.
func streamEvents(ctx, conn context.Context, since string, ch chan<- Event) error {
	client, err := bindings.GetClient(conn)
	if err != nil {
		close(ch)
		return inputerr.Wrap("", err)
	}
	params := url.Values{"stream": {"true"}}
	if since != "" {
		params.Set("since", since)
	}
	resp, err := client.DoRequest(ctx, nil, http.MethodGet, "/events", params, nil)
	if err != nil {
		close(ch)
		return inputerr.Wrap("", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		close(ch)
		if err := process(resp, nil); err != nil {
			return err
		}
		return &apiError{code: resp.StatusCode}
	}
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		stop := context.AfterFunc(ctx, func() { resp.Body.Close() })
		defer stop()
		dec := json.NewDecoder(resp.Body)
		for {
			var e Event
			if err := dec.Decode(&e); err != nil {
				return // the caller sees the closed channel
			}
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return nil
}
