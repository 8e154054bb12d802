#!/usr/bin/python3
"""Executes notebooks headlessly with the project's tslab kernel (Debian's nbclient / nbformat /
nbconvert; started by `lvdm notebooks`, which sets JUPYTER_PATH and friends to <project>/.jupyter).

Stops at the first cell error and prints that cell's real error text: tslab reports a thrown
error, a TypeScript diagnostic or a failed import on the cell's stderr stream, while the
execute_reply nbclient raises from carries an empty message.

Every executed notebook is written (signed, so the notebook server trusts its script outputs) to
OUT/<name>.ipynb, with --html also OUT/<name>.html; a failing notebook is written too, up to the
failing cell. One JSON line per notebook goes to OUT/summary.jsonl (name, ok, seconds, cells), the
kernel process's own output, when there is any, to OUT/<name>.kernel.log.

usage: run_notebooks.py --out DIR [--html] [--timeout S] [--kernel NAME] NOTEBOOK...
"""
import argparse
import json
import os
import sys
import time


def cell_error_text(cell):
    """The error a failed cell reported: tslab's stderr stream, else any error output."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            tb = "\n".join(out.get("traceback", []))
            parts.append(tb or "%s: %s" % (out.get("ename", ""), out.get("evalue", "")))
    return "".join(parts).strip()


def write_outputs(nb, name, out_dir, html):
    import nbformat
    from nbformat.sign import NotebookNotary

    path = os.path.join(out_dir, name + ".ipynb")
    NotebookNotary().sign(nb)
    tmp = path + ".tmp-%d" % os.getpid()
    with open(tmp, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)
    os.replace(tmp, path)
    written = [path]
    if html:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(nb)
        hpath = os.path.join(out_dir, name + ".html")
        tmp = hpath + ".tmp-%d" % os.getpid()
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(tmp, hpath)
        written.append(hpath)
    return written


def run_one(path, args):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    name = os.path.splitext(os.path.basename(path))[0]
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=args.kernel,
        timeout=args.timeout,
        startup_timeout=120,
        allow_errors=False,
        resources={"metadata": {"path": args.root}},
    )
    # The cell being executed (a cell the kernel died in never gets an execution count).
    current = {"index": None}

    def on_cell_start(cell, cell_index, **_):
        current["index"] = cell_index

    client.on_cell_start = on_cell_start
    t0 = time.time()
    failure = None
    # The kernel process's own output (not the cells': those come as messages) goes to a log file:
    # node prints there only when the kernel itself fails (its tail is shown then).
    kernel_log = os.path.join(args.out, name + ".kernel.log")
    with open(kernel_log, "wb") as klog:
        try:
            client.execute(stdout=klog, stderr=klog)
        except (CellExecutionError, CellTimeoutError, DeadKernelError, RuntimeError) as e:
            # RuntimeError: the kernel did not start or answer (nbclient's startup timeout).
            failure = e
    seconds = time.time() - t0
    if os.path.getsize(kernel_log) == 0:
        os.remove(kernel_log)
    written = write_outputs(nb, name, args.out, args.html)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    result = {"name": name, "ok": failure is None, "seconds": round(seconds, 1), "cells": len(code_cells), "files": written}
    if failure is not None:
        # The failing cell is the one that started last (nbclient stops there).
        idx = current["index"]
        cell = nb.cells[idx] if idx is not None else None
        text = cell_error_text(cell) if cell is not None else ""
        if not isinstance(failure, CellExecutionError):
            # The kernel died, did not start, or the cell timed out: say so before whatever the cell printed.
            text = ("%s: %s" % (type(failure).__name__, str(failure).strip())).strip() + ("\n" + text if text else "")
        elif not text:
            text = str(failure).strip() or type(failure).__name__
        if not isinstance(failure, CellExecutionError) and os.path.exists(kernel_log):
            with open(kernel_log, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-3000:].strip()
            if tail:
                text += "\n----- kernel log (%s) -----\n%s" % (kernel_log, tail)
        result.update({"cell": idx, "execution_count": cell.get("execution_count") if cell is not None else None, "error": text, "source": cell.source if cell is not None else ""})
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--root", default=os.getcwd())
    ap.add_argument("--html", action="store_true")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    ap.add_argument("--kernel", default="tslab")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    summary = os.path.join(args.out, "summary.jsonl")
    status = 0
    with open(summary, "a", encoding="utf-8") as log:
        for path in args.notebooks:
            print("[notebooks] %s ..." % path, flush=True)
            r = run_one(path, args)
            log.write(json.dumps({k: v for k, v in r.items() if k != "source"}) + "\n")
            log.flush()
            if r["ok"]:
                print("[notebooks] %s ok: %d code cells in %.1f s -> %s" % (r["name"], r["cells"], r["seconds"], ", ".join(r["files"])), flush=True)
                continue
            count = r.get("execution_count")
            where = "cell %d (In [%s])" % (r["cell"], count if count is not None else " ") if r.get("cell") is not None else "kernel start"
            print("[notebooks] %s FAILED at %s after %.1f s (partial output: %s)" % (path, where, r["seconds"], r["files"][0]), file=sys.stderr)
            if r.get("source"):
                print("----- cell source -----\n%s\n----- error -----" % r["source"], file=sys.stderr)
            print(r["error"], file=sys.stderr, flush=True)
            status = 1
            break
    return status


if __name__ == "__main__":
    sys.exit(main())
