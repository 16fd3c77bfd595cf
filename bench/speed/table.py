"""The speed table: one line per case and size, ours against the peer."""

from __future__ import annotations

from typing import Any


def _ms(t: dict[str, Any] | None) -> str:
    if not t:
        return "-"
    m, iqr = t["median_ms"], t["iqr_ms"]
    digits = 0 if m >= 100 else 1 if m >= 10 else 2 if m >= 1 else 3
    return f"{m:.{digits}f} ± {iqr:.{digits}f}"


def _mb(t: dict[str, Any] | None) -> str:
    if not t or t.get("peak_mb") is None:
        return "-"
    return f"{t['peak_mb']:.1f}"


def _mfu(t: dict[str, Any] | None) -> str:
    if not t or t.get("mfu") is None:
        return "-"
    return f"{100 * t['mfu']:.1f}%"


HEADER = "| operation | size | ours ms | peer ms | ratio | ours MB | peer MB | agree | ours MFU |"


def markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table grouped by section; ratio = peer median / our median (>1: we are faster)."""
    lines: list[str] = []
    group = None
    for row in rows:
        if row.get("group") != group:
            group = row.get("group")
            if lines:
                lines.append("")
            lines += [f"### {group or 'other'}", "", HEADER, "|" + "---|" * 3 + "---:|" * 6]
        label = f"{row['case']} (vs {row['peer']})"
        size = f"{row['size']}: {row.get('shape', '')}".rstrip(": ")
        if row.get("invalid"):  # its numbers are not printed (bench.speed.runner)
            lines.append(f"| {label} | {size} | invalid ({row['invalid']}) | | | | | | |")
            continue
        if row.get("status") != "ok":
            why = row.get("error", row.get("status", "?")).splitlines()[0]
            lines.append(f"| {label} | {size} | {row.get('status')}: {why} | | | | | | |")
            continue
        ours, peer = row["ours"], row["peer_timing"]
        agree = row.get("agree", "n/a")
        agree = "no" if agree.startswith("differs") else agree
        lines.append(
            f"| {label} | {size} | {_ms(ours)} | {_ms(peer)} | {row['ratio']:.2f} | "
            f"{_mb(ours)} | {_mb(peer)} | {agree} | {_mfu(ours)} |"
        )
    return "\n".join(lines) + "\n"


def describe_env(rows: list[dict[str, Any]]) -> str:
    envs = [r["env"] for r in rows if r.get("env")]
    if not envs:
        return ""
    env = envs[-1]
    first = rows[0]
    return (
        f"device {env['device']} ({env.get('gpu') or env['cpu']}), "
        f"{first.get('threads')} torch threads, amp {first.get('amp')}, "
        f"compile {first.get('compile')}, CUDA graphs {first.get('cuda_graph')}, "
        f"torch {env['torch']}, commit {env.get('git_commit')}"
    )


def slower_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Valid rows where the peer is faster (invalid rows have status "invalid")."""
    return [r for r in rows if r.get("status") == "ok" and r["ratio"] < 1.0]
