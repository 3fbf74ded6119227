"""Write notebooks/*.ipynb from the cell sources below (run: python tools/build_notebooks.py).

The notebooks are committed without outputs; this script is their source of truth so
that a change shows as a readable diff here. Cells whose output nbval compares carry
``# NBVAL_CHECK_OUTPUT`` and must print only deterministic text.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).resolve().parents[1] / "notebooks"

SETUP = """import plotly.io as pio

import auditlens as al

pio.renderers.default = "plotly_mimetype"  # small outputs; JupyterLab draws them natively
store = al.open_store_or_sample(store_url)"""

#: the report notebooks keep a static SVG of every chart beside plotly's own output, so
#: the executed notebook shows its charts in any viewer (nbviewer, GitHub, VS Code), not
#: only JupyterLab; one kaleido session (the local Chromium, nothing fetched) draws them all
STATIC_SETUP = """import kaleido
import plotly.io as pio

import auditlens as al

pio.renderers.default = "plotly_mimetype+svg"
kaleido.start_sync_server(silence_warnings=True)  # one browser for every chart
store = al.open_store_or_sample(store_url)"""

NOTEBOOKS: dict[str, list[tuple[str, str] | tuple[str, str, list[str]]]] = {
    "compliance_report": [
        (
            "md",
            """# Compliance report

Assesses a framework (SOC 2, ISO/IEC 27001:2022 Annex A, GDPR, or your own YAML) on one
organization's period and writes the PDF an auditor receives, the interactive HTML and a
results file. `auditlens report` runs this notebook with papermill; run it yourself in
JupyterLab to look closer. With the default parameters it runs on the shipped sample data.""",
        ),
        (
            "code",
            """framework = "soc2"  # soc2, iso27001, gdpr, or the path of a framework YAML
