"""Patrol days (巡查日报): a worker's distance, active time, time per unit grid and road segment, and check-ins.

Made from the day's credible points (spoofed ones and poor fixes left out) in time order. Two consecutive points
at most `track_gap_s` apart make an interval: its length counts as active time and its straight-line distance as
patrol distance, and its time goes to the unit grid (and the road segment within `road_match_m`) of its earlier
point. A longer silence (phone off, in a building) counts neither. The job runs nightly for yesterday, again for a
day that receives late points, and on demand for today; it upserts, so running it twice changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
from tortoise.functions import Count

from core import clock
from core.geo.index import SpatialIndex
from core.geo.service import get_spatial_index
from core.patrols.models import CheckIn, PatrolDay, TrackChunk
from core.patrols.tracks import day_points, distance_m, from_epoch_ms, merge_chunks
from core.progress import NoProgress, ProgressSink
from core.settings import get_settings

log = logging.getLogger("tongguan.patrols")
GROUP = 100  # workers read, summarised and written together: three statements per group
FIELDS = ("points", "spoofed", "distance_m", "active_s", "first_at", "last_at", "check_ins", "grids", "roads")


@dataclass
class DayFigures:
    """What the summary of one day's points says (before check-ins are counted)."""

    points: int = 0
    spoofed: int = 0
    distance_m: float = 0.0
    active_s: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    grids: dict[str, int] = field(default_factory=dict)
    roads: dict[str, int] = field(default_factory=dict)


@dataclass
class SummaryRun:
    day: date
    staff: int = 0  # workers with points or check-ins that day
    summarised: int = 0
    points: int = 0
    failed: dict[int | str, str] = field(default_factory=dict)  # staff id → error


def _seconds_by(keys: np.ndarray, dt_ms: np.ndarray, codes: np.ndarray) -> dict[str, int]:
    """Milliseconds added up per index (−1 = none) → {code: whole seconds}, largest first."""
    sel = keys >= 0
    if not sel.any():
        return {}
    ms = np.bincount(keys[sel], weights=dt_ms[sel], minlength=len(codes))
    hit = np.flatnonzero(ms >= 500)  # under half a second rounds to nothing
    hit = hit[np.argsort(-ms[hit], kind="stable")]
    return {str(codes[i]): round(ms[i] / 1000) for i in hit}


def summarise_points(
    points: np.ndarray, *, index: SpatialIndex, gap_s: float, max_accuracy_m: float, road_match_m: float
) -> DayFigures:
    """The figures of one day's points (POINT_DTYPE, sorted by time)."""
    figures = DayFigures(points=len(points), spoofed=int(points["spoofed"].sum()))
    # NaN accuracy (not given) compares False, so a fix without an accuracy is kept.
    use = points[~points["spoofed"] & ~(points["accuracy_m"] > max_accuracy_m)]
    if not len(use):
        return figures
    at, lon, lat = use["at_ms"], use["lon"], use["lat"]
    figures.first_at, figures.last_at = from_epoch_ms(int(at[0])), from_epoch_ms(int(at[-1]))
    if len(use) < 2:
        return figures
    dt = np.diff(at)
    active = dt <= gap_s * 1000
    step_m = distance_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
    figures.distance_m = round(float(step_m[active].sum()), 1)
    figures.active_s = round(int(dt[active].sum()) / 1000)
    # Each interval belongs to the grid (and road) of its earlier point.
    counted = np.where(active, dt, 0).astype(np.float64)
    grids = index.locate_many(lon[:-1], lat[:-1])
    figures.grids = _seconds_by(grids, counted, index.grid_codes)
    roads = index.nearest_road_many(lon[:-1], lat[:-1], max_distance_m=road_match_m)
    figures.roads = _seconds_by(roads, counted, index.road_codes)
    return figures


def _figures(points: np.ndarray, index: SpatialIndex) -> DayFigures:
    s = get_settings()
    return summarise_points(
        points, index=index, gap_s=s.track_gap_s, max_accuracy_m=s.track_summary_accuracy_m, road_match_m=s.road_match_m
    )


def _row(staff_id: int, day: date, figures: DayFigures, check_ins: int, now: datetime) -> PatrolDay:
    return PatrolDay(
        staff_id=staff_id,
        day=day,
        points=figures.points,
        spoofed=figures.spoofed,
        distance_m=figures.distance_m,
        active_s=figures.active_s,
        first_at=figures.first_at,
        last_at=figures.last_at,
        check_ins=check_ins,
        grids=figures.grids,
        roads=figures.roads,
        computed_at=now,
    )


