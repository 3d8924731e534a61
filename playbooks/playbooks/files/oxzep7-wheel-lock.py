"""Write requirements.txt in a wheel folder: every wheel pinned by name, version and sha256.

Run by playbooks/wheels.yml on the build host with the new interpreter (stdlib only); prints
the wheels as JSON: file, name, version, sha256, and whether it is platform-specific.
"""

import hashlib
import json
import os
import sys


def main(folder):
    lines, wheels = [], []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".whl"):
            continue
        parts = name[: -len(".whl")].split("-")
        with open(os.path.join(folder, name), "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        project, version, tag = parts[0], parts[1], parts[-1]
        lines.append(f"{project}=={version} --hash=sha256:{digest}")
        wheels.append({"file": name, "name": project, "version": version, "sha256": digest,
                       "platform_specific": tag != "any"})
    with open(os.path.join(folder, "requirements.txt"), "w") as out:
        out.write("".join(line + "\n" for line in lines))
    print(json.dumps({"wheels": wheels}))


if __name__ == "__main__":
    main(sys.argv[1])
