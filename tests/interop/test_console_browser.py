"""The web console in a real browser: Debian's chromium and chromium-driver, headless, driven by Selenium (the
driver is given, never downloaded). A tenant signs in with its access key pair, watches a gateway created through
the SDK go from creating to active without reloading, opens it, downloads a connection's strongSwan configuration
and signs out; an operator created with `openvgw admin operator create` sees every tenant and the data plane. The
page also fits a phone's width.

A screenshot of each page is written to target/console-screenshots/ (OVGW_SCREENSHOTS overrides it) for a reviewer.
Tunnels coming up against a real peer are shown by tests/e2e/test_console.py (netns data plane, root)."""
from __future__ import annotations

import pytest

import browser as b
import conftest
from vgwlib import unique_name, unique_vpc

b.require()
from selenium.webdriver.common.by import By  # noqa: E402

# Gateways take 4 s to come up here, so that a person (and this test) can watch them being created.
CONSOLE_CONFIG = conftest.MAIN_CONFIG.replace("provision_delay_ms = 300", "provision_delay_ms = 4000").replace(
    conftest.MAIN_EIP_POOL, "198.19.16.0/24")


@pytest.fixture(scope="module")
def console_server(tmp_path_factory):
    srv = conftest._start(tmp_path_factory, "openvgw-console", CONSOLE_CONFIG, "198.19.16.0/24")
    yield srv
    srv.stop()


@pytest.fixture
def browser(tmp_path):
    with b.chromium(tmp_path) as driver:
        yield driver


def status_of(driver, gateway: str) -> str:
    rows = driver.find_elements(By.CSS_SELECTOR, f"tr[data-gateway='{gateway}'] [data-status]")
    return rows[0].get_attribute("data-status") if rows else ""


def test_a_tenant_and_an_operator_use_the_console(console_server, browser, tmp_path):
    d, srv = browser, console_server
    base = f"http://127.0.0.1:{srv.port}"
    mine, theirs = srv.create_tenant(unique_name("ca")), srv.create_tenant(unique_name("cb"))
    api, other = srv.api(mine), srv.api(theirs)

    d.get(f"{base}/console/gateways")
    assert d.current_url.endswith("/console/sign-in"), "no session, no page"
    b.shot(d, "01-sign-in")
    d.find_element(By.ID, "id").send_keys(mine["access_key_id"])
    d.find_element(By.ID, "secret").send_keys("not-the-secret")
    d.find_element(By.ID, "secret").submit()
    assert "Sign-in failed" in d.find_element(By.CSS_SELECTOR, "[role=alert]").text
    b.sign_in(d, base, "key", mine["access_key_id"], mine["access_key_secret"])

    foreign = other.call("CreateVpnGateway", {"VpcId": unique_vpc(), "Bandwidth": 5})["VpnGatewayId"]
    name = unique_name("console-gw")
    gw = api.call("CreateVpnGateway", {"VpcId": unique_vpc(), "Bandwidth": 5, "Name": name})["VpnGatewayId"]
    # The list refreshes by itself: the gateway appears while it is being created, then turns active.
    seen = b.until(lambda: status_of(d, gw), 10)
    assert seen in ("init", "creating"), seen
    b.shot(d, "02-gateways-creating")
    b.until(lambda: status_of(d, gw) == "active", 30)
    b.shot(d, "03-gateways-active")
    assert foreign not in d.page_source, "another tenant's gateway is not shown"

    cgw = api.call("CreateCustomerGateway", {"IpAddress": "198.51.100.99", "Name": unique_name("cgw")})
    vco = api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw["CustomerGatewayId"],
                                           "LocalSubnet": "10.1.0.0/16", "RemoteSubnet": "192.168.90.0/24",
                                           "Name": "to-the-branch"})["VpnConnectionId"]
    d.find_element(By.LINK_TEXT, name).click()
    b.until(lambda: name in d.find_element(By.TAG_NAME, "h1").text)
    b.until(lambda: d.find_elements(By.CSS_SELECTOR, f"tr[data-connection='{vco}']"), 15)
    assert d.find_elements(By.CSS_SELECTOR, "svg.topology title"), "the topology picture"
    assert "198.51.100.99" in d.find_element(By.CSS_SELECTOR, "svg.topology").get_attribute("innerHTML")
    b.shot(d, "04-gateway")
    d.find_element(By.CSS_SELECTOR, f"a[href='/console/connections/{vco}/config/strongswan']").click()
    conf = b.until(lambda: (tmp_path / "swanctl.conf").exists() and (tmp_path / "swanctl.conf").read_text(), 15)
    assert "connections {" in conf and "198.51.100.99" in conf, conf

    # A phone's width: nothing spills sideways out of the page (wide tables scroll inside themselves).
    d.set_window_size(390, 844)
    d.refresh()
    fits = d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    b.shot(d, "05-gateway-phone")
    assert fits, "the page is wider than a phone's screen"
    d.set_window_size(1280, 1000)

    d.find_element(By.XPATH, "//button[text()='Sign out']").click()
    b.until(lambda: d.current_url.endswith("/console/sign-in"))
    b.shot(d, "06-signed-out")
    d.get(f"{base}/console/gateways/{gw}")
    assert d.current_url.endswith("/console/sign-in"), "the session is over"

    created = srv.run_cli("admin", "operator", "create", "--name", unique_name("ops"))
    assert created.returncode == 0, created.stderr
    fields = dict(line.split(": ", 1) for line in created.stdout.splitlines() if ": " in line)
    b.sign_in(d, base, "operator", fields["operator"], fields["password"])
    b.until(lambda: status_of(d, gw) and status_of(d, foreign), 10)
    b.shot(d, "07-operator-gateways")
    d.find_element(By.LINK_TEXT, "Data plane").click()
    b.until(lambda: d.current_url.endswith("/console/dataplane"))
    assert gw in d.page_source and foreign in d.page_source
    b.shot(d, "08-operator-dataplane")
    print(f"screenshots: {b.SHOTS}")
