"""Run a tool script as __main__ and note, at exit, the sockets it used and the modules it loaded.

    python socket_audit.py REPORT_FILE TOOL_SCRIPT [ARGS...]

Audit hooks (PEP 578) see every socket the process creates, binds or
connects, in any thread and whichever library does it; the report has one
`event NAME COUNT` line per kind of socket event and one `module NAME` line
per module in sys.modules at exit.
"""

from __future__ import annotations

import atexit
import runpy
import sys

WATCHED_EVENTS = ("socket.__new__", "socket.bind", "socket.connect", "socket.getaddrinfo")
seen: dict[str, int] = {}


def watch(event: str, arguments: tuple[object, ...]) -> None:
    if event in WATCHED_EVENTS:
        seen[event] = seen.get(event, 0) + 1


def write_report(path: str) -> None:
    modules = sorted(sys.modules)
    with open(path, "w", encoding="utf-8") as report:
        report.writelines(f"event {event} {count}\n" for event, count in sorted(seen.items()))
        report.writelines(f"module {name}\n" for name in modules)


if __name__ == "__main__":
    report_path, *sys.argv = sys.argv[1:]
    sys.addaudithook(watch)
    atexit.register(write_report, report_path)
    runpy.run_path(sys.argv[0], run_name="__main__")
