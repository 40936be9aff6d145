#!/usr/bin/env python3
"""Measures what hostile clients do to a running chat-server (docs/RELIABILITY.md).

    hostile_clients.py idle   HOST:PORT [CONNECTIONS] [HOLD_SECONDS]
    hostile_clients.py logins HOST:PORT SERVER_PID [REQUESTS]

`idle` opens CONNECTIONS (default 1100) sockets that send nothing, part of the HTTP/2
preface, or the preface and an empty SETTINGS frame, holds them HOLD_SECONDS (default 15)
and meanwhile times `GET /healthz` on a new connection (giving up after 15 s).

`logins` registers a user, then sends REQUESTS (default 300) `POST /users/login` that
each disconnect 2 ms after sending, and reports the server's resident memory (VmRSS)
before and its peak (VmHWM) after, from /proc/SERVER_PID/status.
"""

import json
import socket
import sys
import time

OPENINGS = [
    b"",
    b"PRI * HTTP/2.0\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
]


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def exchange(addr, request, timeout):
    """Sends `request` on a new connection; the status line, or None on timeout."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(request)
        answer = b""
        while b"\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer.split(b"\r\n", 1)[0].decode()


def healthz(addr, timeout=15.0):
    started = time.monotonic()
    try:
        status = exchange(addr, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n", timeout)
    except (socket.timeout, OSError) as e:
        status = f"no answer ({e.__class__.__name__})"
    return status, time.monotonic() - started


def idle(addr, count=1100, hold=15.0):
    print(f"/healthz before: {healthz(addr)}")
    sockets = []
    started = time.monotonic()
    for n in range(count):
        s = socket.create_connection(addr)
        s.sendall(OPENINGS[n % len(OPENINGS)])
        sockets.append(s)
    print(f"opened {count} idle sockets in {time.monotonic() - started:.2f} s")
    while time.monotonic() - started < hold:
        status, took = healthz(addr)
        print(f"  /healthz at {time.monotonic() - started:5.1f} s: {status!r} in {took * 1000:.0f} ms")
        time.sleep(1.0)
    for s in sockets:
        s.close()


def post(path, body):
    body = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


def memory(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) // 1024
    return fields


def logins(addr, pid, count=300):
    print("register:", exchange(addr, post("/users", {"username": "ada", "password": "password-of-ada"}), 30))
    print("before:", memory(pid), "MiB")
    login = post("/users/login", {"username": "ada", "password": "a wrong guess"})
    started = time.monotonic()
    for _ in range(count):
        s = socket.create_connection(addr)
        s.sendall(login)
        time.sleep(0.002)
        s.close()
    print(f"sent {count} abandoned logins in {time.monotonic() - started:.2f} s")
    # Wait until the work they started is done: memory stops moving and a login is answered.
    last = None
    while True:
        time.sleep(1.0)
        now = memory(pid)
        if now == last:
            break
        last = now
    status, took = healthz(addr)
    print(f"after: {last} MiB; /healthz {status!r} in {took * 1000:.0f} ms")


def main(argv):
    if len(argv) >= 3 and argv[1] == "idle":
        idle(address(argv[2]), *(int(a) for a in argv[3:5]))
    elif len(argv) >= 4 and argv[1] == "logins":
        logins(address(argv[2]), int(argv[3]), *(int(a) for a in argv[4:5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
