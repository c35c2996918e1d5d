#!/usr/bin/python3
"""Helper of hostile_recipes.sh (issue 10).

Two roles:
  * wrapper (default): stands in for hubimg inside the recipes. Runs the real binary
    ($HUBIMG_RECIPES_REAL) with posix_spawn, passes its stderr through, forwards SIGTERM/SIGINT/
    SIGHUP to it, kills it (SIGKILL) after $HUBIMG_RECIPES_KILL_AFTER seconds, and appends one
    JSON line per invocation to $HUBIMG_RECIPES_LOG: exit code or signal, max RSS (wait4), wall
    time, first stderr line, first "hubimg: error:" line. Exits like the real binary did (same
    code, or the same signal).
  * --judge LOG RECIPE MAX_RSS_MB MAX_SECONDS ALLOW_CALLER_KILL: checks every invocation of one
    recipe, prints one summary line, fields separated by \x1f (recipe, invocations, exit codes,
    max RSS MB, max s, first message, verdict, problems) on stdout and the per-invocation details on stderr.
"""
import json
import os
import signal
import sys
import threading
import time


def wrapper():
    real = os.environ["HUBIMG_RECIPES_REAL"]
    log = os.environ["HUBIMG_RECIPES_LOG"]
    kill_after = float(os.environ.get("HUBIMG_RECIPES_KILL_AFTER", "30"))
    state = {"pid": None, "forwarded": None, "forwarded_at": None, "timed_out": False}

    def forward(signum, _frame):
        if state["forwarded"] is None:
            state["forwarded"] = signum
            state["forwarded_at"] = time.monotonic()
        if state["pid"] is not None:
            try:
                os.kill(state["pid"], signum)
            except ProcessLookupError:
                pass

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    r, w = os.pipe()
    start = time.monotonic()
    # posix_spawn (vfork) keeps the wrapper's own memory out of the child's max RSS; SIGPIPE and
    # SIGXFSZ back to their defaults as subprocess does (Python ignores them).
    pid = os.posix_spawn(real, [real] + sys.argv[1:], os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, w, 2), (os.POSIX_SPAWN_CLOSE, r)],
                         setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    state["pid"] = pid
    if state["forwarded"] is not None:  # a signal that came before the child existed
        os.kill(pid, state["forwarded"])
    os.close(w)

    def kill_late():
        state["timed_out"] = True
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(kill_after, kill_late)
    timer.daemon = True
    timer.start()

    captured = bytearray()

    def pump():
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            if len(captured) < 1 << 16:
                captured.extend(chunk[: (1 << 16) - len(captured)])
            try:
                os.write(2, chunk)
            except OSError:
                pass

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    _, status, usage = os.wait4(pid, 0)
    end = time.monotonic()
    timer.cancel()
    reader.join(5)
    lines = captured.decode("utf-8", "replace").splitlines()
    error_lines = [l for l in lines if l.startswith("hubimg: error:")]
    record = {
        "argv": sys.argv[1:],
        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "timed_out": state["timed_out"],
        "forwarded": state["forwarded"],
        "after_forward_s": (end - state["forwarded_at"]) if state["forwarded_at"] else None,
        "max_rss_kb": usage.ru_maxrss,
        "wall_s": end - start,
        "first_stderr": lines[0] if lines else "",
        "first_error": error_lines[0] if error_lines else "",
    }
    with open(log, "a") as f:
        f.write(json.dumps(record) + "\n")
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        time.sleep(1)
        sys.exit(128 + sig)
    sys.exit(os.WEXITSTATUS(status))


def judge(log, recipe, max_rss_mb, max_seconds, allow_caller_kill):
    calls = []
    if os.path.exists(log):
        with open(log) as f:
            calls = [json.loads(line) for line in f if line.strip()]
    problems = []
    codes = []
    first_message = ""
    for i, c in enumerate(calls, 1):
        name = "call %d (%s)" % (i, " ".join(c["argv"][:1]))
        if c["timed_out"]:
            code = "KILLED(timeout)"
            problems.append("%s: still running after %.0f s, killed" % (name, c["wall_s"]))
        elif c["signal"] is not None:
            code = "SIG%d" % c["signal"]
            if c["forwarded"] is not None and allow_caller_kill:
                code = "SIG%d(recipe's kill)" % c["signal"]
                if c["after_forward_s"] is not None and c["after_forward_s"] > 5:
                    problems.append("%s: took %.1f s to end after the recipe's signal" %
                                    (name, c["after_forward_s"]))
            else:
                problems.append("%s: ended by signal %d" % (name, c["signal"]))
        else:
            code = str(c["exit"])
            if c["exit"] not in (0, 1):
                problems.append("%s: exit code %d (want 0 or 1)" % (name, c["exit"]))
            if c["exit"] == 1 and len(c["first_error"]) <= len("hubimg: error:") + 1:
                problems.append("%s: exit 1 without a 'hubimg: error: ...' message" % name)
        codes.append(code)
        rss_mb = c["max_rss_kb"] / 1024.0
        if rss_mb >= max_rss_mb:
            problems.append("%s: max RSS %.0f MB >= %d MB" % (name, rss_mb, max_rss_mb))
        if c["wall_s"] >= max_seconds:
            problems.append("%s: %.1f s >= %g s" % (name, c["wall_s"], max_seconds))
        if not first_message:
            first_message = c["first_error"] or ("" if c["exit"] == 0 else c["first_stderr"])
        print("  %s %-12s %7.1f MB %6.2f s  %s | %s" %
              (recipe, code, rss_mb, c["wall_s"], " ".join(c["argv"])[:100],
               c["first_error"] or c["first_stderr"]), file=sys.stderr)
    if not calls:
        problems.append("hubimg was never run (recipe not extracted or prelude failed)")
    max_rss = max((c["max_rss_kb"] for c in calls), default=0) / 1024.0
    max_s = max((c["wall_s"] for c in calls), default=0.0)
    message = first_message.replace("\x1f", " ")
    print("\x1f".join([recipe, str(len(calls)), ",".join(codes), "%.0f" % max_rss, "%.2f" % max_s,
                     message, "FAIL" if problems else "ok", "; ".join(problems)]))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--judge":
        judge(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]),
              sys.argv[6] == "1")
    else:
        wrapper()
