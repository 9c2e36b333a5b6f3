"""Coverage: how many of the province's agencies are under SOC monitoring, right now, in Prometheus.

Inputs: the inventory (`config/inventory.yaml`), the enrolment registry (which agent speaks for which
agency, with its signing secret), verified heartbeats on `socpipe.heartbeats` and raw records on
`socpipe.raw` (counted from key `agency|agent|source` and header `lines`, never decoded).

Agency states: `monitored` (an agent alive and every expected source delivered within its threshold;
an agency listing no source expects "any source": some source of it delivering), `degraded` (agent
alive but a source silent or never delivered, spooling for longer than `spooling_after_s`, an input it
reports not ok, or Kafka refusing it: its heartbeat's `kafka_reason`, shown first among the reasons),
`agent_down` (no verified heartbeat for `missed_heartbeats` x `heartbeat_interval_s`, default 3 x 15 s),
`never_seen` (no verified heartbeat ever), `decommissioned` (flag in the inventory; not counted).
Expected sources take the same states (monitored = delivering).

Metrics (default port 9465):

| metric | type | labels | meaning |
|---|---|---|---|
| `socpipe_agencies_total` | gauge | - | agencies that count (inventory minus decommissioned) |
| `socpipe_agencies_monitored` | gauge | - | agencies in state monitored |
| `socpipe_coverage_ratio` | gauge | - | monitored / total, all tiers (the province's target: 1) |
| `socpipe_tier_agencies_total` | gauge | tier | agencies that count, per tier |
| `socpipe_tier_agencies_monitored` | gauge | tier | monitored agencies, per tier |
| `socpipe_tier_coverage_ratio` | gauge | tier | ratio per tier (0 for an empty tier) |
| `socpipe_agencies_by_state` | gauge | tier, state | agencies in each state |
| `socpipe_agency_state` | gauge | agency, tier, state | 1 for the agency's current state, 0 otherwise |
| `socpipe_agency_last_seen_timestamp_seconds` | gauge | agency | latest verified heartbeat (absent if never) |
| `socpipe_agency_sources_expected` | gauge | agency | expected sources ("*" counts as one) |
| `socpipe_agency_sources_reporting` | gauge | agency | expected sources delivering |
| `socpipe_agency_spool_bytes` | gauge | agency | bytes spooled by the agency's alive agents |
| `socpipe_agency_inputs_failing` | gauge | agency | inputs the alive agents report not ok (missing, permission denied, rotated away, bind failed); the reasons are in `coverage status` |
| `socpipe_source_last_event_timestamp_seconds` | gauge | agency, source | latest delivery of an expected source |
| `socpipe_source_delivering` | gauge | agency, source | 1 when delivering within its threshold |
| `socpipe_agent_versions` | gauge | version | agencies running each agent version (alive agents) |
| `socpipe_events_received_total` | counter | agency, dataset | log lines received (from header `lines`) |
| `socpipe_raw_records_received_total` | counter | agency, dataset | raw records (batches) received |
| `socpipe_heartbeats_accepted_total` | counter | - | heartbeats verified and applied |
| `socpipe_heartbeats_rejected_total` | counter | reason | forged/unsigned/unknown/revoked/mismatched/malformed, stale (older than ~2 intervals), replayed (counter not above the last) |
| `socpipe_raw_records_rejected_total` | counter | reason | raw records not counted: bad key, unknown/revoked agent, unsigned, bad MAC, agency mismatch, replayed |
| `socpipe_inventory_invalid_entries` | gauge | - | inventory entries rejected at the last load |
| `socpipe_inventory_loaded_timestamp_seconds` | gauge | - | last successful inventory (re)load |
| `socpipe_coverage_evaluated_timestamp_seconds` | gauge | - | last evaluation (ticks every `tick_s`) |

Timestamps are SOC receipt times (agency clocks are not trusted). Cardinality: agencies x expected
sources x 5 states, 4 tiers, at most 16 datasets per agency and 32 versions. Source `source` labels
are inventory source names, never raw paths; `agency` labels come from the inventory (traffic
counters: from enrolled agents only).
"""
