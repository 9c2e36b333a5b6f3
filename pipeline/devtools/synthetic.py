"""Synthetic web events for tests and benchmarks (deterministic, no shared data needed).

Benign: a few visitors per minute loading a page and its static assets with a referrer. Scanner:
one address requesting hundreds of unknown paths a minute, mostly answered 404.
"""

from __future__ import annotations

import random
from typing import Any

from detectors.common.times import iso_ms

PAGES = ["/", "/blog/", "/about/", "/contact/", "/wp-login.php", "/news/2022/02/update/"]
ASSETS = [
    "/wp-includes/css/style.min.css",
    "/wp-includes/js/jquery.min.js",
    "/img/logo.png",
    "/wp-content/themes/t/font.woff2",
]
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:86.0) Gecko/20100101 Firefox/86.0"


def web_event(
    ts: float,
    ip: str,
    path: str,
    status: int = 200,
    method: str = "GET",
    query: str = "",
    size: int = 5000,
    agency: str = "agency-1",
    host: str = "web-1",
) -> dict[str, Any]:
    e: dict[str, Any] = {
        "@timestamp": iso_ms(ts),
        "event.dataset": "apache.access",
        "source.ip": ip,
        "http.request.method": method,
        "url.path": path,
        "url.original": path + ("?" + query if query else ""),
        "http.response.status_code": status,
        "http.response.body.bytes": size,
        "user_agent.original": UA,
        "organization.id": agency,
        "host.name": host,
    }
    if query:
        e["url.query"] = query
    return e


def benign_web(
    start: float, minutes: int, seed: int = 1, visitors: int = 3, addresses: int = 160
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    ips = [f"10.0.{i // 40}.{i % 40 + 1}" for i in range(addresses)]
    events = []
    for m in range(minutes):
        for _ in range(rng.randint(1, visitors)):
            ip = rng.choice(ips)
            t = start + m * 60 + rng.uniform(0, 50)
            page = rng.choice(PAGES)
            query = f"p={rng.randint(1, 99)}" if rng.random() < 0.3 else ""
            events.append(web_event(t, ip, page, query=query, size=rng.randint(3000, 9000)))
            for a in rng.sample(ASSETS, rng.randint(0, len(ASSETS))):
                events.append(web_event(t + rng.uniform(0.1, 1.5), ip, a, size=rng.randint(500, 30000)))
            if rng.random() < 0.05:
                events.append(web_event(t + 2, ip, "/favicon.ico", status=404, size=200))
    events.sort(key=lambda e: e["@timestamp"])
    return events


def scanner_web(
    start: float, minutes: int, ip: str = "203.0.113.9", rate: int = 300, seed: int = 2
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events = []
    for m in range(minutes):
        for i in range(rate):
            t = start + m * 60 + i * (60.0 / rate)
            word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(3, 12)))
            status = 404 if rng.random() < 0.9 else 403
            events.append(
                web_event(
                    t,
                    ip,
                    f"/{word}/{word}.php",
                    status=status,
                    size=300,
                    query="id=1%27%20OR%201=1--" if rng.random() < 0.2 else "",
                )
            )
    return events
