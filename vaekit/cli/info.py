"""``vaekit info``: what a model (.vaekit) or container (.vkc) file holds.

The facts come from :func:`vaekit.fitted.describe.describe`; this module renders
them as text (or prints them as JSON).
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from .app import _EPILOG_CODES, app


@app.command(epilog="""\b
Examples:
  vaekit info demo.vaekit
  vaekit info demo.vkc --json
""" + _EPILOG_CODES)
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("--verify", is_flag=True,
              help="For a .vkc file: also make every check decompress makes (CRCs, chunk rows, codes; a full decode when the model is embedded).")
def info(path: str, as_json: bool, verify: bool) -> None:
    """Show what a model (.vaekit) or container (.vkc) file holds.

    Models: estimator, columns and their kinds, network, training summary,
    threshold, fingerprint. Containers: rows, chunks, where the bytes go (embedded
    model, header, ids, codes, missing mask, values, overhead; bytes/row of each,
    and of the codes alone), the model fingerprint they
    need and their header. Also reads the manifest of a
    multi-part .vkc written by the Dask engine.
    """
    if not os.path.exists(path):
        raise click.UsageError(f"{path!r} does not exist")
    from ..fitted.describe import describe  # after the usage checks

    facts = describe(path, verify=verify)
    if as_json:
        click.echo(json.dumps(facts, indent=2, sort_keys=True, allow_nan=False))
    else:
        click.echo(render(facts))


def render(facts: dict[str, Any]) -> str:
    """Human-readable text of :func:`vaekit.fitted.describe.describe`'s dict."""
    lines = [f"{facts['file']}: vaekit {facts['type']}, {facts['file_bytes']} bytes"]
    if facts["type"] == "model":
        arch = facts["architecture"]
        tr = facts["training"]
        lines += [
            f"  estimator     {facts['estimator']} ({facts['input_kind']}), written by vaekit "
            f"{facts['vaekit_version']}",
            f"  fingerprint   {facts['fingerprint']}",
            f"  network       {arch['architecture']}, latent {arch['latent_dim']}, "
            f"hidden {arch['hidden']}, {arch['parameters']:,} parameters",
            f"  training      {tr['rows']} rows, {tr['epochs']} epochs, seed {tr['seed']}",
        ]
        for key, label in (("final_train_elbo_nats", "training"),
                           ("final_val_elbo_nats", "validation")):
            if tr.get(key) is not None:  # shown with the sign used everywhere: -ELBO
                lines.append(f"  {label:<13} negative ELBO {-tr[key]:.4f} nats/row (last "
                             "epoch)")
        if "anomaly" in facts:
            a = facts["anomaly"]
            lines.append(f"  threshold     {a['threshold_nats']:.4f} nats (contamination "
                         f"{a['contamination']}, {a['n_samples']} samples/row; from "
                         f"{a['training_scores']:,} training scores)")
        if facts.get("id_columns"):
            lines.append(f"  id columns    {', '.join(facts['id_columns'])} (used by score "
                         "and compress when the input has them)")
        if "columns" in facts:
            lines.append(f"  columns       {len(facts['columns'])}")
            for c in facts["columns"]:
                extra = f", {c['levels']} levels" if "levels" in c else ""
                lines.append(f"    {c['name']:<24} {c['kind']:<12} {c['dtype']}{extra}")
        else:
            img = facts["image"]
            lines.append(f"  images        (C, H, W) = {tuple(img['shape'])}, layout "
                         f"{img['layout']}, {img['dtype']}")
    elif facts["type"] == "manifest":
        lines += [
            f"  rows          {facts['rows']} in {facts['parts']} part file(s), "
            f"{facts['parts_bytes']} bytes, {facts['bytes_per_row']} bytes/row",
            f"  model         {facts['model_fingerprint']} "
            f"({'stored beside the parts' if facts['model_stored'] else 'not stored'})",
        ]
    else:
        lines += [
            f"  format        version {facts['format_version']}, "
            f"{'complete' if facts['complete'] else 'INCOMPLETE (truncated or damaged)'}",
            f"  rows          {facts['rows']} in {facts['chunks']} chunk(s), "
            f"{facts['bytes_per_row']} bytes/row for the whole file",
        ]
        lines += _breakdown_lines(facts)
        for key, value in facts["header"].items():
            text = json.dumps(value, sort_keys=True)
            if len(text) > 100:
                text = text[:97] + "..."
            lines.append(f"  {key:<13} {text}")
    return "\n".join(lines)


# Rows of the size table, in the order `vaekit info` shows them.
_SECTIONS = (("model", "model"), ("header", "header"), ("ids", "ids"), ("codes", "codes"),
             ("missing_mask", "missing mask"), ("values", "bounded values"),
             ("overhead", "overhead"))


def _breakdown_lines(facts: dict[str, Any]) -> list[str]:
    """The size table of a container: bytes, share of the file and bytes/row per part."""
    sizes = facts.get("size_breakdown")
    if sizes is None:
        why = facts.get("size_breakdown_error", "the file is incomplete")
        return [f"  sizes         not available ({why})"]
    total, rows = facts["file_bytes"], facts["rows"] or 0
    lines = [f"  codes         {facts['codes_bytes_per_row']} bytes/row (what "
             "--bytes-per-row budgets)",
             f"  {'sizes':<13} {'bytes':>12} {'share':>7} {'bytes/row':>10}"]
    for key, label in _SECTIONS + (("total", "total"),):
        n = total if key == "total" else sizes[key]
        share = f"{100.0 * n / total:.1f} %" if total else "-"
        per_row = f"{n / rows:.3f}" if rows else "-"
        lines.append(f"    {label:<11} {n:>12,} {share:>7} {per_row:>10}")
    return lines
