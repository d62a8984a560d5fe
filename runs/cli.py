"""studio: the command line of Run Studio, after Azure's `az ml run ...` family.

It uses the same config file (``.studio/config.json``) and REST API as the SDK, prints JSON by
default (``-o table`` and ``-o tsv`` too), and filters any output with JMESPath (``--query``).
Errors are one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jmespath
import jmespath.exceptions
import yaml

from runs.sdk import Experiment, Run, ScriptRunConfig, StudioException, Workspace
from runs.sdk._http import path_quote
from runs.sdk._query import quote
from runs.sdk.workspace import write_config

RUNCONFIG_DEFAULT = Path(".studio") / "local.runconfig"
TERMINAL = ("Completed", "Failed", "Canceled")


class CommandError(Exception):
    """A mistake in how the command was called (exit code 2)."""


def say(message: str) -> None:
    """Progress, on stderr (stdout stays parseable), when someone is watching: stderr is a
    terminal, or STUDIO_PROGRESS=1."""
    if sys.stderr.isatty() or os.environ.get("STUDIO_PROGRESS") == "1":
        print(message, file=sys.stderr, flush=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- output ----------------------------------------------------------------------------------------


def emit(result: Any, args: argparse.Namespace) -> None:
    if getattr(args, "query", None):
        try:
            result = jmespath.search(args.query, result)
        except jmespath.exceptions.JMESPathError as error:
            raise CommandError(f"--query {args.query!r} is not valid JMESPath: {error}") from None
    output = getattr(args, "output", "json")
    if output == "json":
        print(json.dumps(result, indent=2, default=str))
        return
    rows = result if isinstance(result, list) else [result]
    if rows and all(isinstance(row, dict) for row in rows):
        columns = list(dict.fromkeys(key for row in rows for key in row if not isinstance(row[key], dict | list)))
        table = [[_cell(row.get(column)) for column in columns] for row in rows]
    else:
        columns, table = ["Result"], [[_cell(row)] for row in rows]
    if output == "tsv":
        for line in table:
            print("\t".join(line))
        return
    widths = [max(len(column), *(len(line[i]) for line in table)) for i, column in enumerate(columns)]
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)))
    print("  ".join("-" * width for width in widths))
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


# --- commands --------------------------------------------------------------------------------------


def _workspace(args: argparse.Namespace) -> Workspace:
    ws = Workspace.from_config(getattr(args, "config", None))
    if getattr(args, "workspace", None):
        ws = Workspace(args.workspace, url=ws.url, token=ws._token)
    return ws


def _run(args: argparse.Namespace) -> Run:
    return Run.get(_workspace(args), args.run_id)


def folder_attach(args: argparse.Namespace) -> Any:
    url, token = args.url, args.token
    if not (url and token):
        try:
            known = Workspace.from_config()
            url, token = url or known.url, token or known._token
        except StudioException:
            raise CommandError("give --url and --token (or set STUDIO_URL and STUDIO_TOKEN)") from None
    ws = Workspace(args.workspace_name, url=url, token=token)
    yours = [item["name"] for item in ws._client.get("workspaces/")]  # the token works
    if args.workspace_name not in yours:
        raise CommandError(
            f"no workspace {args.workspace_name!r} of yours at {url}; yours: {', '.join(yours) or 'none'}"
        )
    config = write_config(Path(".studio") / "config.json", url=url, token=token, workspace=args.workspace_name)
    if not RUNCONFIG_DEFAULT.exists():
        RUNCONFIG_DEFAULT.write_text(
            "# A run configuration: `studio run submit-script -c local -e EXPERIMENT` runs this.\n"
            + yaml.safe_dump({"script": "train.py", "arguments": [], "target": "local"}, sort_keys=False)
        )
    return {"workspace": args.workspace_name, "url": url, "config": str(config), "runconfig": str(RUNCONFIG_DEFAULT)}


def _runconfig(name: str | None) -> dict[str, Any]:
    if name is None:
        return {}
    path = Path(name)
    if not path.exists():
        path = Path(".studio") / f"{name}.runconfig"
    if not path.exists():
        raise CommandError(f"no run configuration {name!r} (looked for {name} and {path})")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise CommandError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise CommandError(f"{path} must hold script, arguments and target")
    return loaded


def run_submit_script(args: argparse.Namespace) -> Any:
    runconfig = _runconfig(args.runconfig)
    script = args.script or runconfig.get("script")
    if not script:
        raise CommandError("name the script (or give a run configuration with -c)")
    arguments = args.arguments if args.script else [*(runconfig.get("arguments") or []), *args.arguments]
    config = ScriptRunConfig(
        source_directory=args.source_directory,
        script=script,
        arguments=arguments,
        compute_target=args.target or runconfig.get("target") or "local",
    )
    experiment = Experiment(_workspace(args), args.experiment_name)
    say(f"Zipping {Path(args.source_directory).resolve()} and submitting {script} to {config.compute_target}...")
    run = experiment.submit(config, tags=_tags(args.tag))
    say(f"Submitted run {run.id} ({run.get_status()}).")
    if args.wait:
        say(f"Waiting for run {run.id}; its output follows.")
        details = run.wait_for_completion(show_output=True, raise_on_error=False, stream=sys.stderr)
        if details["status"] == "Failed":
            message = details.get("error", {}).get("error", {}).get("message", "")
            raise StudioException(f"run {run.id} failed: {message}")
        return details
    return run.get_details()


def _tags(pairs: Sequence[str] | None) -> dict[str, str | None]:
    tags: dict[str, str | None] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not key:
            raise CommandError(f"--tag {pair!r}: write key=value, or key alone")
        tags[key] = value if sep else None
    return tags


def run_list(args: argparse.Namespace) -> Any:
    experiment = Experiment(_workspace(args), args.experiment_name, _create=False)
    runs = Run.list(
        experiment,
        tags=_tags(args.tag) or None,
        status=args.status,
        include_children=args.include_children,
        archived=args.archived,
    )
    found = []
    for run in runs:
        found.append(run._details)
        if args.last and len(found) >= args.last:
            break
    return found


def run_show(args: argparse.Namespace) -> Any:
    """The run's details, its error flat (``{"code", "message", "details", "time"}``), as ``az ml run
    show`` prints it; the SDK's ``get_details()`` keeps Azure's nesting (``{"error": {...}, "time"}``)."""
    details = _run(args).get_details()
    if isinstance(error := details.get("error"), dict) and isinstance(error.get("error"), dict):
        details["error"] = {**error["error"], **({"time": error["time"]} if "time" in error else {})}
    return details


def run_update(args: argparse.Namespace) -> Any:
    run = _run(args)
    if args.add_tag:
        run.set_tags(_tags(args.add_tag))
    if args.remove_tag:
        run.remove_tags(args.remove_tag)
    if args.display_name is not None:
        run.display_name = args.display_name
    if args.description is not None:
        run.description = args.description
    return run.get_details()


def run_cancel(args: argparse.Namespace) -> Any:
    run = _run(args)
    run.cancel()
    return run.get_details()


def run_logs(args: argparse.Namespace) -> None:
    run = _run(args)
    offset = 0
    out = sys.stdout.buffer
    while True:
        status = run.get_status()
        while True:
            data, offset = run._read_log(args.log, offset)
            if not data:
                break
            out.write(data)
            out.flush()
        if not args.follow or status in TERMINAL:
            return None
        time.sleep(1.0)


def run_download(args: argparse.Namespace) -> Any:
    run = _run(args)
    target = Path(args.output_directory)
    names = [name for name in run.get_file_names() if name.startswith(args.prefix or "")]
    if not names:
        say(f"Run {run.id} has no files{f' under {args.prefix}' if args.prefix else ''}.")
    paths = []
    for index, name in enumerate(names, 1):
        say(f"[{index}/{len(names)}] {name}")
        paths.append(str(run.download_file(name, target / name)))
    return paths


def run_export(args: argparse.Namespace) -> Any:
    ws = _workspace(args)
    query = args.filter or ""
    if args.experiment_name:  # the experiment's runs: a condition of the one query language
        query = f"experiment = {quote(args.experiment_name)}" + (f" and ({query})" if query else "")
    if args.metrics is not None:
        names = [name.strip() for name in args.metrics.split(",") if name.strip()]
        path = ws.export_metrics(
            args.file, query=query, names=names, include_children=args.include_children, archived=args.archived
        )
    else:
        columns = [key.strip() for key in (args.columns or "").split(",") if key.strip()]
        path = ws.export_runs(
            args.file,
            query=query,
            sort=args.sort or "",
            columns=columns,
            include_children=args.include_children,
            archived=args.archived,
        )
    with open(path, encoding="utf-8", newline="") as written:
        rows = sum(1 for _ in csv.reader(written)) - 1  # less the header
    say(f"Wrote {rows} {'points' if args.metrics is not None else 'runs'} to {path}.")
    return {"file": str(path), "rows": rows}


def run_bulk(args: argparse.Namespace) -> Any:
    ws = _workspace(args)
    if bool(args.run_ids) == bool(args.filter):
        raise CommandError("name the runs (--run, repeatable) or give --filter, one of the two")
    body: dict[str, Any] = {"action": args.action}
    if args.run_ids:
        body["runIds"] = args.run_ids
    else:
        body["q"] = args.filter
    if args.action == "tag":
        body["tags"] = _tags(args.tag)
    elif args.action == "untag":
        body["keys"] = args.key or []
    elif args.action == "move":
        body["experiment"] = args.experiment_name
    result = ws._client.post(ws._path("runs/bulk/"), json=body)
    say(f"{result['changed']} run{'s' if result['changed'] != 1 else ''} changed, {len(result['skipped'])} skipped.")
    return result


def run_group(args: argparse.Namespace) -> Any:
    ws = _workspace(args)
    metrics = [name.strip() for value in args.metric or [] for name in value.split(",") if name.strip()]
    if args.experiment_name:
        experiment = Experiment(ws, args.experiment_name, _create=False)
        return experiment.get_run_groups(args.by, metrics, query=args.filter or "", archived=args.archived)
    return ws.get_run_groups(args.by, metrics, query=args.filter or "", archived=args.archived)


def experiment_list(args: argparse.Namespace) -> Any:
    ws = _workspace(args)
    return ws._client.get(ws._path("experiments/"))


def compute_list(args: argparse.Namespace) -> Any:
    ws = _workspace(args)
    return ws._client.get(ws._path("compute/"))


def compute_create(args: argparse.Namespace) -> Any:
    ws = _workspace(args)
    # Sent again only if it surely never arrived: the studio does not make creating a target or a
    # rule idempotent (a repeat would answer "already exists", or make a second rule).
    body = {"name": args.name, "description": args.description or ""}
    return ws._client.post(ws._path("compute/"), body, retry_unsent_only=True)


def alert_list(args: argparse.Namespace) -> Any:
    ws = _workspace(args)
    return ws._client.get(ws._path("alerts/"))


def alert_create(args: argparse.Namespace) -> Any:
    """Create a rule; its answer carries the webhook's signing secret, shown this once."""
    if not (args.email or args.member or args.webhook):
        raise CommandError("say who hears about it: --email, --member or --webhook")
    ws = _workspace(args)
    body = {
        "name": args.name or "",
        "experiments": args.experiment_name or [],
        "statuses": [s.strip() for s in args.status.split(",") if s.strip()],
        "emails": [e.strip() for value in args.email or [] for e in value.split(",") if e.strip()],
        "members": [m.strip() for value in args.member or [] for m in value.split(",") if m.strip()],
        "webhookUrl": args.webhook or "",
    }
    return ws._client.post(ws._path("alerts/"), body, retry_unsent_only=True)


