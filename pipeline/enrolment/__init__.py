"""SOC-side enrolment: per-agency tokens, enrolled agents and their secrets, and the HTTP endpoint."""
