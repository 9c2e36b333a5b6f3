"""The triage queue in a real browser (Debian's chromium + chromedriver, driven by selenium) against
a real triage server and the real Elasticsearch API. Screenshots are kept as test artifacts in
`.socpipe/test-artifacts/browser/` (or $SOCPIPE_TEST_ARTIFACTS/browser)."""

from __future__ import annotations

import os
import shutil
import threading
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.elastic import AlertIndexer
from pipeline.elastic.incidents import IncidentStore
from pipeline.elastic.triage import TriageService
from pipeline.httpserve import ServeSettings
from pipeline.triage.app import TriageApi
from pipeline.triage.auth import ReloadingTokenStore, add_analyst
from pipeline.triage.server import make_server
from tests.integration.alerts_support import es_env  # noqa: F401  (fixture)
from tests.integration.test_incidents import T0, alert

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SOCPIPE_TEST_ARTIFACTS", ROOT / ".socpipe" / "test-artifacts")) / "browser"


@pytest.fixture
def browser():
    chromium, driver_bin = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_bin:
        pytest.skip("chromium / chromedriver not installed (`make prereqs` installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--lang=vi"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(driver_bin), options=opts)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()


def click(drv, by, what) -> None:
    """Click and wait for the next page (a form post or link), not just the click."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = drv.find_element(By.TAG_NAME, "html")
    drv.find_element(by, what).click()
    WebDriverWait(drv, 10).until(_replaced(old))


def _replaced(element):
    """ec.staleness_of, also when chromedriver answers mid-navigation that the node 'does not belong to
    the document' (a WebDriverException, not a StaleElementReferenceException: seen once in CI)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def gone(_drv) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    return gone


def shot(drv, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    drv.save_screenshot(str(path))
    return path


def test_login_queue_filters_incident_timeline_and_close(es_env, tmp_path, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    cfg, es = es_env
    docs = [
        alert("Web Directory Brute Force", "medium", ["attack.reconnaissance"], 0),
        alert("SSH Brute Force", "high", ["attack.credential_access"], 120),
        alert("SSH Login After Failures", "critical", ["attack.initial_access"], 600, user="deploy"),
        alert("Sudo Root Shell", "high", ["attack.privilege_escalation"], 900, user="deploy"),
        alert("SSH Brute Force", "high", ["attack.credential_access"], 300, agency="so-yte", ip="192.0.2.77"),
    ]
    AlertIndexer(es, prefix=cfg.index_prefix, refresh="wait_for").index(docs)
    store = IncidentStore(es, cfg.index_prefix, refresh="wait_for")
    incident = {store.attach(d["_id"], {k: v for k, v in d.items() if k != "_id"}) for d in docs[:4]}.pop()
    store.attach(docs[4]["_id"], {k: v for k, v in docs[4].items() if k != "_id"})
    tokens_file = tmp_path / "tokens.yml"
    token = add_analyst(tokens_file, "lan.nguyen", "analyst")
    service = TriageService(es, prefix=cfg.index_prefix)
    server = make_server(
        TriageApi(service, ReloadingTokenStore(tokens_file), incidents=store), settings=ServeSettings(port=0)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    drv = browser
    try:
        drv.get(base + "/queue")
        assert drv.current_url.endswith("/queue/login") and "Hàng đợi xử lý" in drv.page_source
        shot(drv, "01-login-vi")
        drv.find_element(By.ID, "token").send_keys(token)
        click(drv, By.ID, "login")
        assert drv.current_url == base + "/queue"
        assert token not in drv.page_source  # the token never comes back in a page
        cookie = drv.get_cookie("socpipe_session")
        assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] not in token
        rows = drv.find_elements(By.CSS_SELECTOR, "#alerts tr")[1:]
        assert len(rows) == 5 and "critical" in rows[0].get_attribute("class")  # worst first
        incidents = drv.find_elements(By.CSS_SELECTOR, "#incidents a.incident")
        assert len(incidents) == 2
        # times in Asia/Ho_Chi_Minh: the critical alert ends at T0+630 UTC
        vn = datetime.fromtimestamp(T0 + 630, ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%d %H:%M:%S")
        assert vn in rows[0].text
        shot(drv, "02-queue-vi")

        Select(drv.find_element(By.ID, "f-severity")).select_by_value("high")
        click(drv, By.ID, "apply")
        rows = drv.find_elements(By.CSS_SELECTOR, "#alerts tr")[1:]
        assert len(rows) == 3 and all("high" in r.get_attribute("class") for r in rows)
        Select(drv.find_element(By.ID, "f-sort")).select_by_value("time")
        click(drv, By.ID, "apply")
        click(drv, By.ID, "lang-en")  # English, filters kept
        assert "Triage queue" in drv.page_source and "Incidents" in drv.page_source
        rows = drv.find_elements(By.CSS_SELECTOR, "#alerts tr")[1:]
        assert len(rows) == 3 and "Sudo Root Shell" in rows[0].text  # newest first
        shot(drv, "03-queue-en-filtered")

        drv.get(base + f"/queue/incident/{incident}")
        timeline = drv.find_elements(By.CSS_SELECTOR, "#timeline tr")[1:]
        assert [r.find_element(By.TAG_NAME, "a").text for r in timeline] == [d["rule"]["name"] for d in docs[:4]]
        assert drv.find_element(By.ID, "tactics").text == (
            "Reconnaissance → Initial Access → Privilege Escalation → Credential Access"
        )
        shot(drv, "04-incident")
        Select(drv.find_element(By.ID, "reason")).select_by_value("true_positive")
        click(drv, By.ID, "do-close")
        assert drv.find_element(By.ID, "status").text == "closed"
        assert "lan.nguyen" in drv.find_element(By.ID, "history").text
        shot(drv, "05-incident-closed")
        for d in docs[:4]:  # closing the incident closed its alerts
            assert service.get(d["_id"]).status == "closed"
        assert service.get(docs[4]["_id"]).status == "open"

        drv.get(base + f"/queue/alert/{docs[4]['_id']}")
        assert "192.0.2.77" in drv.page_source and drv.find_elements(By.CSS_SELECTOR, "#evidence tr")
        drv.find_element(By.ID, "note").send_keys("<script>alert(1)</script> checked")
        click(drv, By.ID, "do-note")
        assert "&lt;script&gt;" in drv.page_source and "checked" in drv.find_element(By.ID, "notes").text
        shot(drv, "06-alert-evidence-note")

        # a forged POST with the session cookie but without the page's CSRF token is refused
        req = urllib.request.Request(
            base + f"/queue/alert/{docs[4]['_id']}/ack",
            data=b"x=1",
            method="POST",
            headers={"Cookie": f"socpipe_session={cookie['value']}"},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 403 and service.get(docs[4]["_id"]).status == "open"
        assert (ARTIFACTS / "05-incident-closed.png").stat().st_size > 10_000
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
