"""Generate the two pictures in docs/ from template.yaml, the state machine (ASL) and roles/expel-role.yaml.

- docs/overview.*: what a security reviewer needs at a glance: the stack and its trigger, the create path as
  a short flow, what it leaves in the account, what Expel may do there, and Workbench; AWS's own icons (the
  `diagrams` package).
- docs/state-machine.*: every state and transition; the Catch edges that all lead to the failure handler are
  folded into one marking instead of forty crossing edges.

Both are derived, never drawn by hand. A test compares the committed DOT sources with fresh ones (the
`graphviz` and `diagrams` Python packages write DOT without the Graphviz binary, so it runs anywhere) and
checks that each PNG was rendered from its committed DOT (the DOT's digest is stamped into the PNG). Icons
are named relative to the `diagrams` package's resources and found through Graphviz's `imagepath` when
rendering, so no path of one machine is committed.

    python scripts/diagram.py            write the DOT sources
    python scripts/diagram.py --render   ... and render and stamp the PNGs (needs Graphviz's `dot`)
    python scripts/diagram.py --check    exit 1, naming the stale files and the command, when anything is stale
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import diagrams
import graphviz
from diagrams import Cluster, Diagram, Edge, Node
from diagrams.aws.compute import Lambda, LambdaFunction
from diagrams.aws.general import Client, User
from diagrams.aws.integration import SNS, SQS, EventbridgeRule, StepFunctions
from diagrams.aws.management import Cloudformation, CloudformationStack, Cloudtrail, CloudwatchLogs, Organizations
from diagrams.aws.security import IAMPermissions, IAMRole, SecretsManager
from diagrams.aws.security import KeyManagementService as KMS
from diagrams.aws.storage import SimpleStorageServiceS3Bucket as S3Bucket
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PICTURES = ("overview", "state-machine")
REGENERATE = "make diagram"
# The PNG's tEXt key that carries the digest of the DOT it was rendered from.
STAMP_KEY = "expel-onboarding:dot-sha256"
# Where the `diagrams` package keeps its icons; the DOT sources name icons relative to it.
ICONS = Path(diagrams.__file__).resolve().parent.parent / "resources"

FONT = "Helvetica"
GREY = "#5D6D7E"
RED = "#B03A2E"
ORANGE = "#D68910"


# --------------------------------------------------------------------------------------------------
# Sources


@dataclass(frozen=True)
class Sources:
    template: dict[str, Any]
    definition: dict[str, Any]
    state_machine: str  # its logical id
    role_template: dict[str, Any]


def load(root: Path = ROOT) -> Sources:
    template = yaml_parse((root / "template.yaml").read_text())
    resources = template["Resources"]
    name, machine = next((n, r) for n, r in resources.items()
                         if r["Type"] in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"))
    definition = json.loads((root / machine["Properties"]["DefinitionUri"]).read_text())
    role_template = yaml_parse((root / "roles" / "expel-role.yaml").read_text())
    return Sources(template, definition, name, role_template)


# --------------------------------------------------------------------------------------------------
# Reading the ASL (pure)


@dataclass(frozen=True)
class Stage:
    """A Task or Parallel state on the create path; poll loops and routing states are folded away."""

    name: str
    branches: tuple[tuple[str, ...], ...] = ()  # a Parallel's branches, each its states in order
    polls: str = ""  # the Wait state of the poll loop that follows this stage, if any


@dataclass(frozen=True)
class Hop:
    source: str
    target: str
    condition: str = ""  # empty: always


@dataclass
class CreatePath:
    stages: list[Stage] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)


def is_delete_rule(rule: dict[str, Any]) -> bool:
    """The Choice rule that routes a stack delete to the teardown path."""
    return str(rule.get("Variable", "")).endswith("RequestType") and rule.get("StringEquals") == "Delete"


def describe_rule(rule: dict[str, Any]) -> str:
    """A Choice rule in words: `RequestType is Update`."""
    for key in ("And", "Or"):
        if key in rule:
            return f" {key.lower()} ".join(describe_rule(r) for r in rule[key])
    if "Not" in rule:
        return f"not ({describe_rule(rule['Not'])})"
    if "Condition" in rule:  # JSONata
        return str(rule["Condition"]).removeprefix("{%").removesuffix("%}").strip()
    variable = str(rule.get("Variable", "")).rsplit(".", 1)[-1]
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        operator = re.sub(r"^(String|Numeric|Boolean|Timestamp)", "", key).removesuffix("Path")
        words = {"Equals": "is", "GreaterThanEquals": ">=", "GreaterThan": ">", "LessThan": "<",
                 "LessThanEquals": "<=", "Matches": "matches", "IsPresent": "present:"}.get(operator, operator)
        return f"{variable} {words} {value if isinstance(value, str) else json.dumps(value)}"
    return variable


def transitions(state: dict[str, Any], with_catch: bool = False) -> Iterator[tuple[str, str, str]]:
    """(target, label, kind) of every way out of a state; kind is next, choice, default or catch."""
    if "Next" in state:
        yield state["Next"], "", "next"
    for rule in state.get("Choices", []):
        yield rule["Next"], describe_rule(rule), "choice"
    if "Default" in state:
        yield state["Default"], "otherwise", "default"
    if with_catch:
        for catch in state.get("Catch", []):
            yield catch["Next"], "on error", "catch"


def _without_delete(state: dict[str, Any], delete: bool = False) -> dict[str, Any]:
    """The state as a Create (or, with delete, a Delete) sees it: only its side of the Create-or-Delete choice."""
    rules = state.get("Choices", [])
    if not any(is_delete_rule(r) for r in rules):
        return state
    if delete:
        return {"Choices": [r for r in rules if is_delete_rule(r)]}
    kept = {k: v for k, v in state.items() if k != "Choices"}
    return {**kept, "Choices": [r for r in rules if not is_delete_rule(r)]}


def reachable(definition: dict[str, Any], delete: bool = False) -> list[str]:
    """Top-level states a Create (or a Delete) can pass through; Catch edges are not followed."""
    states = definition["States"]
    seen: list[str] = []
    todo = [definition["StartAt"]] if definition.get("StartAt") in states else []
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.append(name)
        todo.extend(t for t, _, _ in transitions(_without_delete(states[name], delete)))
    return seen


def _loops(graph: dict[str, list[str]]) -> dict[str, set[str]]:
    """Each state that lies on a cycle (a poll loop), mapped to its loop (Tarjan's components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loop_of: dict[str, set[str]] = {}

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while node not in component:
                component.add(stack.pop())
            if len(component) > 1 or node in graph[node]:
                loop_of.update((m, component) for m in component)

    for node in graph:
        if node not in index:
            visit(node)
    return loop_of


def create_path(definition: dict[str, Any]) -> CreatePath:
    """The Task and Parallel states a Create runs, in order. Catch edges, the Delete route and poll loops
    are left out; a Choice outside a loop becomes the condition of the hop it allows."""
    states: dict[str, dict[str, Any]] = definition["States"]
    graph = {n: [t for t, _, _ in transitions(_without_delete(states[n]))] for n in reachable(definition)}
    loop_of = _loops(graph)
    kept = [n for n in states if n in graph and states[n]["Type"] in ("Task", "Parallel") and n not in loop_of]

    def reach(name: str, condition: str, seen: frozenset[str]) -> Iterator[tuple[str, str, str]]:
        """(kept state, condition, Wait state of a loop on the way) reached from `name` through folded states."""
        if name in kept:
            yield name, condition, ""
            return
        loop = loop_of.get(name, set())
        wait = next((m for m in sorted(loop) if states[m]["Type"] == "Wait"), "")
        for target, label, kind in transitions(_without_delete(states[name])):
            if target in seen:
                continue
            # A Choice inside a poll loop only asks "done yet?": not a branch worth a label.
            said = label if kind == "choice" and not loop else ""
            for found, cond, waited in reach(target, " and ".join(filter(None, (condition, said))), seen | {name}):
                yield found, cond, waited or wait

    path = CreatePath()
    polls: dict[str, str] = {}
    for name in kept:
        for target in graph[name]:
            for found, condition, wait in reach(target, "", frozenset({name})):
                if Hop(name, found, condition) not in path.hops:
                    path.hops.append(Hop(name, found, condition))
                polls[name] = polls.get(name) or wait
    for name in _topological(kept, path.hops):
        branches = tuple(tuple(_chain(b)) for b in states[name].get("Branches", []))
        path.stages.append(Stage(name, branches, polls.get(name, "")))
    return path


def _chain(branch: dict[str, Any]) -> list[str]:
    names, name = [], branch["StartAt"]
    while name and name not in names:
        names.append(name)
        name = branch["States"][name].get("Next")
    return names


def _topological(nodes: list[str], hops: list[Hop]) -> list[str]:
    """Kahn's order, ties broken by the ASL's own order (a cycle falls back to the ASL's order)."""
    incoming = {n: {h.source for h in hops if h.target == n and h.source != n} for n in nodes}
    order: list[str] = []
    while len(order) < len(nodes):
        ready = [n for n in nodes if n not in order and not incoming[n] - set(order)]
        order.append(ready[0] if ready else next(n for n in nodes if n not in order))
    return order


def failure_handler(definition: dict[str, Any]) -> str:
    """The state that most Catch clauses, at least three, lead to (a shared failure handler), or ''."""
    catches = [c["Next"] for s in definition["States"].values() for c in s.get("Catch", [])]
    handler = max(sorted(set(catches)), key=catches.count) if catches else ""
    return handler if catches.count(handler) >= 3 else ""


def all_states(definition: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every state, those inside Parallel branches after the top-level ones."""
    top = definition["States"]
    return list(top.items()) + [(n, s) for p in top.values() for b in p.get("Branches", [])
                                for n, s in b["States"].items()]


def retries_everywhere(definition: dict[str, Any]) -> bool:
    return all("Retry" in s for _, s in all_states(definition) if s["Type"] == "Task")


def lambda_of(state: dict[str, Any]) -> str:
    """The function a Task runs, by its DefinitionSubstitutions key (`Step01TrailFunctionArn`)."""
    resource = json.dumps([state.get("Resource", ""), state.get("Parameters", {}).get("FunctionName", "")])
    match = re.search(r"\$\{(\w+?)(Arn)?\}", resource)
    return match.group(1) if match else ""


def guide_steps(name: str) -> set[int]:
    """The guide's step numbers a state names: `Steps 2, 3 and 5` -> {2, 3, 5}."""
    match = re.match(r"Steps? ([\d, and]+)", name)
    return {int(n) for n in re.findall(r"\d+", match.group(1))} if match else set()


# --------------------------------------------------------------------------------------------------
# The overview (AWS icons)


@dataclass(frozen=True)
class Thing:
    """Something the onboarding leaves in the account, and the guide steps that make or change it."""

    id: str
    icon: type[Node]
    title: str
    details: tuple[str, ...]
    steps: tuple[int, ...]


# The guide's end state, one node each; steps 6 and 7 are the arrows between them (FLOW).
LEFT_IN_ACCOUNT = (
    Thing("kms", KMS, "KMS key + alias (step 1)", ("key policy: step 4",), (1, 4)),
    Thing("trail", Cloudtrail, "CloudTrail trail (step 1)",
          ("multi-region, log validation;", "organization trail", "in Organizations mode"), (1,)),
    Thing("bucket", S3Bucket, "S3 log bucket (step 1)", ("step 2: SSE-KMS",), (1, 2)),
    Thing("topic", SNS, "SNS topic (step 3)", (), (3,)),
    Thing("queue", SQS, "SQS queue (step 5)", ("7-day retention",), (5,)),
    Thing("rolestack", CloudformationStack, "Expel role stack (step 8)", ("roles/expel-role.yaml",), (8,)),
    Thing("stackset", Organizations, "StackSet (Organizations mode)",
          ("step 8: a read-only role", "in every member account;", "step 9: this account's role stack"), (8, 9)),
)
FLOW = (  # (source, target, label, steps)
    ("trail", "bucket", "writes log files", ()),
    ("bucket", "topic", "step 7: ObjectCreated\nnotification", (7,)),
    ("topic", "queue", "step 6: subscription\n(raw delivery)", (6,)),
)
WORKBENCH_STEP = 10

# Icons of the stack's own resources, by CloudFormation type.
STACK_ICONS: dict[str, type[Node]] = {
    "AWS::Serverless::Function": LambdaFunction,
    "AWS::Serverless::LayerVersion": Lambda,
    "AWS::Logs::LogGroup": CloudwatchLogs,
    "AWS::SecretsManager::Secret": SecretsManager,
    "AWS::IAM::ManagedPolicy": IAMPermissions,
    "AWS::IAM::Role": IAMRole,
    "AWS::Events::Rule": EventbridgeRule,
}
TYPE_WORDS = {
    "AWS::Serverless::LayerVersion": "Lambda layer",
    "AWS::Logs::LogGroup": "CloudWatch log group",
    "AWS::SecretsManager::Secret": "Secrets Manager secret",
    "AWS::IAM::ManagedPolicy": "IAM managed policy",
    "AWS::IAM::Role": "IAM role",
    "AWS::Events::Rule": "EventBridge rule",
}
DATA_PATH = {"BucketArn": "bucket", "QueueArn": "queue", "KmsKeyArn": "kms"}


class _Source(Diagram):
    """A `diagrams` Diagram that only builds DOT: rendering is ours, with a relative imagepath."""

    def __exit__(self, *exc: object) -> None:
        diagrams.setdiagram(None)  # type: ignore[arg-type]


def icon(kind: type[Node]) -> str:
    """An icon's path relative to the `diagrams` resources (found through `imagepath` when rendering)."""
    return f"{str(kind._icon_dir).removeprefix('resources/')}/{kind._icon}"


def _id(text: str) -> str:
    """A DOT node id without ':' (the graphviz package reads `a:b` as node a, port b)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def _html(title: str, *details: str, size: int = 11, left: bool = False) -> str:
    """A bold title over grey details (left-aligned lines with `left`)."""
    lines = [f"<B>{html.escape(title)}</B>"]
    lines += [f'<FONT POINT-SIZE="{size - 2}" COLOR="{GREY}">{html.escape(d)}</FONT>' for d in details if d]
    br = '<BR ALIGN="LEFT"/>' if left else "<BR/>"
    return "<" + br.join(lines) + (br if left else "") + ">"


def _icon_node(kind: type[Node], name: str, title: str, *details: str, **attrs: str) -> Node:
    """An AWS icon over a bold title and grey details; an HTML label, so Graphviz knows its whole size."""
    rows = "".join(f'<TR><TD><FONT POINT-SIZE="10" COLOR="{GREY}">{html.escape(d)}</FONT></TD></TR>'
                   for d in details)
    table = (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1"><TR><TD FIXEDSIZE="TRUE" '
             f'WIDTH="64" HEIGHT="64"><IMG SRC="{icon(kind)}" SCALE="TRUE"/></TD></TR>'
             f"<TR><TD><B>{html.escape(title)}</B></TD></TR>{rows}</TABLE>>")
    return Node(table, nodeid=_id(name), shape="plain", **attrs)


def _step_box(stage: Stage) -> Node:
    details = [" → ".join(branch) for branch in stage.branches]
    if stage.branches:
        details.insert(0, "in parallel:")
    if stage.polls:
        details.append(f"then polls ({stage.polls}) until done")
    return Node(_html(stage.name, *details, size=12), nodeid=_id(f"step {stage.name}"), shape="box",
                style="rounded,filled", fillcolor="white", width="3.3", height="0.45", margin="0.14,0.07")


def _stack_table(rows: list[tuple[type[Node], str, str]]) -> str:
    """An HTML label listing the stack's other resources, each with its small icon."""
    cells = [f'<TR><TD FIXEDSIZE="TRUE" WIDTH="30" HEIGHT="30"><IMG SRC="{icon(kind)}" SCALE="TRUE"/></TD>'
             f'<TD ALIGN="LEFT" BALIGN="LEFT"><B>{html.escape(name)}</B><BR/>'
             f'<FONT POINT-SIZE="9" COLOR="{GREY}">{html.escape(words)}</FONT></TD></TR>' for kind, name, words in rows]
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2">'
            '<TR><TD COLSPAN="2" ALIGN="LEFT"><B>Also in the stack</B></TD></TR>' + "".join(cells) + "</TABLE>>")


def _stack_rows(resources: dict[str, dict[str, Any]], shown: set[str]) -> list[tuple[type[Node], str, str]]:
    functions = [n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function" and n not in shown]
    rows: list[tuple[type[Node], str, str]] = [
        (LambdaFunction, f"{len(functions)} Lambda functions", "the steps' code, each with its own IAM role")]
    for name, resource in resources.items():
        kind = resource["Type"]
        if name in shown or kind == "AWS::Serverless::Function":
            continue
        condition = f", if {resource['Condition']}" if "Condition" in resource else ""
        description = str(resource.get("Properties", {}).get("Description", ""))
        description = re.sub(r"\s*\(Expel CloudTrail onboarding\)", "", description).rstrip(".")
        words = f"{TYPE_WORDS.get(kind, kind)}{condition}" + (f": {description}" if description else "")
        rows.append((STACK_ICONS.get(kind, Cloudformation), name, words))
    return rows


def _referenced(value: Any) -> list[str]:
    """Logical ids a template value points at through Ref, Fn::GetAtt or Fn::Sub."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.append(inner)
            elif key == "Fn::GetAtt":
                found.append(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found.extend(m.split(".")[0] for m in re.findall(r"\$\{([\w.]+)\}", str(text)))
            else:
                found.extend(_referenced(inner))
    elif isinstance(value, list):
        for inner in value:
            found.extend(_referenced(inner))
    return found


def role_policies(role_template: dict[str, Any]) -> list[dict[str, Any]]:
    """The Expel role's inline policies (its ``Policies``), a conditional one (``!If [Cond, policy, NoValue]``) as
    where its condition holds."""
    role = next(r for r in role_template["Resources"].values() if r["Type"] == "AWS::IAM::Role")
    found = []
    for item in role["Properties"].get("Policies", []):
        branches = item["Fn::If"][1:] if isinstance(item, dict) and "Fn::If" in item else [item]
        found += [b for b in branches if b != {"Ref": "AWS::NoValue"}]
    return found


def role_grants(role_template: dict[str, Any]) -> dict[str, str]:
    """What the Expel role may do on the data path, by the node it acts on (bucket, queue, kms)."""
    grants: dict[str, list[str]] = {}
    for policy in role_policies(role_template):
        for statement in policy["PolicyDocument"]["Statement"]:
            targets = {DATA_PATH[p] for p in _referenced(statement["Resource"]) if p in DATA_PATH}
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            text = ",\n".join(", ".join(actions[i:i + 2]) for i in range(0, len(actions), 2))
            via = statement.get("Condition", {}).get("StringLike", {}).get("kms:ViaService", [])
            if via:
                text += "\nonly via " + " and ".join(sorted({v.split(".")[0].upper() for v in via}))
            for target in targets:
                grants.setdefault(target, []).append(text)
    missing = sorted(set(DATA_PATH.values()) - set(grants))
    if missing:
        raise SystemExit(f"scripts/diagram.py: roles/expel-role.yaml grants nothing on {missing}: "
                         "say in scripts/diagram.py (DATA_PATH) how Expel reaches them now")
    return {target: ";\n".join(texts) for target, texts in grants.items()}


def inventory_actions(role_template: dict[str, Any]) -> int:
    """How many read-only inventory actions the Expel role has on every resource (`Resource: "*"`)."""
    return sum(len(s["Action"]) if isinstance(s["Action"], list) else 1
               for policy in role_policies(role_template)
               for s in policy["PolicyDocument"]["Statement"] if s.get("Resource") == "*")


def trust(role_template: dict[str, Any]) -> tuple[str, str]:
    """Expel's principal (the role template's default) and its trust condition, in words."""
    principal = role_template["Parameters"]["ExpelPrincipalArn"]["Default"]
    role = next(r for r in role_template["Resources"].values() if r["Type"] == "AWS::IAM::Role")
    statement = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    external = "sts:ExternalId = Workbench GUID" if "sts:ExternalId" in json.dumps(statement.get("Condition", {})) \
        else "NO external id"
    return principal, f"{statement['Action']}\n{external}"


def overview(sources: Sources) -> str:
    """The overview's DOT source."""
    template, definition = sources.template, sources.definition
    resources: dict[str, dict[str, Any]] = template["Resources"]
    path = create_path(definition)
    named = set().union(*(guide_steps(n) for s in path.stages for n in (s.name, *(m for b in s.branches for m in b))))
    shown = {WORKBENCH_STEP}.union(*(t.steps for t in LEFT_IN_ACCOUNT), *(f[3] for f in FLOW))
    if named - shown:
        raise SystemExit(f"scripts/diagram.py: the state machine now runs guide step(s) {sorted(named - shown)}: "
                         "say in LEFT_IN_ACCOUNT or FLOW what they leave in the account")

    custom = next(n for n, r in resources.items() if str(r["Type"]).startswith("Custom::"))
    trigger = next(n for n in _referenced(resources[custom]["Properties"]["ServiceToken"]) if n in resources)
    principal, trusted = trust(sources.role_template)
    grants = role_grants(sources.role_template)
    boundary = next((n for n, r in resources.items() if r["Type"] == "AWS::IAM::ManagedPolicy"), "")
    handler = failure_handler(definition)
    retried = retries_everywhere(definition)
    by_step = {s: stage.name for stage in path.stages for s in guide_steps(stage.name)}

    title = ("Expel CloudTrail self-onboarding: overview\n"
             "(generated by scripts/diagram.py from template.yaml, statemachine/ and roles/expel-role.yaml)")
    graph = {"fontname": FONT, "fontsize": "16", "pad": "0.3", "nodesep": "0.6", "ranksep": "0.5",
             "splines": "spline", "labelloc": "t"}
    node = {"fontname": FONT, "fontsize": "11", "fixedsize": "false", "width": "0", "height": "0",
            "labelloc": "c"}
    edge = {"fontname": FONT, "fontsize": "10", "color": "#566573"}
    cluster = {"fontname": FONT, "fontsize": "13", "margin": "14"}
    danger = {"color": RED, "fontcolor": RED}

    with _Source(title, filename="overview", direction="TB", graph_attr=graph, node_attr=node,
                 edge_attr=edge, show=False) as picture:
        admin = _icon_node(User, "admin", "You (an administrator)", "Launch Stack or sam deploy", ordering="out")
        # The person's invisible edges (ordering=out) fix the columns; Graphviz lays them out from the
        # right: the stack, the create path, what it leaves in the account, and Expel beside it.
        with Cluster("Your AWS account (in Organizations mode: the management account)",
                     graph_attr={**cluster, "bgcolor": "#FBFCFC"}):
            with Cluster(f"The CloudFormation stack (template.yaml, {len(resources)} resources)",
                         graph_attr={**cluster, "bgcolor": "#EBF5FB"}):
                stack = _icon_node(Cloudformation, "stack", "CloudFormation")
                onboarding = _icon_node(Cloudformation, "custom", custom, f"{resources[custom]['Type']}:",
                                        "answered with the Outputs", "or the failed step")
                trigger_node = _icon_node(LambdaFunction, "trigger", trigger, "(its handler)")
                machine = _icon_node(StepFunctions, "machine", sources.state_machine, "(Step Functions)")
                others = Node(_stack_table(_stack_rows(resources, {custom, trigger, sources.state_machine})),
                              nodeid="stack_resources", shape="box", style="rounded,filled", fillcolor="white",
                              color="#AEB6BE")
                stack >> onboarding
                onboarding >> Edge(label="Create, Update, Delete") >> trigger_node
                trigger_node >> Edge(label="StartExecution") >> machine
                machine >> Edge(style="invis") >> others
            with Cluster("The create path (Step Functions)", graph_attr={**cluster, "bgcolor": "#F4F6F7"}):
                boxes = {stage.name: _step_box(stage) for stage in path.stages}
                errors = ((f"any other error goes to {handler},", "which names the failed step") if handler else
                          ("any other error fails the execution at that step:", "fix the cause, then Redrive it"))
                note = Node(_html("Every step retries transient errors;" if retried else "On error:", *errors),
                            nodeid="errors", shape="note", style="filled", fillcolor="#FDEDEC", color=RED)
                for hop in path.hops:
                    attrs = {"style": "dashed", "label": f"if {hop.condition}"} if hop.condition else {}
                    boxes[hop.source] >> Edge(**attrs) >> boxes[hop.target]
                boxes[path.stages[-1].name] >> Edge(style="invis") >> note
            with Cluster("What the onboarding leaves in your account (tagged expel-onboarding:stack)",
                         graph_attr={**cluster, "bgcolor": "#EAFAF1"}):
                things = {t.id: _icon_node(t.icon, t.id, t.title, *t.details) for t in LEFT_IN_ACCOUNT}
                inventory = inventory_actions(sources.role_template)
                role = _icon_node(IAMRole, "role", template["Parameters"]["RoleName"]["Default"],
                                  f"IAM role{', capped by ' + boundary if boundary else ''};",
                                  f"+ {inventory} read-only inventory", "actions on every resource")
                things["kms"] >> Edge(label="encrypts logs,\ntopic, queue", style="dashed") >> things["bucket"]
                for source, target, label, _ in FLOW:
                    things[source] >> Edge(label=label) >> things[target]
                things["rolestack"] >> Edge(label="creates") >> role
                things["rolestack"] >> Edge(label="Organizations mode", style="dashed") >> things["stackset"]
        with Cluster("Expel", graph_attr={**cluster, "bgcolor": "#FEF5E7"}):
            expel = _icon_node(User, "expel", principal.rsplit("/", 1)[-1],
                               f"Expel's AWS account {principal.split(':')[4]}:", "reads the queue and",
                               "the log files it names")
            workbench = _icon_node(Client, "workbench", "Workbench", "AWS CloudTrail security device:",
                                   "role ARN, SQS URL,", "region, session name")
            expel << Edge(label="tells Expel how\nto reach your account") << workbench

        for top in (expel, things["rolestack"], things["trail"], things["kms"], boxes[path.stages[0].name]):
            admin >> Edge(style="invis") >> top
        admin >> Edge(label="creates") >> stack
        machine >> Edge(label="runs", constraint="false") >> boxes[path.stages[0].name]
        expel >> Edge(label=trusted, **danger) >> role
        for target in ("queue", "bucket", "kms"):
            role >> Edge(label=grants[target], style="dashed" if target == "kms" else "solid", **danger) \
                >> things[target]
        register = by_step.get(WORKBENCH_STEP, path.stages[-1].name)
        boxes[register] >> Edge(label="registers the device\n(Workbench API, key\nfrom Secrets Manager)") >> workbench
    return _normalise(str(picture.dot.source))


# --------------------------------------------------------------------------------------------------
# The full state machine


def state_machine(sources: Sources) -> str:
    """The state machine's DOT source: every state; the Catch edges into the failure handler folded away."""
    definition = sources.definition
    top: dict[str, dict[str, Any]] = definition["States"]
    handler = failure_handler(definition)
    create = set(reachable(definition))
    delete = set(reachable(definition, delete=True))
    failure = set(reachable({"StartAt": handler, "States": top})) if handler else set()

    dot = graphviz.Digraph("state_machine")
    dot.attr(rankdir="TB", newrank="true", fontname=FONT, fontsize="14", labelloc="t", nodesep="0.35",
             ranksep="0.45", pad="0.3",
             label=f"Onboarding state machine ({sources.state_machine}, statemachine/onboarding.asl.json)\n"
                   "generated by scripts/diagram.py")
    dot.attr("node", fontname=FONT, fontsize="11")
    dot.attr("edge", fontname=FONT, fontsize="9", color="#566573", arrowsize="0.7")

    def catches_into_handler(name: str, state: dict[str, Any]) -> bool:
        return name not in failure and any(c["Next"] == handler for c in state.get("Catch", []))

    def add(graph: graphviz.Digraph, name: str, state: dict[str, Any]) -> None:
        kind = state["Type"]
        attrs = {"shape": "box", "style": "rounded,filled", "fillcolor": "white"}
        label = _html(name, f"λ {lambda_of(state)}" if lambda_of(state) else "")
        if kind == "Choice":
            attrs = {"shape": "diamond", "style": "filled", "fillcolor": "#FEF9E7", "margin": "0.02"}
            label = _html(name, size=10)
        elif kind == "Wait":
            attrs = {"shape": "ellipse", "style": "filled", "fillcolor": "#EBF5FB"}
            wait = str(state.get("SecondsPath", state.get("Seconds", ""))).removeprefix("$.")
            label = _html(name, f"wait {wait}", size=10)
        elif kind == "Pass":
            attrs = {"shape": "box", "style": "dashed,rounded"}
            label = _html(name, "Pass", size=10)
        elif kind in ("Fail", "Succeed"):
            attrs = {"shape": "doubleoctagon", "style": "filled",
                     "fillcolor": "#FADBD8" if kind == "Fail" else "#D5F5E3"}
            label = _html(name, kind)
        if catches_into_handler(name, state):
            attrs.update(color=RED, penwidth="2")
        graph.node(_id(f"state {name}"), label, **attrs)

    def add_all(graph: graphviz.Digraph, names: list[str]) -> None:
        for name in names:
            state = top[name]
            if state["Type"] != "Parallel":
                add(graph, name, state)
                continue
            caught = catches_into_handler(name, state)
            with graph.subgraph(name=f"cluster_{_id(name)}") as group:
                group.attr(label=f"{name} (Parallel: the branches run together)", style="rounded,filled",
                           fillcolor="#F4F6F7", color=RED if caught else GREY, penwidth="2" if caught else "1",
                           fontname=FONT, fontsize="11")
                for index, branch in enumerate(state["Branches"]):
                    with group.subgraph(name=f"cluster_{_id(name)}_{index}") as lane:
                        lane.attr(label="", style="invis")
                        for inner, inner_state in branch["States"].items():
                            add(lane, inner, inner_state)

    everything = all_states(definition)
    order = list(top)
    add_all(dot, [n for n in order if n in create and n in delete and n not in failure])
    with dot.subgraph(name="cluster_create") as group:
        group.attr(label="Stack create and update: the guide's steps", style="rounded", color=GREY,
                   fontname=FONT, fontsize="12")
        add_all(group, [n for n in order if n in create and n not in delete and n not in failure])
    with dot.subgraph(name="cluster_delete") as group:
        group.attr(label="Stack delete: the teardown, in reverse guide order", style="rounded", color=GREY,
                   fontname=FONT, fontsize="12")
        add_all(group, [n for n in order if n in delete and n not in create and n not in failure])
    folded = [n for n, s in everything if catches_into_handler(n, s)]
    legend = ["Box: a Task and the Lambda function it runs; diamond: a Choice;",
              "ellipse: a Wait; dashed: a Pass; grey box: a Parallel's branches.",
              "Every Task retries transient errors (its Retry)." if retries_everywhere(definition) else "",
              "Orange dashed: a Catch, where the state goes on error."]
    if handler:
        legend += [f"Red border: on any other error the state goes to {handler}",
                   f"({len(folded)} states: those edges are not drawn)."]
    else:
        legend += ["No Catch: any other error fails the execution at that state (Redrive resumes there)."]
    dot.node("legend", _html("How to read this", *legend, left=True), shape="note", style="filled", fillcolor="white",
             color=GREY)
    if handler:
        with dot.subgraph(name="cluster_failure") as group:
            group.attr(label="On error", style="rounded,filled", fillcolor="#FDEDEC", color=RED,
                       fontname=FONT, fontsize="12")
            add_all(group, [n for n in order if n in failure])

    def entries(name: str) -> list[str]:
        """Where a transition into `name` lands: a Parallel's branches start together."""
        state = top.get(name, {})
        return [b["StartAt"] for b in state["Branches"]] if state.get("Type") == "Parallel" else [name]

    def exits(name: str, state: dict[str, Any]) -> list[str]:
        """Where a transition out of `name` leaves from: a Parallel goes on when its branches have ended."""
        if state["Type"] != "Parallel":
            return [name]
        return [n for b in state["Branches"] for n, s in b["States"].items() if s.get("End")]

    edges: dict[tuple[str, str, str], list[str]] = {}  # (source, target, kind) -> labels, merged per pair
    for name, state in everything:
        for target, label, kind in transitions(state, with_catch=True):
            if kind == "catch" and catches_into_handler(name, state):
                continue  # the red border says it
            for source in exits(name, state) if name in top else [name]:
                for entry in entries(target):
                    edges.setdefault((source, entry, kind if kind == "catch" else ""), []).append(label)
    for (source, target, kind), labels in edges.items():
        attrs = {"label": "\nor ".join(dict.fromkeys(filter(None, labels)))}
        if kind == "catch":
            attrs.update(style="dashed", color=ORANGE, fontcolor=ORANGE)
        dot.edge(_id(f"state {source}"), _id(f"state {target}"), **{k: v for k, v in attrs.items() if v})
    return _normalise(dot.source)


# --------------------------------------------------------------------------------------------------
# Normalising, rendering, stamping, checking


def _normalise(source: str) -> str:
    """No path of this machine in the committed source; one trailing newline."""
    for prefix in (str(ICONS) + "/", str(ROOT) + "/"):
        source = source.replace(prefix, "")
    return source.rstrip("\n") + "\n"


def generate(root: Path = ROOT) -> dict[str, str]:
    """Each picture's DOT source, from the sources under `root`."""
    sources = load(root)
    return {"overview": overview(sources), "state-machine": state_machine(sources)}


def digest(dot_source: str) -> str:
    return hashlib.sha256(dot_source.encode()).hexdigest()


def _chunks(png: bytes) -> Iterator[tuple[bytes, bytes, bytes]]:
    """(type, data, whole chunk) of each PNG chunk."""
    offset = 8
    while offset + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[offset:offset + 8])
        yield kind, png[offset + 8:offset + 8 + length], png[offset:offset + 12 + length]
        offset += 12 + length


