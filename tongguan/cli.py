"""The `tongguan` command: serve, worker, migrate, seed, import, export, users."""

from __future__ import annotations

import asyncio
import getpass
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.db import db_context
from core.db import migrate as run_migrations
from core.errors import TongguanError
from core.importing import ImportRejected, ImportReport
from core.settings import get_settings
from tongguan.report_cli import report_app

app = typer.Typer(help="tongguan: citizen and field services of a city's 运管服 platform.", no_args_is_help=True)
import_app = typer.Typer(help="Import reference data from files.", no_args_is_help=True)
users_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
remind_app = typer.Typer(help="Scheduled reminders (also run by the workers' schedule).", no_args_is_help=True)
notify_app = typer.Typer(help="SMS and WeChat notices.", no_args_is_help=True)
media_app = typer.Typer(help="Photo storage.", no_args_is_help=True)
jobs_app = typer.Typer(help="The outbox of background jobs: backlog, failures, retries.", no_args_is_help=True)
apikeys_app = typer.Typer(help="API keys of other systems using Open311 (/open311/v2).", no_args_is_help=True)
patrols_app = typer.Typer(help="Patrol days of field workers from their GPS tracks.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(users_app, name="users")
app.add_typer(jobs_app, name="jobs")
app.add_typer(media_app, name="media")
app.add_typer(remind_app, name="remind")
app.add_typer(notify_app, name="notify")
app.add_typer(report_app, name="report")
app.add_typer(apikeys_app, name="apikeys")
app.add_typer(patrols_app, name="patrols")
muck_app = typer.Typer(help="Muck trucks (控渣土): companies, trucks, routes; alerts.", no_args_is_help=True)
app.add_typer(muck_app, name="muck")
faces_app = typer.Typer(help="The violator register's face data: keys, rotation, retention.", no_args_is_help=True)
app.add_typer(faces_app, name="faces")
console = Console(stderr=True)


class RichProgress:
    """A ProgressSink drawing one rich bar per phase; a new phase marks the previous one complete."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None

    def phase(self, name: str, total: int | None = None) -> None:
        self._complete()
        self.task = self.progress.add_task(name, total=total)

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)

    def _complete(self) -> None:
        if self.task is not None:
            done = self.progress.tasks[self.task].completed
            self.progress.update(self.task, total=max(done, 1), completed=max(done, 1))

    def finish(self) -> None:
        self._complete()


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _run(work: Callable[[], Awaitable[Any]], *, errors_file: Path | None = None) -> Any:
    """Run async work against the configured database, turning our errors into a clean exit."""

    async def main() -> Any:
        async with db_context(get_settings()):
            return await work()

    try:
        return asyncio.run(main())
    except ImportRejected as exc:
        _print_import_report(exc.report, errors_file)
        raise typer.Exit(code=1) from exc
    except TongguanError as exc:
        console.print(f"[red]error[/red] {exc.code}: {exc.detail}")
        raise typer.Exit(code=1) from exc


def _print_import_report(report: ImportReport, errors_file: Path | None = None) -> None:
    if report.ok:
        console.print(f"[green]imported[/green] {report.rows_written:,} {report.kind} from {report.rows_read:,} rows")
        return
    table = Table(title=f"{report.kind} import rejected: {report.error_count:,} error(s); nothing was written")
    for col in ("row", "code", "field", "value", "message"):
        table.add_column(col)
    for e in report.errors[:50]:
        table.add_row(str(e.row), e.code, e.field, e.value[:40], e.message)
    console.print(table)
    if report.error_count > 50:
        console.print(f"… and {report.error_count - 50:,} more (use --errors FILE for the full list)")
    if errors_file:
        report.write_errors_csv(errors_file)
        console.print(f"error list written to {errors_file}")


@app.command()
def migrate() -> None:
    """Apply pending database migrations (SQLite or PostgreSQL)."""
    settings = get_settings()

    def progress(event: str, app_label: str, name: str) -> None:
        console.print(f"{event} {app_label}.{name}")

    asyncio.run(run_migrations(settings, progress=progress))
    console.print(f"[green]database is up to date[/green] ({_safe_url(settings.effective_database_url)})")


def _safe_url(url: str) -> str:
    """The database URL without its password, for printing."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="API processes (stateless; put a load balancer in front).")] = 1,
) -> None:
    """Run the API with uvicorn."""
    import uvicorn

    # access_log off: RequestContext writes one line per request already, with its request id.
    uvicorn.run(
        "tongguan.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
    )


