#!/usr/bin/env python3
"""Soak load for a running `dsv4 serve` (issue #15): N clients keep requests going for D seconds.

Usage: soak_client.py --port P --key-file F --server-pid PID [--clients 64] [--duration 600] ...

Each client thread loops until the deadline, opening a new connection per request and picking one
of five kinds at random: streamed /v1/chat/completions, /v1/messages and /v1/responses, and
/v1/completions streamed or not. max_tokens is drawn from 16..64 so that requests turn over, and
about --abort-fraction of the streamed ones close the socket after 1-4 SSE events, as a client
that goes away mid-stream does. Meanwhile the server's RSS (/proc/PID/status VmRSS) and its
/metrics gauges are sampled every --sample-interval seconds.

When the deadline passes the clients finish the request they are in, the server is left idle for
--idle seconds, and then the script checks that it is back at rest:
  - dsv4_running_sequences and dsv4_queue_depth are 0;
  - the server counted as many requests on the four endpoints as the clients sent (each request,
    aborted or not, is counted exactly once);
  - the RSS outside the prefix cache (VmRSS minus the dsv4_prefix_cache_bytes gauge, read
    together) at the end exceeds the same figure after the warm-up (the first --warmup seconds of
    load) by at most --rss-margin-mib. The prefix cache is left out because it fills by design up
    to --cache-bytes (4 GiB by default, least recently used evicted first) and the gauge reports
    it. The warm-up is the baseline, not the idle server before the load: the first requests
    allocate what stays allocated (the sequences' caches up to --max-running, the worker threads'
    stacks and malloc arenas), ~130 MiB on the demo model; what must not happen is growth after
    that.
Errors are transport errors, HTTP statuses other than 2xx and 429, and streams that end without
their terminal event (data: [DONE], message_stop, response.completed / response.incomplete) or
carry an error event, unless the client aborted them on purpose. 429s are reported, not errors:
size --max-queue so that every client is admitted.

Latencies are over the completed requests (not aborted, no error): time to first byte is the first
SSE line (servers send the stream's opening event before the request leaves the queue), time to
first token the first event with generated text; a non-streamed completion counts its whole
response for both.

Exit status: 0 when all checks pass, 1 otherwise. Python 3 standard library only.
"""

import argparse
import http.client
import json
import random
import re
import statistics
import sys
import threading
import time

ENDPOINTS = {
    "chat": "/v1/chat/completions",
    "messages": "/v1/messages",
    "responses": "/v1/responses",
    "completions": "/v1/completions",
    "completions_plain": "/v1/completions",
}
# Words for the prompts: distinct prompts keep the prefix cache from answering everything.
WORDS = ("river stone cloud lamp orbit garden python matrix violet engine harbor signal quartz "
         "window forest market ladder copper winter echo").split()


def prompt(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))


def request_body(kind, rng, model, max_tokens):
    """The JSON body of one request of `kind`."""
    temperature = rng.choice([0.0, 0.7, 1.0])
    if kind == "chat":
        return {"model": model, "messages": [{"role": "user", "content": prompt(rng)}], "max_tokens": max_tokens,
                "temperature": temperature, "stream": True, "stream_options": {"include_usage": True}}
    if kind == "messages":
        return {"model": model, "messages": [{"role": "user", "content": prompt(rng)}], "max_tokens": max_tokens,
                "temperature": temperature, "stream": True}
    if kind == "responses":
        return {"model": model, "input": prompt(rng), "max_output_tokens": max_tokens, "temperature": temperature,
                "stream": True}
    body = {"model": model, "prompt": prompt(rng), "max_tokens": max_tokens, "temperature": temperature}
    if kind == "completions":
        body.update(stream=True, stream_options={"include_usage": True})
    return body


