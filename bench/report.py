#!/usr/bin/env python3
"""Results of bench/compare.sh: tag JSON lines, build the table and the plot.

  report.py tag --server S --version V --scenario X --params JSON --run ID --seconds N
      reads one natter-bench JSON line on stdin, adds those fields, prints it
  report.py table RESULTS.jsonl [--write] --benchmarks BENCHMARKS.md --plot PNG
      prints the markdown table; with --write also replaces the part of
      BENCHMARKS.md between <!-- compare:begin --> and <!-- compare:end -->
      (appending the markers if missing) and draws the plot (matplotlib)

Only the standard library is needed for the table; the plot needs matplotlib
(bench/.venv, made by compare.sh).
"""
import argparse
import json
import os
import sys

# natterd-fsync: natterd with [store] fsync = true, run only for the scenarios
# that write (its column stands next to natterd's; ratios use natterd's).
SERVERS = ["natterd", "natterd-fsync", "ejabberd", "prosody"]
NAMES = {"natterd": "natterd", "natterd-fsync": "natterd fsync=on", "ejabberd": "ejabberd", "prosody": "Prosody"}
BEGIN = "<!-- compare:begin -->"
END = "<!-- compare:end -->"


def dig(d, *paths):
    """First value found at any of the dotted paths."""
    for p in paths:
        v = d
        for k in p.split("."):
            if isinstance(v, dict) and k in v:
                v = v[k]
            else:
                v = None
                break
        if v is not None:
            return v
    return None


def cmd_tag(a):
    line = sys.stdin.read().strip()
    try:
        v = json.loads(line) if line else {}
    except json.JSONDecodeError as e:
        v = {"error": f"bad JSON from natter-bench: {e}: {line[:200]}"}
    if not isinstance(v, dict):
        v = {"result": v}
    v["server"] = a.server
    v["server_version"] = a.version
    v["scenario"] = a.scenario
    v["params"] = json.loads(a.params)
    v["run"] = a.run
    v["wall_secs"] = a.seconds
    print(json.dumps(v, separators=(",", ":")))


# ---------------------------------------------------------------- metrics
# Each row: (label, better, function(records of one server) -> value or None)
# better: "low" or "high" (for the reader; ratios are always natterd / other).


def by(recs, scenario, **params):
    out = []
    for r in recs:
        if r.get("scenario") != scenario or "error" in r:
            continue
        if all(r.get("params", {}).get(k) == v or r.get(k) == v for k, v in params.items()):
            out.append(r)
    return out


def first(recs, scenario, **params):
    rs = by(recs, scenario, **params)
    return rs[-1] if rs else None


def idle_steps(recs, scenario="idle"):
    r = first(recs, scenario)
    return (r or {}).get("steps") or []


ORDER = ["idle", "idle-tls", "login", "pairs", "rate", "offline"]

# idle scenarios: (scenario, label prefix)
IDLES = [("idle", "idle"), ("idle-tls", "idle over STARTTLS")]


def rows_for(all_recs):
    rows = []
    for scen, name in IDLES:
        rows += idle_rows(all_recs, scen, name)
    rows += other_rows(all_recs)
    return rows


def idle_rows(all_recs, scen, name):
    """One row per step N (RSS and PSS per session)."""
    rows = []
    ns = sorted({s.get("requested") or s.get("sessions")
                 for rs in all_recs.values() for s in idle_steps(rs, scen)} - {None})

    def per(recs, n, key):
        for s in idle_steps(recs, scen):
            if (s.get("requested") or s.get("sessions")) != n:
                continue
            v = s.get(key)
            held = s.get("sessions", 0)
            if v is None:
                return f"({held:,} of {n:,} held)" if held < n else None
            # a step where logins failed is shown, but not put in a ratio
            return v if held >= n else f"{fmt(v)} ({held:,} of {n:,} held)"
        return None

    for n in ns:
        rss = lambda recs, n=n: per(recs, n, "per_session_kib")
        pss = lambda recs, n=n: per(recs, n, "per_session_pss_kib")

        rows.append((f"{name}: memory per session at {n:,} sessions, KiB (RSS)", "low", rss, scen))
        rows.append((f"{name}: memory per session at {n:,} sessions, KiB (PSS)", "low", pss, scen))
    return rows