@app.command()
def worker(
    processes: Annotated[int, typer.Option(help="rq worker processes to run beside the relay.")] = 1,
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty (for scripts and tests).")] = False,
) -> None:
    """Run rq workers and the outbox relay (needs TG_REDIS_URL; without it jobs run inside `tongguan serve`)."""
    settings = get_settings()
    if settings.embedded:
        console.print("TG_REDIS_URL is not set: jobs run in-process in embedded mode, no worker is needed.")
        raise typer.Exit(code=1)
    from jobs.worker import serve

    console.print(f"tongguan worker: {processes} rq worker(s) and the relay on {_safe_url(settings.redis_url or '')}")
    serve(settings, processes=processes, burst=burst)


@app.command()
def demo(
    reports: Annotated[int, typer.Option(help="Reports to simulate in all.")] = 400,
    days: Annotated[int, typer.Option(help="Days to simulate, ending now.")] = 7,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the simulation.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with the figures.")] = False,
) -> None:
    """Simulate days of reports, dispatch, fixes, checks and overdue cases, then print the evaluation."""
    from core.evaluation.service import Period, evaluate
    from core.regions.models import District
    from core.seed import seed_city
    from tongguan.demo import run_demo
    from tongguan.report_cli import _print_tables

    settings = get_settings()
    if reports < 1 or days < 1:
        console.print("[red]error[/red] --reports and --days must be at least 1")
        raise typer.Exit(code=1)
    with _progress() as bar:
        sink = RichProgress(bar)

        async def work() -> tuple[dict, list, Period]:
            if not await District.exists():
                await seed_city(scale="small", seed=42, progress=sink)
            sink.phase(f"simulating {days} days", total=days * 24)
            task = sink.task

            def advance(hour: int, hours: int) -> None:
                bar.update(task, completed=min(hour + 1, hours))

            summary = await run_demo(settings=settings, reports=reports, days=days, seed=seed, progress=advance)
            first, last = summary["period"].split("..")
            period = Period.parse(f"{first}..{last}")
            return summary, await evaluate(period=period, by="department"), period

        summary, rows, period = _run(work)
        sink.finish()
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    table = Table(title=f"demo: {days} simulated days")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)
    _print_tables(console, "department", period, rows[:15], None)


@app.command()
def seed(
    scale: Annotated[str, typer.Option(help="small (tests, seconds) or city (full reference city).")] = "small",
    components: Annotated[
        int | None, typer.Option(help="Components to generate (default: 100,000 city, 500 small).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed builds the same city.")] = 42,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing (and succeed) if a city is there.")] = False,
) -> None:
    """Build a deterministic synthetic reference city into an empty database."""
    from core.regions.models import District
    from core.seed import seed_city

    if if_empty and _run(District.exists):
        console.print("the database already holds a city; not seeding")
        return

    started = time.perf_counter()
    with _progress() as bar:
        sink = RichProgress(bar)
        summary = _run(lambda: seed_city(scale=scale, components=components, seed=seed, progress=sink))
        sink.finish()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    table = Table(title=f"seeded the {scale}-scale city in {time.perf_counter() - started:.1f} s")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)
    console.print(f"peak memory (RSS): {peak_kib / 1024:.0f} MiB")


@import_app.command("grids")
def import_grids(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="GeoJSON FeatureCollection.")],
    errors: Annotated[Path | None, typer.Option(help="Write the full error list to this CSV.")] = None,
) -> None:
    """Import unit grids (all or nothing)."""
    from core.regions.service import import_grids_geojson

    _import(lambda progress: import_grids_geojson(path=file, progress=progress), None, errors)


@import_app.command("components")
def import_components(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV in the documented format.")],
    errors: Annotated[Path | None, typer.Option(help="Write the full error list to this CSV.")] = None,
) -> None:
    """Import components (all or nothing; streams files of millions of rows)."""
    from core.components.service import import_components_csv

    total = _count_lines(file) - 1
    _import(lambda progress: import_components_csv(path=file, progress=progress), total, errors)


