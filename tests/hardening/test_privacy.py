"""Privacy: generated secrets go into every input of a real tool, and out of no telemetry at all.

Each example runs tests/tools/privacy_tool.py once as a real process, in a
fresh home whose path, working folder, user and host names, environment and
command lines carry generated secrets: argument and option values (`--opt v`,
`--opt=v`, `-ov`, after `--`), paths, exception messages and a custom
exception's args and repr, unknown option and command names typed by the
user. Every secret starts with a distinctive ASCII mark (`QZJX<n>K`) that
survives JSON escaping and truncation, followed by generated text (unicode,
quotes, newlines, some very long). None of them may appear in any file under
the home, in `telemetry status --json`, or in any payload of the five back
ends; and the check is not vacuous: every invocation is recorded and sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import TOOLS, Tool, clean_environment
from tests.hardening.conftest import Reliability, assert_unchanged_by_telemetry, cases
from tests.receiver import ReceivedRequest, Receiver, Reply
from typer_telemetry._checks import OUTCOMES, is_command_path, is_error_class, is_flag
from typer_telemetry._schema import (
    ENVELOPE_FIELD_NAMES,
    ROLLUP_FIELD_NAMES,
    check_envelope,
    check_record,
)

PRIVACY_TOOL = TOOLS / "privacy_tool.py"
NOW = 1773144000  # 2026-03-10 12:00 UTC
DEBUG_MARK = "[outside-tool telemetry]"
# Every option the tool's author defined: the only names that may be recorded.
DEFINED_FLAGS = {
    "--verbose",
    "--config",
    "--greeting",
    "--count",
    "--message",
    "--code",
    "--seconds",
    "--until-stdin-closes",
    "--force",
    "--target",
    "--dry-run",
    "--token",
    "--region",
    "--fail",
}
POSTHOG_EXTRA_PROPERTIES = {"$process_person_profile", "$geoip_disable", "$lib", "$lib_version"}
OTLP_POINT_ATTRIBUTES = {"cli.command", "cli.outcome", "cli.error_class", "cli.flags"}

# Generated text: any character a command line or environment can carry (no NUL,
# no lone surrogates), so unicode, quotes and newlines; sometimes very long.
_characters = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_text = st.one_of(
    st.text(_characters, max_size=24),
    st.text(st.sampled_from("'\"\\\n\t $`;&|<>{}[]%ü€😀"), max_size=24),
    st.text(_characters, min_size=500, max_size=3000),
)
# For folder names: no "/" and short enough for one path component.
_name_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"), max_size=30
)

# Each kind of invocation takes secrets s[0], s[1], ... and the cwd path.
KINDS: dict[str, Any] = {
    "option values": lambda s, cwd: ["hello", s[0], "--greeting", s[1], "--count", "1"],
    "--opt=value": lambda s, cwd: [f"--config={s[0]}", "hello", s[1], f"--greeting={s[2]}"],
    "-ovalue": lambda s, cwd: ["-c" + s[0], "db", "migrate", f"-t{s[1]}", "-f"],
    "exception message": lambda s, cwd: ["fail", "--message", s[0]],
    "custom exception": lambda s, cwd: ["deploy", "--fail", "-r", s[0], str(cwd / s[1]), s[2]],
    "after --": lambda s, cwd: ["deploy", str(cwd / s[0]), "--", f"-{s[1]}", f"--{s[2]}", s[3]],
    "unknown option": lambda s, cwd: ["hello", "x", f"--{s[0]}", s[1]],
    "unknown -option": lambda s, cwd: ["db", "migrate", f"-{s[0]}"],
    "unknown command": lambda s, cwd: [s[0], s[1]],
    "bad option value": lambda s, cwd: ["hello", s[0], "--count", s[1]],
    "path argument": lambda s, cwd: ["deploy", str(cwd / s[0])],
}
SECRETS_PER_INVOCATION = 4


def mark(number: int) -> str:
    return f"QZJX{number}K"


@st.composite
def examples(draw: st.DrawFn) -> dict[str, Any]:
    """Secrets for the environment and folders, then command lines that carry more."""
    counter = iter(range(10_000))

    def secret(text: st.SearchStrategy[str] = _text) -> str:
        return mark(next(counter)) + draw(text)

    environment = {
        name: secret() for name in ("PRIVACY_TOKEN", "MY_APP_SECRET", "USER", "LOGNAME", "HOSTNAME")
    }
    home_name = secret(_name_text)
    cwd_name = secret(_name_text)
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=3, max_size=8))
    invocations = [(kind, [secret() for _ in range(SECRETS_PER_INVOCATION)]) for kind in kinds]
    return {
        "environment": environment,
        "home_name": home_name,
        "cwd_name": cwd_name,
        "invocations": invocations,
    }


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


class Findings:
    """Where each secret was found; empty at the end, or the test fails."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets
        self.marks = [secret[: secret.index("K") + 1] for secret in secrets]
        self.found: list[str] = []

    def check(self, where: str, content: bytes | str) -> None:
        text = content if isinstance(content, str) else content.decode("utf-8", "replace")
        for secret, secret_mark in zip(self.secrets, self.marks, strict=True):
            if secret_mark in text or secret in text:
                self.found.append(f"{secret_mark} in {where}")