def other_rows(all_recs):
    rows = []
    mechs = []
    for rs in all_recs.values():
        for r in rs:
            if r.get("scenario") == "login":
                m = r.get("params", {}).get("mech") or r.get("mech")
                if m and m not in mechs:
                    mechs.append(m)
    def login(recs, m, key):
        r = first(recs, "login", mech=m)
        if not r:
            return None
        if not r.get("ok") and r.get("failed"):
            return "not offered" if "sha-256" in m or "sha256" in m else "all failed"
        v = r.get(key)
        return v if not r.get("failed") else f"{fmt(v)} ({int(r['failed']):,} failed)"

    for m in mechs:
        rows.append((f"login: logins/s, {m.upper()}", "high", lambda recs, m=m: login(recs, m, "logins_per_sec"), "login"))
        rows.append((f"login: server CPU ms per login, {m.upper()}", "low",
                     lambda recs, m=m: login(recs, m, "server_cpu_ms_per_login"), "login"))
    pairs = lambda recs: first(recs, "pairs") or {}
    rows += [
        ("pairs: messages delivered/s", "high",
         lambda recs: dig(pairs(recs), "delivered_per_sec", "msgs_per_sec", "messages_per_sec", "rate"), "pairs"),
        ("pairs: messages per server CPU-second", "high",
         lambda recs: dig(pairs(recs), "msgs_per_server_cpu_sec", "messages_per_server_cpu_sec",
                          "per_server_cpu_sec", "msgs_per_cpu_sec"), "pairs"),
        ("pairs: latency p50, ms", "low", lambda recs: ms(dig(pairs(recs), "latency_us.p50")), "pairs"),
        ("pairs: latency p99, ms", "low", lambda recs: ms(dig(pairs(recs), "latency_us.p99")), "pairs"),
        ("pairs: latency p99.9, ms", "low", lambda recs: ms(dig(pairs(recs), "latency_us.p999")), "pairs"),
        ("rate: highest rate with p99 < 2 ms, msg/s", "high", best_rate, "rate"),
        ("offline: drain rate on login, msg/s", "high", lambda recs: offline(recs, "drain_msgs_per_sec"), "offline"),
        ("offline: drain time, s", "low", lambda recs: offline(recs, "drain_secs"), "offline"),
        ("offline: messages stored/s while offline", "high", lambda recs: offline(recs, "store_msgs_per_sec"), "offline"),
    ]
    return rows


def offline(recs, key):
    r = first(recs, "offline")
    if not r:
        return None
    v = r.get(key)
    got, k = r.get("received"), r.get("count")
    if key.startswith("drain") and v is not None and got is not None and k and got < k:
        return f"{fmt(v)} (only {int(got):,} of {int(k):,} arrived)"
    return v


def best_rate(recs):
    r = first(recs, "rate")
    if not r:
        return None
    if r.get("best_rate") is not None:
        return r["best_rate"]
    rates = [st.get("rate") for st in r.get("steps") or [] if st.get("rate")]
    # none of the steps met the limit: say so rather than print a zero
    return f"< {min(rates):,}" if rates else None


def rate_rows(all_recs):
    """One row per offered rate: p99 (ms) and whether the server kept up."""
    rates = sorted({st.get("rate") for rs in all_recs.values() for r in by(rs, "rate")
                    for st in r.get("steps") or [] if st.get("rate")})
    rows = []
    for rate in rates:
        def f(recs, rate=rate):
            r = first(recs, "rate")
            for st in (r or {}).get("steps") or []:
                if st.get("rate") == rate:
                    p99 = ms(dig(st, "latency_us.p99"))
                    if p99 is None:
                        return None
                    return p99 if st.get("kept_up", True) else fmt(p99) + " (fell behind)"
            return None
        rows.append((f"rate: p99 at {rate:,} msg/s offered, ms", "low", f, "rate"))
    return rows


def ms(us):
    return None if us is None else us / 1000.0


def fmt(v):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def ratio(a, b):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        return "—"
    r = a / b
    return f"{r:.2f}×" if r < 10 else f"{r:.0f}×" if r >= 100 else f"{r:.1f}×"


def load(path):
    recs = {s: [] for s in SERVERS}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if r.get("server") in recs:
                recs[r["server"]].append(r)
    return recs


def errors(recs):
    out = []
    for s in SERVERS:
        for r in recs[s]:
            if "error" in r:
                p = r.get("params", {})
                detail = ", ".join(f"{k}={v}" for k, v in p.items())
                out.append(f"{NAMES[s]} `{r.get('scenario')}` ({detail}): {str(r['error'])[:160]}")
    return out


def columns(recs):
    """The servers shown: natterd, ejabberd and Prosody always, natterd-fsync
    when the results have it."""
    return [s for s in SERVERS if s != "natterd-fsync" or recs.get(s)]


