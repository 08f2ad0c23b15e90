"""CPU time per part of a mail server, from /proc (for bench/mailpath.py).

On a shared machine the wall-clock rates of a benchmark move with everyone
else's load; the CPU each part spends per message does much less, so it is
what says where the time goes. A snapshot holds every process's user+system
time; the difference of two snapshots is grouped by part: a master (Postfix,
Dovecot, Rspamd, the policy daemon, postsrsd) and its children by program,
plus the time of the children that exited meanwhile (which the master
collected); PostgreSQL backends by the role they logged in as (only the mail
servers' roles: other backends serve other work).
"""
import collections
import os

HZ = os.sysconf("SC_CLK_TCK")
MAIL_DB_ROLES = ("emboux_postfix", "emboux_dovecot", "emboux_opendkim")


def snapshot():
    """{pid: (ppid, command line, own CPU ticks, reaped children's CPU ticks, start time)}"""
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline") as f:
                cmd = f.read().replace("\0", " ").strip()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        procs[int(pid)] = (int(fields[1]), cmd or stat[stat.index("(") + 1:stat.rindex(")")],
                           utime + stime, cutime + cstime, int(fields[19]))
    return procs


def _label(cmd):
    if cmd.startswith("rspamd:"):  # "rspamd: rspamd_proxy process (...)"
        return cmd.split(":")[1].split("(")[0].split(";")[0].replace(" process", "").strip()
    return cmd.split()[0].rsplit("/", 1)[-1]  # "smtpd -n ...", "dovecot-x/lmtp"


def _part(pid, ppid, cmd, masters):
    for name, master in masters.items():
        if pid == master:
            return f"{name} master" if name != "PostgreSQL" else None
        if ppid != master:
            continue
        if name == "PostgreSQL":  # a backend: "postgres: 15/main: ROLE DB ADDRESS STATE"
            role = next((w for w in cmd.split() if w in MAIL_DB_ROLES), None)
            return f"PostgreSQL ({role})" if role else None
        return f"{name} {_label(cmd)}"
    return None


def cpu_by_part(before, after, masters):
    """Seconds of CPU per part between two snapshots. masters: {"label": pid}
    of the masters whose own and children's time is counted (a PostgreSQL
    postmaster: only its backends logged in as a mail server's role)."""
    out = collections.Counter()
    for pid, (ppid, cmd, ticks, reaped, started) in after.items():
        part = _part(pid, ppid, cmd, masters)
        if part is None:
            continue
        old = before.get(pid)
        # the same process (not a new one with a recycled pid): its start time;
        # not its command line, which some rewrite (Rspamd's main: msg/sec)
        t0, r0 = (old[2], old[3]) if old and old[4] == started else (0, 0)
        out[part] += (ticks - t0) / HZ
        if part.endswith(" master"):
            out[part.replace(" master", " (exited children)")] += (reaped - r0) / HZ
    return +out
