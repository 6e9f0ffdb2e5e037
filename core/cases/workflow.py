"""The one place that decides which case transitions are legal, for whom, and where they lead.

The closed loop (GB/T 30428 / CJ/T 315 style):

    上报 → 受理 (accept) → 立案 (register) or 不予立案 (reject) → 派遣 (dispatch) → 处置 (start)
         → 反馈 (feedback) → 核查 (check_pass, or check_fail = 返工 back to the same department) → 结案 (close)

Side paths: 回退 (return: the department says "not ours", back to dispatch), 延期 (extension: the
department asks, a dispatcher approves the first, a duty chief any later one), 挂账 (suspension, approved
by a duty chief), 作废 (void after 立案, duty chief), 督办 (supervise), plus the system's own reminder and
escalation steps. `decide` checks the state, the actor's role and the actor's scope; the service applies
the result. Nothing here touches the database, so every rule is testable as a table.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from core.errors import PermissionDenied, TongguanError


class Status(StrEnum):
    PENDING_ACCEPT = "pending_accept"  # 待受理
    ACCEPTED = "accepted"  # 已受理，待立案 (and 核实 when a citizen reported it)
    REJECTED = "rejected"  # 不予立案
    REGISTERED = "registered"  # 已立案，待派遣
    DISPATCHED = "dispatched"  # 已派遣，待处置
    PROCESSING = "processing"  # 处置中
    FIXED = "fixed"  # 已反馈，待核查
    CHECKED = "checked"  # 核查通过，待结案
    CLOSED = "closed"  # 已结案
    SUSPENDED = "suspended"  # 挂账
    VOIDED = "voided"  # 作废


TERMINAL = frozenset({Status.REJECTED, Status.CLOSED, Status.VOIDED})
OPEN = frozenset(Status) - TERMINAL
# After 立案 a case exists officially; only these may be voided.
REGISTERED_OR_LATER = frozenset(
    {Status.REGISTERED, Status.DISPATCHED, Status.PROCESSING, Status.FIXED, Status.CHECKED, Status.SUSPENDED}
)
WITH_DEPARTMENT = frozenset({Status.DISPATCHED, Status.PROCESSING})

SUPERVISION_TYPES = ("overdue", "leader", "key")  # 超时督办, 领导督办, 重点督办
REOPEN_DAYS = 7


class Scope(StrEnum):
    AREA = "area"  # dispatchers and duty chiefs: the case lies in their district/street (or they are city-wide)
    DEPARTMENT = "department"  # handlers: the case is with their department
    INSPECTOR = "inspector"  # inspectors: their area, or a task of theirs on the case
    REPORTER = "reporter"  # citizens: they reported it


class InvalidTransition(TongguanError):
    """The case is not in a state where this action is possible."""

    status = 409


class Grant(Protocol):
    @property
    def role(self) -> str: ...
    @property
    def department_code(self) -> str | None: ...
    @property
    def area_code(self) -> str: ...


@dataclass(frozen=True)
class RoleGrant:
    role: str
    department_code: str | None = None
    area_code: str = ""


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff member with role grants, a citizen, or the system itself (jobs)."""

    kind: str  # staff / citizen / system
    id: str = ""
    name: str = ""
    grants: tuple[Grant, ...] = ()

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(kind="system", id="", name=name)

    @classmethod
    def citizen(cls, citizen_id: int | str, name: str = "") -> Actor:
        return cls(kind="citizen", id=str(citizen_id), name=name)


@dataclass(frozen=True)
class CaseFacts:
    """What the rules need to know about a case, read by the service before deciding."""

    status: str
    district: str
    street: str
    department_code: str | None = None
    previous_status: str | None = None  # the status a suspended case resumes to
    extensions: int = 0
    pending_requests: Collection[str] = ()  # kinds of requests waiting: extension, suspension
    verification_open: bool = False
    verified: bool | None = None
    task_inspector_ids: Collection[str] = ()
    reporter_ids: Collection[str] = ()
    closed_days_ago: float | None = None


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[str]
    target: str | None  # None: the status does not change
    roles: frozenset[str]  # staff roles allowed; "system" and "citizen" stand for those actor kinds
    scope: dict[str, Scope] = field(default_factory=dict)  # role → scope checked for that role
    needs_note: bool = False


def _t(
    action: str,
    sources: Collection[str],
    target: str | None,
    roles: dict[str, Scope | None],
    *,
    needs_note: bool = False,
) -> Transition:
    return Transition(
        action=action,
        sources=frozenset(sources),
        target=target,
        roles=frozenset(roles),
        scope={role: scope for role, scope in roles.items() if scope is not None},
        needs_note=needs_note,
    )