def alert_delete(args: argparse.Namespace) -> None:
    ws = _workspace(args)
    ws._client.delete(ws._path(f"alerts/{args.id}/"))
    say(f"Deleted alert rule {args.id}.")


def worker(args: argparse.Namespace) -> None:
    from runs import worker as celery_worker

    ws = _workspace(args)
    target = ws._client.get(ws._path(f"compute/{path_quote(args.target)}/"))
    say(f"Worker for {args.target} (queue {target['queue']}) in workspace {ws.name}; Ctrl-C stops it.")
    celery_worker.serve(ws, target["queue"], concurrency=args.concurrency)


# --- parser ----------------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, output: bool = True) -> None:
    parser.add_argument("-w", "--workspace", help="workspace name (default: from the config)")
    parser.add_argument("--config", help="the SDK config file (default: .studio/config.json here or above)")
    if output:
        parser.add_argument("-o", "--output", choices=["json", "table", "tsv"], default="json")
        parser.add_argument("--query", help="a JMESPath query over the JSON output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studio", description=__doc__.split("\n\n")[0])
    groups = parser.add_subparsers(dest="group", required=True, metavar="{folder,run,experiment,compute,alert,worker}")

    folder = groups.add_parser("folder", help="attach this folder to a workspace").add_subparsers(
        dest="command", required=True
    )
    attach = folder.add_parser("attach", help="write .studio/config.json and .studio/local.runconfig")
    attach.add_argument("-w", "--workspace-name", required=True)
    attach.add_argument("--url", default=os.environ.get("STUDIO_URL"))
    attach.add_argument("--token", default=os.environ.get("STUDIO_TOKEN"))
    attach.add_argument("-o", "--output", choices=["json", "table", "tsv"], default="json")
    attach.set_defaults(handler=folder_attach)

    run = groups.add_parser("run", help="submit, list, show, update, cancel runs; logs; files").add_subparsers(
        dest="command", required=True
    )
    submit = run.add_parser("submit-script", help="submit a script as a run")
    _common(submit)
    submit.add_argument("-e", "--experiment-name", required=True)
    submit.add_argument("-c", "--runconfig", help="a run configuration: a path, or NAME for .studio/NAME.runconfig")
    submit.add_argument("-t", "--target", help="compute target (default: the runconfig's, else local)")
    submit.add_argument("-d", "--source-directory", default=".")
    submit.add_argument("--tag", action="append", help="key=value, or key alone; repeatable")
    submit.add_argument("--wait", action="store_true", help="stream the output until the run ends")
    submit.add_argument("script", nargs="?")
    submit.add_argument("arguments", nargs=argparse.REMAINDER)
    submit.set_defaults(handler=run_submit_script)

    listing = run.add_parser("list", help="runs of an experiment, newest first")
    _common(listing)
    listing.add_argument("-e", "--experiment-name", required=True)
    listing.add_argument("--status", help="only runs with this status")
    listing.add_argument("--tag", action="append", help="key=value (exact) or key (exists); repeatable, ANDed")
    listing.add_argument("--include-children", action="store_true")
    listing.add_argument("--archived", action="store_true", help="the archived runs (no list shows them otherwise)")
    listing.add_argument("--last", type=int, help="at most this many runs")
    listing.set_defaults(handler=run_list)

    group = run.add_parser("group", help="runs grouped by one or two keys, with each metric's mean, std, min, max")
    _common(group)
    group.add_argument("-e", "--experiment-name", help="only this experiment's runs")
    group.add_argument("--by", required=True, help="tags.lr, or two keys: properties.lr,tags.model")
    group.add_argument("--metric", action="append", help="loss, loss.min, accuracy.max; repeatable")
    group.add_argument("--filter", help="the run query language: the runs to group")
    group.add_argument("--archived", action="store_true", help="group the archived runs")
    group.set_defaults(handler=run_group)

    bulk = run.add_parser("bulk", help="tag, untag, cancel, move, archive, restore or purge many runs at once")
    _common(bulk)
    bulk.add_argument(
        "action",
        choices=["tag", "untag", "cancel", "move", "archive", "restore", "purge"],
        help="restore and purge (Owners) act on archived runs",
    )
    bulk.add_argument("-r", "--run", dest="run_ids", action="append", help="a run id; repeatable")
    bulk.add_argument(
        "--filter",
        help="every run this query matches, e.g. 'status = Failed' (for restore and purge: archived runs)",
    )
    bulk.add_argument("--tag", action="append", help="tag: key=value (or key alone); repeatable")
    bulk.add_argument("--key", action="append", help="untag: a tag key; repeatable")
    bulk.add_argument("-e", "--experiment-name", help="move: the experiment to move the runs to")
    bulk.set_defaults(handler=run_bulk)

    export = run.add_parser("export", help="every matching run (or their metric histories) as a CSV file")
    _common(export)
    export.add_argument("--file", required=True, help="where to write the CSV")
    export.add_argument("-e", "--experiment-name", help="only this experiment's runs")
    export.add_argument("--filter", help="the run query language, e.g. 'status = Failed and tags.team = vision'")
    export.add_argument("--sort", help="e.g. -metrics.accuracy.max (default: newest first)")
    export.add_argument("--columns", help="e.g. name,status,properties.lr,metrics.loss.min (default: the studio's)")
    export.add_argument(
        "--metrics", nargs="?", const="", metavar="NAMES", help="the metric histories instead: loss,acc (all if none)"
    )
    export.add_argument("--include-children", action="store_true")
    export.add_argument("--archived", action="store_true", help="export the archived runs")
    export.set_defaults(handler=run_export)

    for name, handler, text in [
        ("show", run_show, "a run's details"),
        ("cancel", run_cancel, "cancel a run (a script run's process is stopped)"),
    ]:
        sub = run.add_parser(name, help=text)
        _common(sub)
        sub.add_argument("-r", "--run", dest="run_id", required=True)
        sub.set_defaults(handler=handler)

    update = run.add_parser("update", help="tags, display name, description")
    _common(update)
    update.add_argument("-r", "--run", dest="run_id", required=True)
    update.add_argument("--add-tag", action="append", help="key=value (or key alone); repeatable")
    update.add_argument("--remove-tag", action="append", help="a tag key; repeatable")
    update.add_argument("--display-name")
    update.add_argument("--description", help="Markdown")
    update.set_defaults(handler=run_update)

    logs = run.add_parser("logs", help="print a run's output")
    _common(logs, output=False)
    logs.add_argument("-r", "--run", dest="run_id", required=True)
    logs.add_argument("--log", default="logs/std_log.txt")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")
    logs.set_defaults(handler=run_logs)

    download = run.add_parser("download", help="download a run's files")
    _common(download)
    download.add_argument("-r", "--run", dest="run_id", required=True)
    download.add_argument("--prefix", help="only files whose path starts with this, e.g. outputs/")
    download.add_argument("-d", "--output-directory", default=".")
    download.set_defaults(handler=run_download)

    experiment = groups.add_parser("experiment", help="experiments").add_subparsers(dest="command", required=True)
    exp_list = experiment.add_parser("list", help="experiments of the workspace, with run counts")
    _common(exp_list)
    exp_list.set_defaults(handler=experiment_list)

    compute = groups.add_parser("compute", help="compute targets").add_subparsers(dest="command", required=True)
    compute_ls = compute.add_parser("list", help="the workspace's compute targets")
    _common(compute_ls)
    compute_ls.set_defaults(handler=compute_list)
    compute_new = compute.add_parser("create", help="register a compute target (a queue for workers)")
    _common(compute_new)
    compute_new.add_argument("name")
    compute_new.add_argument("--description")
    compute_new.set_defaults(handler=compute_create)

    alert = groups.add_parser("alert", help="notifications on run status changes").add_subparsers(
        dest="command", required=True
    )
    alert_ls = alert.add_parser("list", help="the workspace's alert rules (and your watches on single runs)")
    _common(alert_ls)
    alert_ls.set_defaults(handler=alert_list)
    alert_new = alert.add_parser(
        "create",
        help="mail addresses or members, or call a webhook, when runs reach some statuses",
        description="Prints the rule, and for a webhook its signing secret (shown this once).",
    )
    _common(alert_new)
    alert_new.add_argument(
        "-e", "--experiment-name", action="append", help="an experiment to watch (repeatable; default: all)"
    )
    alert_new.add_argument(
        "--status", required=True, help="comma-separated new statuses, e.g. Failed,Canceled,Completed,NotResponding"
    )
    alert_new.add_argument("--email", action="append", help="an address to mail (repeatable, or comma-separated)")
    alert_new.add_argument("--member", action="append", help="a member's username to mail (repeatable)")
    alert_new.add_argument(
        "--webhook", help="a URL to POST a signed JSON body to (a public address, unless the server allows the host)"
    )
    alert_new.add_argument("--name", help="a name for the rule")
    alert_new.set_defaults(handler=alert_create)
    alert_rm = alert.add_parser("delete", help="delete an alert rule")
    _common(alert_rm, output=False)
    alert_rm.add_argument("id", type=int)
    alert_rm.set_defaults(handler=alert_delete)

    work = groups.add_parser("worker", help="run a worker for a compute target (needs CELERY_BROKER_URL)")
    _common(work, output=False)
    work.add_argument("--target", required=True)
    work.add_argument("--concurrency", type=int, default=1, help="runs at a time")
    work.set_defaults(handler=worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.handler(args)
        if result is not None:
            emit(result, args)
        return 0
    except CommandError as error:
        print(f"studio: error: {_one_line(str(error))}", file=sys.stderr)
        return 2
    except StudioException as error:
        print(f"studio: error: {_one_line(error.message)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("studio: interrupted", file=sys.stderr)
        return 130
    except OSError as error:
        print(f"studio: error: {_one_line(str(error))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
