"""The peer: LangChain's SQLChatMessageHistory appending and reading chat messages.

Run by chat-bench in a virtual environment it creates. Prints one JSON object of rates
(messages per second): append and read at 1 client and at `--threads` threads.
"""

import argparse
import json
import threading
import time
import uuid

from langchain_community.chat_message_histories import SQLChatMessageHistory
from langchain_core.messages import HumanMessage
from sqlalchemy import create_engine, event, text


def engine_for(url, threads):
    if url.startswith("sqlite"):
        engine = create_engine(url, pool_size=threads + 1, max_overflow=0)

        # The same settings as the SQLite store: WAL, synchronous=NORMAL, a busy timeout.
        @event.listens_for(engine, "connect")
        def pragmas(conn, _record):
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

        return engine
    return create_engine(url, pool_size=threads + 1, max_overflow=0)


def measure(engine, table, messages, threads):
    histories = [
        SQLChatMessageHistory(
            session_id=str(uuid.uuid4()), connection=engine, table_name=table
        )
        for _ in range(threads)
    ]
    per = messages // threads
    content = "benchmark message number {}, a sentence of ordinary length"

    def append(h):
        for i in range(per):
            h.add_message(HumanMessage(content=content.format(i)))

    read_counts = []

    def read(h):
        read_counts.append(len(h.messages))

    rates = {}
    for name, work in (("append", append), ("read", read)):
        pool = [threading.Thread(target=work, args=(h,)) for h in histories]
        started = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        rates[name] = per * threads / (time.perf_counter() - started)
    assert sum(read_counts) == per * threads, read_counts
    return rates


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    args = p.parse_args()
    engine = engine_for(args.url, args.threads)
    table = "chat_bench_peer_" + uuid.uuid4().hex[:12]
    out = {}
    try:
        for threads in (1, args.threads):
            rates = measure(engine, table, args.messages, threads)
            out[f"append_{threads}"] = rates["append"]
            out[f"read_{threads}"] = rates["read"]
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    print(json.dumps(out))


main()