def check_defined_record(record: dict[str, Any]) -> int:
    """The record is inside the schema and carries only defined flag names; its count."""
    check_record(record)  # raises SchemaError outside the schema
    assert set(record["properties"]["flags"]) <= DEFINED_FLAGS, record["properties"]["flags"]
    return int(record["count"])


def check_batch_document(document: dict[str, Any]) -> int:
    check_envelope(document["envelope"])
    return sum(check_defined_record(record) for record in document["records"])


def check_posthog(request: ReceivedRequest) -> int:
    body = request.json()
    assert set(body) == {"api_key", "batch", "historical_migration", "sent_at"}
    total = 0
    for event in body["batch"]:
        assert set(event) == {"event", "distinct_id", "properties", "timestamp", "uuid"}
        properties = event["properties"]
        # The record's fields and its own properties (flattened to the top) are
        # all there is besides the envelope and PostHog's own; the record they
        # make up again is checked against the schema, which refuses any other.
        fields = [name for name in ROLLUP_FIELD_NAMES if name not in ("event", "properties")]
        envelope = {name: properties[name] for name in ENVELOPE_FIELD_NAMES if name != "install_id"}
        check_envelope({**envelope, "install_id": event["distinct_id"]})
        assert event["event"] == "cli_command_rollup"
        own = set(properties) - set(fields) - set(envelope) - POSTHOG_EXTRA_PROPERTIES
        record = {
            **{name: properties[name] for name in fields},
            "event": "command",
            "properties": {name: properties[name] for name in own},
        }
        total += check_defined_record(record)
    return total


def check_otlp(request: ReceivedRequest) -> int:
    body = request.json()
    (resource,) = body["resourceMetrics"]
    (scope,) = resource["scopeMetrics"]
    invocations, durations = scope["metrics"]
    total = 0
    for point in invocations["sum"]["dataPoints"] + durations["histogram"]["dataPoints"]:
        values = {a["key"]: a["value"] for a in point["attributes"]}
        assert set(values) == OTLP_POINT_ATTRIBUTES
        assert is_command_path(values["cli.command"]["stringValue"])
        assert values["cli.outcome"]["stringValue"] in OUTCOMES
        assert is_error_class(values["cli.error_class"]["stringValue"])
        flags = [
            item["stringValue"] for item in values["cli.flags"]["arrayValue"].get("values", [])
        ]
        assert all(map(is_flag, flags))
        assert set(flags) <= DEFINED_FLAGS
    for point in invocations["sum"]["dataPoints"]:
        total += int(point["asInt"])
    return total


def debug_documents(stderr: str) -> Iterator[dict[str, Any]]:
    """What the DebugBackend printed: each JSON document after "would send:"."""
    decoder = json.JSONDecoder()
    heading = f"{DEBUG_MARK} would send:\n"
    position = stderr.find(heading)
    while position != -1:
        document, end = decoder.raw_decode(stderr, position + len(heading))
        yield document
        position = stderr.find(heading, end)