class Stream:
    """Reads one SSE stream event by event and decides whether it ended properly."""

    def __init__(self, kind):
        self.kind = kind
        self.events = 0
        self.finished = False  # the terminal event arrived
        self.error = None      # an error event, or an event that does not parse
        self.tokens = None     # generated tokens from the final usage
        self.has_text = False  # an event with generated text arrived

    def on_event(self, name, data):
        """One event (its `event:` name, possibly None, and its joined `data:` lines)."""
        self.events += 1
        if data == "[DONE]":
            if self.kind in ("chat", "completions"):
                self.finished = True
            else:
                self.error = "unexpected [DONE]"
            return
        try:
            j = json.loads(data)
        except ValueError:
            self.error = "bad JSON in event: " + data[:80]
            return
        if self.finished:
            self.error = "event after the terminal one"
        if name == "error" or (self.kind in ("chat", "completions") and isinstance(j, dict) and "error" in j):
            self.error = "error event: " + data[:200]
            return
        if self.kind in ("chat", "completions"):
            if j.get("usage"):
                self.tokens = j["usage"].get("completion_tokens")
            for c in j.get("choices") or []:
                d = c.get("delta", c)
                if d.get("content") or d.get("reasoning_content") or d.get("text"):
                    self.has_text = True
        elif self.kind == "messages":
            t = j.get("type")
            if t == "content_block_delta":
                self.has_text = True
            elif t == "message_delta":
                self.tokens = (j.get("usage") or {}).get("output_tokens")
            elif t == "message_stop":
                self.finished = True
            elif t == "error":
                self.error = "error event: " + data[:200]
        elif self.kind == "responses":
            t = j.get("type", name)
            if t.endswith(".delta"):
                self.has_text = True
            elif t in ("response.completed", "response.incomplete"):
                self.tokens = ((j.get("response") or {}).get("usage") or {}).get("output_tokens")
                self.finished = True
            elif t in ("response.failed", "error"):
                self.error = "error event: " + data[:200]


def one_request(args, rng, kind):
    """Sends one request; returns a result dict (status, timings, tokens, aborted, error)."""
    max_tokens = rng.randint(16, 64)
    body = json.dumps(request_body(kind, rng, args.model, max_tokens))
    streamed = kind != "completions_plain"
    abort_after = rng.randint(1, 4) if streamed and rng.random() < args.abort_fraction else 0
    res = {"kind": kind, "status": None, "ttfb": None, "ttft": None, "total": None, "tokens": None,
           "aborted": False, "error": None}
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=args.read_timeout)
    try:
        conn.request("POST", ENDPOINTS[kind], body=body,
                     headers={"Content-Type": "application/json", "Authorization": "Bearer " + args.key,
                              "anthropic-version": "2023-06-01"})
        r = conn.getresponse()
        res["status"] = r.status
        if r.status // 100 != 2:
            text = r.read().decode("utf-8", "replace")
            if r.status != 429:
                res["error"] = f"HTTP {r.status}: {text[:200]}"
            return res
        if not streamed:
            raw = r.read()
            res["ttfb"] = res["ttft"] = time.monotonic() - t0
            j = json.loads(raw)
            res["tokens"] = (j.get("usage") or {}).get("completion_tokens")
            if not j.get("choices"):
                res["error"] = "no choices: " + raw[:200].decode("utf-8", "replace")
            return res
        s = Stream(kind)
        name, data = None, []
        while True:
            line = r.readline()
            if res["ttfb"] is None and line:
                res["ttfb"] = time.monotonic() - t0
            if not line:  # end of the body (http.client raises if the chunked framing is cut)
                break
            line = line.decode("utf-8").rstrip("\r\n")
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line == "" and data:
                s.on_event(name, "\n".join(data))
                name, data = None, []
                if s.has_text and res["ttft"] is None:
                    res["ttft"] = time.monotonic() - t0
                if abort_after and s.events >= abort_after and not s.finished:
                    res["aborted"] = True
                    return res  # the finally clause closes the socket mid-stream
        res["tokens"] = s.tokens
        if s.error:
            res["error"] = s.error
        elif not s.finished:
            res["error"] = f"{kind} stream ended without its terminal event after {s.events} events"
    except (OSError, http.client.HTTPException, ValueError) as e:
        res["error"] = f"{type(e).__name__}: {e}"
    finally:
        conn.close()
        res["total"] = time.monotonic() - t0
    return res


