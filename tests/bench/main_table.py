"""The main table of docs/performance.md (issue 15): one per key type, the
three proxies and the no-proxy origin measured in the same interleaved
rounds, every cell the median round with the lowest and highest round in
brackets, ratios of the medians marked "(tie)" where the two ranges overlap
(the same rule as the Layer-4 section). Formatting only: bench.py measures."""

COLS = ("gatehouse", "haproxy", "nginx", "origin")
HEAD = {"gatehouse": "gatehouse", "haproxy": "HAProxy", "nginx": "nginx",
        "origin": "no proxy (nginx origin)"}

# Issue 15's goals, per proxy core: (measure key, the other column, ratio,
# "higher" or "lower" is better).
GOALS = (("ka1k", "haproxy", 1.3, "higher"), ("ka64k", "haproxy", 1.3, "higher"),
         ("resumed", "haproxy", 1.3, "higher"), ("hs", "nginx", 1.2, "higher"),
         ("idle", "haproxy", 0.5, "lower"))

LABEL = {"ka1k": "1 KiB keep-alive", "ka64k": "64 KiB keep-alive",
         "resumed": "1 KiB, new connection per request, TLS resumed",
         "hs": "1 KiB, full handshake per request", "idle": "memory per idle connection"}


def per_core(r):
    return r["rps"] / max(r["cpu"], 0.01)


def spread(vals):
    """(median, lowest, highest), or None for no values."""
    if not vals:
        return None
    s = sorted(vals)
    return s[len(s) // 2], s[0], s[-1]


def cell(vals, fmt):
    sp = spread(vals)
    if sp is None:
        return "-"
    text = fmt % sp[0]
    if len(vals) > 1:
        text += (" [" + fmt + "–" + fmt + "]") % (sp[1], sp[2])
    return text


def ratio(a, b):
    """(text, value, tie) of the medians a / b; a tie where the
    lowest-highest ranges of the two overlap."""
    sa, sb = spread(a), spread(b)
    if sa is None or sb is None or not sb[0]:
        return "-", None, False
    tie = len(a) > 1 and len(b) > 1 and sa[1] <= sb[2] and sb[1] <= sa[2]
    return "%.2f" % (sa[0] / sb[0]) + (" (tie)" if tie else ""), sa[0] / sb[0], tie


def values(runs, n, key, f):
    return [f(r) for r in runs.get(n, {}).get(key, [])]


def table(runs, idle):
    """runs[name][key] = [run dicts of the rounds]; idle[name] = one
    idle-memory result. Returns the markdown table."""
    rows = ["| measure | " + " | ".join(HEAD[n] for n in COLS) +
            " | gatehouse / HAProxy | gatehouse / nginx | better |",
            "|---|" + "---|" * (len(COLS) + 3)]

    def row(label, key, f, fmt, better):
        v = {n: values(runs, n, key, f) for n in COLS}
        rows.append("| %s | %s | %s | %s | %s |" % (
            label, " | ".join(cell(v[n], fmt) for n in COLS),
            ratio(v["gatehouse"], v["haproxy"])[0], ratio(v["gatehouse"], v["nginx"])[0], better))

    rps, p99, cpu = (lambda r: r["rps"]), (lambda r: r["p99"]), (lambda r: r["cpu"])
    for key, what in (("ka1k", "1 KiB keep-alive"), ("ka64k", "64 KiB keep-alive"),
                      ("resumed", "1 KiB, TLS resumed, new connection per request")):
        row(what + ", req/s", key, rps, "%.0f", "higher")
        row(what + ", p99 ms", key, p99, "%.2f", "lower")
        row(what + ", proxy CPU (cores)", key, cpu, "%.2f", "-")
        row("**" + what + ", req/s per proxy core**", key, per_core, "%.0f", "higher")
        if key != "resumed":
            row(what + ", proxy CPU µs per request in user space", key,
                lambda r: r.get("user_us", float("nan")), "%.1f", "lower")
            row(what + ", proxy CPU µs per request in the kernel", key,
                lambda r: r.get("sys_us", float("nan")), "%.1f", "lower")
    what = "1 KiB, full handshake per request"
    row(what + ", handshakes/s", "hs", rps, "%.0f", "higher")
    row(what + ", proxy CPU (cores)", "hs", cpu, "%.2f", "-")
    row("**" + what + ", handshakes/s per proxy core**", "hs", per_core, "%.0f", "higher")
    for label, f, fmt in (("VmHWM KiB", lambda r: r["hwm"], "%d"),
                          ("**memory per idle connection, bytes**",
                           lambda r: r["rss_per_conn"], "%.0f")):
        v = {n: [f(idle[n])] if n in idle else [] for n in COLS}
        rows.append("| %s | %s | %s | %s | lower |" % (
            label if "bytes" in label else "%d idle keep-alive connections, %s" % (
                idle_count(idle), label),
            " | ".join(cell(v[n], fmt) for n in COLS),
            ratio(v["gatehouse"], v["haproxy"])[0], ratio(v["gatehouse"], v["nginx"])[0]))
    return "\n".join(rows)


def idle_count(idle):
    for r in idle.values():
        return r.get("conns", 0)
    return 0


def paragraph(runs, idle, key_label):
    """Which per-core ratios are ties, which are outside the spread, and
    where each stands against its goal."""
    ties, apart, goals = [], [], []
    for key in ("ka1k", "ka64k", "resumed", "hs"):
        g = values(runs, "gatehouse", key, per_core)
        for other, name in (("haproxy", "HAProxy"), ("nginx", "nginx")):
            text, val, tie = ratio(g, values(runs, other, key, per_core))
            if val is None:
                continue
            item = "%s %.2f× %s" % (LABEL[key], val, name)
            (ties if tie else apart).append(item)
    for key, other, want, better in GOALS:
        if key == "idle":
            if "gatehouse" not in idle or other not in idle:
                continue
            val = idle["gatehouse"]["rss_per_conn"] / max(idle[other]["rss_per_conn"], 1)
            tie = False
        else:
            _, val, tie = ratio(values(runs, "gatehouse", key, per_core),
                                values(runs, other, key, per_core))
            if val is None:
                continue
        met = val >= want if better == "higher" else val <= want
        goals.append("%s %s %.2f× %s (goal %s %.1f×)%s" % (
            LABEL[key], "meets" if met else "misses", val, "HAProxy" if other == "haproxy"
            else other, "≥" if better == "higher" else "≤", want,
            ", inside the spread" if tie else ""))
    out = "%s, per proxy core: " % key_label
    if len(runs.get("gatehouse", {}).get("ka1k", [])) < 2:
        # one round has no spread: neither a tie nor a difference can be told
        out += ("one round only, so there is no spread and no ratio can be called a tie "
                "or a difference. ")
    else:
        out += ("ties (the two ranges overlap, so the rounds cannot tell the proxies "
                "apart): %s. " % "; ".join(ties)) if ties else "no ratio is a tie. "
        out += ("Outside the spread: %s. " % "; ".join(apart)) if apart else ""
    if goals:
        out += "Against the goals of issue 15: %s." % "; ".join(goals)
    return out
