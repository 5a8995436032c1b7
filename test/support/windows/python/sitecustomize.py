# Name resolution for the sandbox's "containers" (docker run through the Windows-sandbox shim).
#
# A Docker Desktop container resolves host.docker.internal (and --add-host names) itself; the
# sandbox runs the container's python3 on this machine, where those names do not exist. This file
# (found through PYTHONPATH) makes socket.getaddrinfo/gethostbyname answer them from
# STIGMER_SANDBOX_HOSTS ("name=ip,name=ip"), so URLs, Host headers and the script stay untouched.
import os
import socket

_HOSTS = {}
for _entry in os.environ.get("STIGMER_SANDBOX_HOSTS", "").split(","):
    _name, _sep, _ip = _entry.partition("=")
    if _sep and _name:
        _HOSTS[_name.strip().lower().rstrip(".")] = _ip.strip()

_real_getaddrinfo = socket.getaddrinfo
_real_gethostbyname = socket.gethostbyname


def _mapped(host):
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("ascii", "replace")
    if isinstance(host, str):
        return _HOSTS.get(host.lower().rstrip("."))
    return None


def getaddrinfo(host, *args, **kwargs):
    ip = _mapped(host)
    return _real_getaddrinfo(ip if ip is not None else host, *args, **kwargs)


def gethostbyname(host):
    ip = _mapped(host)
    return ip if ip is not None else _real_gethostbyname(host)


socket.getaddrinfo = getaddrinfo
socket.gethostbyname = gethostbyname
