#!/usr/bin/env python3
"""Runs a terminal program (the Go `charm link` TUI, which refuses to run without a
terminal) in a pseudo-terminal for the interop tests.

Usage: pty_drive.py [--send-on TEXT KEYS]... -- COMMAND [ARGS...]

The program's output is copied to stdout with terminal escapes removed, line by line
as it comes. When the output seen so far contains TEXT (each rule fires once, in
order), KEYS is typed. Cursor-position queries are answered. TERM=screen keeps the
TUI from asking the terminal for its colours. Exits with the program's status; kills
it after 150 seconds.
"""

import os
import pty
import re
import select
import sys
import time

ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][A-Z0-9]|\r")
LIMIT = 150.0


def main() -> int:
    args = sys.argv[1:]
    rules: list[tuple[bytes, bytes]] = []
    while args and args[0] == "--send-on":
        rules.append((args[1].encode(), args[2].encode()))
        args = args[3:]
    if not args or args[0] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    command = args[1:]
    os.environ["TERM"] = "screen"
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    seen = b""
    ends = time.monotonic() + LIMIT
    while time.monotonic() < ends:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        if b"\x1b[6n" in chunk:
            os.write(fd, b"\x1b[1;1R")
        text = ESCAPES.sub(b"", chunk)
        seen += text
        sys.stdout.buffer.write(text)
        sys.stdout.buffer.flush()
        if rules and rules[0][0] in seen:
            os.write(fd, rules.pop(0)[1])
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status


if __name__ == "__main__":
    sys.exit(main())