@import_app.command("calendar")
def import_calendar(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Holiday JSON (as core/calendar/data).")],
) -> None:
    """Replace the working-day calendar of the years in the file (e.g. when the State Council publishes)."""
    from core.calendar.service import store_calendar_days
    from core.calendar.workdays import calendar_days, official_years

    days = calendar_days(file)
    count = _run(lambda: store_calendar_days(days=days, official_years=official_years(file)))
    console.print(f"[green]stored[/green] {count} calendar exceptions for {sorted({d.year for d, _, _ in days})}")


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def _import(
    work: Callable[[Callable[[int], None]], Awaitable[ImportReport]], total: int | None, errors: Path | None
) -> None:
    started = time.perf_counter()
    with _progress() as bar:
        task = bar.add_task("importing", total=total)
        report = _run(lambda: work(lambda n: bar.advance(task, n)), errors_file=errors)
    _print_import_report(report)
    console.print(f"took {time.perf_counter() - started:.1f} s")


@app.command("export")
def export(
    what: Annotated[str, typer.Argument(help="grids or components")],
    file: Annotated[Path, typer.Argument(dir_okay=False, help="Output file.")],
) -> None:
    """Export unit grids (GeoJSON) or components (CSV) in the import format."""
    from core.components.service import export_components_csv
    from core.regions.service import export_grids_geojson

    exporters = {"grids": export_grids_geojson, "components": export_components_csv}
    if what not in exporters:
        console.print("export what? grids or components")
        raise typer.Exit(code=2)
    with _progress() as bar:
        task = bar.add_task(f"exporting {what}", total=None)
        count = _run(lambda: exporters[what](path=file, progress=lambda n: bar.advance(task, n)))
    console.print(f"[green]exported[/green] {count:,} {what} to {file}")


def _print_counts(title: str, counts: dict[str, int]) -> None:
    """A two-column table of counts per status."""
    table = Table(title=title)
    table.add_column("status")
    table.add_column("count", justify="right")
    for status, n in counts.items():
        table.add_row(status, f"{n:,}")
    console.print(table)


