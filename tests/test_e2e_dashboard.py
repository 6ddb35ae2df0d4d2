"""The dashboard in a real browser, on the twin: Debian's chromium, driven through its chromedriver
(selenium), opens https://<controller>/dashboard/ trusting the lab's CA (an NSS database, no
--ignore-certificate-errors), logs in as the guide's demo user, lands on Containers, creates a
container, uploads a file and downloads it back with the same sha256. No response of any page or
API call is a 403 or a 5xx. A screenshot of the Containers page is kept in test-output/dashboard/
(LAB_TEST_OUTPUT overrides the folder; DASHBOARD_DOCS_SCREENSHOT=1 also copies it to docs/).

The browser may reach the controller only: everything else goes to a SOCKS proxy on 127.0.0.1:9,
where nothing listens, and its own background traffic (updates, sync, metrics) is off.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_e2e_sim import ROOT, _lab, twin_lab_home

from labcore.front_door import front_door
from labcore.inventory import load_inventory
from labcore.paths import LabPaths
from labcore.secrets import load_secrets

pytestmark = pytest.mark.e2e

LAB = "rocky-lab"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 90  # seconds for one page or action (the first request loads Django and Horizon)
CONTAINER = f"from-the-browser-{os.urandom(2).hex()}"  # new on every run: the name must not exist yet
UPLOAD = "lab-upload.bin"
# Chromium's own traffic, none of it wanted (the machine's network is closed anyway).
QUIET = ("--no-first-run", "--no-default-browser-check", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-domain-reliability",
         "--no-pings", "--disable-breakpad", "--disable-client-side-phishing-detection", "--metrics-recording-only",
         "--safebrowsing-disable-auto-update", "--disable-quic",
         "--disable-features=OptimizationHints,MediaRouter,DialMediaRouteProvider,Translate,"
         "AutofillServerCommunication,CertificateTransparencyComponentUpdater,NetworkTimeServiceQuerying,"
         "InterestFeedContentSuggestions,SafeBrowsingEnhancedProtection,PrivacySandboxSettings4")
DEAD_PROXY = "socks5://127.0.0.1:9"  # discard port, nothing listens: any other address fails here


def _needs() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    missing += [] if shutil.which("certutil") else ["certutil (libnss3-tools)"]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if missing:
        why = f"the dashboard's browser test needs {', '.join(missing)} (scripts/host-deps.sh --for-tests)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The default Keystone lab, up and installed on the twin; down afterwards."""
    _needs()
    for home in twin_lab_home(tmp_path_factory, "e2e-dashboard"):
        _lab(home, "up")
        started = time.monotonic()
        _lab(home, "install")
        print(f"\nlab install with the dashboard: {time.monotonic() - started:.1f} s")
        yield home


def _output_dir() -> Path:
    folder = Path(os.environ.get("LAB_TEST_OUTPUT", ROOT / "test-output")) / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _trusting_home(tmp: Path, ca_pem: Path) -> Path:
    """A HOME whose NSS database (what chromium on Linux trusts) has the lab's CA, for servers only."""
    nssdb = tmp / "home" / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "openstack-ec2-lab CA", "-t", "C,,",
                    "-i", str(ca_pem)], check=True, capture_output=True)
    return nssdb.parent.parent