S = Status
DISPATCH_DESK: dict[str, Scope | None] = {"dispatcher": Scope.AREA, "duty_chief": Scope.AREA}
DESK_OR_SYSTEM: dict[str, Scope | None] = {**DISPATCH_DESK, "system": None}
CREW: dict[str, Scope | None] = {"handler": Scope.DEPARTMENT}
CHIEF: dict[str, Scope | None] = {"duty_chief": Scope.AREA}

TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        _t("accept", [S.PENDING_ACCEPT], S.ACCEPTED, DESK_OR_SYSTEM),
        _t("reject", [S.PENDING_ACCEPT, S.ACCEPTED], S.REJECTED, DISPATCH_DESK, needs_note=True),
        _t("verify", [S.ACCEPTED], None, {"inspector": Scope.INSPECTOR, "system": None}),
        _t("register", [S.ACCEPTED], S.REGISTERED, DESK_OR_SYSTEM),
        _t("dispatch", [S.REGISTERED], S.DISPATCHED, DESK_OR_SYSTEM),
        _t("redispatch", [S.DISPATCHED], S.DISPATCHED, DISPATCH_DESK, needs_note=True),
        _t("start", [S.DISPATCHED], S.PROCESSING, CREW),
        _t("return", [S.DISPATCHED, S.PROCESSING], S.REGISTERED, CREW, needs_note=True),
        _t("feedback", [S.DISPATCHED, S.PROCESSING], S.FIXED, CREW),
        _t("check_pass", [S.FIXED], S.CHECKED, {"inspector": Scope.INSPECTOR, **DISPATCH_DESK}),
        _t("check_fail", [S.FIXED], S.DISPATCHED, {"inspector": Scope.INSPECTOR, **DISPATCH_DESK}, needs_note=True),
        _t("rework", [S.FIXED, S.CHECKED], S.DISPATCHED, DISPATCH_DESK, needs_note=True),
        _t("close", [S.CHECKED], S.CLOSED, DESK_OR_SYSTEM),
        _t("request_extension", WITH_DEPARTMENT, None, CREW, needs_note=True),
        # Who may approve depends on how many extensions the case already had: see _check_approver.
        _t("approve_extension", WITH_DEPARTMENT, None, DISPATCH_DESK),
        _t("refuse_extension", WITH_DEPARTMENT, None, DISPATCH_DESK, needs_note=True),
        _t(
            "request_suspension",
            [S.REGISTERED, S.DISPATCHED, S.PROCESSING],
            None,
            {**CREW, **DISPATCH_DESK},
            needs_note=True,
        ),
        _t("approve_suspension", [S.REGISTERED, S.DISPATCHED, S.PROCESSING], S.SUSPENDED, CHIEF),
        _t("refuse_suspension", [S.REGISTERED, S.DISPATCHED, S.PROCESSING], None, CHIEF, needs_note=True),
        _t("resume", [S.SUSPENDED], None, DISPATCH_DESK),  # back to the status it was suspended from
        _t("void", REGISTERED_OR_LATER, S.VOIDED, CHIEF, needs_note=True),
        _t("supervise", OPEN, None, {**DISPATCH_DESK, "system": None}),
        _t("remind", OPEN, None, {"system": None}),
        _t("escalate", OPEN, None, {"system": None}),
        _t("rate", [S.CLOSED], None, {"citizen": Scope.REPORTER}),
        _t("reopen", [S.CLOSED], S.DISPATCHED, {"citizen": Scope.REPORTER, **DISPATCH_DESK}, needs_note=True),
    )
}
ACTIONS = tuple(TRANSITIONS)


def decide(*, action: str, facts: CaseFacts, actor: Actor, note: str = "", detail: dict | None = None) -> str:
    """The status after `action`, or an error saying why the action is refused (nothing is changed then)."""
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise InvalidTransition("unknown_action", f"there is no action {action!r}")
    if facts.status not in transition.sources:
        raise InvalidTransition(
            "illegal_transition", f"action {action!r} is not possible while the case is {facts.status!r}"
        )
    _check_actor(transition, facts, actor)
    if transition.needs_note and not note.strip():
        raise InvalidTransition("note_required", f"action {action!r} needs a reason")
    _check_conditions(action, facts, actor, detail or {})
    if action == "resume":
        return facts.previous_status or Status.DISPATCHED
    return transition.target or facts.status