organization_id = ""  # empty: the store's first organization
start = ""  # first day, YYYY-MM-DD; empty: the organization's first entry
end = ""  # last day, inclusive; empty: its last entry
allow_open_period = False  # accept a period that has not ended yet (labelled so)
detectors = {}  # detector parameters over the stored context: {"off_hours": {"hours": "07:00-19:00"}}
store_url = ""  # empty: $AUDITLENS_URL, else the shipped sample data
keys = []  # verifier keys you hold (.vkey paths); empty: the store's (the report says so)
output_pdf = "out/compliance_report.pdf"
output_html = ""  # also write the interactive HTML version here
results_json = "out/compliance_report.json"  # population files go beside it
engine = "polars"  # or "spark": the entries read from `lake` by Spark (docs/SCALE.md)
lake = ""  # the lake folder (auditlens lake sync --to) that the spark engine reads
spark = ""  # sc://host:port (Spark Connect), local or duckdb; empty: local if PySpark is installed""",
            ["parameters"],
        ),
        (
            "code",
            STATIC_SETUP
            + """
report = al.build_report(
    store,
    framework,
    organization_id or None,
    start or None,
    end or None,
    progress=False,  # a widget bar would be saved as "evidence: 0%" in the executed notebook
    detectors=detectors,
    allow_open_period=allow_open_period,
    keys=keys or None,
    engine=engine,
    lake=lake or None,
    spark=spark or None,
)
p = report.provenance
print(report.framework.name)
print(f"{report.organization_name} ({report.organization_id})")
print(f"period {p['parameters']['start']} → {p['parameters']['end']}, {p['rows']:,} entries")
print(f"context: {p['context']['timezone']} {p['context']['hours']} ({p['context']['source']})")
print(f"input SHA-256 {p['input_sha256']}")""",
        ),
        ("md", "## Status per requirement"),
        ("code", "report.table()"),
        (
            "code",
            """# NBVAL_CHECK_OUTPUT
print(report.framework.framework, [r.requirement.id for r in report.requirements])""",
        ),
        ("md", "## Charts"),
        (
            "code",
            """for fig in report.figures():
    fig.show()""",
        ),
        ("md", "## Write the PDF, the HTML and the results"),
        (
            "code",
            """report.save_json(results_json)  # first: the PDF names it for rows it leaves out
report.to_pdf(output_pdf)
if output_html:
    report.to_html(output_html)
kaleido.stop_sync_server(silence_warnings=True)
print("summary:", report.summary)""",
        ),
    ],
    "gdpr_subject_access": [
        (
            "md",
            """# GDPR Art. 15 — subject access

Everything the audit trail holds about one data subject: the entries where they acted,
the entries about them, and every review or export of the log in their organizations
(marked *targeted* when the review named them). Writes a copy of their entries (the
copy Art. 15(3) gives them), a readable PDF titled for them, and a results file. The
default subject is in the shipped sample data and in every `auditlens demo` store.""",
        ),
        (
            "code",
            '''subject = "maria.rossi@acme.example"  # the data subject's email or user id
organization_id = ""  # empty: every organization they appear in
store_url = ""  # empty: $AUDITLENS_URL, else the shipped sample data
export_path = "out/subject_entries.json"  # their entries (JSON, the interchange shape)
output_pdf = "out/subject_access.pdf"  # empty: no PDF
results_json = "out/subject_access.json"''',
            ["parameters"],
        ),
        (
            "code",
            SETUP
            + """
sa = al.reports.subject_access(store, subject, organization_id=organization_id or None)
sa.counts""",
        ),
        ("md", "## Entries where the subject acted"),
        (
            "code",
            """sa.as_actor.select("timestamp", "action", "resource_type", "resource_name", "result",
                  "ip_address").to_pandas()""",
        ),
        ("md", "## Entries about the subject"),
        (
            "code",
            """sa.as_subject.select("timestamp", "actor_email", "action", "details", "result").to_pandas()""",
        ),
        ("md", "## Who accessed the log that holds their data"),
        (
            "code",
            """sa.accesses.select("timestamp", "actor_email", "action", "targeted", "details").to_pandas()""",
        ),
        (
            "code",
            """import json
from pathlib import Path

sa.export(store, export_path)
if output_pdf:
    sa.export(store, output_pdf, format="pdf")
Path(results_json).parent.mkdir(parents=True, exist_ok=True)
Path(results_json).write_text(json.dumps(sa.to_json(), indent=2, default=str))
print(f"{subject}: {sa.counts}")""",
        ),
    ],
    "security_review": [
        (
            "md",
            """# Weekly security review

The week's activity, failed sign-ins, detector findings and how they were handled,
privileged actions and role changes, for one organization. Defaults: the last seven days
of the organization's data.""",
        ),
        (
            "code",
            '''organization_id = ""  # empty: the store's first organization
days = 7
end = ""  # last day, inclusive (YYYY-MM-DD); empty: the day of the last entry
store_url = ""  # empty: $AUDITLENS_URL, else the shipped sample data
results_json = "out/security_review.json"''',
            ["parameters"],
        ),
        (
            "code",
            STATIC_SETUP
            + """
from datetime import date, timedelta

orgs = {o["organization_id"]: o for o in store.organizations()}
org = organization_id or next(iter(orgs))
last_day = date.fromisoformat(end) if end else al.reports.period(store, org)[1].date()
first_day = last_day - timedelta(days=days - 1)
evidence = al.reports.collect_evidence(
    store, org, first_day.isoformat(), last_day.isoformat(),
    ["activity", "authentication", "findings", "privileged_actions", "role_changes",
     "change_management"],
)
print(f"organization {org}: {first_day} … {last_day}")
for ev in evidence.values():
    print(f"- {ev.title}: {ev.summary}")""",
        ),
        ("md", "## Activity"),
        (
            "code",
            """week = store.query(organization_id=org, start=first_day, end=last_day, backend="polars")
al.plots.activity_by_category(week).show()
al.plots.hour_of_week(week).show()
al.plots.top_actors(week).show()""",
        ),
        ("md", "## Failed sign-ins"),
        (
            "code",
            """al.plots.failed_logins(week).show()
evidence["authentication"].tables[0].rows[:10]""",
        ),
        ("md", "## Detector findings and their handling"),
        (
            "code",
            """import pandas as pd

t = evidence["findings"].tables[1]
pd.DataFrame(t.rows, columns=t.columns)""",
        ),
        ("md", "## Privileged actions and role changes"),
        (
            "code",
            """t = evidence["role_changes"].tables[0]
pd.DataFrame(t.rows, columns=t.columns)""",
        ),
        (
            "code",
            """import json
from pathlib import Path

results = {
    "organization_id": org,
    "period": [first_day.isoformat(), last_day.isoformat()],
    "metrics": {name: ev.metrics for name, ev in evidence.items()},
}
Path(results_json).parent.mkdir(parents=True, exist_ok=True)
Path(results_json).write_text(json.dumps(results, indent=2, default=str))
kaleido.stop_sync_server(silence_warnings=True)
results["metrics"]["findings"]""",
        ),
    ],
    "explore": [
        (
            "md",
            """# Explore the audit trail

The explorer panel: pick a period (a custom range needs both dates) and an organization,
filter by actor, type, category, resource and result,
or type a search (`actor:jane@company.com action:webhook.* -result:success`), page through
the results, look at the timeline, and export what you found.""",
        ),
        (
            "code",
            '''store_url = ""  # empty: $AUDITLENS_URL, else the shipped sample data
export_dir = "out"''',
            ["parameters"],
        ),
        (
            "code",
            SETUP
            + """
panel = al.explore(store, export_dir=export_dir)
panel""",
        ),
        ("md", "The panel is ordinary Python too: set its widgets and run the search from code."),
        (
            "code",
            """panel.category.value = "authentication"
panel.result.value = "failure"
panel.refresh()
print(panel.query, "→", panel.total, "entries")
panel.frame.head()""",
        ),
        (
            "code",
            """# NBVAL_CHECK_OUTPUT
print(panel.query)""",
        ),
        ("md", "## Charts of the whole store"),
        (
            "code",
            """everything = store.query(backend="polars")
al.plots.activity_by_category(everything).show()
al.plots.hour_of_week(everything).show()""",
        ),
    ],
    "troubleshooting": [
        (
            "md",
            """# Troubleshooting with the audit trail

The three questions support asks most: why did this webhook stop receiving events; who
changed this application's settings; why can't this user access that resource. Each
answer is about one organization: name it, or leave it empty and a webhook id, application
or user found in several organizations is refused with the list to choose from. Empty
parameters pick an example from the organization of the store's latest suspension.""",
        ),
        (
            "code",
            '''webhook_id = ""  # empty: the most often changed webhook
application_id = ""  # empty: the most often changed application
user = ""  # email or user id; empty: a suspended user
resource = ""  # optional: the resource (id or name) the user cannot reach
organization_id = ""  # id or name; empty: the one the webhook, application or user is in
store_url = ""  # empty: $AUDITLENS_URL, else the shipped sample data
results_json = "out/troubleshooting.json"''',
            ["parameters"],
        ),
        (
            "code",
            SETUP
            + """

# examples come from one organization: the one named, else the latest suspension's
latest = store.query(actions="user.suspended", backend="polars", limit=1)
latest = latest if latest.height else store.query(backend="polars", limit=1)
examples = organization_id or latest["organization_id"][0]


def most_changed(action: str) -> str:
    ids = store.query(actions=action, organization_id=examples, backend="polars")["resource_id"]
    return ids.value_counts(sort=True)["resource_id"][0] if ids.len() else ""


# what you name is looked up in the organization you name (or its own); examples in theirs
webhook_org = application_org = user_org = organization_id or None
if not webhook_id:
    webhook_id, webhook_org = most_changed("webhook.updated"), examples
if not application_id:
    application_id, application_org = most_changed("application.updated"), examples
if not user:
    suspended = store.query(
        actions="user.suspended", organization_id=examples, backend="polars", limit=1
    )
    user, user_org = (suspended["resource_name"][0] if suspended.height else ""), examples
print("webhook:", webhook_id, "| application:", application_id, "| user:", user)""",
        ),
        ("md", "## Why did this webhook stop receiving events?"),
        (
            "code",
            """diagnosis = al.troubleshoot.webhook_diagnosis(store, webhook_id, organization_id=webhook_org)
print(diagnosis.summary)
diagnosis.timeline.select("timestamp", "actor", "action", "result", "changes").to_pandas()""",
        ),
        ("md", "## Who changed this application's settings?"),
        (
            "code",
            """changes = al.troubleshoot.who_changed(
    store, application_id=application_id, organization_id=application_org
)
print(changes.summary)
changes.timeline.select("timestamp", "actor", "action", "resource_name", "changes").to_pandas()""",
        ),
        ("md", "## Why can't this user get in?"),
        (
            "md",
            """`relation` says how each entry concerns the user: `to` (done to them), `self`,
`sign-in` (their own sign-ins), `by` (what they did to others) or `resource`.""",
        ),
        (
            "code",
            """inv = al.troubleshoot.access_investigation(
    store, user, resource=resource or None, organization_id=user_org
)
print(inv.summary)
inv.timeline.select("timestamp", "relation", "actor", "action", "result", "resource_name",
                    "changes").to_pandas()""",
        ),
        (
            "code",
            """import json
from pathlib import Path

results = {
    "organization_id": inv.organization_id,
    "webhook": {"id": webhook_id, "diagnosis": diagnosis.summary, "cause": diagnosis.cause},
    "application": {"id": application_id, "changes": changes.timeline.height,
                    "changed_by": changes.actors, "summary": changes.summary},
    "user": {"id": user, "summary": inv.summary, "found": inv.found,
             "events": inv.timeline.height},
}
Path(results_json).parent.mkdir(parents=True, exist_ok=True)
Path(results_json).write_text(json.dumps(results, indent=2))""",
        ),
    ],
    "scheduled_export": [
        (
            "md",
            """# One export, from papermill parameters

For teams that drive their jobs with papermill: exports the entries a query selects
(CSV, JSON, JSON Lines, Parquet or PDF, with the fields you choose) to a folder or to a
destination URL — `file:///folder/`, `s3://bucket/prefix/`, `sftp://user@host:port/folder/`
or `mailto:a@x.io` (settings from the environment, as for `auditlens schedule`). The export
is recorded in the trail as `audit_log.exported`.""",
        ),
        (
            "code",
            '''query = ""  # search syntax; empty: every entry
organization_id = ""  # empty: every organization
start = ""  # first day (YYYY-MM-DD); empty: from the beginning
end = ""  # last day, inclusive; empty: to the end
format = "csv"  # csv, json, jsonl, parquet or pdf
fields = "timestamp,actor.email,action,resource.name,result"  # empty: every field
destination = "out/"  # a folder, or a file://, s3://, sftp:// or mailto: URL
store_url = ""  # empty: $AUDITLENS_URL, else the shipped sample data
results_json = "out/scheduled_export.json"''',
            ["parameters"],
        ),
        (
            "code",
            SETUP
            + """
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

filters = {k: v for k, v in {"organization_id": organization_id, "start": start,
                             "end": end}.items() if v}
name = f"audit-export-{datetime.now(UTC):%Y%m%dT%H%M%S}.{format}"
remote = destination.split(":", 1)[0] in ("file", "s3", "sftp", "mailto")
folder = Path(tempfile.mkdtemp()) if remote else Path(destination)
folder.mkdir(parents=True, exist_ok=True)
result = store.export(folder / name, format=format, fields=fields or None,
                      where=query or None, **filters)
location = str(folder / name)
if remote:
    location = al.export.deliver(folder / name, destination, subject=f"audit log export {name}",
                                 text=f"{result.rows} entries; manifest attached.")
print(f"{result.rows:,} entries, {result.bytes:,} bytes, sha256 {result.sha256[:16]}… → {location}")""",
        ),
        (
            "code",
            """Path(results_json).parent.mkdir(parents=True, exist_ok=True)
Path(results_json).write_text(json.dumps({
    "rows": result.rows, "bytes": result.bytes, "sha256": result.sha256,
    "format": format, "location": location, "query": query, "filters": filters,
}, indent=2))""",
        ),
    ],
}