def png_stamp(png: bytes) -> str | None:
    """The DOT digest stamped into a PNG, if any."""
    prefix = STAMP_KEY.encode() + b"\0"
    return next((d[len(prefix):].decode() for k, d, _ in _chunks(png) if k == b"tEXt" and d.startswith(prefix)),
                None)


def stamp(png: bytes, value: str) -> bytes:
    """The PNG with a tEXt chunk carrying `value` just before IEND (an older stamp removed)."""
    prefix = STAMP_KEY.encode() + b"\0"
    body = b"tEXt" + prefix + value.encode()
    text = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    kept = [c if k != b"IEND" else text + c for k, d, c in _chunks(png)
            if not (k == b"tEXt" and d.startswith(prefix))]
    return png[:8] + b"".join(kept)


def render(docs: Path = DOCS) -> None:
    """Render each committed DOT to its PNG with Graphviz, and stamp the DOT's digest into it."""
    for picture in PICTURES:
        source = (docs / f"{picture}.dot").read_text()
        result = subprocess.run(["dot", "-Tpng", f"-Gimagepath={ICONS}"], input=source.encode(),
                                capture_output=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"dot failed on docs/{picture}.dot: {result.stderr.decode()}")
        (docs / f"{picture}.png").write_bytes(stamp(result.stdout, digest(source)))


