"""tcheck.py - the check protocol of the Python test helpers (tclient.py,
limits_client.py): one line per check, "PASS name" or "FAIL name: why", which
lib.sh's report_helper counts; "INFO text" lines are figures it echoes."""

_failures = 0


def ok(name):
    print("PASS " + name, flush=True)


def bad(name, msg):
    global _failures
    _failures += 1
    print("FAIL %s: %s" % (name, msg), flush=True)


def info(text):
    print("INFO " + text, flush=True)


def check(name, cond, msg):
    if cond:
        ok(name)
    else:
        bad(name, msg)
    return cond


def exit_status():
    """1 if any check failed, else 0."""
    return 1 if _failures else 0
