"""Helpers of the fleet benchmarks (fleet-outage.sh, fleet-scale.sh), which
bash cannot do well: reading Prometheus text metrics, counting raw samples
in VictoriaMetrics, watching vmalert's alerts, timing queries.

    fleet.py metric URL NAME [MATCH]    sum of NAME's samples at URL (/metrics),
                                        only those whose labels hold MATCH
    fleet.py by URL NAME LABEL          NAME's samples summed by LABEL, as JSON
    fleet.py watch URL OUT              append vmalert's active alerts to OUT every 15s
    fleet.py count VM HOST END_MS SCRAPES SAMPLES INTERVAL CUT_MS RESTORE_MS
    fleet.py alerts OUT CUT RESTORE     summarise OUT by alert and host, per phase
    fleet.py queries VM FILE N TIME     time each query of FILE N times
"""
import json
import math
import statistics
import sys
import time
import urllib.parse
import urllib.request


def get(url, timeout=60):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def samples(url, name):
    """(labels text, value) of each sample of NAME in the text at URL."""
    for line in get(url).splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key.split("{")[0] == name:
            yield key[len(name):], float(value)


def metric(url, name, match=""):
    """Sum of the samples of NAME whose labels hold MATCH."""
    return sum(v for k, v in samples(url, name) if match in k)


def by(url, name, label):
    """NAME's samples summed by the value of LABEL."""
    out = {}
    for k, v in samples(url, name):
        key = k.split(label + '="', 1)[1].split('"', 1)[0] if label + '="' in k else ""
        out[key] = out.get(key, 0) + v
    return out


def watch(url, out):
    """Every 15s, vmalert's alerts (pending and firing) as one JSON line."""
    while True:
        try:
            data = json.loads(get(url + "/api/v1/alerts", timeout=10))["data"]["alerts"]
            line = {"t": time.time(), "alerts": [
                {"name": a["name"], "instance": a["labels"].get("instance", ""),
                 "role": a["labels"].get("role", ""), "state": a["state"]} for a in data]}
        except Exception as e:  # vmalert briefly away: note it, keep watching
            line = {"t": time.time(), "error": type(e).__name__}
        with open(out, "a") as f:
            f.write(json.dumps(line) + "\n")
        time.sleep(15)


def count(vm, host, end_ms, scrapes, samples, interval, cut_ms, restore_ms):
    """Raw samples VictoriaMetrics holds for HOST's scrape job up to END_MS,
    against what its vmagent scraped (SCRAPES scrapes, SAMPLES samples
    including the 5 series vmagent adds per scrape)."""
    q = urllib.parse.urlencode({
        "match[]": '{instance="%s",job="panther"}' % host,
        "start": "0", "end": "%.3f" % (end_ms / 1000)})
    stored = dups = stale = recorded_in_cut = 0
    up = []
    series = 0
    for line in get(vm + "/api/v1/export?" + q, timeout=300).splitlines():
        s = json.loads(line)
        name = s["metric"]["__name__"]
        ts = s["timestamps"]
        if name.startswith("ALERTS"):
            continue
        if ":" in name:
            # A recording rule's output (vmalert writes it back with the
            # host's labels): evaluated in real time, never backfilled.
            recorded_in_cut += sum(1 for t in ts if cut_ms <= t < restore_ms)
            continue
        series += 1
        vals = s["values"]
        # Staleness markers (NaN written when a series goes away) are not
        # samples the exporter served.
        n = sum(1 for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v)))
        stale += len(vals) - n
        stored += n
        dups += len(ts) - len(set(ts))
        if name == "up":
            up = sorted(ts)
    gaps = [(b - a) / 1000 for a, b in zip(up, up[1:])]
    in_cut = [t for t in up if cut_ms <= t < restore_ms]
    return {
        "host": host, "series": series, "scrapes": int(scrapes), "expected": int(samples),
        "stored": stored, "missing": int(samples) - stored, "duplicates": dups, "stale_markers": stale,
        "up_stored": len(up), "up_in_outage": len(in_cut),
        "outage_slots": round((restore_ms - cut_ms) / 1000 / interval),
        "max_gap_s": max(gaps) if gaps else None, "interval_s": int(interval),
        "recorded_in_outage": recorded_in_cut,
    }


