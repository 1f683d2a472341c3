"""What the shim's flight book costs a reply (shim/flights.py), by the reply's shape.

The shim learns which request a reply settles from the reply's id. In the shape the
daemon writes (jsonrpc.id_leading: `{"jsonrpc":"2.0","id":7,"result":...`) the id is read
from the first bytes; a reply in another shape (`result` first, as servers built on the
TypeScript SDK write it) is parsed whole. Both are timed side by side, at a few sizes, in
one run.

    python benchmarks/flight_book_bench.py
"""

from __future__ import annotations

import json
import time

from mcp_bridge import jsonrpc
from mcp_bridge.shim.flights import Flights

SIZES = (100, 10_000, 100_000, 1_000_000)
ROUNDS = 5


def reply_text(size: int) -> dict[str, object]:
    return {"content": [{"type": "text", "text": "x" * size}], "isError": False}


def per_reply_us(line: bytes, request_id: int) -> float:
    """The best of ROUNDS timings of one reply through the book, in microseconds."""
    request = jsonrpc.encode({"jsonrpc": "2.0", "id": request_id, "method": "tools/call"})
    repeat = max(20, 2_000_000 // len(line))
    best = float("inf")
    for _ in range(ROUNDS):
        flights = Flights()
        started = time.perf_counter()
        for _ in range(repeat):
            flights.from_client(request)
            flights.from_daemon(line)
        best = min(best, (time.perf_counter() - started) / repeat)
    return best * 1e6


def main() -> None:
    print(f"{'reply':>10}  {'result first':>13}  {'id leading':>11}  ratio")
    for size in SIZES:
        result_first = jsonrpc.encode({"result": reply_text(size), "jsonrpc": "2.0", "id": 7})
        id_leading = jsonrpc.encode(jsonrpc.id_leading(json.loads(result_first)))
        assert id_leading.startswith(b'{"jsonrpc":"2.0","id":7,"result":')
        slow, fast = per_reply_us(result_first, 7), per_reply_us(id_leading, 7)
        print(f"{size:>9}B  {slow:>11.1f}us  {fast:>9.1f}us  {slow / fast:5.1f}x")


if __name__ == "__main__":
    main()