def _browser(tmp: Path, home: Path, controller: str, downloads: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                f"--user-data-dir={tmp / 'profile'}", *QUIET,
                f"--proxy-server={DEAD_PROXY}", f"--proxy-bypass-list={controller}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False,
                                              "safebrowsing.enabled": False})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    env = {**os.environ, "HOME": str(home)}
    # The driver's path is given, so Selenium Manager never runs (it would download a driver).
    service = Service(CHROMEDRIVER, env=env, log_output=str(tmp / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


class Responses:
    """Every HTTP response the browser got (pages, scripts, API calls), from its performance log."""

    def __init__(self, driver):
        self.driver, self.seen, self.asked = driver, [], []

    def read(self) -> list[tuple[int, str]]:
        import json

        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.responseReceived":
                response = message["params"]["response"]
                self.seen.append((int(response["status"]), response["url"]))
            elif message["method"] == "Network.requestWillBeSent":
                self.asked.append(message["params"]["request"]["url"])
        return self.seen

    def elsewhere(self, host: str) -> list[str]:
        """Requests the browser made to anything but the controller (none may be)."""
        self.read()
        return [u for u in self.asked if u.split(":", 1)[0] in ("http", "https", "ws", "wss")
                and urlsplit(u).hostname != host]

    def refused(self) -> list[tuple[int, str]]:
        return [(status, url) for status, url in self.read() if status == 403 or status >= 500]


def _no_forbidden_page(driver) -> None:
    text = driver.find_element("tag name", "body").text
    assert "Forbidden" not in driver.title and "Forbidden" not in text, f"{driver.current_url} shows Forbidden"
    assert "You are not authorized" not in text, f"{driver.current_url} is not authorized"


def _settled(driver, wait, element) -> None:
    """Wait for angular's checks of a field (the name-exists check asks the server): while one is
    pending the field's model is undefined, and a submit then sends that."""
    wait.until(lambda _: "ng-valid" in element.get_attribute("class") and
               "ng-pending" not in element.get_attribute("class"))


def _toasts(driver) -> list[str]:
    """The texts of the toasts shown (success ones go by themselves; an error stays)."""
    return [t.text for t in driver.find_elements("css selector", "div.alert") if t.is_displayed()]


def _dismiss_toasts(driver) -> None:
    errors = [t for t in _toasts(driver) if t.startswith("Error")]
    assert not errors, errors
    for close in driver.find_elements("css selector", "div.alert a.close"):
        if close.is_displayed():
            close.click()


def _log_in(driver, wait, door, user: str, password: str, start: str | None = None) -> None:
    """start: the address typed first (default: the dashboard's URL)."""
    from selenium.webdriver.support import expected_conditions as ec

    driver.get(start or door.dashboard_url)
    wait.until(ec.presence_of_element_located(("id", "id_password")))
    assert driver.current_url.startswith(f"https://{door.host}/dashboard/auth/login/")
    _no_forbidden_page(driver)
    driver.find_element("id", "id_domain").clear()
    driver.find_element("id", "id_domain").send_keys("Default")
    driver.find_element("id", "id_username").send_keys(user)
    driver.find_element("id", "id_password").send_keys(password)
    driver.find_element("id", "loginBtn").click()
    # The home after login: the object store's Containers page.
    wait.until(ec.url_contains("/dashboard/project/containers"))
    wait.until(ec.presence_of_element_located(("id", "containers_wrapper")))
    _no_forbidden_page(driver)


def _click_text(driver, wait, xpath: str):
    from selenium.webdriver.support import expected_conditions as ec

    element = wait.until(ec.element_to_be_clickable(("xpath", xpath)))
    element.click()
    return element


def test_the_dashboard_in_a_real_browser_over_https(installed, tmp_path):
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    paths = LabPaths(installed / LAB)
    door = front_door(load_inventory(paths.inventory))
    password = load_secrets(paths.secrets, lambda line: None)["demo_pass"]
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    payload = os.urandom(300 * 1024)
    upload = tmp_path / UPLOAD
    upload.write_bytes(payload)
    out = _output_dir()

    driver = _browser(tmp_path, _trusting_home(tmp_path, paths.ca_cert), door.host, downloads)
    responses = Responses(driver)
    wait = WebDriverWait(driver, WAIT)
    try:
        # HTTPS, trusted: a certificate chromium did not trust would stop here at its warning page.
        # Only the door's address typed: it leads to the dashboard's login.
        _log_in(driver, wait, door, "myuser", password, start=f"{door.base}/")

        _click_text(driver, wait, "//button[contains(normalize-space(.), 'Container')]")
        name = wait.until(ec.visibility_of_element_located(("css selector", ".modal-dialog input[type=text]")))
        name.send_keys(CONTAINER)
        _settled(driver, wait, name)
        _click_text(driver, wait, "//div[contains(@class,'modal-footer')]//button[contains(@class,'btn-primary')]")
        wait.until(ec.invisibility_of_element_located(("css selector", ".modal-dialog")))
        _click_text(driver, wait, f"//span[contains(@class,'hz-container-title') and normalize-space(.)='{CONTAINER}']")
        wait.until(ec.url_contains(f"/containers/container/{CONTAINER}"))
        wait.until(ec.presence_of_element_located(("xpath", "//*[contains(normalize-space(.), 'Displaying 0 items')]")))
        _dismiss_toasts(driver)

        # Upload: the objects table's upload button, the file, the modal's "Upload File".
        _click_text(driver, wait, "//button[.//span[contains(@class,'fa-upload')]]")
        wait.until(ec.presence_of_element_located(("id", "id_object_file"))).send_keys(str(upload))
        _settled(driver, wait, driver.find_element("id", "id_name"))
        _click_text(driver, wait, "//div[contains(@class,'modal-footer')]//button[contains(@class,'btn-primary')]")
        wait.until(ec.invisibility_of_element_located(("css selector", ".modal-dialog")))
        wait.until(ec.presence_of_element_located(("xpath", f"//td//*[normalize-space(.)='{UPLOAD}']")))
        _no_forbidden_page(driver)
        _dismiss_toasts(driver)
        shot = out / "containers.png"
        driver.save_screenshot(str(shot))
        print(f"\nscreenshot of the Containers page: {shot}")
        if os.environ.get("DASHBOARD_DOCS_SCREENSHOT") == "1":
            (ROOT / "docs").mkdir(exist_ok=True)
            shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")

        # Download: the object's row action; chromium saves it to the download folder.
        _click_text(driver, wait, f"//tr[.//*[normalize-space(.)='{UPLOAD}']]//button[normalize-space(.)='Download']"
                                  f" | //tr[.//*[normalize-space(.)='{UPLOAD}']]//a[normalize-space(.)='Download']")
        landed = downloads / UPLOAD
        deadline = time.monotonic() + WAIT
        while not (landed.exists() and not list(downloads.glob("*.crdownload"))) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert landed.exists(), f"nothing downloaded: {sorted(p.name for p in downloads.iterdir())}"
        assert hashlib.sha256(landed.read_bytes()).hexdigest() == hashlib.sha256(payload).hexdigest()

        assert not [t for t in _toasts(driver) if t.startswith("Error")]
        assert not responses.refused(), responses.refused()
        assert any(url.startswith(f"https://{door.host}/dashboard/api/swift/") for _, url in responses.seen)
        assert not responses.elsewhere(door.host), responses.elsewhere(door.host)
    except Exception:
        driver.save_screenshot(str(out / "failure.png"))
        (out / "failure.html").write_text(driver.page_source)
        raise
    finally:
        driver.quit()


def test_every_panel_of_the_menu_opens_for_the_admin_and_the_demo_user(installed, tmp_path):
    """Only identity and object-store are in the catalog: every page the menu offers opens, for
    admin too (whose default home would be the admin Overview, which asks Nova), none is a 403."""
    from selenium.webdriver.support.ui import WebDriverWait

    paths = LabPaths(installed / LAB)
    door = front_door(load_inventory(paths.inventory))
    secrets = load_secrets(paths.secrets, lambda line: None)
    for user, secret in (("admin", "admin_pass"), ("myuser", "demo_pass")):
        folder = tmp_path / user
        folder.mkdir()
        driver = _browser(folder, _trusting_home(folder, paths.ca_cert), door.host, folder)
        responses, wait = Responses(driver), WebDriverWait(driver, WAIT)
        try:
            _log_in(driver, wait, door, user, secrets[secret])
            links = driver.find_elements("css selector", "a.openstack-panel")
            panels = sorted({a.get_attribute("href") for a in links})
            assert f"{door.base}/dashboard/project/containers/" in panels, panels
            for url in panels:
                driver.get(url)
                wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
                _no_forbidden_page(driver)
                shown = [a.text for a in driver.find_elements("css selector", ".alert-danger") if a.is_displayed()]
                assert not shown, f"{url}: {shown}"
            print(f"\n{user}: {len(panels)} panels opened: {', '.join(p.split('/dashboard')[1] for p in panels)}")
            assert not responses.refused(), responses.refused()
        finally:
            driver.quit()