@remind_app.command("ads")
def remind_ads(
    today: Annotated[str | None, typer.Option(help="Plan as of this day (YYYY-MM-DD); default: today.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and count, queue nothing.")] = False,
) -> None:
    """Queue expiry notices for outdoor-ad permits (30 and 7 days before); safe to run again."""
    from datetime import date

    from core import clock
    from notifications.reminders import remind_ads as plan

    try:
        day = date.fromisoformat(today) if today else clock.now().date()
    except ValueError:
        console.print(f"[red]error[/red] --today must be YYYY-MM-DD, got {today!r}")
        raise typer.Exit(code=1) from None
    started = time.perf_counter()
    with _progress() as bar:
        sink = RichProgress(bar)
        run = _run(lambda: plan(today=day, dry_run=dry_run, progress=sink))
        sink.finish()
    table = Table(title=f"ad permit reminders for {day.isoformat()}{' (dry run)' if dry_run else ''}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("permits expiring within 30 days", f"{run.permits:,}")
    table.add_row("messages planned", f"{run.planned:,}")
    table.add_row("would be queued" if dry_run else "queued (new)", f"{run.queued:,}")
    for code, n in sorted(run.refused.items()):
        table.add_row(f"refused: {code}", f"{n:,}")
    console.print(table)
    console.print(f"done in {time.perf_counter() - started:.1f} s")


@patrols_app.command("summarize")
def patrols_summarize(
    day: Annotated[
        str | None, typer.Option(help="The China day to summarise (YYYY-MM-DD); default: yesterday.")
    ] = None,
) -> None:
    """Summarise the patrol day of every worker with points or check-ins that day (also run nightly); safe to rerun."""
    from datetime import date, timedelta

    from core import clock
    from core.patrols.summary import summarize_day

    try:
        chosen = date.fromisoformat(day) if day else clock.now().date() - timedelta(days=1)
    except ValueError:
        console.print(f"[red]error[/red] --day must be YYYY-MM-DD, got {day!r}")
        raise typer.Exit(code=1) from None
    started = time.perf_counter()
    with _progress() as bar:
        sink = RichProgress(bar)
        run = _run(lambda: summarize_day(day=chosen, progress=sink))
        sink.finish()
    table = Table(title=f"patrol days of {chosen.isoformat()}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("workers with points or check-ins", f"{run.staff:,}")
    table.add_row("patrol days stored", f"{run.summarised:,}")
    table.add_row("track points read", f"{run.points:,}")
    table.add_row("failed", f"{len(run.failed):,}")
    console.print(table)
    if run.failed:
        failures = Table(title="failed workers (first 20)")
        failures.add_column("staff")
        failures.add_column("error")
        for staff, error in list(run.failed.items())[:20]:
            failures.add_row(str(staff), error[:100])
        console.print(failures)
    console.print(f"done in {time.perf_counter() - started:.1f} s")
    if run.failed:
        raise typer.Exit(code=1)


@notify_app.command("status")
def notify_status() -> None:
    """Notices by status, and the failed and unknown ones with their reasons."""
    from core.notices.models import Notice
    from notifications.service import status_counts

    async def work() -> tuple[dict[str, int], list]:
        stuck = await Notice.filter(status__in=("failed", "unknown")).order_by("-id").limit(50)
        return await status_counts(), stuck

    counts, stuck = _run(work)
    _print_counts("notices", counts)
    if stuck:
        letters = Table(title="failed and unknown (latest 50)")
        for column in ("id", "channel", "template", "status", "code", "reason"):
            letters.add_column(column)
        for n in stuck:
            letters.add_row(str(n.id), n.channel, n.template, n.status, n.error_code, n.error_message[:80])
        console.print(letters)


@media_app.command("ensure-bucket")
def media_ensure_bucket() -> None:
    """Create the S3 bucket of TG_S3_BUCKET if it is missing (once, when setting up S3 storage)."""
    from media.storage import S3Store, get_store

    settings = get_settings()
    store = get_store(settings)
    if not isinstance(store, S3Store):
        console.print(f"TG_MEDIA_BACKEND is {settings.media_backend!r}: photos go to {settings.effective_media_root}")
        return
    store.ensure_bucket()
    console.print(f"bucket {settings.s3_bucket!r} is ready at {settings.s3_endpoint or 'AWS'}")


@jobs_app.command("status")
def jobs_status() -> None:
    """Jobs per status, and the ones that failed too often (dead) with their last error."""
    from core.outbox import service as outbox

    async def work() -> tuple[dict[str, int], list]:
        return await outbox.backlog(), await outbox.dead_entries()

    counts, dead = _run(work)
    _print_counts("background jobs (outbox)", counts)
    if dead:
        failed = Table(title="dead entries (retry with `tongguan jobs retry`)")
        for column in ("id", "task", "args", "attempts", "last error"):
            failed.add_column(column)
        for entry in dead:
            failed.add_row(
                str(entry.id), entry.task, json.dumps(entry.args), str(entry.attempts), entry.last_error[:120]
            )
        console.print(failed)


@jobs_app.command("retry")
def jobs_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Entry ids; none: every dead entry.")] = None,
) -> None:
    """Put dead entries back in the queue (after the cause was fixed)."""
    from core.outbox import service as outbox

    n = _run(lambda: outbox.retry_dead(ids=ids or None))
    console.print(f"{n:,} dead entries will run again")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="inspector, handler, officer, dispatcher, duty_chief or admin.")],
    department: Annotated[str | None, typer.Option(help="Department code the role is scoped to.")] = None,
    area: Annotated[str, typer.Option(help="District or street code the role is scoped to.")] = "",
) -> None:
    """Add a staff account; the password is read from stdin, never from the command line."""
    from core.accounts.service import create_staff

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    actor = f"cli:{getpass.getuser()}"
    _run(
        lambda: create_staff(
            username=name, password=password, role=role, department_code=department, area_code=area, actor=actor
        )
    )
    console.print(f"[green]added[/green] {name} ({role})")


@apikeys_app.command("add")
def apikeys_add(name: Annotated[str, typer.Argument(help="Who uses the key, e.g. the partner system's name.")]) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from core.accounts.apikeys import create_key

    key = _run(lambda: create_key(name=name, actor=f"cli:{getpass.getuser()}"))
    typer.echo(key)  # stdout alone, so scripts can capture it
    console.print(f"[green]added[/green] key {name!r}. Store it now: it will not be shown again.")


