"""Who may use the page: with the settings' address on loopback (the default), only this machine.

`python -m ui` binds the server to `settings.host`, but `streamlit run ui/app.py` started from another folder
reads no `.streamlit/config.toml` and listens on every interface. So the page checks each client too: when the
settings say loopback, a browser connecting from elsewhere gets one line saying why, and nothing else. The
address checked is the connection's own (Streamlit's `st.context.ip_address`, which is None for a loopback
peer); the server honours forwarded-for headers only from a proxy on this machine, which remote clients are
not, and `python -m ui` turns even that off (a local proxy is then the trust boundary, as SECURITY.md says).
"""
from __future__ import annotations

import ipaddress
import logging

import streamlit as st

log = logging.getLogger(__name__)

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1, their IPv4-mapped forms and localhost; False for anything else."""
    if host is None:
        return False
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def client_allowed(serving_host: str, client_ip: str | None) -> bool:
    """May a client at `client_ip` (None: a loopback peer, as Streamlit reports it) use a page whose settings
    say it serves `serving_host`?"""
    if not is_loopback(serving_host):
        return True  # serving the network was chosen explicitly (MRA_HOST)
    return client_ip is None or is_loopback(client_ip)


def client_ip() -> str | None:
    address = st.context.ip_address
    return address if isinstance(address, str) else None  # None: a loopback peer, or no connection (AppTest)


def refuse_remote_clients(serving_host: str) -> None:
    """Stop the page for a client the settings do not serve, with one line that says how to serve it."""
    address = client_ip()
    if client_allowed(serving_host, address):
        return
    log.warning("refused a client at %s: the settings serve loopback only (MRA_HOST=%s)", address, serving_host)
    st.error("This assistant serves only the machine it runs on. To share it, its owner sets MRA_HOST "
             "(see SECURITY.md).", icon=":material/block:")
    st.stop()
