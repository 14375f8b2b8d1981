"""Helpers of the fleet benchmarks (fleet-outage.sh, fleet-scale.sh), which
bash cannot do well: reading Prometheus text metrics, counting raw samples
in VictoriaMetrics, watching vmalert's alerts, timing queries.

    fleet.py metric URL NAME            sum of NAME's samples at URL (/metrics)
    fleet.py watch URL OUT              append vmalert's active alerts to OUT every 15s
    fleet.py count VM HOST END_MS SCRAPES SAMPLES INTERVAL CUT_MS RESTORE_MS
    fleet.py alerts OUT CUT RESTORE     summarise OUT by alert and host, per phase
    fleet.py queries VM FILE N START END STEP   time each query of FILE N times
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


def metric(url, name):
    """Sum of the samples of NAME (any labels) in the text at URL."""
    total = 0.0
    for line in get(url).splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key.split("{")[0] == name:
            total += float(value)
    return total


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


def queries(vm, path, n, start, end, step):
    """Each PromQL of PATH (one a line, title<TAB>expr) against
    /api/v1/query_range N times; p50/p99 latency in ms, series returned."""
    rows = []
    for line in open(path):
        title, expr = line.rstrip("\n").split("\t", 1)
        q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step, "nocache": "1"})
        lat = []
        nseries = 0
        err = ""
        for _ in range(n):
            t0 = time.perf_counter()
            try:
                body = json.loads(get(vm + "/api/v1/query_range?" + q, timeout=120))
                nseries = len(body["data"]["result"])
            except Exception as e:
                err = str(e)[:80]
            lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        rows.append({"title": title, "p50_ms": statistics.median(lat),
                     "p99_ms": lat[min(len(lat) - 1, math.ceil(0.99 * len(lat)) - 1)],
                     "series": nseries, "error": err, "expr": expr})
    return rows


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "metric":
        print("%d" % metric(*args))
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
        for r in queries(args[0], args[1], int(args[2]), args[3], args[4], args[5]):
            print(json.dumps(r))
    else:
        sys.exit("unknown command " + cmd)
