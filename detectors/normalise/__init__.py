"""Normalisation: raw log lines -> flat ECS events (dotted keys, e.g. ``"source.ip"``).

Public API::

    from detectors.normalise import Normaliser, parse_line
    n = Normaliser(default_timezone=DEFAULT_TIMEZONE)
    events = n.normalise_batch(batch)   # collectors.wire.LineBatch -> list of events
    events += n.flush()                 # auditd events still waiting for records
    ev = parse_line(text, dataset=None, timezone=DEFAULT_TIMEZONE, path=None, line_no=0)

Datasets (names follow the Filebeat modules) and their key fields
-----------------------------------------------------------------
Every event: ``@timestamp`` (UTC, ms, ``Z``; local times use the source's time zone, default
Asia/Ho_Chi_Minh; RFC 3164 years are inferred from the read time), ``event.dataset``,
``event.module``, ``event.kind``, ``event.category``/``event.type`` (lists), ``event.action``,
``event.outcome``, ``message``, ``event.original``, ``host.hostname`` (the line's own host),
``process.name``/``process.pid`` (syslog tag), ``log.file.path``, ``log.file.line``, ``tags``.
``Normaliser.normalise_batch`` adds ``organization.id``, ``agent.id``, ``agent.type: socpipe``,
``host.name`` (line host, else the batch host), ``log.offset``, ``socpipe.seq`` and the agent's
line flags as tags.

- ``system.auth`` - sshd/sshd-session/dropbear, PAM (any program), sudo, su, useradd/usermod/
  userdel/groupadd/passwd/chpasswd..., systemd-logind, cron. sshd logins: ``event.action``
  ``ssh_login`` with ``event.outcome`` failure|success, ``user.name``, ``source.ip``/``source.port``
  (``source.address``/``source.domain`` when the peer is a name), ``event.reason`` ("invalid
  user"...), ``system.auth.ssh.method``. Other actions: ``ssh_disconnect``, ``ssh_no_identification``,
  ``ssh_max_auth_attempts``, ``ssh_protocol_error``, ``ssh_timeout``, ``ssh_connection``,
  ``pam_authentication_failure``, ``session_opened|closed``, ``sudo_command`` (``user.name`` the
  caller, ``user.effective.name``, the command in ``process.command_line``/``executable``/``args``,
  ``process.working_directory``; ``process.name`` stays ``sudo``), ``sudo_auth_failure``, ``su``,
  ``user_created``/``user_deleted``/``user_added_to_group``/``password_changed``... (category iam,
  the account acted upon in ``user.target.name``/``id``, groups in ``group.name``/``id``, the
  actor in ``user.name`` only when the line names it), ``logind_session_start``, ``cron_command``
  (``process.command_line``). Every field with an example: ``socpipe fields`` (generated from
  ``examples.yml``, which the parser tests check).
  The Normaliser remembers each sshd pid's peer, so later lines of that connection (kex errors,
  "Too many authentication failures") carry ``source.ip`` too.
- ``system.syslog`` - any other syslog line (RFC 3164, RFC 5424, ISO-8601/rsyslog high precision,
  journald short-iso/short-precise, bare ``host prog[pid]: msg``).
- ``auditd.log`` - raw ``audit.log`` (also ``node=`` and enriched forms) and syslog-forwarded
  records. The Normaliser assembles records by serial (SYSCALL+EXECVE+CWD+PATH+PROCTITLE...) into
  one event: ``auditd.log.record_type`` (lead record), ``auditd.log.record_types``,
  ``auditd.log.sequence``, ``auditd.log.<key>`` (raw keys), ``auditd.log.syscall`` (name),
  ``auditd.log.key``, ``process.executable``/``name``/``pid``/``parent.pid``, ``process.args``,
  ``process.command_line`` (hex decoded), ``process.title``, ``process.working_directory``,
  ``file.path`` (first PATH), ``auditd.paths``, ``user.id``/``user.effective.id``/``user.audit.id``
  and their ``.name`` when enriched, ``source.ip`` and ``user.name`` (acct) for USER_* records,
  ``auditd.log.cmd`` (USER_CMD, decoded). execve: ``event.action: executed``, category process.
  ``parse_line`` alone returns one event per record (no assembly).
- ``apache.access`` / ``nginx.access`` - common, combined, vhost_combined, X-Forwarded-For lists
  and nginx's trailing ``"$http_x_forwarded_for"``; lines wrapped in extra quotes. ``source.ip``,
  ``http.request.method``, ``url.original``/``path``/``query``/``extension``/``domain``,
  ``http.version``, ``http.response.status_code``, ``http.response.body.bytes``,
  ``http.request.referrer``, ``user_agent.original``, ``user.name``, ``network.forwarded_ip``,
  ``related.ip``. Apache and nginx write the same formats: the dataset comes from the
  configuration, else ``nginx`` in the file path, else apache.
- ``apache.error`` / ``nginx.error`` - ``log.level``, ``source.ip``/``port``, ``error.code`` (AHxxxxx),
  ``process.pid``; nginx's ``client:``/``request:``/``host:`` parts into ``source.ip``/``url.*``.
  Also accepted when forwarded through syslog (httpd/apache2/nginx tags).
- ``iptables.log`` - netfilter LOG lines (iptables, nftables, UFW, firewalld): ``source.ip``/
  ``port``, ``destination.ip``/``port``, ``network.transport``, ``network.direction``,
  ``event.action`` drop|reject|accept|log (from the log prefix), ``iptables.prefix``,
  ``observer.product`` (ufw|firewalld), ``observer.ingress/egress.interface.name``.
- Windows event logs (forwarded by NXLog CE, Winlogbeat, WEF) - ``winlog.*`` and Elastic's ECS fields
  (``windows``, ``winlog``, ``windows_ecs``, ``windows_sysmon``, ``windows_remote``, ``windows_fields``,
  ``windows_tables``; the README's Windows section). The Normaliser remembers each Windows process's
  creation (Sysmon 1, per verified sender, computer and ProcessGuid) and fills its later Sysmon
  events' missing ``process.command_line``, ``process.parent.*``, ``user.*`` ... naming them in
  ``socpipe.enriched`` (``process_context``); ``parse_line`` alone fills nothing.
- JSON lines - ECS fields kept (flattened to dotted keys), everything else under the source's name
  (the configured dataset's module, else the file stem): ``{"level": "x"}`` in ``portal.app`` ->
  ``portal.level``. Dataset: the configured one, else ``<name>.log``.

Failures and hostile input: a line no parser understands is still one event, with ``message``,
``event.original`` and tag ``_socpipe_parse_failure``; ``@timestamp`` then falls back to the read
time. Invalid UTF-8 is replaced (tag ``invalid_utf8``), NULs removed (``nul_bytes``), lines over
1 MiB truncated (``truncated``), absurd times fall back to the read time
(``_socpipe_timestamp_invalid``). Nothing raises.

Modules: ``core`` (sanitising, detection, dispatch), ``syslog`` (headers), ``auth`` (program router,
sudo/su/iam/logind/cron), ``sshd`` (sshd, dropbear), ``pam``, ``auditd`` (records, assembly), ``web``,
``firewall``, ``jsonl``, ``ecs`` (time, IP, source helpers), ``windows*``/``winlog``, ``process_context``,
``normaliser`` (the stateful batch front).

Speed (``tests/bench/bench_parse.py``): the commonest shapes have fast paths that must give exactly
the general path's event, and ``tests/unit/test_normalise_fastpaths.py`` checks that by property:
a clean RFC 3164 line is parsed by one header regex with the minute's UTC conversion cached and
the event built in one dict literal, skipping sanitising and detection; sshd's commonest messages
and plain common/combined access lines have backtrack-free regexes tried before the general ones.
A new fast path needs a matching property test.

Dataset choice: a configured dataset picks the parser family; ``system.auth`` and ``system.syslog``
are one family (the program tag decides, so auth lines sent to /var/log/syslog or over remote syslog
still land in ``system.auth``). Without configuration the dataset is detected per line.
"""

from typing import TYPE_CHECKING

from collectors.lazy import lazy_exports

if TYPE_CHECKING:
    from detectors.normalise.core import parse_line
    from detectors.normalise.normaliser import Normaliser

# Resolved on first use (PEP 562): `rules lint` reads the field reference (detectors.normalise.reference)
# without loading every parser when the reference's events are cached.
__getattr__ = lazy_exports(
    __name__, {"Normaliser": "detectors.normalise.normaliser", "parse_line": "detectors.normalise.core"}
)

__all__ = ["Normaliser", "parse_line"]