@apikeys_app.command("revoke")
def apikeys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke an API key at once (its name stays taken)."""
    from core.accounts.apikeys import revoke_key

    row = _run(lambda: revoke_key(name=name, actor=f"cli:{getpass.getuser()}"))
    console.print(f"[green]revoked[/green] key {name!r} ({row.prefix}…) at {row.revoked_at:%Y-%m-%d %H:%M}")


@apikeys_app.command("list")
def apikeys_list() -> None:
    """Every API key: name, prefix, created, last used, revoked."""
    from core.accounts.apikeys import list_keys

    rows = _run(list_keys)
    table = Table(title=f"API keys ({len(rows)})")
    for column in ("name", "prefix", "created", "last used", "revoked"):
        table.add_column(column)
    for row in rows:
        when = [f"{t:%Y-%m-%d %H:%M}" if t else "" for t in (row.created_at, row.last_used_at, row.revoked_at)]
        table.add_row(row.name, f"{row.prefix}…", *when)
    console.print(table)


@muck_app.command("import")
def muck_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON: companies, trucks, routes.")],
    errors: Annotated[Path | None, typer.Option(help="Write the full error list to this CSV.")] = None,
) -> None:
    """Import muck companies, trucks and approved routes (all or nothing; a truck's routes are replaced)."""
    from core.muck.service import import_registry

    started = time.perf_counter()
    with _progress() as bar:
        task = bar.add_task("importing muck registry", total=None)
        report = _run(lambda: import_registry(path=file, progress=lambda n: bar.advance(task, n)), errors_file=errors)
    _print_import_report(report)
    table = Table(title="muck registry")
    table.add_column("written")
    table.add_column("count", justify="right")
    for what, n in report.counts.items():
        table.add_row(what, f"{n:,}")
    console.print(table)
    console.print(f"took {time.perf_counter() - started:.1f} s")


@muck_app.command("alerts")
def muck_alerts(
    day: Annotated[str | None, typer.Option(help="China day YYYY-MM-DD; default: today.")] = None,
) -> None:
    """Muck-truck alerts of a day: off route, off hours, no cover photo, with the report each became."""
    from datetime import date

    from core import clock
    from core.muck.messages import RULE_NAMES
    from core.muck.service import alert_detail_text, list_alerts

    try:
        wanted = date.fromisoformat(day) if day else clock.now().date()
    except ValueError:
        console.print(f"[red]error[/red] --day must be YYYY-MM-DD, got {day!r}")
        raise typer.Exit(code=2) from None
    alerts = _run(lambda: list_alerts(day=wanted))
    table = Table(title=f"muck truck alerts {wanted} ({len(alerts)})")
    for column in ("time", "plate", "company", "rule", "detail", "report"):
        table.add_column(column)
    for a in alerts:
        report = str(a.report_id) if a.report_id else f"[red]{a.detail.get('report_error', 'none')}[/red]"
        table.add_row(
            f"{clock.china(a.at):%H:%M:%S}", a.truck.plate, a.truck.company.name, RULE_NAMES[a.rule],
            alert_detail_text(a), report,
        )  # fmt: skip
    console.print(table)


@faces_app.command("new-key")
def faces_new_key(key_id: Annotated[str, typer.Argument(help="a short name for the key, e.g. 2026a")]) -> None:
    """Print a new TG_FACE_KEYS entry (32 random bytes). Put it first in TG_FACE_KEYS, then run `faces rekey`."""
    from core.enforcement.keys import new_key_line

    try:
        print(new_key_line(key_id))
    except ValueError as exc:
        console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(code=1) from None


@faces_app.command("rekey")
def faces_rekey() -> None:
    """Seal again with the first key of TG_FACE_KEYS every value under an older key (also run nightly)."""
    from core.enforcement.keys import keyring_from
    from core.enforcement.service import rekey_job

    started = time.perf_counter()
    keyring = keyring_from(get_settings())
    with _progress() as bar:
        sink = RichProgress(bar)
        counts = _run(lambda: rekey_job(keyring=keyring, progress=sink))
        sink.finish()
    table = Table(title=f"sealed again with key {keyring.current!r}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for what, n in counts.items():
        table.add_row(what, f"{n:,}")
    console.print(table)
    console.print(
        f"done in {time.perf_counter() - started:.1f} s; keys other than {keyring.current!r} can now be dropped"
    )


@faces_app.command("retention")
def faces_retention() -> None:
    """Delete parties past their retention period with all their data, and expired identify results (also nightly)."""
    from core.enforcement.service import retention_job

    started = time.perf_counter()
    with _progress() as bar:
        sink = RichProgress(bar)
        counts = _run(lambda: retention_job(progress=sink))
        sink.finish()
    table = Table(title="face register retention")
    table.add_column("what")
    table.add_column("count", justify="right")
    for what, n in counts.items():
        table.add_row(what.replace("_", " "), f"{n:,}")
    console.print(table)
    console.print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    app()
