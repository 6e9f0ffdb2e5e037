"""The workflow rules (闭环): which action is legal in which status, for which role, in whose area, and where it leads.

Pure rules, no database: every row of a table below is one rule a dispatcher, a department or a citizen would
notice if it broke.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.cases.workflow import (
    ACTIONS,
    TERMINAL,
    Actor,
    CaseFacts,
    InvalidTransition,
    RoleGrant,
    allowed_actions,
    decide,
)
from core.errors import PermissionDenied

DISTRICT, STREET = "210102", "210102001"
SISTER_STREET = "210102002"  # another street of the same district
OTHER_DISTRICT, OTHER_STREET = "210103", "210103001"
DEPARTMENT, OTHER_DEPARTMENT = "210102HW", "210102SZ"
REPORTER = "42"


def staff(id_: str, *grants: RoleGrant) -> Actor:
    return Actor(kind="staff", id=id_, grants=grants)


# Who acts. The case under test lies in DISTRICT / STREET and, once routed, is with DEPARTMENT.
CITY_DISPATCHER = staff("1", RoleGrant("dispatcher"))
DISTRICT_DISPATCHER = staff("2", RoleGrant("dispatcher", area_code=DISTRICT))
STREET_DISPATCHER = staff("3", RoleGrant("dispatcher", area_code=STREET))
SISTER_STREET_DISPATCHER = staff("4", RoleGrant("dispatcher", area_code=SISTER_STREET))
OTHER_DISTRICT_DISPATCHER = staff("5", RoleGrant("dispatcher", area_code=OTHER_DISTRICT))
CHIEF = staff("6", RoleGrant("duty_chief"))
OTHER_DISTRICT_CHIEF = staff("7", RoleGrant("duty_chief", area_code=OTHER_DISTRICT))
HANDLER = staff("8", RoleGrant("handler", department_code=DEPARTMENT))
OTHER_HANDLER = staff("9", RoleGrant("handler", department_code=OTHER_DEPARTMENT))
AREA_INSPECTOR = staff("10", RoleGrant("inspector", area_code=STREET))
TASK_INSPECTOR = staff("11", RoleGrant("inspector", area_code=OTHER_STREET))  # holds a task on this case
STRAY_INSPECTOR = staff("12", RoleGrant("inspector", area_code=OTHER_STREET))
CITIZEN = Actor.citizen(REPORTER)
OTHER_CITIZEN = Actor.citizen("43")
SYSTEM = Actor.system()


def facts(status: str, **overrides) -> CaseFacts:
    """A case in DISTRICT / STREET, routed to DEPARTMENT, reported by REPORTER."""
    base = CaseFacts(
        status=status,
        district=DISTRICT,
        street=STREET,
        department_code=DEPARTMENT,
        reporter_ids=frozenset({REPORTER}),
        task_inspector_ids=frozenset({TASK_INSPECTOR.id}),
    )
    return replace(base, **overrides)


def outcome(action: str, case: CaseFacts, actor: Actor, note: str = "", detail: dict | None = None) -> str:
    """The next status, or the code of the refusal."""
    try:
        return decide(action=action, facts=case, actor=actor, note=note, detail=detail)
    except (InvalidTransition, PermissionDenied) as refused:
        return refused.code


# ---------------------------------------------------------------------------------------------------------------
# The closed loop, step by step, each by the role that owns the step.

CLOSED_LOOP = [
    # (step, actor, note, detail, facts the service would read at that point, status after)
    ("accept", DISTRICT_DISPATCHER, "", None, {}, "accepted"),
    ("verify", TASK_INSPECTOR, "", {"result": "confirmed"}, {"verification_open": True}, "accepted"),
    ("register", DISTRICT_DISPATCHER, "", None, {"verified": True}, "registered"),
    ("dispatch", DISTRICT_DISPATCHER, "", None, {"verified": True}, "dispatched"),
    ("start", HANDLER, "", None, {}, "processing"),
    ("feedback", HANDLER, "", None, {}, "fixed"),
    ("check_pass", TASK_INSPECTOR, "", None, {}, "checked"),
    ("close", DISTRICT_DISPATCHER, "", None, {}, "closed"),
    ("rate", CITIZEN, "", {"satisfaction": "satisfied"}, {"closed_days_ago": 0.1}, "closed"),
]


def test_a_case_walks_the_closed_loop_from_report_to_close_with_each_role_doing_its_step():
    status = "pending_accept"
    walked = []
    for action, actor, note, detail, extra, _ in CLOSED_LOOP:
        status = decide(action=action, facts=facts(status, **extra), actor=actor, note=note, detail=detail)
        walked.append((action, status))
    assert walked == [(action, expected) for action, *_, expected in CLOSED_LOOP]


def test_the_system_accepts_registers_dispatches_and_closes_on_its_own_where_allowed():
    status = "pending_accept"
    for action in ("accept", "register", "dispatch"):
        status = decide(action=action, facts=facts(status), actor=SYSTEM)
    assert status == "dispatched"
    assert decide(action="close", facts=facts("checked"), actor=SYSTEM) == "closed"


# ---------------------------------------------------------------------------------------------------------------
# One table of rules: (why, action, status, extra facts, actor, note, detail, expected status or refusal code).

RULES = [
    # 受理 / 立案
    ("only the dispatch desk accepts a report", "accept", "pending_accept", {}, HANDLER, "", None, "role_not_allowed"),
    ("a citizen cannot accept their own report", "accept", "pending_accept", {}, CITIZEN, "", None, "role_not_allowed"),
    ("不予立案 needs a reason", "reject", "accepted", {}, DISTRICT_DISPATCHER, "", None, "note_required"),
    ("不予立案 with a reason", "reject", "accepted", {}, DISTRICT_DISPATCHER, "重复上报", None, "rejected"),
    ("a registered case can no longer be rejected", "reject", "registered", {}, CHIEF, "x", None, "illegal_transition"),
    (
        "a report is not registered before the inspector verified it",
        "register",
        "accepted",
        {"verification_open": True},
        DISTRICT_DISPATCHER,
        "",
        None,
        "verification_pending",
    ),
    (
        "a report the inspector did not find is not registered",
        "register",
        "accepted",
        {"verified": False},
        SYSTEM,
        "",
        None,
        "verification_failed",
    ),
    (
        "an inspector outside the area and without a task cannot verify",
        "verify",
        "accepted",
        {"verification_open": True},
        STRAY_INSPECTOR,
        "",
        None,
        "out_of_scope",
    ),
    ("an inspector of the street verifies", "verify", "accepted", {}, AREA_INSPECTOR, "", None, "accepted"),
    # 派遣 / 处置 / 反馈
    ("a handler cannot dispatch", "dispatch", "registered", {}, HANDLER, "", None, "role_not_allowed"),
    ("改派 needs a reason", "redispatch", "dispatched", {}, DISTRICT_DISPATCHER, "", None, "note_required"),
    ("改派 with a reason", "redispatch", "dispatched", {}, DISTRICT_DISPATCHER, "不归我们", None, "dispatched"),
    (
        "a dispatcher cannot report a fix",
        "feedback",
        "dispatched",
        {},
        DISTRICT_DISPATCHER,
        "",
        None,
        "role_not_allowed",
    ),
    ("a department may report a fix without starting", "feedback", "dispatched", {}, HANDLER, "", None, "fixed"),
    ("a fix cannot be reported twice", "feedback", "fixed", {}, HANDLER, "", None, "illegal_transition"),
    ("work cannot start before dispatch", "start", "registered", {}, HANDLER, "", None, "illegal_transition"),
    # 核查 / 返工 / 结案
    ("a department cannot pass its own fix", "check_pass", "fixed", {}, HANDLER, "", None, "role_not_allowed"),
    ("核查不通过 needs a reason", "check_fail", "fixed", {}, TASK_INSPECTOR, "", None, "note_required"),
    (
        "核查不通过 sends the case back (返工)",
        "check_fail",
        "fixed",
        {},
        TASK_INSPECTOR,
        "没清干净",
        None,
        "dispatched",
    ),
    (
        "the desk can order rework after a pass",
        "rework",
        "checked",
        {},
        DISTRICT_DISPATCHER,
        "复查",
        None,
        "dispatched",
    ),
    ("a case is not closed before it is checked", "close", "fixed", {}, CHIEF, "", None, "illegal_transition"),
    ("a department cannot close a case", "close", "checked", {}, HANDLER, "", None, "role_not_allowed"),
    # 回退
    ("回退 needs a reason", "return", "dispatched", {}, HANDLER, "", None, "note_required"),
    ("回退 of a dispatched case", "return", "dispatched", {}, HANDLER, "不属于我单位", None, "registered"),
    ("回退 while processing", "return", "processing", {}, HANDLER, "不属于我单位", None, "registered"),
    ("another department cannot return the case", "return", "dispatched", {}, OTHER_HANDLER, "x", None, "out_of_scope"),
    ("a fixed case cannot be returned", "return", "fixed", {}, HANDLER, "x", None, "illegal_transition"),
    # 延期
    ("延期 needs a reason", "request_extension", "processing", {}, HANDLER, "", None, "note_required"),
    ("a department asks for 延期", "request_extension", "processing", {}, HANDLER, "材料未到", None, "processing"),
    (
        "one 延期 request at a time",
        "request_extension",
        "processing",
        {"pending_requests": {"extension"}},
        HANDLER,
        "再延",
        None,
        "request_pending",
    ),
    (
        "nothing to approve without a request",
        "approve_extension",
        "processing",
        {},
        DISTRICT_DISPATCHER,
        "",
        None,
        "no_pending_request",
    ),
    (
        "a dispatcher approves the first 延期",
        "approve_extension",
        "processing",
        {"pending_requests": {"extension"}, "extensions": 0},
        DISTRICT_DISPATCHER,
        "",
        None,
        "processing",
    ),
    (
        "a dispatcher cannot approve a second 延期",
        "approve_extension",
        "processing",
        {"pending_requests": {"extension"}, "extensions": 1},
        DISTRICT_DISPATCHER,
        "",
        None,
        "duty_chief_required",
    ),
    (
        "the duty chief approves a second 延期",
        "approve_extension",
        "processing",
        {"pending_requests": {"extension"}, "extensions": 1},
        CHIEF,
        "",
        None,
        "processing",
    ),
    (
        "a department cannot approve its own 延期",
        "approve_extension",
        "processing",
        {"pending_requests": {"extension"}},
        HANDLER,
        "",
        None,
        "role_not_allowed",
    ),
    (
        "refusing a 延期 needs a reason",
        "refuse_extension",
        "dispatched",
        {"pending_requests": {"extension"}},
        DISTRICT_DISPATCHER,
        "",
        None,
        "note_required",
    ),
    # 挂账
    ("a department asks for 挂账", "request_suspension", "processing", {}, HANDLER, "需立项", None, "processing"),
    (
        "a dispatcher cannot approve 挂账",
        "approve_suspension",
        "processing",
        {"pending_requests": {"suspension"}},
        DISTRICT_DISPATCHER,
        "",
        None,
        "role_not_allowed",
    ),
    (
        "the duty chief approves 挂账",
        "approve_suspension",
        "processing",
        {"pending_requests": {"suspension"}},
        CHIEF,
        "",
        None,
        "suspended",
    ),
    (
        "a duty chief of another district cannot approve 挂账",
        "approve_suspension",
        "processing",
        {"pending_requests": {"suspension"}},
        OTHER_DISTRICT_CHIEF,
        "",
        None,
        "out_of_scope",
    ),
    (
        "no 挂账 to approve without a request",
        "approve_suspension",
        "processing",
        {},
        CHIEF,
        "",
        None,
        "no_pending_request",
    ),
    *[
        (
            f"resuming a case suspended while {previous} returns it to {previous}",
            "resume",
            "suspended",
            {"previous_status": previous},
            DISTRICT_DISPATCHER,
            "",
            None,
            previous,
        )
        for previous in ("registered", "dispatched", "processing")
    ],
    ("only a suspended case resumes", "resume", "processing", {}, CHIEF, "", None, "illegal_transition"),
    # 作废
    *[
        (f"the duty chief voids a {status} case", "void", status, {}, CHIEF, "误报", None, "voided")
        for status in ("registered", "dispatched", "processing", "fixed", "checked", "suspended")
    ],
    *[
        (
            f"a {status} case is not yet 立案 and cannot be voided",
            "void",
            status,
            {},
            CHIEF,
            "误报",
            None,
            "illegal_transition",
        )
        for status in ("pending_accept", "accepted")
    ],
    ("a dispatcher cannot void", "void", "dispatched", {}, CITY_DISPATCHER, "误报", None, "role_not_allowed"),
    ("作废 needs a reason", "void", "dispatched", {}, CHIEF, "", None, "note_required"),
    # 督办
    ("督办 is 重点督办 by default", "supervise", "processing", {}, DISTRICT_DISPATCHER, "", None, "processing"),
    *[
        (f"the system may supervise ({kind})", "supervise", "dispatched", {}, SYSTEM, "", {"type": kind}, "dispatched")
        for kind in ("overdue", "key", "leader")
    ],
    (
        "领导督办 needs a duty chief",
        "supervise",
        "processing",
        {},
        DISTRICT_DISPATCHER,
        "",
        {"type": "leader"},
        "role_not_allowed",
    ),
    ("the duty chief orders 领导督办", "supervise", "processing", {}, CHIEF, "", {"type": "leader"}, "processing"),
    (
        "an unknown supervision type is refused",
        "supervise",
        "processing",
        {},
        CHIEF,
        "",
        {"type": "urgent"},
        "unknown_supervision_type",
    ),
    ("a department cannot supervise", "supervise", "processing", {}, HANDLER, "", None, "role_not_allowed"),
    ("a closed case is not supervised", "supervise", "closed", {}, CHIEF, "", None, "illegal_transition"),
    ("reminders are the system's", "remind", "processing", {}, CHIEF, "", None, "role_not_allowed"),
    ("提级 is the system's", "escalate", "processing", {}, CHIEF, "", None, "role_not_allowed"),
    ("the system reminds", "remind", "processing", {}, SYSTEM, "", None, "processing"),
    # scope: areas
    ("a city-wide dispatcher acts anywhere", "dispatch", "registered", {}, CITY_DISPATCHER, "", None, "dispatched"),
    (
        "a district dispatcher acts in their district",
        "dispatch",
        "registered",
        {},
        DISTRICT_DISPATCHER,
        "",
        None,
        "dispatched",
    ),
    (
        "a street dispatcher acts in their street",
        "dispatch",
        "registered",
        {},
        STREET_DISPATCHER,
        "",
        None,
        "dispatched",
    ),
    (
        "a street dispatcher cannot act in a sister street",
        "dispatch",
        "registered",
        {},
        SISTER_STREET_DISPATCHER,
        "",
        None,
        "out_of_scope",
    ),
    (
        "a district dispatcher cannot act in another district",
        "dispatch",
        "registered",
        {},
        OTHER_DISTRICT_DISPATCHER,
        "",
        None,
        "out_of_scope",
    ),
    (
        "a district dispatcher's case in another district",
        "accept",
        "pending_accept",
        {"district": OTHER_DISTRICT, "street": OTHER_STREET},
        DISTRICT_DISPATCHER,
        "",
        None,
        "out_of_scope",
    ),
    # scope: departments
    ("another department cannot start the work", "start", "dispatched", {}, OTHER_HANDLER, "", None, "out_of_scope"),
    (
        "a handler cannot act on a case that is with no department",
        "feedback",
        "dispatched",
        {"department_code": None},
        HANDLER,
        "",
        None,
        "out_of_scope",
    ),
    (
        "a handler grant without a department acts on no case",
        "start",
        "dispatched",
        {},
        staff("13", RoleGrant("handler")),
        "",
        None,
        "out_of_scope",
    ),
    # scope: citizens
    ("the reporter rates the closed case", "rate", "closed", {"closed_days_ago": 2}, CITIZEN, "", None, "closed"),
    (
        "another citizen cannot rate it",
        "rate",
        "closed",
        {"closed_days_ago": 2},
        OTHER_CITIZEN,
        "",
        None,
        "not_your_case",
    ),
    ("a case is rated only once closed", "rate", "checked", {}, CITIZEN, "", None, "illegal_transition"),
    (
        "the reporter reopens within 7 days",
        "reopen",
        "closed",
        {"closed_days_ago": 6.9},
        CITIZEN,
        "还在",
        None,
        "dispatched",
    ),
    (
        "the reporter reopens on the seventh day",
        "reopen",
        "closed",
        {"closed_days_ago": 7.0},
        CITIZEN,
        "还在",
        None,
        "dispatched",
    ),
    (
        "the reporter cannot reopen after 7 days",
        "reopen",
        "closed",
        {"closed_days_ago": 7.5},
        CITIZEN,
        "还在",
        None,
        "reopen_window_passed",
    ),
    ("reopening needs a reason", "reopen", "closed", {"closed_days_ago": 1}, CITIZEN, "", None, "note_required"),
    (
        "another citizen cannot reopen it",
        "reopen",
        "closed",
        {"closed_days_ago": 1},
        OTHER_CITIZEN,
        "还在",
        None,
        "not_your_case",
    ),
    (
        "the desk may reopen after the citizen's window",
        "reopen",
        "closed",
        {"closed_days_ago": 30},
        DISTRICT_DISPATCHER,
        "回访不满意",
        None,
        "dispatched",
    ),
    ("a citizen cannot close a case", "close", "checked", {}, CITIZEN, "", None, "role_not_allowed"),
    ("a citizen cannot supervise", "supervise", "processing", {}, CITIZEN, "", None, "role_not_allowed"),
    # the unknown
    ("an unknown action is refused", "approve_everything", "processing", {}, CHIEF, "", None, "unknown_action"),
]


@pytest.mark.parametrize(
    ("action", "status", "extra", "actor", "note", "detail", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in RULES],
)
def test_each_rule_of_the_workflow(action, status, extra, actor, note, detail, expected):
    assert outcome(action, facts(status, **extra), actor, note, detail) == expected


def test_refusals_carry_http_statuses_409_for_state_and_403_for_people():
    with pytest.raises(InvalidTransition) as wrong_state:
        decide(action="close", facts=facts("dispatched"), actor=CHIEF)
    with pytest.raises(PermissionDenied) as wrong_person:
        decide(action="close", facts=facts("checked"), actor=HANDLER)
    assert (wrong_state.value.status, wrong_person.value.status) == (409, 403)


def test_a_duty_chief_grant_elsewhere_does_not_approve_a_second_extension_here():
    # Dispatcher in this district, duty chief only in another one: the second 延期 here needs a duty chief of here.
    two_hats = staff(
        "14", RoleGrant("dispatcher", area_code=DISTRICT), RoleGrant("duty_chief", area_code=OTHER_DISTRICT)
    )
    case = facts("processing", pending_requests={"extension"}, extensions=1)
    assert outcome("approve_extension", case, two_hats) == "duty_chief_required"


# ---------------------------------------------------------------------------------------------------------------
# Terminal statuses and what the console offers.

# Actions that remain possible on a terminal case: the citizen's 评价 and 重新打开 on a closed one.
AFTER_THE_END = {"closed": {"rate", "reopen"}, "rejected": set(), "voided": set()}


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_a_terminal_case_refuses_every_other_action_as_illegal(status):
    # The most powerful actors, with a reason and the facts that would satisfy any condition: only the state refuses.
    case = facts(status, pending_requests={"extension", "suspension"}, closed_days_ago=0.1)
    passed_the_state = set()
    for action in ACTIONS:
        codes = {outcome(action, case, actor, note="理由") for actor in (CHIEF, HANDLER, SYSTEM, CITIZEN)}
        if codes != {"illegal_transition"}:
            passed_the_state.add(action)
    assert passed_the_state == AFTER_THE_END[status]


def permitted(case: CaseFacts, actor: Actor) -> list[str]:
    """Every action decide lets this actor take, given a reason."""
    return [a for a in ACTIONS if outcome(a, case, actor, note="理由") not in _REFUSALS]


_REFUSALS = {
    "illegal_transition",
    "unknown_action",
    "note_required",
    "verification_pending",
    "verification_failed",
    "request_pending",
    "no_pending_request",
    "unknown_supervision_type",
    "reopen_window_passed",
    "role_not_allowed",
    "out_of_scope",
    "not_your_case",
    "duty_chief_required",
}


def test_a_handler_is_offered_exactly_the_buttons_of_a_dispatched_case_in_their_department():
    case = facts("dispatched")
    assert set(allowed_actions(facts=case, actor=HANDLER)) == {
        "start",
        "return",
        "feedback",
        "request_extension",
        "request_suspension",
    }
    assert allowed_actions(facts=case, actor=HANDLER) == permitted(case, HANDLER)


@pytest.mark.parametrize(
    ("case", "actor"),
    [
        pytest.param(facts("dispatched"), OTHER_HANDLER, id="another department's handler sees nothing"),
        pytest.param(facts("dispatched", pending_requests={"extension"}), HANDLER, id="handler with 延期 waiting"),
        pytest.param(
            facts("processing", pending_requests={"extension"}, extensions=1), DISTRICT_DISPATCHER, id="second 延期"
        ),
        pytest.param(facts("processing", pending_requests={"suspension"}), CHIEF, id="duty chief with 挂账 waiting"),
        pytest.param(facts("accepted", verification_open=True), DISTRICT_DISPATCHER, id="report being verified"),
        pytest.param(facts("closed", closed_days_ago=3), CITIZEN, id="reporter of a closed case"),
        pytest.param(facts("closed", closed_days_ago=9), CITIZEN, id="reporter after the reopen window"),
        pytest.param(facts("closed", closed_days_ago=3), OTHER_CITIZEN, id="someone else's closed case"),
    ],
)
def test_the_offered_buttons_are_exactly_the_actions_decide_permits(case, actor):
    assert allowed_actions(facts=case, actor=actor) == permitted(case, actor)


def test_the_system_is_offered_no_buttons():
    assert allowed_actions(facts=facts("dispatched"), actor=SYSTEM) == []