def client_loop(args, seed, deadline, results, lock):
    rng = random.Random(seed)
    kinds = list(ENDPOINTS)
    while time.monotonic() < deadline:
        res = one_request(args, rng, rng.choice(kinds))
        with lock:
            results.append(res)


def read_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


def read_metrics(port, key):
    """The /metrics samples as {name_with_labels: value}."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + key})
        r = conn.getresponse()
        text = r.read().decode()
        if r.status != 200:
            raise http.client.HTTPException(f"GET /metrics: HTTP {r.status}")
    finally:
        conn.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def endpoint_requests(metrics):
    """Requests the server counted on the generating endpoints, and their statuses."""
    total, by_status = 0, {}
    for k, v in metrics.items():
        m = re.match(r'dsv4_requests_total\{endpoint="([^"]*)",status="(\d+)"\}', k)
        if m and m.group(1) in set(ENDPOINTS.values()):
            total += int(v)
            by_status[m.group(2)] = by_status.get(m.group(2), 0) + int(v)
    return total, by_status


def percentile(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key-file", required=True)
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--model", default="dsv4-demo")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--abort-fraction", type=float, default=0.1)
    ap.add_argument("--sample-interval", type=float, default=5)
    ap.add_argument("--idle", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=None, help="seconds of load before the RSS baseline "
                    "(default: a quarter of --duration, at most 60)")
    ap.add_argument("--rss-margin-mib", type=float, default=64)
    ap.add_argument("--read-timeout", type=float, default=300, help="seconds a read may wait (a stall is an error)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.warmup is None:
        args.warmup = min(60.0, args.duration / 4)
    with open(args.key_file) as f:
        args.key = f.readline().strip()

    rss_start = read_rss_mib(args.server_pid)
    m0 = read_metrics(args.port, args.key)
    cache_mib = lambda m: m.get("dsv4_prefix_cache_bytes", 0) / 2**20
    gen0 = m0.get("dsv4_generation_tokens_total", 0)
    count0, _ = endpoint_requests(m0)

    results, lock = [], threading.Lock()
    t_start = time.monotonic()
    deadline = t_start + args.duration
    threads = [threading.Thread(target=client_loop, args=(args, args.seed * 100003 + i, deadline, results, lock),
                                daemon=True) for i in range(args.clients)]
    for t in threads:
        t.start()

    rss_samples, peak_running, peak_queued, sample_errors, m = [], 0, 0, [], {}
    rss_warm = None  # the first sample after the warm-up, outside the prefix cache
    next_report = t_start + 60
    while any(t.is_alive() for t in threads):
        time.sleep(args.sample_interval)
        try:
            rss_samples.append(read_rss_mib(args.server_pid))
            m = read_metrics(args.port, args.key)
            if rss_warm is None and time.monotonic() - t_start >= args.warmup:
                rss_warm = rss_samples[-1] - cache_mib(m)
            peak_running = max(peak_running, m.get("dsv4_running_sequences", 0))
            peak_queued = max(peak_queued, m.get("dsv4_queue_depth", 0))
        except (OSError, RuntimeError, http.client.HTTPException) as e:
            sample_errors.append(f"{type(e).__name__}: {e}")
        if time.monotonic() >= next_report:
            next_report += 60
            with lock:
                n, bad = len(results), sum(1 for r in results if r["error"])
            rss = rss_samples[-1] if rss_samples else float("nan")
            print(f"  t={time.monotonic() - t_start:5.0f}s requests={n} errors={bad} rss={rss:.1f} MiB "
                  f"(prefix cache {cache_mib(m):.1f}) "
                  f"running={m.get('dsv4_running_sequences', 0):.0f} queued={m.get('dsv4_queue_depth', 0):.0f}",
                  flush=True)
    wall = time.monotonic() - t_start

    time.sleep(args.idle)
    m1 = read_metrics(args.port, args.key)
    rss_end = read_rss_mib(args.server_pid)
    net_end = rss_end - cache_mib(m1)
    server_count, server_by_status = endpoint_requests(m1)
    server_count -= count0
    gen_tokens = m1.get("dsv4_generation_tokens_total", 0) - gen0

    by_status, by_kind = {}, {}
    for r in results:
        by_status[str(r["status"])] = by_status.get(str(r["status"]), 0) + 1
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
    errors = [r for r in results if r["error"]]
    aborted = [r for r in results if r["aborted"]]
    done = [r for r in results if not r["error"] and not r["aborted"] and r["status"] == 200]
    client_tokens = sum(r["tokens"] or 0 for r in done)
    rss_peak = max(rss_samples + [rss_start, rss_end])
    if rss_warm is None:
        rss_warm = rss_samples[-1] - cache_mib(m) if rss_samples else rss_start

    print(f"clients {args.clients}, duration {args.duration:.0f} s (wall {wall:.1f} s incl. the last requests), "
          f"abort fraction {args.abort_fraction}")
    print(f"requests total: {len(results)}  by kind: {json.dumps(by_kind, sort_keys=True)}")
    print(f"by status: {json.dumps(by_status, sort_keys=True)}  (server counted {server_count}: "
          f"{json.dumps(server_by_status, sort_keys=True)} since start)")
    print(f"completed: {len(done)}  aborted on purpose: {len(aborted)}  429s: {by_status.get('429', 0)}  "
          f"errors: {len(errors)}")
    for r in errors[:10]:
        print(f"  error ({r['kind']}): {r['error']}")
    for e in sample_errors[:5]:
        print(f"  sampling error: {e}")
    for name, key in (("time to first byte", "ttfb"), ("time to first token", "ttft"), ("total", "total")):
        xs = [r[key] for r in done if r[key] is not None]
        print(f"{name:>20}: p50 {percentile(xs, 0.5):6.2f} s   p95 {percentile(xs, 0.95):6.2f} s   (n={len(xs)})")
    print(f"tokens/s aggregate: {gen_tokens / wall:.1f} (server's dsv4_generation_tokens_total: {gen_tokens:.0f})   "
          f"{client_tokens / wall:.1f} (usage of the completed requests: {client_tokens})")
    print(f"RSS MiB: idle before the load {rss_start:.1f}  peak {rss_peak:.1f}  end (idle) {rss_end:.1f}, "
          f"of which the prefix cache {cache_mib(m1):.1f} ({m1.get('dsv4_prefix_cache_snapshots', 0):.0f} snapshots)")
    print(f"RSS MiB outside the prefix cache: after {args.warmup:.0f} s warm-up {rss_warm:.1f}  end {net_end:.1f}  "
          f"(end - warm-up {net_end - rss_warm:+.1f}, margin {args.rss_margin_mib:.0f})")
    print(f"gauges after {args.idle:.0f} s idle: running {m1.get('dsv4_running_sequences')}  queued "
          f"{m1.get('dsv4_queue_depth')}  (peaks during the run: running {peak_running:.0f}, queued "
          f"{peak_queued:.0f})")

    failures = []
    if m1.get("dsv4_running_sequences") != 0 or m1.get("dsv4_queue_depth") != 0:
        failures.append("the running / queued gauges are not back to 0")
    if server_count != len(results):
        failures.append(f"the server counted {server_count} requests, the clients sent {len(results)}")
    if errors:
        failures.append(f"{len(errors)} unexpected errors")
    if sample_errors:
        failures.append(f"{len(sample_errors)} failed samples of RSS or /metrics")
    if net_end - rss_warm > args.rss_margin_mib:
        failures.append(f"RSS outside the prefix cache grew by {net_end - rss_warm:.1f} MiB after the warm-up "
                        f"(> {args.rss_margin_mib:.0f})")
    if not done:
        failures.append("no request completed")
    print("FAIL: " + "; ".join(failures) if failures else "PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