def stale(fresh: dict[str, str], docs: Path = DOCS) -> list[str]:
    """The committed files that no longer match what the sources say."""
    found = []
    for picture, source in fresh.items():
        dot, png = docs / f"{picture}.dot", docs / f"{picture}.png"
        if not dot.exists() or dot.read_text() != source:
            found.append(f"docs/{picture}.dot")
        if not png.exists() or png_stamp(png.read_bytes()) != digest(source):
            found.append(f"docs/{picture}.png")
    return found


def stale_message(files: list[str]) -> str:
    return (f"{', '.join(files)}: out of date with template.yaml, statemachine/ or roles/expel-role.yaml.\n"
            f"Regenerate with `{REGENERATE}` (it needs Graphviz: apt-get install graphviz) and commit docs/.\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed picture is stale")
    parser.add_argument("--render", action="store_true", help="also render the PNGs (needs Graphviz's dot)")
    args = parser.parse_args()
    fresh = generate()
    if args.check:
        files = stale(fresh)
        sys.stderr.write(stale_message(files) if files else "")
        return 1 if files else 0
    for picture, source in fresh.items():
        (DOCS / f"{picture}.dot").write_text(source)
    if args.render:
        if shutil.which("dot") is None:
            sys.stderr.write("Graphviz 'dot' not found: apt-get install graphviz\n")
            return 1
        render()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
