# socpipe's services (agent, detector, coverage) for docker-compose.yml.
FROM python:3.11-slim
WORKDIR /opt/socpipe
COPY pyproject.toml README.md ./
COPY collectors collectors
COPY detectors detectors
COPY pipeline pipeline
RUN pip install --no-cache-dir .
COPY rules rules
COPY config config
COPY dashboards dashboards
# named volumes mounted on these start with this ownership (the agent, detector and coverage write there)
RUN useradd --system --home /var/lib/socpipe socpipe && mkdir -p /var/lib/socpipe /var/lib/socpipe-agent \
    && chown socpipe /var/lib/socpipe /var/lib/socpipe-agent
USER socpipe
ENTRYPOINT ["socpipe"]