def alerts(out, cut, restore):
    """Per (alert, host): when it was first pending/firing, last seen, and
    the phase in which it first showed (before the cut, during, after)."""
    seen = {}
    for line in open(out):
        rec = json.loads(line)
        for a in rec.get("alerts", []):
            k = (a["name"], a["instance"], a["role"])
            e = seen.setdefault(k, {"first": rec["t"], "first_firing": None, "last": rec["t"]})
            e["last"] = rec["t"]
            if a["state"] == "firing" and e["first_firing"] is None:
                e["first_firing"] = rec["t"]
    last_t = max(json.loads(l)["t"] for l in open(out))

    def phase(t):
        return "before cut" if t < cut else "during cut" if t < restore else "after restore"

    rows = []
    for (name, inst, role), e in sorted(seen.items(), key=lambda kv: kv[1]["first"]):
        control = inst.replace("roam-", "steady-")
        rows.append({
            "alert": name, "instance": inst, "role": role, "first_pending": phase(e["first"]),
            "fired": phase(e["first_firing"]) if e["first_firing"] else "never (pending only)",
            "pending_at_s_after_cut": round(e["first"] - cut),
            "still_active_at_end": e["last"] >= last_t - 1,
            "last_seen_s_after_restore": round(e["last"] - restore),
            "control": "-" if control == inst else
            ("yes" if (name, control, role) in seen else "NO: from the gap"),
        })
    return rows


def queries(vm, path, n, at):
    """Each query of PATH (one a line: title TAB kind TAB query; kind
    "instant" for /api/v1/query at AT, "range:START:STEP" for
    /api/v1/query_range from START to AT, "label:NAME" for the values of the
    label NAME of the series matching the query) run N times in turn;
    latency p50/p99 in ms and what the last answer held."""
    rows = []
    for line in open(path):
        title, kind, expr = line.rstrip("\n").split("\t", 2)
        if kind == "instant":
            url = vm + "/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": at, "nocache": "1"})
        elif kind.startswith("range:"):
            _, start, step = kind.split(":")
            url = vm + "/api/v1/query_range?" + urllib.parse.urlencode(
                {"query": expr, "start": start, "end": at, "step": step, "nocache": "1"})
        else:
            url = vm + "/api/v1/label/%s/values?" % kind.split(":")[1] + urllib.parse.urlencode({"match[]": expr})
        lat = []
        size = 0
        err = ""
        for _ in range(n):
            t0 = time.perf_counter()
            try:
                body = json.loads(get(url, timeout=120))
                d = body["data"]
                size = len(d["result"]) if isinstance(d, dict) else len(d)
            except Exception as e:
                err = str(e)[:80]
            lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        rows.append({"title": title, "kind": kind.split(":")[0], "p50_ms": statistics.median(lat),
                     "p99_ms": lat[min(len(lat) - 1, math.ceil(0.99 * len(lat)) - 1)],
                     "max_ms": lat[-1], "results": size, "error": err, "query": expr})
    return rows


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "metric":
        print("%d" % metric(*args))
    elif cmd == "by":
        print(json.dumps(by(*args)))
    elif cmd == "watch":
        watch(*args)
    elif cmd == "count":
        vm, host = args[0], args[1]
        end_ms, scrapes, samples, interval, cut_ms, restore_ms = map(float, args[2:])
        print(json.dumps(count(vm, host, end_ms, scrapes, samples, interval, cut_ms, restore_ms)))
    elif cmd == "alerts":
        for a in alerts(args[0], float(args[1]), float(args[2])):
            print(f"| {a['alert']} | {a['instance']} | {a['role']} | {a['first_pending']} | {a['fired']} | {a['still_active_at_end']} | {a['control']} |")
    elif cmd == "queries":
        for r in queries(args[0], args[1], int(args[2]), args[3]):
            print(json.dumps(r))
    else:
        sys.exit("unknown command " + cmd)