def table(recs):
    rows = rows_for(recs)
    cols = columns(recs)
    lines = [
        "| metric | better | " + " | ".join(NAMES[s] for s in cols) + " | natterd / ejabberd | natterd / Prosody |",
        "| --- | --- | " + " | ".join("---:" for _ in cols) + " | ---: | ---: |",
    ]
    values = {}
    extra = rate_rows(recs)
    at = next((i + 1 for i, row in enumerate(rows) if row[0].startswith("rate: highest")), len(rows))
    for label, better, f, _ in rows[:at] + extra + rows[at:]:
        v = {s: f(recs[s]) for s in SERVERS}
        if all(x is None for x in v.values()):
            continue
        values[label] = v
        lines.append(
            f"| {label} | {'lower' if better == 'low' else 'higher'} | "
            + " | ".join(fmt(v[s]) for s in cols)
            + f" | {ratio(v['natterd'], v['ejabberd'])} | {ratio(v['natterd'], v['prosody'])} |"
        )
    return "\n".join(lines), values


def header_text(recs, path, plot_rel):
    run = next((r.get("run") for s in SERVERS for r in recs[s] if r.get("run")), "?")
    versions = []
    for s in SERVERS:
        v = next((r.get("server_version") for r in recs[s] if r.get("server_version")), None)
        if v and v not in versions:
            versions.append(v)
    params = {}
    for s in SERVERS:
        for r in recs[s]:
            params.setdefault(r.get("scenario"), r.get("params"))
    gen = {}
    for s in SERVERS:
        for r in recs[s]:
            if r.get("generator_cpu_secs") is not None and r.get("server_cpu_secs"):
                gen.setdefault(s, []).append((r["scenario"], r["generator_cpu_secs"], r["server_cpu_secs"]))
    p = " · ".join(f"`{k}` {json.dumps(v, separators=(',', ':'))}" for k, v in params.items() if k)
    return run, versions, p, gen


def notes(recs):
    """Sentences for the parts of the run that are not plain c2s with fsync off."""
    out = ""
    if any(first(recs[s], "idle-tls") for s in SERVERS):
        out += (" The `idle over STARTTLS` rows hold the same sessions over STARTTLS (a self-signed "
                "ECDSA P-256 certificate on each server: natterd's own, the harness's for ejabberd "
                "and Prosody).")
    if recs.get("natterd-fsync"):
        ran = {r.get("scenario") for r in recs["natterd-fsync"]}
        scen = [x for x in ORDER if x in ran] + sorted(ran - set(ORDER) - {None})
        out += (" natterd's delivery contract is on in every run (a message is committed to the "
                "recipient's queue before the sender's XEP-0198 ack covers it): the `natterd` column "
                "runs with `[store] fsync = false` (acked messages survive a crash of natterd), the "
                "`natterd fsync=on` column is the same natterd with `fsync = true` (they survive a "
                f"power loss too), run for {', '.join(scen)}; the ratios are those of the `natterd` column.")
    return out


