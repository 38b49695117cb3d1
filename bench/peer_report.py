"""Judging and printing bench_peers.py's figures: ratios, targets, the busy rule, the table.

Targets (SPEC section 8, issue 15): every training figure <= 0.8x the fastest installed peer;
inference at batch 1000 <= 0.8x ONNX Runtime; batch-1 latency <= 1.0x ONNX Runtime. A figure
measured while other processes kept more than BUSY_CORES cores busy on average is not judged:
on a 2-core machine their load makes the 2-thread libraries wait for scheduler quanta and the
ratios move by far more than the targets' margins.
"""
import statistics

import benchlib
from peers import NAMES, PEERS

BUSY_CORES = 0.1
# kind -> (target text, the peer compared with ("best": the fastest installed), limit)
TARGETS = {"train": ("<= 0.8x best peer", "best", 0.8),
           "infer": ("<= 0.8x ONNX Runtime", "ort", 0.8),
           "latency": ("<= 1.0x ONNX Runtime", "ort", 1.0)}


def figure_row(fig, label, samples, check, others, unjudged=None):
    """The JSON record of one figure: every contender's times, cnn's ratio to each peer (the
    median of the per-repeat ratios), the fastest peer, the target and whether it is met
    (not judged where `unjudged` gives a reason: smaller sizes than the target's)."""
    # Each contender's per-repeat times too: repeat r of every contender was measured in the
    # same turn, so the ratios can be recomputed from the JSON.
    times = {name: {**s.summary(), "values": s.values} for name, s in samples.items()}
    ratios = {name: benchlib.median_ratio(samples["cnn"], samples[name])
              for name in samples if name != "cnn"}
    best = min(ratios, key=lambda name: times[name]["median"]) if ratios else None
    text, against, limit = TARGETS[fig.kind]
    ref = best if against == "best" else against
    row = {"id": fig.id, "net": fig.net, "kind": fig.kind, "batch": fig.batch, "figure": label,
           "unit": "ms", "times": times, "ratios": ratios, "best_peer": best,
           "ratio_best": ratios.get(best), "target": text, "judged_against": ref,
           "ratio_judged": ratios.get(ref), "check": check, "other_cpu_cores": others}
    row["busy"] = others is not None and others > BUSY_CORES
    row["met"], row["verdict"], row["why_not_judged"] = (
        (None, "n/a", unjudged) if unjudged else _judge(row, limit))
    return row


def _judge(row, limit):
    """(met: True/False/None, the table's verdict, why it was not judged)."""
    if row["ratio_judged"] is None:
        peer = row["judged_against"]
        return None, "n/a", (f"{NAMES[peer]} not installed" if peer else "no peer installed")
    others = row["other_cpu_cores"]
    if others is None:
        return None, "n/a", "other processes' CPU use unknown (no /proc/stat)"
    if row["busy"]:
        return None, "busy", f"busy: other processes used {others:.2f} cores"
    met = row["ratio_judged"] <= limit
    return met, "yes" if met else "NO", None


def _ms(summary, digits):
    return f"{summary['median'] * 1e3:.{digits}f}"


def table_rows(rows, missing):
    """Rows of the printed table: times (ms, medians), ratios, target, met, others.
    `missing` maps the peers that were not measured to why."""
    out = []
    for row in rows:
        digits = 3 if row["kind"] == "latency" else 2
        cells = [row["figure"], _ms(row["times"]["cnn"], digits)]
        for name in PEERS:
            if name in row["times"]:
                cells.append(_ms(row["times"][name], digits))
            else:  # not installed, or not a peer for this kind (ONNX Runtime trains nothing)
                cells.append("skip" if name in missing else "-")
        for name in PEERS:
            ratio = row["ratios"].get(name)
            cells.append("-" if ratio is None else f"{ratio:.2f}")
        best = row["ratio_best"]
        cells.append("-" if best is None else f"{best:.2f} ({row['best_peer']})")
        others = row["other_cpu_cores"]
        cells += [row["target"], row["verdict"], "?" if others is None else f"{others:.2f}"]
        out.append(cells)
    return out


HEADERS = (["figure", "cnn"] + list(PEERS) + [f"/{name}" for name in PEERS]
           + ["/best", "target", "met?", "others"])


def notes(result):
    """The notes under the table: missing peers, failed checks, busy figures, cores used."""
    out = [f"{NAMES[name]} not measured ({why}): its columns say 'skip'"
           for name, why in result["skipped_peers"].items()]
    for row in result["figures"]:
        for label, item in row["check"].items():
            if not item["agrees"]:
                out.append(f"WARNING {row['id']}: {label} disagrees with cnn (max |diff| "
                           f"{item['max_abs_diff']:.2e}): not the same computation")
    busy = [row["id"] for row in result["figures"] if row["busy"]]
    if busy:
        out.append(f"{len(busy)} of {len(result['figures'])} figures measured while busy (other "
                   f"processes above {BUSY_CORES} cores): not judged, do not quote them")
    cores = {}
    for row in result["figures"]:
        for label, summary in row["times"].items():
            if summary["cores_used"] is not None:
                cores.setdefault(label, []).append(summary["cores_used"])
    if cores:
        out.append("cores kept busy while timed (process CPU / wall, median over figures): "
                   + ", ".join(f"{label} {statistics.median(v):.2f}"
                               for label, v in cores.items()))
    return out


def report_text(result):
    """The human-readable report: machine, versions, thread settings, table, notes."""
    env = result["environment"]
    c = env["cnn"]
    lines = [
        f"machine: {env['cpu']}, {env['cores_usable']} usable cores ({env['cores_online']} "
        f"online), {env['os']}; vector flags {' '.join(env['cpu_vector_flags'])}; load average "
        f"at start {env['load_average_at_start']}, at end {result['load_average_at_end']}",
        f"python {env['python']}, numpy {env['numpy']} (BLAS {c['blas']})",
        f"cnn {c['cnn']} from {c['path']}: instruction set {c['isa']} (CPU can run "
        f"{', '.join(c['isa_available'])}), OpenMP {'on' if c['openmp'] else 'off'}, "
        f"{c['threads']} kernel threads; models run {_how_run(env)}",
    ]
    for name, info in env["peers"].items():
        if not info["available"]:
            lines.append(f"{NAMES[name]}: not measured, {info['reason']}")
            continue
        details = ", ".join(f"{k} {v}" for k, v in info.items()
                            if k not in ("available", "thread_setting"))
        lines.append(f"{NAMES[name]}: {details}; threads: {info['thread_setting']}")
    lines += [
        f"threads: {env['threads']}; data: {env['data']}; {env['mode']} run, "
        f"{env['repeats']} repeats, >= {env['min_seconds_per_measurement']} s per measurement",
        "",
        "times: ms per call, medians; /peer: cnn / peer, median of per-repeat ratios (below 1: "
        "cnn faster); others: cores used by other processes meanwhile (0 when idle)",
        benchlib.format_table(result["table"], HEADERS),
    ]
    lines += [""] + [f"note: {n}" for n in result["notes"]]
    lines += ["", f"total benchmark time {result['seconds']:.0f} s"]
    return "\n".join(lines)


def _how_run(env):
    """How cnn's models ran (reports saved before the freezing option lack its key)."""
    if env.get("cnn_frozen"):
        return "through cnn.compile with freezing"
    return "through cnn.compile" if env.get("cnn_compiled") else "eagerly"
