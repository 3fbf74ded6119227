"""Tamper-evidence commands: verify, keys, checkpoint (+ cosign), export-bundle, verify-bundle."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import orjson
import typer

import auditlens as al
from auditlens.cli.app import EXIT_PROBLEM, app, handle_errors
from auditlens.cli.commands import Db, Selection
from auditlens.cli.output import console, result_line
from auditlens.progress import progress_bar

Keys = Annotated[
    list[str] | None,
    typer.Option(
        "--key",
        help="A verifier key you trust (.vkey, PEM or name+id+key); repeatable. "
        "Default: $AUDITLENS_VERIFY_KEYS (comma-separated), else the store's.",
    ),
]

keys_app = typer.Typer(help="Manage Ed25519 signing keys.", no_args_is_help=True)
checkpoint_app = typer.Typer(
    help="Sign the current tree head of each organization (run it from cron).",
    invoke_without_command=True,
)
app.add_typer(keys_app, name="keys")
app.add_typer(checkpoint_app, name="checkpoint")


def _trusted(keys: list[str] | None) -> list[al.VerifierKey] | None:
    sources = keys or [
        k for k in os.environ.get("AUDITLENS_VERIFY_KEYS", "").split(",") if k.strip()
    ]
    return [al.load_verifier(k.strip()) for k in sources] or None


@app.command("verify")
@handle_errors
def verify_cmd(
    db: Db = None,
    org: Annotated[str | None, typer.Option(help="Only this organization.")] = None,
    since_seq: Annotated[int | None, typer.Option(help="Start at this seq.")] = None,
    key: Keys = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    include_archive: Annotated[
        bool, typer.Option("--include-archive", help="Also re-verify the Parquet archive.")
    ] = False,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="Monitor state (JSON): the largest checkpoint seen per organization. A "
            "checkpoint remembered there that is gone, a smaller or inconsistent tree is a "
            "problem. Written only after a run without problems.",
        ),
    ] = None,
    lake: Annotated[
        str | None,
        typer.Option(
            "--lake",
            help="Verify a Parquet lake (auditlens lake sync; a folder or s3://bucket/prefix) "
            "from its files alone, not the store.",
        ),
    ] = None,
) -> None:
    """Re-compute every hash link and check every signed checkpoint. Exit 0 only if all verifies."""
    if lake is not None:
        _verify_lake(lake, key, as_json)
        return
    with al.open_store(db) as store:
        total = store.count(organization_id=org) if org else store.count()
        with progress_bar(total, "verify") as bar:
            report = al.verify(
                store,
                org,
                since_seq=since_seq,
                keys=_trusted(key),
                progress=bar.advance,
                include_archive=include_archive,
                state=state,
            )
    if as_json:
        sys.stdout.write(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        valid = sum(o.entries for o in report.organizations if o.ok)
        console.print(
            f"Checked {report.checked:,} live entries in {len(report.organizations)} "
            f"organization(s) in {report.seconds:.1f} s"
        )
        if report.archived:
            how = (
                "every archive file and link re-verified"
                if include_archive
                else "manifests and boundaries checked, files not re-read (--include-archive)"
            )
            result_line(f"{report.archived:,} archived entries: {how}")
        for o in report.organizations:
            cp = (
                f"checkpoint {o.latest_checkpoint_size} signed by {', '.join(o.signed_by) or '-'}"
                + (f", witnessed by {', '.join(o.witnesses)}" if o.witnesses else "")
                if o.latest_checkpoint_size
                else "no checkpoint"
            )
            mark = ("valid", "green") if o.ok else ("INVALID", "bold red")
            result_line(
                f"  {o.organization_id}: seq {o.first_seq or '-'}..{o.last_seq or '-'}, {cp}: ",
                mark,
            )
            if o.archived_through:
                result_line(
                    f"    archived seq 1..{o.archived_through}: ",
                    f"covered by checkpoint {o.archive_checkpoint}"
                    if o.archive_checkpoint
                    else ("not covered by a signed checkpoint", "yellow"),
                )
            if o.restored_copy:
                result_line(
                    "    ",
                    (
                        "a restored side store (no plan ever): its retention_applied "
                        "entries are checked in the source store",
                        "yellow",
                    ),
                )
        if report.keys_source != "given":
            console.print(
                "[yellow]note:[/] checkpoint signatures were checked against the keys "
                "recorded in the store; pass --key with a key you hold to rule out a "
                "replaced key."
            )
        result_line(
            f"{valid:,} entries valid, {report.checked - valid:,} in organizations "
            f"with problems; {len(report.problems)} problem(s)"
        )
        for p in report.problems:
            result_line((f"  {p}", "red"))
        if state is not None:
            if report.state_written:
                result_line(f"state written to {state}")
            else:
                result_line((f"state {state} not updated: the run found problems", "yellow"))
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEM)


@keys_app.command("generate")
@handle_errors
def keys_generate(
    out: Annotated[
        Path, typer.Option(help="Folder for signing.key (0600), signing.pub, signing.vkey.")
    ],
    name: Annotated[str, typer.Option(help="Key name, a schema-less URL.")] = "auditlens.local/log",
) -> None:
    """Generate an Ed25519 key pair for signing checkpoints (or for a witness)."""
    from auditlens.chain.notes import generate_keys  # lazy: keeps --help fast

    private, public, vkey = generate_keys(out, name)
    result_line(f"private key: {private} (keep it secret; point AUDITLENS_SIGNING_KEY at it)")
    result_line(f"public key:  {public}")
    result_line(f"verifier key: {vkey.read_text().strip()}")


@checkpoint_app.callback()
@handle_errors
def checkpoint_cmd(
    ctx: typer.Context,
    db: Db = None,
    org: Annotated[str | None, typer.Option(help="Only this organization (default: all).")] = None,
    key: Annotated[
        Path | None, typer.Option(help="Signing key (default: $AUDITLENS_SIGNING_KEY).")
    ] = None,
) -> None:
    """Record a signed checkpoint for each organization."""
    if ctx.invoked_subcommand is not None:
        return
    from auditlens.chain.checkpoints import create_checkpoint  # lazy: loads SQLAlchemy

    signing = al.load_signing_key(key)
    with al.open_store(db) as store:
        orgs = [org] if org else [o["organization_id"] for o in store.organizations()]
        for o in orgs:
            rec = create_checkpoint(store, o, signing)
            result_line(f"{o}: tree size {rec.tree_size}, root {rec.root_hash[:16]}…")


@checkpoint_app.command("cosign")
@handle_errors
def checkpoint_cosign(
    checkpoint: Annotated[Path, typer.Argument(help="File with the signed checkpoint note.")],
    key: Annotated[Path, typer.Option(help="The witness's signing key.")],
    log_key: Annotated[list[str], typer.Option(help="The log's verifier key (repeatable).")],
    state: Annotated[Path, typer.Option(help="Folder where the witness remembers what it saw.")],
    db: Db = None,
    out: Annotated[Path | None, typer.Option(help="Write the cosigned note here too.")] = None,
) -> None:
    """As a witness: check consistency with the last checkpoint seen, then add a signature."""
    from auditlens.chain.checkpoints import cosign  # lazy: loads SQLAlchemy

    witness = al.load_signing_key(key)
    with al.open_store(db) as store:
        rec = cosign(
            store, checkpoint.read_text(), witness, [al.load_verifier(k) for k in log_key], state
        )
    if out is not None:
        out.write_text(rec.note)
    result_line(f"cosigned tree size {rec.tree_size} as {witness.name}")


@app.command("export-bundle")
@handle_errors
def export_bundle_cmd(
    query: Selection,
    out: Annotated[Path, typer.Option(help="Zip file to write.")],
    db: Db = None,
) -> None:
    """Export entries with their proofs, checkpoints and keys for offline verification."""
    from auditlens.chain.bundle import export_bundle  # lazy: loads SQLAlchemy and pyarrow

    with al.open_store(db) as store:
        res = export_bundle(store, query or None, out)
    result_line(
        f"wrote {res.path}: {res.entries:,} entries from {len(res.organizations)} "
        f"organization(s), sha256 {res.sha256}"
    )


def _verify_lake(path: str, key: list[str] | None, as_json: bool) -> None:
    """``verify --lake``: files, seq continuity, every hash and the manifests' checkpoints."""
    report = al.verify_lake(path, keys=_trusted(key))
    if as_json:
        sys.stdout.write(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
        if not report.ok:
            raise typer.Exit(EXIT_PROBLEM)
        return
    result_line(
        f"Checked {report.checked:,} lake entries in {len(report.organizations)} "
        f"organization(s) in {report.seconds:.1f} s"
    )
    for o in report.organizations:
        cp = (
            f"checkpoint {o.latest_checkpoint_size}"
            + (f" signed by {', '.join(o.signed_by)}" if o.signed_by else " (signature unchecked)")
            if o.latest_checkpoint_size
            else "no checkpoint"
        )
        mark = ("valid", "green") if o.ok else ("INVALID", "bold red")
        result_line(
            f"  {o.organization_id}: seq {o.first_seq or '-'}..{o.last_seq or '-'}, {cp}: ", mark
        )
    if report.keys_source != "given":
        console.print(
            "[yellow]note:[/] no --key given: checkpoint signatures were not checked, only "
            "their roots."
        )
    _verdict("lake", report.ok, report.problems)


@app.command("verify-bundle")
@handle_errors
def verify_bundle_cmd(
    bundle: Annotated[
        Path, typer.Argument(help="The bundle zip, or an evidence package (report --package).")
    ],
    key: Keys = None,
) -> None:
    """Check a bundle or an evidence package offline (no store needed). Exit 0 only if
    everything verifies."""
    from auditlens.chain.bundle import verify_bundle  # lazy: loads SQLAlchemy and pyarrow
    from auditlens.reports.package import is_package  # lazy: CLI start-up stays light

    if is_package(bundle):
        _verify_package(bundle, key)
        return
    report = verify_bundle(bundle, keys=_trusted(key))
    result_line(f"{report.entries:,} entries from {len(report.organizations)} organization(s)")
    _signed_by_lines(report.signed_by)
    if report.keys_source != "given":
        console.print(
            "[yellow]note:[/] signatures were checked against the keys inside the bundle; "
            "pass --key with the log's key you obtained independently."
        )
    _verdict("bundle", report.ok, report.problems)


def _signed_by_lines(signed_by: dict[str, list[str]]) -> None:
    """One line per organization: who signed the checkpoint its proofs refer to."""
    for org, signers in sorted(signed_by.items()):
        result_line(f"  {org}: checkpoint signed by {', '.join(signers) or 'no trusted key'}")


def _verdict(what: str, ok: bool, problems: Sequence[object]) -> None:
    """The problems, then '<what> verifies' or '<what> does NOT verify' and exit 1."""
    for p in problems:
        result_line((f"  {p}", "red"))
    if ok:
        result_line((f"{what} verifies", "green"))
    else:
        result_line((f"{what} does NOT verify", "bold red"), f": {len(problems)} problem(s)")
        raise typer.Exit(EXIT_PROBLEM)


def _verify_package(path: Path, key: list[str] | None) -> None:
    """``verify-bundle`` on an evidence package (see :mod:`auditlens.reports.package`)."""
    from auditlens.reports.package import verify_package  # lazy: CLI start-up stays light

    report = verify_package(path, keys=_trusted(key))
    result_line(
        f"evidence package: {report.exceptions:,} exception(s), {report.proven:,} with an "
        f"inclusion proof; {report.populations:,} population file(s) match report.json"
    )
    _signed_by_lines(report.signed_by)
    if report.unproven:
        result_line(
            ("warning:", "yellow"),
            f" {len(report.unproven)} exception(s) had no covering checkpoint when the "
            "package was made, so no inclusion proof: " + ", ".join(report.unproven),
        )
    if report.keys_source != "given" and report.signed_by:
        result_line(
            ("note:", "yellow"),
            " signatures were checked against the keys inside the bundle; pass --key with "
            "the log's key you obtained independently.",
        )
    _verdict("package", report.ok, report.problems)
