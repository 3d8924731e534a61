"""Render bench/results/*.json: one PNG per comparison under bench/plots/, and the table of
bench/README.md (between its `<!-- table -->` and `<!-- /table -->` markers).

    .venv/bin/pip install -e '.[bench]'     # matplotlib
    .venv/bin/python bench/plot.py          # plots + README table
    .venv/bin/python bench/plot.py --table  # print the table only

A result file is read through its `summary` block (a dict, or a list of them: one row each)
with the keys comparison, what, n, repeats, ours, peer, ratio, goal, met; plan_scale.json, which
predates that block, is read by its own fields. A comparison without a file is "not yet measured".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from oxzep7_deploy.report import style  # noqa: E402  (one look: the deploy report's colours)

RESULTS = BENCH / "results"
PLOTS = BENCH / "plots"
README = BENCH / "README.md"

# comparison -> (result file stem, what it measures), in the order of issue 8
COMPARISONS = {
    1: ("build_once_vs_each", "fleet upgrade from source: build once vs on each host"),
    2: ("rollback_vs_redeploy", "time to restore the old version"),
    3: ("orchestration_overhead", "switch + restart + health"),
    4: ("noop_reapply", "no-op re-apply"),
    5: ("plan_scale", "validate + plan, 10,000-host inventory"),
    6: ("audit_time", "audit of the fleet, time per host"),
    7: ("mirror_push_pull", "bytes sent by the controller: pull from a mirror vs push"),
    8: ("fleet_scale", "apply + rollback, time per host (wall / N)"),
    9: ("restart_gap", "restart gap per switched host"),
}
HEADER = ("| comparison | N | repeats | ours (median) | the other side (median) | ratio | goal | met? |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- |")


def load(stem: str) -> dict[str, Any] | None:
    path = RESULTS / f"{stem}.json"
    return json.loads(path.read_text()) if path.exists() else None


def summaries(number: int, doc: dict[str, Any]) -> list[dict[str, Any]]:
    if "summary" in doc:
        found = doc["summary"]
        return found if isinstance(found, list) else [found]
    adapter = ADAPTERS.get(COMPARISONS[number][0])
    if adapter is not None:
        return [adapter(doc)]
    return [{"comparison": number, "what": COMPARISONS[number][1], "n": "?", "repeats": "?",
             "ours": "see the JSON", "peer": "", "ratio": "", "goal": "", "met": None}]


# ---- result files without a `summary` block, read by their own fields ----

def summary_plan_scale(doc: dict[str, Any]) -> dict[str, Any]:
    ours, peer = doc["ours_validate_plan_s"], doc["peer_ansible_list_hosts_s"]
    goal = doc.get("goal_ratio", 1.05)
    return {"comparison": 5, "what": COMPARISONS[5][1], "n": f"{doc['hosts']:,}",
            "repeats": doc["repeat"], "ours": f"{ours:.2f} s",
            "peer": f"ansible-playbook --list-hosts {peer:.2f} s",
            "ratio": f"ours take {ours / peer:.2f}x its time", "goal": f"<= {goal:g}x its time",
            "met": ours / peer <= goal}


def summary_audit(doc: dict[str, Any]) -> dict[str, Any]:
    ours, peer, goal = doc["ours_audit_s"], doc["peer_setup_plus_shell_s"], doc["goal_s"]
    return {"comparison": 6, "what": COMPARISONS[6][1], "n": str(doc["hosts"]),
            "repeats": doc["repeat"],
            "ours": f"audit {ours:.1f} s ({doc['ours_audit_per_host_s']:.2f} s/host)",
            "peer": f"ansible setup + shell {peer:.1f} s (finds far less)",
            "ratio": f"ours take {ours / peer:.2f}x its time", "goal": f"< {goal:g} s",
            "met": ours < goal}


def summary_build(doc: dict[str, Any]) -> dict[str, Any]:
    runs = {r["mode"]: r for r in doc["runs"]}
    once, each, n = runs["once-per-platform"], runs["on-each-host"], doc["hosts"]
    cpu, wall = each["cpu_s"] / once["cpu_s"], each["wall_s"] / once["wall_s"]
    return {"comparison": 1, "what": "CPython alone, no app: build once vs on each host",
            "n": str(n), "repeats": 1,
            "ours": f"once: {once['wall_s']:.0f} s wall, {once['cpu_s']:.0f} CPU s",
            "peer": f"on each host: {each['wall_s']:.0f} s wall, {each['cpu_s']:.0f} CPU s",
            "ratio": f"{cpu:.1f}x less CPU, {wall:.1f}x less wall",
            "goal": f">= {n}x less CPU, >= 2x less wall", "met": cpu >= n and wall >= 2}


ADAPTERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "plan_scale": summary_plan_scale,
    "audit_time": summary_audit,
    "build_once_vs_each": summary_build,
}


def row(s: dict[str, Any]) -> str:
    met = {True: "met", False: "**NOT met**", None: "?"}[s["met"]]
    return (f"| {s['comparison']}. {s['what']} | {s['n']} | {s['repeats']} | {s['ours']} | "
            f"{s['peer']} | {s['ratio']} | {s['goal']} | {met} |")


def table() -> str:
    lines = [HEADER]
    for number, (stem, what) in COMPARISONS.items():
        doc = load(stem)
        if doc is None:
            lines.append(f"| {number}. {what} | | | not yet measured | | | | |")
            continue
        lines += [row(s) for s in summaries(number, doc)]
    return "\n".join(lines)


def update_readme(text: str) -> None:
    readme = README.read_text()
    new, count = re.subn(r"(<!-- table -->\n)(?:.*?\n)?(<!-- /table -->)",
                         lambda m: m.group(1) + text + "\n" + m.group(2), readme, flags=re.S)
    if count != 1:
        sys.exit(f"{README} needs one <!-- table --> ... <!-- /table --> block")
    README.write_text(new)


# ---- plots ----

def bars(ax: Any, labels: list[str], samples: list[list[float]], colours: list[str]) -> None:
    """Horizontal bars at the medians, each sample a dot; the median is written on its bar (or
    just past the bar's last dot when the bar is too short to hold it)."""
    import statistics

    meds = [statistics.median(s) for s in samples]
    ys = list(range(len(labels)))[::-1]
    xmax = max(max(s) for s in samples) * 1.2
    ax.barh(ys, meds, color=colours, height=0.6, alpha=0.85)
    for y, values, med in zip(ys, samples, meds, strict=True):
        ax.scatter(values, [y] * len(values), color=style.INK, s=14, zorder=3)
        label = f"median {med:.2f} s" if med < 10 else f"median {med:.1f} s"
        if med > 0.3 * xmax:
            ax.text(xmax * 0.01, y + 0.17, label, va="center", fontsize=9, color=style.PAPER,
                    fontweight="bold")
        else:
            ax.text(max(values) + xmax * 0.01, y, label, va="center", fontsize=9)
    ax.set_yticks(ys, labels)
    ax.set_xlim(0, xmax)
    ax.set_xlabel("seconds (bar: median; dots: each run)")
    ax.grid(axis="x", alpha=0.3)


def footer(fig: Any, doc: dict[str, Any]) -> None:
    m = doc.get("machine") or {}
    where = (f"{m.get('nproc', '?')} cores, {m.get('memory_gib', '?')} GiB, {m.get('os', '?')}; "
             f"shared machine, load {m.get('loadavg_start', ['?'])[0]} at the start"
             if isinstance(m, dict) else str(m))
    fig.text(0.01, 0.01, f"{doc.get('when', '')}  |  {where}", fontsize=7, color=style.NEUTRAL)


def plot_rollback(doc: dict[str, Any], plt: Any) -> Any:
    fig, ax = plt.subplots(figsize=(8, 3.2))
    s = doc["samples"]
    labels, runs, colours = (["ours: rollback", "peer: redeploy\n(venv rebuilt)"],
                             [s["ours"], s["peer"]], [style.GOOD, style.NEUTRAL])
    if s.get("minimum"):
        labels.append("hand-written minimum\n(flip, restart, health)")
        runs.append(s["minimum"])
        colours.append(style.ALTERNATIVE)
    bars(ax, labels, runs, colours)
    ok = "met" if doc["goal_met"] else "NOT met"
    title = (f"Time to restore the old Python, N={doc['hosts']} hosts: ours "
             f"{doc['speedup_peer_over_ours']:.1f}x faster than redeploy (goal 10x: {ok})")
    if "ours_over_minimum" in doc:
        title += (f";\n{doc['ours_over_minimum']:.2f}x the minimum's time (goal <= 1.2x: "
                  f"{'met' if doc['minimum_goal_met'] else 'NOT met'})")
    app = doc.get("app")
    ax.set_title(title + (f" [{app['name']}]" if isinstance(app, dict) else ""), fontsize=10)
    return fig


def plot_restart_gap(doc: dict[str, Any], plt: Any) -> Any:
    fig, ax = plt.subplots(figsize=(8, 3.2))
    modes = list(doc["samples"])
    gaps = [[float(v["loop_gap_s"]) for run in doc["samples"][m]["apply"] for v in run.values()]
            for m in modes]
    bars(ax, [f"{m}" for m in modes], gaps, [style.NEUTRAL, style.GOOD, style.GOOD][:len(modes)])
    ax.set_xlabel("seconds without an answer, per switched host")
    ax.set_title(f"Restart gap per switched host, N={doc['hosts']}, {doc['repeat']} repeats "
                 "(request loop from the controller)", fontsize=10)
    return fig


def plot_overhead(doc: dict[str, Any], plt: Any) -> Any:
    sizes = list(doc["by_n"])
    fig, axes = plt.subplots(len(sizes), 1, figsize=(8, 2.9 * len(sizes)), squeeze=False)
    for ax, n in zip(axes[:, 0], sizes, strict=True):
        r = doc["by_n"][n]
        bars(ax, ["ours", "Ansible defaults", "Ansible tuned by hand"],
             [r["samples"][v] for v in ("ours", "ansible_defaults", "ansible_tuned")],
             [style.GOOD, style.NEUTRAL, style.ALTERNATIVE])
        ok = "met" if r["summary"]["met"] else "NOT met"
        ax.set_title(f"N={n}: defaults take {r['speedup_defaults_over_ours']:.2f}x ours, ours take "
                     f"{r['ours_over_tuned']:.2f}x hand-tuned (goal >= 2x, <= 1.2x: {ok})",
                     fontsize=10)
    fig.suptitle("Switch + restart + health, same work", fontsize=11)
    return fig


def plot_noop(doc: dict[str, Any], plt: Any) -> Any:
    fig, ax = plt.subplots(figsize=(8, 3.2))
    s = doc["samples"]
    bars(ax, ["first apply", "second apply\n(no-op)"], [s["first"], s["second"]],
         [style.NEUTRAL, style.GOOD])
    ok = "met" if doc["goal_met"] else "NOT met"
    ax.set_title(f"Re-apply of an applied spec, N={doc['hosts']}: {doc['second_over_first']:.1%} "
                 f"of the first (goal < 10%: {ok})", fontsize=10)
    return fig


def plot_plan_scale(doc: dict[str, Any], plt: Any) -> Any:
    fig, ax = plt.subplots(figsize=(8, 3))
    runs = doc.get("runs") or {"ours": [doc["ours_validate_plan_s"]],
                               "peer": [doc["peer_ansible_list_hosts_s"]]}
    bars(ax, ["ours: validate + plan", "ansible-playbook\n--list-hosts"],
         [runs["ours"], runs["peer"]],
         [style.GOOD, style.NEUTRAL])
    goal = doc.get("goal_ratio", 1.05)
    limit = goal * doc["peer_ansible_list_hosts_s"]
    ax.axvline(limit, color=style.FAILED, linestyle="--", linewidth=1)
    ax.text(limit, 0.5, f" goal {goal:g}x", color=style.FAILED, fontsize=9, va="center")
    ok = "met" if doc["ours_validate_plan_s"] <= limit else "NOT met"
    ax.set_title(f"Plan of a {doc['hosts']:,}-host inventory (goal <= {goal:g}x "
                 f"ansible-playbook --list-hosts: {ok})", fontsize=10)
    return fig


def plot_audit(doc: dict[str, Any], plt: Any) -> Any:
    fig, ax = plt.subplots(figsize=(8, 3.4))
    runs = doc["runs"]
    bars(ax, ["ours: audit", "ours: audit with a spec", "ansible setup + shell\n(finds far less)"],
         [runs["ours"], runs["ours_with_spec"], runs["peer"]], [style.GOOD, style.MUTED, style.NEUTRAL])
    ok = "met" if doc["ours_audit_s"] < doc["goal_s"] else "NOT met"
    ax.set_title(f"Audit of {doc['hosts']} hosts: {doc['ours_audit_per_host_s']:.2f} s per host "
                 f"(goal < {doc['goal_s']:g} s: {ok})", fontsize=10)
    return fig


def plot_build(doc: dict[str, Any], plt: Any) -> Any:
    runs = {r["mode"]: r for r in doc["runs"]}
    fig, (wall, cpu) = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, key, label in ((wall, "wall_s", "wall"), (cpu, "cpu_s", "CPU")):
        bars(ax, ["build once, ship", "compile on\neach host"],
             [[runs["once-per-platform"][key]], [runs["on-each-host"][key]]],
             [style.GOOD, style.NEUTRAL])
        ax.set_xlabel(f"{label} seconds")
    s = doc.get("summary") or summary_build(doc)
    what = "datasette's upgrade" if doc.get("app") else "CPython from source"
    fig.suptitle(f"{what} on N={doc['hosts']} hosts: {s['ratio']} "
                 f"({'met' if s['met'] else 'NOT met'})", fontsize=10)
    return fig


def plot_mirror(doc: dict[str, Any], plt: Any) -> Any:
    fig, ax = plt.subplots(figsize=(8, 3))
    s = doc["samples"]
    mb = [[v / 1e6 for v in s[k]] for k in ("pull_tx_bytes", "push_tx_bytes")]
    ys = [1, 0]
    meds = [sorted(v)[len(v) // 2] for v in mb]
    ax.barh(ys, meds, color=[style.GOOD, style.NEUTRAL], height=0.6, alpha=0.85)
    for y, values, med in zip(ys, mb, meds, strict=True):
        ax.scatter(values, [y] * len(values), color=style.INK, s=14, zorder=3)
        ax.text(max(values) * 1.01 + 0.5, y, f"{med:.1f} MB", va="center", fontsize=9)
    artifact = doc["artifact_bytes"] / 1e6
    ax.axvline(artifact, color=style.FAILED, linestyle="--", linewidth=1)
    ax.text(artifact, 0.5, f" one artifact, {artifact:.0f} MB", color=style.FAILED, fontsize=9)
    ax.set_yticks(ys, ["pull: hosts download\nfrom the mirror", "push: the controller\ncopies"])
    ax.set_xlabel("MB the controller sends in one apply (bar: median; dots: each run)")
    ax.set_title(f"Interpreter to N={doc['hosts']} hosts: {doc['summary']['ratio']} sent with "
                 "artifacts.mirror", fontsize=10)
    return fig


def plot_fleet_scale(doc: dict[str, Any], plt: Any) -> Any:
    """Time per host (the command's wall / N) against N, apply and rollback: a line through the
    medians, each run a dot; the goal as a dashed line at 1.2x the smallest N's median."""
    sizes = [n for n in doc["sizes"] if str(n) in doc["median_per_host_s"]["apply"]]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    colours = {"apply": style.GOOD, "rollback": style.ALTERNATIVE}
    goal = float(doc["goal"].split("<= ")[1].split("x")[0]) if "<= " in doc["goal"] else 1.2
    for cmd, colour in colours.items():
        med = [doc["median_per_host_s"][cmd][str(n)] for n in sizes]
        ax.plot(sizes, med, color=colour, marker="o", label=f"{cmd} (median)")
        dots = [(s["n"], s[f"{cmd}_s"] / s["n"]) for s in doc["samples"]]
        ax.scatter([x for x, _ in dots], [y for _, y in dots], color=colour, s=12, alpha=0.6)
        ax.axhline(goal * med[0], color=colour, linestyle="--", linewidth=0.8)
        ax.text(sizes[-1], goal * med[0], f" {cmd}: goal {goal:g}x N={sizes[0]}", color=colour,
                fontsize=8, va="bottom", ha="right")
    ax.set_xticks(sizes)
    ax.set_xlabel("hosts (N)")
    ax.set_ylabel("seconds per host (wall / N)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ratios = doc["ratio_per_host_largest_to_smallest"]
    ok = "met" if doc["goal_met"] else "NOT met"
    ax.set_title(f"Time per host at N={sizes[-1]} vs N={sizes[0]}: apply {ratios['apply']:.2f}x, "
                 f"rollback {ratios['rollback']:.2f}x (goal <= {goal:g}x: {ok})", fontsize=10)
    return fig


def plot_generic(doc: dict[str, Any], plt: Any) -> Any | None:
    """Bars of the top-level numbers whose key ends in `_s`, for a result without a renderer."""
    pairs = [(k, v) for k, v in doc.items() if k.endswith("_s") and isinstance(v, (int, float))]
    if not pairs:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.6 * len(pairs)))
    bars(ax, [k for k, _ in pairs], [[float(v)] for _, v in pairs], [style.ALTERNATIVE] * len(pairs))
    ax.set_title(doc.get("title") or doc.get("benchmark") or "", fontsize=10)
    return fig


RENDERERS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "rollback_vs_redeploy": plot_rollback,
    "orchestration_overhead": plot_overhead,
    "noop_reapply": plot_noop,
    "plan_scale": plot_plan_scale,
    "audit_time": plot_audit,
    "build_once_vs_each": plot_build,
    "mirror_push_pull": plot_mirror,
    "fleet_scale": plot_fleet_scale,
    "restart_gap": plot_restart_gap,
}


def render_plots() -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "sans-serif",
                         "font.sans-serif": [f.strip() for f in style.FONT_FAMILY.split(",")],
                         "font.size": style.FONT_SIZE, "text.color": style.INK})

    PLOTS.mkdir(exist_ok=True)
    written = []
    for path in sorted(RESULTS.glob("*.json")):
        doc = json.loads(path.read_text())
        # by the benchmark that wrote it: a run saved under another name (--out) plots the same way
        render: Callable[[dict[str, Any], Any], Any] = RENDERERS.get(
            str(doc.get("benchmark", path.stem)), RENDERERS.get(path.stem, plot_generic))
        fig = render(doc, plt)
        if fig is None:
            print(f"{path.name}: nothing to plot", file=sys.stderr)
            continue
        footer(fig, doc)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        out = PLOTS / f"{path.stem}.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", action="store_true", help="print the table only")
    args = parser.parse_args()
    text = table()
    if args.table:
        print(text)
        return 0
    for out in render_plots():
        print(f"wrote {out.relative_to(BENCH.parent)}")
    update_readme(text)
    print(f"updated the table in {README.relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