async def _upsert(rows: list[PatrolDay]) -> None:
    # One statement on both databases; the unique (staff, day) makes a second run overwrite, not duplicate.
    await PatrolDay.bulk_create(rows, on_conflict=["staff_id", "day"], update_fields=[*FIELDS, "computed_at"])


async def summarize(*, staff_id: int, day: date) -> PatrolDay:
    """Summarise one worker's day and store it; a day with no point and no check-in is answered, not stored."""
    points = await day_points(subject_type="staff", subject_id=str(staff_id), day=day)
    check_ins = await CheckIn.filter(staff_id=staff_id, day=day).count()
    row = _row(staff_id, day, _figures(points, await get_spatial_index()), check_ins, clock.now())
    if len(points) or check_ins:
        await _upsert([row])
    return row


async def patrol_day(*, staff_id: int, day: date) -> PatrolDay:
    """The worker's stored patrol day; summarised now when the job has not run for it, and always for today."""
    if day < clock.now().date():
        stored = await PatrolDay.get_or_none(staff_id=staff_id, day=day)
        if stored is not None:
            return stored
    return await summarize(staff_id=staff_id, day=day)


async def staff_with_data(day: date) -> list[int]:
    """Workers with points or check-ins on a day (ids that are not numbers are left to the caller's report)."""
    tracked = await TrackChunk.filter(day=day, subject_type="staff").distinct().values_list("subject_id", flat=True)
    checked = await CheckIn.filter(day=day).distinct().values_list("staff_id", flat=True)
    ids = {int(str(s)) for s in tracked if str(s).isdigit()} | {int(str(s)) for s in checked}
    return sorted(ids)


async def summarize_day(
    *, day: date, staff_ids: list[int] | None = None, progress: ProgressSink | None = None
) -> SummaryRun:
    """Summarise every worker with points or check-ins on `day` (or the listed ones); one bad worker does not stop
    the others: their error is reported and the rest are stored."""
    progress = progress or NoProgress()
    ids = sorted(set(staff_ids)) if staff_ids is not None else await staff_with_data(day)
    run = SummaryRun(day=day, staff=len(ids))
    progress.phase(f"patrol days {day.isoformat()}", total=len(ids))
    index = await get_spatial_index()
    now = clock.now()
    for start in range(0, len(ids), GROUP):
        group = ids[start : start + GROUP]
        chunks: dict[int, list[bytes]] = {i: [] for i in group}
        rows = await TrackChunk.filter(
            day=day, subject_type="staff", subject_id__in=[str(i) for i in group]
        ).values_list("subject_id", "data")
        for subject, data in rows:
            chunks[int(subject)].append(bytes(data))
        counts = dict(
            await CheckIn.filter(day=day, staff_id__in=group)
            .annotate(n=Count("id"))
            .group_by("staff_id")
            .values_list("staff_id", "n")
        )
        made: list[PatrolDay] = []
        for staff_id in group:
            try:
                points = merge_chunks(chunks[staff_id])
                made.append(_row(staff_id, day, _figures(points, index), int(counts.get(staff_id, 0)), now))
                run.points += len(points)
            except Exception as exc:  # a broken chunk of one worker must not sink the others' summaries
                log.exception("patrol day failed", extra={"fields": {"staff": staff_id, "day": day.isoformat()}})
                run.failed[staff_id] = f"{type(exc).__name__}: {exc}"
        try:
            if made:
                await _upsert(made)
            run.summarised += len(made)
        except Exception:
            # One row broke the group's statement (a worker deleted meanwhile): store the others one by one.
            for row in made:
                try:
                    await _upsert([row])
                    run.summarised += 1
                except Exception as exc:
                    log.exception("patrol day not stored", extra={"fields": {"staff": row.staff_id}})
                    run.failed[row.staff_id] = f"{type(exc).__name__}: {exc}"
        progress.advance(len(group))
    return run


async def patrol_days_job(day: str, staff_ids: list[int] | None = None) -> dict[str, int]:
    """The job `patrol_days`: summarise a day (nightly for yesterday; again for a day that received late points)."""
    run = await summarize_day(day=date.fromisoformat(day), staff_ids=staff_ids)
    if run.failed:
        log.warning("patrol days with failures", extra={"fields": {"day": day, "failed": run.failed}})
    return {"staff": run.staff, "summarised": run.summarised, "failed": len(run.failed)}
