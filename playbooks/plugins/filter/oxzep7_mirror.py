"""Filter `oxzep7_mirror_refused`: why a host refused an artifact from `artifacts.mirror`.

`ansible.builtin.get_url` with `checksum:` downloads to a temporary file and checks it before it
keeps anything; its failure says so in its own words (a temporary path, "did not match", an HTTP
error). This filter turns that result into the message the operator reads: the host, the URL,
the sha256 the controller's manifest expects and the one that arrived, and what to do.

    ansible_failed_result | oxzep7.deploy.oxzep7_mirror_refused('the wheel set', url, sha256,
                                                                inventory_hostname)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_GOT = re.compile(r"did not match \S+?; it was ([0-9a-fA-F]{64})")


def oxzep7_mirror_refused(failed: Any, what: str, url: str, expected: str, host: str) -> str:
    result = failed if isinstance(failed, Mapping) else {}
    msg = str(result.get("msg") or result.get("response") or "the download failed")
    got = _GOT.search(msg)
    if got:
        return (f"{host} refused {what} from the mirror {url}: its sha256 is {got.group(1)}, "
                f"the controller's manifest says {expected}; nothing was installed and nothing "
                "switched on this host: publish the controller's artifacts to the mirror again "
                "(oxzep7-deploy publish SPEC --dest DIR) and apply again")
    status = result.get("status_code")
    why = f"HTTP {status}" if isinstance(status, int) and status >= 400 else msg
    return (f"{host} could not download {what} (sha256 {expected}) from the mirror {url}: "
            f"{why}; nothing was installed and nothing switched on this host: publish the "
            "controller's artifacts there (oxzep7-deploy publish SPEC --dest DIR), check that "
            "the host reaches artifacts.mirror, and apply again")


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"oxzep7_mirror_refused": oxzep7_mirror_refused}
