"""Many concurrent clients posting batches to a collector: the load side of bench/collector.py.

    python collector_load.py PORT PATH CONNECTIONS BATCHES MAX_RECORDS DAY DUPLICATES

Runs in its own process (pinned by the caller to its own CPU where there are
two), so the server's CPU is the server's. Every body is built before the
clock starts, exactly as the library's HTTP back end builds it (`Batch`, the
envelope and idempotency key of `_delivery`, compact JSON, gzip from 1 KiB),
10 to MAX_RECORDS records each (at most 24 distinct), each with its own
install id and key: nothing is a duplicate and no install
nears the per-install rate. Then DUPLICATES of the same bodies are sent
again, the idempotent path. Connections are raw keep-alive HTTP/1.1 sockets
(asyncio streams), so the client costs little beside the server. Prints one
JSON object: per phase, the elapsed seconds, every latency (ms) and the
answers by kind ("accepted", or the status and what came back).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator

from typer_telemetry._delivery import build_envelope, idempotency_key
from typer_telemetry._records import Batch, Record
from typer_telemetry.backends._http import gzip_if_large
from typer_telemetry.backends.http import BATCH_FORMAT, BATCH_FORMAT_VERSION

COMMANDS = ("sync", "db migrate", "db seed", "report", "export csv", "import", "status", "clean")
OUTCOMES = (("success", ""), ("error", "ValueError"), ("usage_error", "BadParameter"))


def records(day: str, how_many: int, seed: int) -> list[Record]:
    """A completed day of a busy user: distinct commands, outcomes and flags, timed."""
    made = []
    for index in range(how_many):
        command = COMMANDS[index % len(COMMANDS)]
        outcome, error_class = OUTCOMES[(index // len(COMMANDS)) % len(OUTCOMES)]
        count = 1 + (seed + index) % 7
        buckets = [0] * 16
        buckets[3 + index % 8] = count
        flags = ["--verbose"] if index % 2 else ["--force", "--output"]
        made.append(
            Record.from_json(
                {
                    "day": day,
                    "event": "command",
                    "properties": {"command": command, "flags": sorted(flags[: 1 + index % 2])},
                    "outcome": outcome,
                    "error_class": error_class,
                    "count": count,
                    "duration_ms_sum": 180.0 * count,
                    "duration_ms_min": 90.0,
                    "duration_ms_max": 400.0 + index,
                    "duration_ms_buckets": buckets,
                }
            )
        )
    # One record per (event, properties, outcome, error class): merge the repeats as the store does.
    unique: dict[tuple[object, ...], Record] = {}
    for record in made:
        unique.setdefault(
            (record.event, record.properties, record.outcome, record.error_class), record
        )
    return list(unique.values())


def request(host: str, port: int, path: str, day: str, how_many: int, seed: int) -> bytes:
    """One POST exactly as HTTPBackend.send makes it: headers, compact JSON, gzip when large."""
    install_id = str(uuid.uuid4())
    day_records = records(day, 10 + seed % (how_many - 9), seed)
    batch = Batch(
        day,
        build_envelope("benchtool", "1.4.2", install_id),
        day_records,
        idempotency_key(install_id, day, day_records, 1),
    )
    document = {"format": BATCH_FORMAT, "version": BATCH_FORMAT_VERSION, **batch.to_json()}
    headers = {"Content-Type": "application/json", "Idempotency-Key": batch.idempotency_key}
    body = gzip_if_large(json.dumps(document, separators=(",", ":")).encode(), headers)
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _client(
    host: str, port: int, requests: Iterator[bytes], latencies: list[float], answers: Counter[str]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for message in requests:
            started = time.perf_counter()
            writer.write(message)
            status_line = await reader.readline()
            if not status_line:  # the server closed the connection: count it, open another
                answers["connection closed without an answer"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            parts = status_line.split()
            status = parts[1].decode() if len(parts) > 1 else "no status"
            try:
                accepted = json.loads(payload).get("accepted") is True
            except ValueError:
                accepted = False
            answers[
                "accepted" if status == "200" and accepted else f"{status} {payload[:80]!r}"
            ] += 1
    finally:
        writer.close()


async def _phase(
    host: str, port: int, messages: list[bytes], connections: int
) -> dict[str, object]:
    latencies: list[float] = []
    answers: Counter[str] = Counter()
    shared = iter(messages)  # one iterator: each connection takes the next request when free
    started = time.perf_counter()
    await asyncio.gather(
        *(_client(host, port, shared, latencies, answers) for _ in range(connections))
    )
    return {
        "seconds": time.perf_counter() - started,
        "latencies_ms": latencies,
        "answers": dict(answers),
        "body_bytes": sum(len(message.split(b"\r\n\r\n", 1)[1]) for message in messages),
    }


def main(arguments: list[str]) -> int:
    port, path, connections, batches, how_many, day, duplicates = arguments
    host = "127.0.0.1"
    messages = [
        request(host, int(port), path, day, int(how_many), seed) for seed in range(int(batches))
    ]
    repeated = messages[: int(duplicates)]
    result = {
        "fresh": asyncio.run(_phase(host, int(port), messages, int(connections))),
        "duplicates": asyncio.run(_phase(host, int(port), repeated, int(connections))),
    }
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