def record_checked_outputs(path: Path) -> None:
    """Execute a notebook and keep the outputs of its NBVAL_CHECK_OUTPUT cells only."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(OUT)}}
    ).execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # run timings: noise in every diff
        if cell.cell_type != "code":
            continue
        if "NBVAL_CHECK_OUTPUT" in cell.source:
            continue  # nbval compares these (it wants their execution count too)
        else:
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)  # widget state of the run: large and meaningless here
    nbformat.write(nb, path)


def build(names: list[str] | None = None) -> None:
    """Write the notebooks ``names`` (default: all of them)."""
    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        nb = new_notebook()
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nb.metadata["language_info"] = {"name": "python"}
        for i, spec in enumerate(cells):
            kind, source = spec[0], spec[1]
            cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
            cell["id"] = f"{name[:12]}-{i:02d}".replace("_", "-")
            if len(spec) == 3:
                cell.metadata["tags"] = list(spec[2])  # type: ignore[misc]
            nb.cells.append(cell)
        nbformat.write(nb, OUT / f"{name}.ipynb")
        if any("NBVAL_CHECK_OUTPUT" in c[1] for c in cells):
            record_checked_outputs(OUT / f"{name}.ipynb")


if __name__ == "__main__":
    import subprocess
    import sys

    build(sys.argv[1:] or None)  # e.g. python tools/build_notebooks.py compliance_report
    # the committed notebooks are ruff-formatted, like the rest of the code
    ruff = Path(sys.executable).with_name("ruff")
    subprocess.run([str(ruff), "format", "--quiet", str(OUT)], check=True)  # noqa: S603