def run_example(example: dict[str, Any], root: Path, receiver: Receiver) -> dict[str, int]:
    with receiver._condition:
        receiver.requests.clear()
    receiver.reply = Reply()
    home = root / example["home_name"]
    home.mkdir()
    cwd = home / example["cwd_name"]
    cwd.mkdir()
    invocations = [KINDS[kind](secrets, cwd) for kind, secrets in example["invocations"]]
    secrets = [
        *example["environment"].values(),
        example["home_name"],
        example["cwd_name"],
        *(secret for _, group in example["invocations"] for secret in group),
    ]
    spec = root / "spec.json"
    sink = root / "file-backend.jsonl"
    status_file = root / "status.json"
    report_file = root / "reports.json"
    spec.write_text(
        json.dumps(
            {
                "invocations": invocations,
                "now": NOW,
                "receiver": receiver.url(),
                "file_sink": str(sink),
                "status_out": str(status_file),
                "report_out": str(report_file),
            }
        )
    )
    environment = clean_environment(
        home,
        {
            **example["environment"],
            "OUTSIDE_TOOL_TELEMETRY_DEBUG": "1",
            "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": receiver.url("/v1"),
        },
    )
    result = subprocess.run(
        [sys.executable, str(PRIVACY_TOOL), str(spec)],
        env=environment,
        cwd=cwd,
        capture_output=True,
        timeout=120,
    )
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0, stderr[-3000:]
    reports = json.loads(report_file.read_text())
    for name, report in reports.items():
        assert report["error"] is None, (name, report)
        # The debug variable prints the batches instead of sending them, and says so.
        printed = "debug: the batches were printed, not sent" if name == "debug" else None
        assert report["skipped"] == printed, (name, report)
    assert reports["http"]["days_sent"] == ["2026-03-10"]

    findings = Findings(secrets)

    # Every file under the home (config, store), and the names inside our folders.
    for path in sorted(home.rglob("*")):
        relative = str(path.relative_to(home))
        if path.is_file():
            findings.check(f"file {relative}", path.read_bytes())
        if path != cwd:
            findings.check("a file name under the home", relative.removeprefix(cwd.name))

    # telemetry status --json: the paths of the files are its job to show, nothing else.
    status = json.loads(status_file.read_text(encoding="utf-8"))
    for field in ("config_path", "data_dir"):
        assert str(status.pop(field)).startswith(str(home))  # the check would see the home
    findings.check("status --json", json.dumps(status, ensure_ascii=False))
    findings.check("status --json (escaped)", json.dumps(status))
    stored = sum(check_defined_record(record) for record in status["pending"])

    counts: dict[str, int] = {}
    for request in receiver:
        findings.check(f"request to {request.path}", request.content)
        findings.check(f"headers of {request.path}", json.dumps(request.headers))
        findings.check("a request path", request.path)
    by_path = {path: [r for r in receiver if r.path == path] for path in {r.path for r in receiver}}
    assert set(by_path) == {"/batch/", "/v1/metrics", "/v1/batches"}, set(by_path)
    counts["posthog"] = sum(map(check_posthog, by_path["/batch/"]))
    counts["otlp"] = sum(map(check_otlp, by_path["/v1/metrics"]))
    counts["http"] = sum(check_batch_document(r.json()) for r in by_path["/v1/batches"])

    lines = sink.read_bytes().splitlines()
    findings.check("the FileBackend file", b"\n".join(lines))
    counts["file"] = sum(check_batch_document(json.loads(line)) for line in lines)
    sink.unlink()

    telemetry_lines = [line for line in stderr.splitlines() if line.startswith(DEBUG_MARK)]
    documents = list(debug_documents(stderr))
    findings.check("debug lines on stderr", "\n".join(telemetry_lines))
    findings.check("debug payloads on stderr", json.dumps(documents, ensure_ascii=False))
    counts["debug"] = sum(check_batch_document(document) for document in documents)

    assert not findings.found, findings.found
    # Not vacuous: every invocation was recorded, and every back end carried them all.
    assert stored == len(invocations) > 0
    assert counts == dict.fromkeys(counts, stored), counts
    return {"invocations": len(invocations), "secrets": len(secrets)}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_generated_secrets_never_reach_the_store_status_or_any_back_end(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, reliability: Reliability
) -> None:
    totals = {"examples": 0, "invocations": 0, "secrets": 0, "unknown names": 0}

    @settings(
        max_examples=cases(10, 80),
        deadline=None,
        derandomize=True,
        database=None,
        # A failure is reported as found: shrinking would rerun a process per step.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(example=examples())
    def check(example: dict[str, Any]) -> None:
        seen = run_example(example, tmp_path_factory.mktemp("privacy"), receiver)
        totals["examples"] += 1
        totals["invocations"] += seen["invocations"]
        totals["secrets"] += seen["secrets"]
        totals["unknown names"] += sum(
            kind.startswith("unknown") for kind, _ in example["invocations"]
        )

    check()
    assert totals["examples"] >= cases(10, 80) // 2
    reliability.record(
        area="Privacy",
        fault=(
            "generated secrets (unicode, quotes, newlines, up to 3,000 characters) in argument "
            "and option values (`--opt v`, `--opt=v`, `-ov`, after `--`), environment values, "
            "the home and working folder paths, user and host names, exception messages and "
            f"a custom exception's args and repr ({totals['invocations']} invocations carrying "
            f"{totals['secrets']} secrets)"
        ),
        cases=totals["examples"],
        outcome=(
            "none found in any file under the home, `status --json` or any payload of the "
            "HTTP, PostHog, OTLP, file and debug back ends; every invocation recorded and "
            "sent by all five, each record inside the schema"
        ),
    )
    reliability.record(
        area="Privacy",
        fault=(
            "option and command names the user typed that the tool does not define "
            "(`--<secret>`, `-<secret>`, an unknown command), i.e. usage errors"
        ),
        cases=totals["unknown names"],
        outcome=(
            "recorded as a usage error with the error class only; flags hold only "
            "names the tool defines"
        ),
    )


@pytest.mark.parametrize(
    "arguments",
    [
        ["hello", "x", "--my-secret-flag-xyz"],
        ["hello", "x", "--greeting=QZJX0Kvalue", "-n", "QZJX1K"],
        ["QZJX2Kcommand", "--QZJX3Kflag"],
        ["db", "migrate", "-tQZJX4K", "--", "QZJX5K"],
    ],
)
def test_usage_errors_with_secrets_behave_as_without_telemetry_and_store_no_user_names(
    tool: Tool, arguments: list[str]
) -> None:
    assert_unchanged_by_telemetry(tool, *arguments)
    pending = tool.pending()
    assert sum(int(record["count"]) for record in pending) == 1  # type: ignore[call-overload]
    shown = json.dumps(pending)
    for secret in ("my-secret-flag-xyz", "QZJX", "value"):
        assert secret not in shown
    for record in pending:
        assert set(record["properties"]["flags"]) <= DEFINED_FLAGS  # type: ignore[arg-type]
    stored = "".join(path.read_text("utf-8", "replace") for path in tool.files())
    assert "QZJX" not in stored
    assert "my-secret-flag" not in stored