def allowed_actions(*, facts: CaseFacts, actor: Actor) -> list[str]:
    """The actions this actor may take on this case now (what a console shows as buttons)."""
    allowed = []
    for action, transition in TRANSITIONS.items():
        if facts.status not in transition.sources or actor.kind == "system":
            continue
        try:
            _check_actor(transition, facts, actor)
            _check_conditions(action, facts, actor, {})
        except TongguanError:
            continue
        allowed.append(action)
    return allowed


def _check_actor(transition: Transition, facts: CaseFacts, actor: Actor) -> None:
    if actor.kind in ("system", "citizen"):
        if actor.kind not in transition.roles:
            raise PermissionDenied("role_not_allowed", f"{actor.kind} may not {transition.action}")
        if actor.kind == "citizen" and actor.id not in facts.reporter_ids:
            raise PermissionDenied("not_your_case", "only a reporter of this case may do this")
        return
    roles = [g for g in actor.grants if g.role in transition.roles]
    if not roles:
        raise PermissionDenied(
            "role_not_allowed", f"action {transition.action!r} needs one of the roles {sorted(transition.roles)}"
        )
    if not any(_in_scope(transition.scope.get(g.role), g, facts, actor) for g in roles):
        raise PermissionDenied("out_of_scope", f"this case is outside your area or department ({transition.action})")


def _in_scope(scope: Scope | None, grant: Grant, facts: CaseFacts, actor: Actor) -> bool:
    match scope:
        case None:
            return True
        case Scope.AREA:
            return covers(grant.area_code, district=facts.district, street=facts.street)
        case Scope.DEPARTMENT:
            return grant.department_code is not None and grant.department_code == facts.department_code
        case Scope.INSPECTOR:
            return actor.id in facts.task_inspector_ids or (
                bool(grant.area_code) and covers(grant.area_code, district=facts.district, street=facts.street)
            )
        case Scope.REPORTER:
            return actor.id in facts.reporter_ids
    return False


def covers(area_code: str, *, district: str, street: str) -> bool:
    """Whether a grant's area ("" = the whole city, a district code or a street code) holds the place."""
    return not area_code or area_code == district or area_code == street


def _check_conditions(action: str, facts: CaseFacts, actor: Actor, detail: dict) -> None:
    pending = set(facts.pending_requests)
    match action:
        case "register":
            # A citizen's report is registered only after an inspector confirmed it (核实).
            if facts.verification_open:
                raise InvalidTransition("verification_pending", "the inspector has not verified the report yet")
            if facts.verified is False:
                raise InvalidTransition("verification_failed", "the inspector did not find the problem; reject it")
        case "request_extension" | "request_suspension":
            kind = action.removeprefix("request_")
            if kind in pending:
                raise InvalidTransition("request_pending", f"a {kind} request is already waiting")
        case "approve_extension" | "refuse_extension":
            if "extension" not in pending:
                raise InvalidTransition("no_pending_request", "no extension request is waiting")
            _check_approver(facts, actor)
        case "approve_suspension" | "refuse_suspension":
            if "suspension" not in pending:
                raise InvalidTransition("no_pending_request", "no suspension request is waiting")
        case "supervise":
            kind = detail.get("type", "key")
            if kind not in SUPERVISION_TYPES:
                raise InvalidTransition(
                    "unknown_supervision_type", f"supervision type must be one of {SUPERVISION_TYPES}"
                )
            if kind == "leader" and actor.kind == "staff" and not _is_duty_chief_here(facts, actor):
                raise PermissionDenied("role_not_allowed", "leader supervision (领导督办) needs a duty chief")
        case "reopen":
            if actor.kind == "citizen" and (facts.closed_days_ago is None or facts.closed_days_ago > REOPEN_DAYS):
                raise InvalidTransition("reopen_window_passed", f"a case can be reopened within {REOPEN_DAYS} days")
        case "dispatch" | "redispatch":
            pass


def _check_approver(facts: CaseFacts, actor: Actor) -> None:
    """The first extension is the dispatcher's to approve; any later one needs the duty chief."""
    if facts.extensions >= 1 and actor.kind == "staff" and not _is_duty_chief_here(facts, actor):
        raise PermissionDenied("duty_chief_required", "a second extension needs the duty chief's approval")


def _is_duty_chief_here(facts: CaseFacts, actor: Actor) -> bool:
    """A duty-chief grant that covers this case's place (a chief of another district is not one here)."""
    return any(
        g.role == "duty_chief" and covers(g.area_code, district=facts.district, street=facts.street)
        for g in actor.grants
    )