def markdown(recs, path, plot_rel):
    tbl, _ = table(recs)
    run, versions, params, gen = header_text(recs, path, plot_rel)
    rel = os.path.relpath(path, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = [
        BEGIN,
        "<!-- written by bench/compare.sh (bench/report.py); edits here are replaced on the next run -->",
        "## natterd, ejabberd and Prosody side by side",
        "",
        f"Run `{run}` of `bench/compare.sh` ({', '.join(versions)}); raw lines in `{rel}`. "
        "Same machine, same run: each server pinned to CPU 0 (`taskset -c 0`), natter-bench "
        "to CPU 1; loopback, plain c2s (no TLS), domain `localhost`, credentials stored as "
        "SCRAM-SHA-1 keys, stream management (XEP-0198) on, offline storage on, message "
        "archiving off, no shapers or rate limits, each server's default embedded storage "
        "(natterd's store, ejabberd's Mnesia, Prosody's internal files), logging at warning. "
        "Every scenario starts from a freshly booted server. Ratios are natterd / other: "
        "above 1 is better for natterd where higher is better, below 1 where lower is better."
        + notes(recs),
        "",
        tbl,
        "",
        f"![natterd, ejabberd and Prosody side by side]({plot_rel})",
        "",
        f"Parameters: {params}.",
    ]
    errs = errors(recs)
    if errs:
        out += ["", "Runs that failed or are unsupported:", ""] + [f"- {e}" for e in errs]
    if gen:
        g = []
        for s, items in gen.items():
            tot_g = sum(x[1] for x in items)
            tot_s = sum(x[2] for x in items)
            g.append(f"{NAMES[s]} runs: generator {tot_g:.1f} CPU-s against server {tot_s:.1f} CPU-s")
        out += ["", "Load generator's own CPU (it must stay below the server's): " + "; ".join(g) + "."]
    out += ["", "Reproduce: `bench/compare.sh` (see `bench/README.md`).", END]
    return "\n".join(out)


def write_benchmarks(md_path, block):
    text = open(md_path).read() if os.path.exists(md_path) else "# natter benchmarks\n"
    if BEGIN in text and END in text:
        pre = text[: text.index(BEGIN)]
        post = text[text.index(END) + len(END):]
        text = pre + block + post
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(md_path, "w") as f:
        f.write(text)


def plot(recs, png):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: matplotlib missing, no plot (compare.sh makes bench/.venv)", file=sys.stderr)
        return False
    colors = {"natterd": "#2a7ab0", "natterd-fsync": "#85c1e9", "ejabberd": "#c0392b", "prosody": "#7f8c8d"}
    cols = columns(recs)
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    fig.suptitle("natterd vs ejabberd vs Prosody (same machine, same run; server on 1 core)")

    ax = axes[0][0]
    for scen, style, suffix in (("idle", "o-", ""), ("idle-tls", "s--", " (STARTTLS)")):
        for s in SERVERS:
            pts = [((st.get("requested") or st.get("sessions")), st.get("per_session_kib"))
                   for st in idle_steps(recs[s], scen) if st.get("per_session_kib") is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=colors[s],
                        label=NAMES[s] + suffix)
    ax.set_title("idle: RSS per session, KiB (lower is better)")
    ax.set_xlabel("sessions")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)

    _, values = table(recs)

    def bars(ax, labels, title, log=False):
        import numpy as np

        labels = [l for l in labels if l in values]
        if not labels:
            ax.set_visible(False)
            return
        x = np.arange(len(labels))
        shown = [s for s in cols if any(isinstance(values[l][s], (int, float)) for l in labels)]
        w = 0.8 / max(len(shown), 1)
        for i, s in enumerate(shown):
            ys = [values[l][s] if isinstance(values[l][s], (int, float)) else 0 for l in labels]
            b = ax.bar(x + (i - (len(shown) - 1) / 2) * w, ys, w, color=colors[s], label=NAMES[s])
            ax.bar_label(b, labels=[fmt(values[l][s]) if isinstance(values[l][s], (int, float)) else "n/a"
                                    for l in labels], fontsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels([l.split(": ", 1)[-1].replace(", ", "\n", 1) for l in labels], fontsize=8)
        ax.set_title(title)
        if log:
            ax.set_yscale("log")

    login_labels = [l for l in values if l.startswith("login: logins/s")]
    bars(axes[0][1], login_labels, "login: full logins/s (higher is better)")
    bars(axes[0][2], ["pairs: messages per server CPU-second"], "pairs: messages per server CPU-second (higher)")
    bars(axes[1][0], ["pairs: latency p50, ms", "pairs: latency p99, ms"], "pairs: latency, ms (lower)")
    ax = axes[1][1]
    for s in cols:
        rr = first(recs[s], "rate")
        pts = [(st["rate"], dig(st, "latency_us.p99") / 1000.0, st.get("kept_up", True))
               for st in (rr or {}).get("steps") or [] if st.get("rate") and dig(st, "latency_us.p99")]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=colors[s], label=NAMES[s])
            lag = [p for p in pts if not p[2]]
            ax.plot([p[0] for p in lag], [p[1] for p in lag], "x", color="black", markersize=9)
    ax.axhline(2.0, color="black", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered msg/s (x: fell behind)")
    ax.set_title("rate: p99 latency, ms, vs offered rate (lower; dashed: 2 ms)")
    ax.legend(fontsize=8)
    bars(axes[1][2], ["offline: drain rate on login, msg/s", "offline: messages stored/s while offline"],
         "offline: msg/s (higher)", log=True)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    return True


def cmd_table(a):
    recs = load(a.results)
    png_rel = os.path.relpath(a.plot, os.path.dirname(os.path.abspath(a.benchmarks)))
    block = markdown(recs, a.results, png_rel)
    print(block)
    if a.write:
        plot(recs, a.plot)
        write_benchmarks(a.benchmarks, block)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tag")
    t.add_argument("--server", required=True)
    t.add_argument("--version", required=True)
    t.add_argument("--scenario", required=True)
    t.add_argument("--params", default="{}")
    t.add_argument("--run", required=True)
    t.add_argument("--seconds", type=int, default=0)
    tb = sub.add_parser("table")
    tb.add_argument("results")
    tb.add_argument("--write", action="store_true")
    tb.add_argument("--benchmarks", required=True)
    tb.add_argument("--plot", required=True)
    a = ap.parse_args()
    {"tag": cmd_tag, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    main()
